from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import DEPTH, HARD_LIMITS, QUANTITIES, RATE, VOLTAGE, MachineSettings, Range
from protocols.envelope import EmptyEnvelope, SafetyEnvelope
from protocols.settings import WireSettings


def ranges(q):
    lo, hi = int(q.lo / q.step), int(q.hi / q.step)
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi)).map(
        lambda ab: Range(lo=min(ab) * q.step, hi=max(ab) * q.step)
    )


envelopes = st.builds(
    SafetyEnvelope, depth_mm=ranges(DEPTH), rate_hz=ranges(RATE), voltage_v=ranges(VOLTAGE)
)


@given(envelopes, envelopes)
def test_intersection_never_widens(a, b):
    try:
        c = a.intersect(b)
    except EmptyEnvelope:
        return
    for q in QUANTITIES:
        assert c.range(q).lo >= max(a.range(q).lo, b.range(q).lo)
        assert c.range(q).hi <= min(a.range(q).hi, b.range(q).hi)


@given(envelopes)
def test_hard_limits_are_the_outermost_envelope(env):
    assert HARD_LIMITS.intersect(env) == env


def test_an_envelope_wider_than_the_hard_limits_is_refused():
    with pytest.raises(ValueError, match="beyond the hard limits"):
        SafetyEnvelope(
            depth_mm=Range(lo=Decimal("0.2"), hi=Decimal("3.0")),
            rate_hz=HARD_LIMITS.rate_hz, voltage_v=HARD_LIMITS.voltage_v,
        )


def test_machine_limits_narrow_and_name_both_ranges_when_disjoint():
    machine = SafetyEnvelope.from_wire(WireSettings(200, 500, 3000), WireSettings(1000, 1500, 9000))
    clinic = HARD_LIMITS.model_copy(update={"depth_mm": Range(lo=Decimal("1.2"), hi=Decimal("2"))})
    with pytest.raises(EmptyEnvelope) as exc:
        clinic.intersect(machine)
    assert str(exc.value) == (
        "needle depth: the machine allows 0.20 to 1.00 mm but 1.20 to 2.00 mm is required; "
        "no value satisfies both"
    )


def test_check_reports_every_violation_and_never_clamps():
    narrow = SafetyEnvelope.from_wire(WireSettings(500, 800, 5000), WireSettings(1500, 1200, 8000))
    s = MachineSettings(depth_mm=2.0, rate_hz=130, voltage_v=8.5)
    violations = narrow.check(s)
    assert [str(v) for v in violations] == [
        "needle depth 2.00 mm is outside the allowed 0.50 to 1.50 mm",
        "stroke rate 130.0 Hz is outside the allowed 80.0 to 120.0 Hz",
        "voltage 8.5 V is outside the allowed 5.0 to 8.0 V",
    ]
    assert s.depth_mm == Decimal("2.0")  # untouched


def test_envelope_wire_round_trip():
    lo, hi = HARD_LIMITS.to_wire()
    assert lo == WireSettings(200, 500, 3000)
    assert hi == WireSettings(2500, 1500, 12000)
    assert SafetyEnvelope.from_wire(lo, hi) == HARD_LIMITS
