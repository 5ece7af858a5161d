"""Skin adjustments: documented, bounded changes to a base profile.

Each adjustment changes one setting by a small fixed amount (a delta) or holds it at or
below a ceiling (a cap). They are applied in the order of `ADJUSTMENTS`; the result is then
checked against the envelope and refused if outside it. Nothing is clamped to fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from protocols.errors import SmpError
from protocols.quantities import DEPTH, RATE, VOLTAGE, Quantity


class SkinCondition(StrEnum):
    SCAR_TISSUE = "scar-tissue"
    THIN_SENSITIVE = "thin-sensitive"
    THICK_RESISTANT = "thick-resistant"
    FITZPATRICK_IV_VI = "fitzpatrick-iv-vi"

    @property
    def label(self) -> str:
        return {
            "scar-tissue": "scar tissue",
            "thin-sensitive": "thin or sensitive skin",
            "thick-resistant": "thick or resistant skin",
            "fitzpatrick-iv-vi": "Fitzpatrick IV to VI",
        }[self.value]

    @classmethod
    def parse(cls, text: str) -> SkinCondition:
        key = text.strip().lower().replace("_", "-").replace(" ", "-")
        key = _ALIASES.get(key, key)
        try:
            return cls(key)
        except ValueError:
            raise SmpError(
                f"unknown skin condition {text!r}; allowed: {', '.join(c.value for c in cls)}"
            ) from None


_ALIASES = {
    "scar": "scar-tissue", "thin": "thin-sensitive", "sensitive": "thin-sensitive",
    "thick": "thick-resistant", "resistant": "thick-resistant", "dark": "fitzpatrick-iv-vi",
    "fitzpatrick": "fitzpatrick-iv-vi", "fitz-iv-vi": "fitzpatrick-iv-vi",
}


@dataclass(frozen=True)
class Adjustment:
    condition: SkinCondition
    quantity: Quantity
    kind: Literal["delta", "cap"]
    amount: Decimal
    why: str

    def apply(self, value: Decimal) -> Decimal:
        if self.kind == "cap":
            return min(value, self.amount)
        return value + self.amount


# Bounds: every delta is at most 0.5 V, 10 Hz or 0.1 mm; caps only ever lower a value.
ADJUSTMENTS: tuple[Adjustment, ...] = (
    Adjustment(SkinCondition.SCAR_TISSUE, DEPTH, "cap", Decimal("1.5"),
               "scar tissue is treated conservatively"),
    Adjustment(SkinCondition.SCAR_TISSUE, VOLTAGE, "delta", Decimal("0.5"),
               "scar tissue is harder and needs more drive"),
    Adjustment(SkinCondition.THIN_SENSITIVE, VOLTAGE, "delta", Decimal("-0.5"),
               "thin or sensitive skin takes less drive"),
    Adjustment(SkinCondition.THIN_SENSITIVE, RATE, "delta", Decimal("-10"),
               "thin or sensitive skin takes a slower stroke"),
    Adjustment(SkinCondition.THICK_RESISTANT, VOLTAGE, "delta", Decimal("0.5"),
               "thick or resistant skin needs more drive"),
    Adjustment(SkinCondition.THICK_RESISTANT, RATE, "delta", Decimal("10"),
               "thick or resistant skin needs a faster stroke"),
    Adjustment(SkinCondition.FITZPATRICK_IV_VI, DEPTH, "delta", Decimal("-0.1"),
               "on Fitzpatrick IV to VI too deep a dot heals with a blue or green cast"),
)
