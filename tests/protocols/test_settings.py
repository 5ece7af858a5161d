from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from protocols import DEPTH, RATE, VOLTAGE, MachineSettings, WireSettings


def on_step(q):
    """Every valid value of a quantity, as an exact Decimal."""
    lo, hi = int(q.lo / q.step), int(q.hi / q.step)
    return st.integers(lo, hi).map(lambda n: n * q.step)


settings_strategy = st.builds(
    MachineSettings, depth_mm=on_step(DEPTH), rate_hz=on_step(RATE), voltage_v=on_step(VOLTAGE)
)


@given(settings_strategy)
def test_wire_round_trip_is_exact(settings):
    wire = settings.to_wire()
    assert all(isinstance(v, int) for v in wire)
    assert MachineSettings.from_wire(*wire) == settings
    assert MachineSettings.from_wire(*wire).to_wire() == wire


@given(
    st.integers(200, 2500).filter(lambda um: um % 50 == 0),
    st.integers(500, 1500),
    st.integers(30, 120).map(lambda n: n * 100),
)
def test_every_valid_wire_triple_round_trips(depth_um, rate_dhz, voltage_mv):
    wire = WireSettings(depth_um, rate_dhz, voltage_mv)
    assert MachineSettings.from_wire(*wire).to_wire() == wire


def test_floats_from_files_do_not_drift():
    s = MachineSettings(depth_mm=1.45, rate_hz=123.4, voltage_v=7.3)
    assert s.to_wire() == WireSettings(1450, 1234, 7300)
    assert s.depth_mm == Decimal("1.45")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("depth_mm", 2.55, "2.55 mm is outside the allowed 0.20 to 2.50 mm"),
        ("depth_mm", 0.15, "0.15 mm is outside the allowed 0.20 to 2.50 mm"),
        ("depth_mm", 1.47, "1.47 mm is not in steps of 0.05 mm"),
        ("rate_hz", 150.1, "150.1 Hz is outside the allowed 50.0 to 150.0 Hz"),
        ("rate_hz", 120.05, "120.05 Hz is not in steps of 0.1 Hz"),
        ("voltage_v", 12.1, "12.1 V is outside the allowed 3.0 to 12.0 V"),
        ("voltage_v", 2.9, "2.9 V is outside the allowed 3.0 to 12.0 V"),
    ],
)
def test_out_of_range_or_off_step_is_refused(field, value, fragment):
    values = {"depth_mm": 1.5, "rate_hz": 120, "voltage_v": 7.0, field: value}
    with pytest.raises(ValidationError) as exc:
        MachineSettings(**values)
    assert fragment in str(exc.value)


def test_off_step_wire_value_is_refused():
    with pytest.raises(ValidationError, match=r"not in steps of 0\.05"):
        MachineSettings.from_wire(1453, 1200, 7000)


@pytest.mark.parametrize("bad", [True, "deep", float("nan"), float("inf"), None])
def test_non_numbers_are_refused(bad):
    with pytest.raises(ValidationError):
        MachineSettings(depth_mm=bad, rate_hz=120, voltage_v=7)


def test_settings_are_frozen():
    s = MachineSettings(depth_mm=1.5, rate_hz=120, voltage_v=7)
    with pytest.raises(ValidationError):
        s.depth_mm = Decimal("2.0")


def test_high_voltage_is_advised_not_refused():
    assert MachineSettings(depth_mm=1.5, rate_hz=120, voltage_v=10.5).advisories()
    assert MachineSettings(depth_mm=1.5, rate_hz=120, voltage_v=10.0).advisories() == []
