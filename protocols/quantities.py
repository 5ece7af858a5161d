"""The three driven settings as exact quantities: hard limits, steps and wire units.

Values are `Decimal` so that 1.45 mm stays 1.45 mm from a TOML file to the wire and back;
binary floats would drift (0.1 + 0.2 != 0.3) and a setpoint must never change by rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Quantity:
    field: str  # attribute and TOML key, e.g. "depth_mm"
    label: str  # what a technician calls it
    unit: str
    step: Decimal
    lo: Decimal  # hard limit (docs/domain.md): refuse outside, never clamp
    hi: Decimal
    wire_unit: str
    wire_scale: int  # wire integer = value * wire_scale

    @property
    def places(self) -> int:
        return -self.step.as_tuple().exponent  # type: ignore[operator]

    def fmt(self, value: Decimal) -> str:
        return f"{value:.{self.places}f}"

    def fmt_unit(self, value: Decimal) -> str:
        return f"{self.fmt(value)} {self.unit}"

    def range_text(self, lo: Decimal | None = None, hi: Decimal | None = None) -> str:
        lo = self.lo if lo is None else lo
        hi = self.hi if hi is None else hi
        return f"{self.fmt(lo)} to {self.fmt(hi)} {self.unit}"

    def on_step(self, value: Decimal) -> bool:
        return (value % self.step) == 0

    def to_wire(self, value: Decimal) -> int:
        scaled = value * self.wire_scale
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{self.label} {value} has no exact {self.wire_unit} value")
        return int(scaled)

    def from_wire(self, raw: int) -> Decimal:
        # Division by a power of ten is exact in Decimal; the step is checked by the caller.
        return Decimal(raw) / self.wire_scale

    def normalise(self, value: Decimal) -> Decimal:
        """The same value written with this quantity's decimal places (1.5 -> 1.50)."""
        return value.quantize(Decimal(1).scaleb(-self.places))


DEPTH = Quantity(
    field="depth_mm", label="needle depth", unit="mm", step=Decimal("0.05"),
    lo=Decimal("0.2"), hi=Decimal("2.5"), wire_unit="µm", wire_scale=1000,
)
RATE = Quantity(
    field="rate_hz", label="stroke rate", unit="Hz", step=Decimal("0.1"),
    lo=Decimal("50"), hi=Decimal("150"), wire_unit="0.1 Hz", wire_scale=10,
)
VOLTAGE = Quantity(
    field="voltage_v", label="voltage", unit="V", step=Decimal("0.1"),
    lo=Decimal("3.0"), hi=Decimal("12.0"), wire_unit="mV", wire_scale=1000,
)
QUANTITIES: tuple[Quantity, ...] = (DEPTH, RATE, VOLTAGE)
BY_FIELD = {q.field: q for q in QUANTITIES}

# docs/domain.md: "3.0 to 12.0 V; warn above 10 V".
VOLTAGE_WARN_ABOVE = Decimal("10.0")
