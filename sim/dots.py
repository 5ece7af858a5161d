"""An illustrative dot model for trainers: why the hairline gets a shallower, gentler profile.

Not clinical. It turns the machine's settings and the skin into an expected healed dot size and
a blow-out risk, so that a trainer can show the direction of each effect:
    penetration  p = depth - 0.8 mm (the cartridge tip and skin give) - resistance(skin)
                     + 0.05 mm per volt above 7 V
    fresh dot    d = 0.20 mm + 0.45 * p, x 1.15 below 110 Hz (more dwell per stroke),
                     x spread(skin)
    healed dot   about half the fresh dot (docs/domain.md: dots heal to about half their size)
    blow-out     high if p > 1.3 mm or the skin is sunburnt; medium if p > 1.1 mm or scar
                 tissue; else low
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from protocols.settings import MachineSettings


class DotSkin(StrEnum):
    NORMAL = "normal"
    THIN = "thin"
    THICK = "thick"
    SCAR = "scar"
    SUNBURNT = "sunburnt"


_RESISTANCE_MM = {DotSkin.NORMAL: 0.0, DotSkin.THIN: -0.1, DotSkin.THICK: 0.15,
                  DotSkin.SCAR: 0.2, DotSkin.SUNBURNT: -0.1}
_SPREAD = {DotSkin.NORMAL: 1.0, DotSkin.THIN: 1.1, DotSkin.THICK: 0.95, DotSkin.SCAR: 1.2,
           DotSkin.SUNBURNT: 1.6}


@dataclass(frozen=True)
class DotEstimate:
    penetration_mm: float
    fresh_mm: float
    healed_mm: float
    blowout_risk: str  # "low" | "medium" | "high"
    why: str

    def __str__(self) -> str:
        return (f"penetration {self.penetration_mm:.2f} mm, dot {self.fresh_mm:.2f} mm fresh, "
                f"~{self.healed_mm:.2f} mm healed, blow-out risk {self.blowout_risk}: {self.why}")


def estimate_dot(settings: MachineSettings, skin: DotSkin = DotSkin.NORMAL) -> DotEstimate:
    volts = float(settings.voltage_v)
    p = float(settings.depth_mm) - 0.8 - _RESISTANCE_MM[skin] + 0.05 * (volts - 7.0)
    p = max(0.0, p)
    fresh = (0.20 + 0.45 * p) * _SPREAD[skin]
    if settings.rate_hz < Decimal(110):
        fresh *= 1.15
    if skin is DotSkin.SUNBURNT:
        risk, why = "high", "sunburnt skin spreads pigment like ink on wet paper: do not work"
    elif p > 1.3:
        risk, why = "high", "too deep: pigment spreads under the skin and heals blurred or blue"
    elif p > 1.1:
        risk, why = "medium", "deep for SMP: watch for spreading, consider less depth"
    elif skin is DotSkin.SCAR:
        risk, why = "medium", "scar tissue takes pigment unevenly: stay conservative"
    else:
        risk, why = "low", "within the usual SMP range"
    return DotEstimate(round(p, 3), round(fresh, 3), round(fresh / 2, 3), risk, why)
