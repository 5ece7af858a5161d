"""Firmware and machine faults in `smp sim`'s own process: the needle stops, stays stopped, and
no setpoint is applied that the host did not confirm."""

from __future__ import annotations

import time

import pytest

from firmware_bridge.events import MachineRebooted
from firmware_bridge.link import CommandRefused, SettingsMismatch
from tests.reliability.conftest import CROWN, connected, set_text, wait_for


def running(sim, host):
    assert host.apply(CROWN) == CROWN
    host.arm()
    sim.say("pedal down")
    assert sim.log.wait_state("RUNNING")


def stays_stopped(sim, seconds=0.4):
    """With the pedal still down, nothing restarts by itself."""
    state = sim.log.state()
    time.sleep(seconds)
    assert sim.log.state() == state != "RUNNING"


def test_a_reboot_mid_pass_comes_back_disarmed_with_settings_forgotten(sim):
    with connected(sim.address) as host:
        running(sim, host)
        old = host.ident.boot_id
        sim.say("fault reboot")
        assert wait_for(lambda: any(isinstance(e, MachineRebooted) for e in host.events),
                        timeout=3)
        stays_stopped(sim)
        assert host.ident.boot_id != old and host.applied is None
        with pytest.raises(CommandRefused):
            host.arm()  # pedal down and no settings: refused either way
    boots = [e for e in sim.log.entries() if e.what == "boot"]
    assert len(boots) == 2 and boots[0].detail != boots[1].detail
    assert sim.log.state() == "DISARMED"
    sim.log.assert_needle_safe()


@pytest.mark.parametrize(("fault", "reason"), [("stall", "stall: "),
                                               ("overcurrent", "over-current: "),
                                               ("overtemp", "motor at ")])
def test_a_physical_fault_stops_and_latches(sim, fault, reason):
    with connected(sim.address) as host:
        running(sim, host)
        sim.say("skin thick")
        t0 = time.monotonic_ns()
        sim.say(f"fault {fault}")
        assert sim.log.wait_state("FAULTED", timeout=10)
        stays_stopped(sim)
        with pytest.raises(CommandRefused, match="latched"):
            host.arm()
    stop = sim.log.stopped_after(t0)
    print(f"\n{fault}: needle stopped {(stop.mono_ns - t0) / 1e6:.0f} ms after the cause")
    assert stop.transition[:2] == ("RUNNING", "FAULTED") and stop.transition[2].startswith(reason)
    sim.log.assert_needle_safe()


def test_a_stuck_pedal_never_arms_and_stop_holds_against_it(sim):
    with connected(sim.address) as host:
        assert host.apply(CROWN) == CROWN
        sim.say("fault pedal-stuck")
        with pytest.raises(CommandRefused, match="pedal"):
            host.arm()
        assert not sim.log.ran()
        sim.say("clear pedal-stuck")
        running(sim, host)
        sim.say("fault pedal-stuck")
        sim.say("pedal up")  # the technician lifts it; the machine still reads it down
        time.sleep(0.2)
        assert sim.log.state() == "RUNNING"
        assert host.stop() is True
        assert sim.log.wait_state("FAULTED")
        stays_stopped(sim)
    sim.log.assert_needle_safe()


def test_a_depth_actuator_short_of_its_setpoint_latches_depth(sim):
    with connected(sim.address) as host:
        sim.say("fault depth-short 900")
        running(sim, host)
        t0 = time.monotonic_ns()
        assert sim.log.wait_state("FAULTED", timeout=5)
        stays_stopped(sim)
    stop = sim.log.stopped_after(0)
    assert stop.transition[1:] == ("FAULTED", "depth 900 um off its setpoint")
    print(f"\ndepth short: latched {(stop.mono_ns - t0) / 1e6:.0f} ms after the pass began")
    sim.log.assert_needle_safe()


def test_a_read_back_that_differs_stops_the_machine_and_is_what_is_recorded(sim):
    with connected(sim.address) as host:
        sim.say("fault misapply")
        with pytest.raises(SettingsMismatch):
            host.apply(CROWN)
        assert sim.log.wait_entry("STOP") is not None
        sim.say("pedal down")
        stays_stopped(sim)
    (applied,) = sim.log.sets()
    assert applied.detail != set_text(CROWN)  # one step deeper, as the fault makes it
    assert sim.log.first("STOP").mono_ns > applied.mono_ns
    assert not sim.log.ran()
    # the host's SettingsApplied carries the machine's read-back, not what was asked
    sim.log.assert_sets_once_and_as_recorded(host.events)
    sim.log.assert_needle_safe()
