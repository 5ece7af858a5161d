"""Every simulator fault, through a real pty and the bridge: the needle stops (or stays safely
stopped) and the host reports the right state. Link faults must not corrupt a setpoint or apply
one twice."""

from decimal import Decimal

import pytest

from firmware_bridge.codec import ErrorCode, Fault, State
from firmware_bridge.events import LinkState, SettingsApplied, UnsafeReport
from firmware_bridge.link import CommandRefused
from protocols import MachineSettings
from protocols.errors import SmpError
from sim.serve import PtyServer
from tests.link.conftest import connected, told, wait_for

CROWN = MachineSettings(depth_mm=1.8, rate_hz=130, voltage_v=7.5)
HAIRLINE = MachineSettings(depth_mm=1.5, rate_hz=110, voltage_v=6.5)


@pytest.fixture
def sim():
    server = PtyServer.simulate(baud=115200, seed=11)
    server.start()
    yield server
    server.close()


@pytest.fixture
def host(sim):
    with connected(sim.address) as m:
        yield m


def running(sim, host, settings=CROWN):
    host.apply(settings)
    host.arm()
    sim.machine.press_pedal(True)
    assert wait_for(lambda: sim.firmware.motor_on and host.telemetry is not None
                    and host.telemetry.state == State.RUNNING, timeout=3)


def sets_executed(sim):
    return [e.seq for e in sim.firmware.log if e.what == "SET"]


@pytest.mark.parametrize(("fault", "value"), [
    ("bit-errors", 1e-3), ("drop-bytes", 1e-3), ("dup-bytes", 1e-3), ("drop-frames", 0.05),
    ("dup-frames", 0.1), ("reorder-frames", 0.05), ("delay-frames", 0.03),
])
def test_a_degraded_link_never_corrupts_or_repeats_a_setpoint(sim, host, fault, value):
    sim.machine.inject(fault, value)
    confirmed = []
    for settings in [CROWN, HAIRLINE] * 5:
        try:
            confirmed.append(host.apply(settings, timeout=5))
        except SmpError:
            # The command failed after its retries: the bridge stopped the machine.
            assert wait_for(lambda: sim.firmware.faults & Fault.STOP, timeout=2)
            return
        assert confirmed[-1] == settings  # the read-back is exactly what was asked
        assert sim.firmware.applied == settings.to_wire()
    executed = sets_executed(sim)
    assert len(executed) == len(set(executed)) == 10  # each SET executed exactly once
    host.arm()
    sim.machine.press_pedal(True)
    assert wait_for(lambda: sim.firmware.motor_on, timeout=3)
    sim.machine.press_pedal(False)
    assert wait_for(lambda: not sim.firmware.motor_on, timeout=0.3)
    assert host.stop(timeout=5) or sim.firmware.faults & Fault.STOP
    assert wait_for(lambda: sim.firmware.faults & Fault.STOP, timeout=2)
    assert not sim.firmware.motor_on


def test_a_garbage_burst_is_discarded_and_the_link_carries_on(sim, host):
    running(sim, host)
    bad_before = host.health().bad_frames
    sim.machine.inject("garbage", 300)  # 26 ms of noise at 115200 baud
    assert wait_for(lambda: host.health().bad_frames > bad_before, timeout=2)
    assert host.apply(HAIRLINE) == HAIRLINE
    assert sim.firmware.motor_on  # noise on the line is not a reason to stop, nor to run
    host.stop()
    assert not sim.firmware.motor_on


def test_noise_that_hides_the_machine_longer_than_the_silence_rule_stops_it(sim, host):
    """2000 bytes of garbage hold the line for 174 ms: for the host that is a cut (nothing it
    can read from a machine that may be running), and it stops the needle in time."""
    running(sim, host)
    sim.machine.inject("garbage", 2000)
    assert wait_for(lambda: sim.firmware.faults & Fault.STOP, timeout=2)
    assert not sim.firmware.motor_on


def test_a_silent_machine_is_stopped_by_the_host(sim, host):
    """Invariant 4: the machine still hears the host, so its watchdog is satisfied; the host
    loses sight of the needle, reports LINK LOST and stops it."""
    running(sim, host)
    sim.machine.inject("silent", 1.0)
    assert wait_for(lambda: host.link_state == LinkState.LOST, timeout=0.4)
    assert wait_for(lambda: sim.firmware.faults & Fault.STOP, timeout=0.3)
    assert not sim.firmware.motor_on
    (report,) = [e for e in host.events if isinstance(e, UnsafeReport)]
    assert report.what.endswith("while it may be armed; STOP sent")
    assert wait_for(lambda: host.link_state == LinkState.CONNECTED, timeout=2)
    assert host.state == State.FAULTED and host.faults & Fault.STOP


def test_a_pedal_stuck_down_is_shown_and_stop_still_stops_the_needle(sim, host):
    running(sim, host)
    sim.machine.inject("pedal-stuck")
    sim.machine.press_pedal(False)  # the technician lifts the pedal; the machine sees it down
    assert wait_for(lambda: told(host, "pedal_down", True) and told(host, "motor_on", True))
    assert host.stop()
    assert wait_for(lambda: not host.telemetry.motor_on)
    host.clear_fault()
    with pytest.raises(CommandRefused) as exc:
        host.arm()  # refused while the pedal reads down: arming must never start the needle
    assert exc.value.code == ErrorCode.PEDAL_DOWN
    assert not sim.firmware.motor_on


def test_a_read_back_that_does_not_match_the_request_stops_the_machine(sim, host):
    """Invariant 3: what the record says was applied is the read-back; and a machine set to
    something nobody asked for does not go on working."""
    running(sim, host)
    sim.machine.inject("misapply")
    with pytest.raises(SmpError, match=r"the machine applied depth 1\.55 mm.* but depth 1\.50 "
                       r"mm.* was asked; STOP sent"):
        host.apply(HAIRLINE)
    applied = [e for e in host.events if isinstance(e, SettingsApplied)][-1]
    assert applied.requested == HAIRLINE and applied.applied.depth_mm == Decimal("1.55")
    assert host.applied == applied.applied  # what the host holds as applied is the read-back
    assert wait_for(lambda: sim.firmware.faults & Fault.STOP, timeout=1)
    assert not sim.firmware.motor_on


def test_a_depth_actuator_short_of_its_setpoint_latches_a_fault(sim, host):
    sim.machine.inject("depth-short", 1200)
    running(sim, host)  # asked for 1.8 mm
    assert wait_for(lambda: told(host, "depth_um", 1200), timeout=2)
    assert wait_for(lambda: host.faults & Fault.DEPTH, timeout=3)
    assert not sim.firmware.motor_on and host.state == State.FAULTED
    with pytest.raises(CommandRefused):
        host.clear_fault()  # refused while the depth is still off
    sim.machine.clear("depth-short")
    assert wait_for(lambda: told(host, "depth_um", 1800), timeout=2)
    host.clear_fault()
    assert wait_for(lambda: host.state == State.DISARMED)
