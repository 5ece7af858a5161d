"""`smp conformance` against the simulator: every clause passes, each quirk fails exactly its
clause, it never arms without --allow-arm, and what needs controls is skipped without them.
In virtual time (tests/conformance/virtual.py): a whole run costs well under a second."""

import pytest

from firmware_bridge.codec import Telemetry
from firmware_bridge.conformance import CLAUSES, ORDER, run, select
from firmware_bridge.conformance.steps import telemetry_problems
from firmware_bridge.schema import HARD_HI, HARD_LO, Flag, State
from protocols.errors import UsageError
from sim.quirks import QUIRKS
from tests.conformance.virtual import virtual


def conformance(quirks=(), *, allow_arm=True, controls=True, clauses=None):
    line, operator = virtual(quirks=quirks)
    out = []
    report = run(line, "virtual://", allow_arm=allow_arm, clauses=clauses,
                 operator=operator if controls else None, clock=line.now, out=out.append)
    return report, out, line.machine


def outcomes(report, outcome):
    return {r.id for r in report.results if r.outcome == outcome}


def test_every_clause_passes_on_the_simulator():
    report, out, _ = conformance()
    assert [r.id for r in report.results] == ORDER
    failed = [r.line() for r in report.results if r.outcome != "PASS"]
    assert not failed, failed
    assert out[-1] == f"{len(CLAUSES)} passed, 0 failed, 0 skipped" and report.exit_code == 0


@pytest.mark.parametrize("quirk", list(QUIRKS))
def test_each_quirk_fails_exactly_its_clause(quirk):
    """The tool can fail: a simulator started non-conforming fails the clause the quirk
    breaks, and only that one."""
    report, _, _ = conformance((quirk,))
    assert outcomes(report, "FAIL") == {QUIRKS[quirk][0]}, [r.line() for r in report.results]
    assert outcomes(report, "SKIPPED") == set() and report.exit_code == 1


def test_without_allow_arm_it_never_arms_and_says_so():
    report, out, machine = conformance(allow_arm=False)
    assert "not arming" in out[1] and "--allow-arm" in out[1]
    armed = {cid for cid, c in CLAUSES.items() if "arm" in c.needs}
    assert outcomes(report, "SKIPPED") == armed
    assert all("--allow-arm" in r.observed for r in report.results if r.id in armed)
    assert outcomes(report, "FAIL") == set() and report.exit_code == 0
    log = list(machine.firmware.log)
    assert not [e for e in log if e.what == "ARM"]  # no ARM ever executed
    assert not [e for e in log if e.what == "refused" and e.detail.startswith("ARM")]
    entered = {e.detail.split(" -> ")[1].split(":")[0] for e in log if e.what == "state"}
    assert entered.isdisjoint({State.ARMED.name, State.RUNNING.name})


def test_without_controls_what_needs_the_pedal_or_a_fault_is_skipped():
    report, out, _ = conformance(controls=False)
    needs = {cid for cid, c in CLAUSES.items() if c.needs - {"arm"}}
    assert outcomes(report, "SKIPPED") == needs
    assert any(line.startswith("no controls:") for line in out)
    assert outcomes(report, "FAIL") == set()


def test_a_selection_runs_in_the_documented_order():
    assert [c.id for c in select(["c-9.2", "C-1.1"])] == ["C-1.1", "C-9.2"]
    with pytest.raises(UsageError, match=r"unknown clause 'C-99.1'; `smp conformance --list`"):
        select(["C-99.1"])


def test_reserved_capability_bits_fail_the_ident_clause():
    """C-4.3 reads the reserved bits by value (an IntFlag's `~` once made its mask 0)."""
    line, _ = virtual(capabilities=0x011F)
    report = run(line, "virtual://", clauses=select(["C-4.3"]), clock=line.now,
                 out=lambda _: None)
    failed = [r for r in report.results if r.outcome == "FAIL"]
    assert [r.id for r in failed] == ["C-4.3"]
    assert "reserved capability bits 0x011F" in failed[0].line()


def test_unknown_fault_bits_are_named_in_a_telemetry_frame():
    t = Telemetry(state=State.FAULTED, flags=Flag.LINK | Flag.SESSION, faults=0x0101,
                  rate_dhz=0, voltage_mv=0, current_ma=0, depth_um=0, temperature_dc=250,
                  uptime_ms=1000, set_depth_um=0, set_rate_dhz=0, set_voltage_mv=0, runs=0,
                  needle_ms=0)
    assert telemetry_problems(t, HARD_LO, HARD_HI) == ["unknown fault bits 0x0100"]
