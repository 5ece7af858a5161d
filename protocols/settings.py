"""Machine settings: the three setpoints a rotary machine is driven with."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, NamedTuple

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from protocols.quantities import DEPTH, RATE, VOLTAGE, VOLTAGE_WARN_ABOVE, Quantity


class WireSettings(NamedTuple):
    """Setpoints as the wire carries them: integers in µm, 0.1 Hz and mV."""

    depth_um: int
    rate_dhz: int
    voltage_mv: int


def _no_bool(value: object) -> object:
    # pydantic would read True as 1; a setting written as a boolean is a mistake.
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "{value} is not a number", {"value": value})
    return value


def _checked(q: Quantity) -> Callable[[Decimal], Decimal]:
    def check(value: Decimal) -> Decimal:
        if not q.lo <= value <= q.hi:
            raise PydanticCustomError(
                "out_of_range",
                "{value} {unit} is outside the allowed {allowed}",
                {"value": str(value), "unit": q.unit, "allowed": q.range_text()},
            )
        if not q.on_step(value):
            raise PydanticCustomError(
                "off_step",
                "{value} {unit} is not in steps of {step} {unit} (allowed {allowed})",
                {"value": str(value), "unit": q.unit, "step": str(q.step),
                 "allowed": q.range_text()},
            )
        return q.normalise(value)

    return check


# Spelled out (not made by a function) so type checkers see Decimal fields.
DepthMM = Annotated[Decimal, BeforeValidator(_no_bool), AfterValidator(_checked(DEPTH))]
RateHz = Annotated[Decimal, BeforeValidator(_no_bool), AfterValidator(_checked(RATE))]
VoltageV = Annotated[Decimal, BeforeValidator(_no_bool), AfterValidator(_checked(VOLTAGE))]


class MachineSettings(BaseModel):
    """Needle depth (mm), stroke rate (Hz) and drive voltage (V), within the hard limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    depth_mm: DepthMM
    rate_hz: RateHz
    voltage_v: VoltageV

    def to_wire(self) -> WireSettings:
        return WireSettings(
            DEPTH.to_wire(self.depth_mm), RATE.to_wire(self.rate_hz),
            VOLTAGE.to_wire(self.voltage_v),
        )

    @classmethod
    def from_wire(cls, depth_um: int, rate_dhz: int, voltage_mv: int) -> MachineSettings:
        """Settings from wire integers; refused (ValidationError) if off-step or out of range."""
        return cls(
            depth_mm=DEPTH.from_wire(depth_um), rate_hz=RATE.from_wire(rate_dhz),
            voltage_v=VOLTAGE.from_wire(voltage_mv),
        )

    def value(self, q: Quantity) -> Decimal:
        value: Decimal = getattr(self, q.field)
        return value

    def advisories(self) -> list[str]:
        """Warnings that do not refuse the settings."""
        if self.voltage_v > VOLTAGE_WARN_ABOVE:
            return [f"voltage {VOLTAGE.fmt_unit(self.voltage_v)} is above "
                    f"{VOLTAGE.fmt_unit(VOLTAGE_WARN_ABOVE)}: unusual for SMP, check the skin"]
        return []

    def short(self) -> str:
        """"1.55 mm / 111 Hz / 6.6 V": the three settings where space is short."""
        rate = RATE.fmt(self.rate_hz).removesuffix(".0")
        return (f"{DEPTH.fmt_unit(self.depth_mm)} / {rate} {RATE.unit} / "
                f"{VOLTAGE.fmt_unit(self.voltage_v)}")

    def __str__(self) -> str:
        return (f"depth {DEPTH.fmt_unit(self.depth_mm)}, rate {RATE.fmt_unit(self.rate_hz)}, "
                f"voltage {VOLTAGE.fmt_unit(self.voltage_v)}")
