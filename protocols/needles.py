"""Needle cartridges, parsed from the codes technicians write.

Accepted forms (case-insensitive):
  "1003RL"       gauge 10 (0.30 mm), 3 needles, round liner: GG NN CONFIG
  "#10 3RL"      the same with the gauge written as #G
  "3RL 0.30mm"   count and configuration with the diameter in mm (also "0.30mm 3RL");
                 the only way to write 0.18 mm, which has no gauge code.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from protocols.errors import SmpError


class BadNeedleCode(SmpError, ValueError):
    pass


class NeedleConfig(StrEnum):
    RL = "RL"  # round liner
    RS = "RS"  # round shader
    M1 = "M1"  # flat magnum
    RM = "RM"  # round (curved) magnum
    F = "F"  # flat

    @property
    def label(self) -> str:
        return {"RL": "round liner", "RS": "round shader", "M1": "magnum",
                "RM": "curved magnum", "F": "flat"}[self.value]


GAUGE_MM = {6: Decimal("0.20"), 8: Decimal("0.25"), 10: Decimal("0.30"), 12: Decimal("0.35")}
MIN_DIAMETER, MAX_DIAMETER = Decimal("0.18"), Decimal("0.35")

_CFG = "|".join(c.value for c in NeedleConfig)
_COMPACT = re.compile(rf"^(\d{{2}})(\d{{2}})({_CFG})$", re.I)
_HASH = re.compile(rf"^#\s*(\d{{1,2}})\s+(\d{{1,2}})\s*({_CFG})$", re.I)
_MM_AFTER = re.compile(rf"^(\d{{1,2}})\s*({_CFG})\s+(\d?\.\d{{2}})\s*(?:mm)?$", re.I)
_MM_BEFORE = re.compile(rf"^(\d?\.\d{{2}})\s*(?:mm)?\s+(\d{{1,2}})\s*({_CFG})$", re.I)

ACCEPTED_FORMS = (
    "accepted forms: 1003RL (gauge, count, type), '#10 3RL' or '3RL 0.30mm'; gauges #6 #8 #10 "
    f"#12, diameters {MIN_DIAMETER} to {MAX_DIAMETER} mm, types {', '.join(NeedleConfig)}"
)


class NeedleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=1, le=49)
    configuration: NeedleConfig
    diameter_mm: Decimal = Field(ge=MIN_DIAMETER, le=MAX_DIAMETER, decimal_places=2)

    @classmethod
    def parse(cls, code: str) -> NeedleSpec:
        text = " ".join(code.split())
        if m := _COMPACT.match(text):
            gauge, count, cfg = int(m[1]), int(m[2]), m[3]
            return cls._make(code, count, cfg, cls._gauge(code, gauge))
        if m := _HASH.match(text):
            gauge, count, cfg = int(m[1]), int(m[2]), m[3]
            return cls._make(code, count, cfg, cls._gauge(code, gauge))
        if m := _MM_AFTER.match(text):
            return cls._make(code, int(m[1]), m[2], Decimal(m[3]))
        if m := _MM_BEFORE.match(text):
            return cls._make(code, int(m[2]), m[3], Decimal(m[1]))
        raise BadNeedleCode(f"bad needle code {code!r}: {ACCEPTED_FORMS}")

    @staticmethod
    def _gauge(code: str, gauge: int) -> Decimal:
        if gauge not in GAUGE_MM:
            raise BadNeedleCode(
                f"bad needle code {code!r}: unknown gauge #{gauge}; {ACCEPTED_FORMS}")
        return GAUGE_MM[gauge]

    @classmethod
    def _make(cls, code: str, count: int, cfg: str, diameter: Decimal) -> NeedleSpec:
        if not MIN_DIAMETER <= diameter <= MAX_DIAMETER:
            raise BadNeedleCode(
                f"bad needle code {code!r}: diameter {diameter} mm is outside "
                f"{MIN_DIAMETER} to {MAX_DIAMETER} mm"
            )
        if not 1 <= count <= 49:
            raise BadNeedleCode(
                f"bad needle code {code!r}: needle count {count} is outside 1 to 49")
        return cls(count=count, configuration=NeedleConfig(cfg.upper()), diameter_mm=diameter)

    @property
    def code(self) -> str:
        """The shortest standard code: "1003RL", or "1RL 0.18mm" when no gauge fits."""
        for gauge, mm in GAUGE_MM.items():
            if mm == self.diameter_mm:
                return f"{gauge:02d}{self.count:02d}{self.configuration}"
        return f"{self.count}{self.configuration} {self.diameter_mm:.2f}mm"

    def __str__(self) -> str:
        return self.code


def _parse_code(value: Any) -> Any:
    return NeedleSpec.parse(value) if isinstance(value, str) else value


# A NeedleSpec field that accepts a code string and serialises back to one.
NeedleField = Annotated[
    NeedleSpec, BeforeValidator(_parse_code), PlainSerializer(lambda n: n.code, return_type=str)
]
