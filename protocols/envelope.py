"""Safety envelopes: the allowed range of each setting.

The hard limits of docs/domain.md are the outermost envelope. A clinic's configuration and a
machine's reported limits can only narrow it. Checking returns every violation with the
allowed range; nothing here ever clamps a value into range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, model_validator

from protocols.errors import SmpError
from protocols.quantities import DEPTH, QUANTITIES, RATE, VOLTAGE, Quantity
from protocols.settings import MachineSettings, WireSettings


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lo: Decimal
    hi: Decimal

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.lo > self.hi:
            raise ValueError(f"range {self.lo} to {self.hi} is empty")
        return self

    def __contains__(self, value: Decimal) -> bool:
        return self.lo <= value <= self.hi


@dataclass(frozen=True)
class Violation:
    quantity: Quantity
    value: Decimal
    allowed: Range

    def __str__(self) -> str:
        q = self.quantity
        return (f"{q.label} {q.fmt_unit(self.value)} is outside the allowed "
                f"{q.range_text(self.allowed.lo, self.allowed.hi)}")


class EmptyEnvelope(SmpError):
    """Two envelopes share no value for some setting."""


class SafetyEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    depth_mm: Range
    rate_hz: Range
    voltage_v: Range

    @model_validator(mode="after")
    def _inside_hard_limits(self) -> SafetyEnvelope:
        for q in QUANTITIES:
            r = self.range(q)
            if r.lo < q.lo or r.hi > q.hi:
                raise ValueError(
                    f"{q.label} range {q.range_text(r.lo, r.hi)} goes beyond the hard limits "
                    f"{q.range_text()}"
                )
        return self

    def range(self, q: Quantity) -> Range:
        r = getattr(self, q.field)
        assert isinstance(r, Range)
        return r

    @classmethod
    def from_wire(cls, lo: WireSettings, hi: WireSettings) -> SafetyEnvelope:
        """An envelope from a machine's reported limits (wire integers)."""
        return cls(**{
            q.field: Range(lo=q.from_wire(lo[i]), hi=q.from_wire(hi[i]))
            for i, q in enumerate(QUANTITIES)
        })

    def to_wire(self) -> tuple[WireSettings, WireSettings]:
        lo = WireSettings(*(q.to_wire(self.range(q).lo) for q in QUANTITIES))
        hi = WireSettings(*(q.to_wire(self.range(q).hi) for q in QUANTITIES))
        return lo, hi

    def intersect(self, other: SafetyEnvelope, *, other_name: str = "machine") -> SafetyEnvelope:
        """The narrower of the two; refused if a setting has no value allowed by both."""
        ranges = {}
        for q in QUANTITIES:
            a, b = self.range(q), other.range(q)
            lo, hi = max(a.lo, b.lo), min(a.hi, b.hi)
            if lo > hi:
                raise EmptyEnvelope(
                    f"{q.label}: the {other_name} allows {q.range_text(b.lo, b.hi)} but "
                    f"{q.range_text(a.lo, a.hi)} is required; no value satisfies both"
                )
            ranges[q.field] = Range(lo=lo, hi=hi)
        return SafetyEnvelope(**ranges)

    def check_values(self, values: Mapping[str, Decimal]) -> list[Violation]:
        """Every violation among values keyed by field name ("depth_mm", ...)."""
        return [
            Violation(q, values[q.field], self.range(q))
            for q in QUANTITIES
            if values[q.field] not in self.range(q)
        ]

    def check(self, settings: MachineSettings) -> list[Violation]:
        return self.check_values({q.field: settings.value(q) for q in QUANTITIES})

    def contains(self, settings: MachineSettings) -> bool:
        return not self.check(settings)

    def __str__(self) -> str:
        return "; ".join(
            f"{q.label} {q.range_text(self.range(q).lo, self.range(q).hi)}" for q in QUANTITIES
        )


HARD_LIMITS = SafetyEnvelope(**{q.field: Range(lo=q.lo, hi=q.hi) for q in (DEPTH, RATE, VOLTAGE)})
