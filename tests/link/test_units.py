"""TELEMETRY's units: wire integers to physical values and back, in one place (codec.Measured
and codec.Readings), exact at every setting the hard limits allow and held within the wire's
fields beyond them."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from firmware_bridge.codec import Frame, Readings, Telemetry, decode_body
from firmware_bridge.schema import (
    OVERCURRENT_MA,
    OVERTEMP_CLEAR_DC,
    OVERTEMP_DC,
    RESERVED_CAPABILITIES,
    RESERVED_FLAGS,
    UNKNOWN_FAULTS,
)
from protocols.quantities import DEPTH, QUANTITIES, RATE, VOLTAGE, Quantity
from tests.link.spec import SPEC, examples

_ZERO = {"rate_hz": 0.0, "voltage_v": 0.0, "current_a": 0.0, "depth_mm": 0.0,
         "temperature_c": 0.0}
_MEASURED = {DEPTH: ("depth_mm", "depth_um"), RATE: ("rate_hz", "rate_dhz"),
             VOLTAGE: ("voltage_v", "voltage_mv")}


def _on_steps(q: Quantity) -> list[Decimal]:
    n = int((q.hi - q.lo) / q.step)
    return [q.lo + i * q.step for i in range(n + 1)]


@pytest.mark.parametrize("q", QUANTITIES, ids=lambda q: q.field)
def test_every_setting_the_limits_allow_round_trips_exactly(q):
    """A machine measuring exactly its setpoint reports the SET's integer, and the host reads
    the setting back: physical -> wire -> physical at every step from lo to hi."""
    physical, wire = _MEASURED[q]
    values = _on_steps(q)
    assert values[0] == q.lo and values[-1] == q.hi
    for v in values:
        r = Readings.from_physical(**{**_ZERO, physical: float(v)})
        assert getattr(r, wire) == q.to_wire(v), v
        assert getattr(r, physical) == float(v), v


def test_current_and_temperature_round_trip_at_the_fault_thresholds():
    for ma in (0, OVERCURRENT_MA, OVERCURRENT_MA + 1):
        r = Readings.from_physical(**{**_ZERO, "current_a": ma / 1000})
        assert (r.current_ma, r.current_a) == (ma, ma / 1000)
    for dc in (OVERTEMP_CLEAR_DC, OVERTEMP_DC, -123):  # temperature is signed
        r = Readings.from_physical(**{**_ZERO, "temperature_c": dc / 10})
        assert (r.temperature_dc, r.temperature_c) == (dc, dc / 10)


def test_a_value_is_rounded_once_to_its_wire_unit():
    r = Readings.from_physical(rate_hz=119.84, voltage_v=7.4996, current_a=0.4124,
                               depth_mm=1.5004, temperature_c=31.16)
    assert r == Readings(1198, 7500, 412, 1500, 312)


def test_beyond_what_a_field_carries_the_reading_is_full_scale_not_wrapped():
    high = Readings.from_physical(rate_hz=7000.0, voltage_v=70.0, current_a=70.0,
                                  depth_mm=70.0, temperature_c=4000.0)
    assert high == Readings(0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0x7FFF)
    low = Readings.from_physical(rate_hz=-1.0, voltage_v=-1.0, current_a=-1.0,
                                 depth_mm=-1.0, temperature_c=-4000.0)
    assert low == Readings(0, 0, 0, 0, -0x8000)


def test_the_spec_telemetry_example_reads_as_its_prose_says():
    """Section 13: "119.8 Hz, 7.5 V, 412 mA, 1.500 mm, 31.2 °C" is the example's frame."""
    prose = re.search(r"([\d.]+) Hz, ([\d.]+) V, (\d+) mA, ([\d.]+) mm, ([\d.]+) °C",
                      SPEC.read_text(encoding="utf-8"))
    assert prose, "the TELEMETRY example's prose moved: update this test"
    hz, v, ma, mm, c = (float(x) for x in prose.groups())
    ex = next(e for e in examples() if e.name == "TELEMETRY")
    frame = decode_body(ex.body)
    assert isinstance(frame, Frame)
    t = frame.message(Telemetry)
    assert (t.rate_hz, t.voltage_v, t.current_a, t.depth_mm, t.temperature_c) == (
        hz, v, ma / 1000, mm, c)
    back = Readings.from_physical(rate_hz=t.rate_hz, voltage_v=t.voltage_v,
                                  current_a=t.current_a, depth_mm=t.depth_mm,
                                  temperature_c=t.temperature_c)
    assert back == Readings(t.rate_dhz, t.voltage_mv, t.current_ma, t.depth_um,
                            t.temperature_dc)


def test_the_reserved_bits_are_those_the_spec_reserves():
    """Section 4: flags bits 4-7; section 11.4: capability bits 5-15; and every fault bit the
    schema does not name (an IntFlag's `~` would give 0 here, hiding them all)."""
    assert RESERVED_FLAGS == 0xF0
    assert RESERVED_CAPABILITIES == 0xFFE0
    assert UNKNOWN_FAULTS == 0xFFC0
