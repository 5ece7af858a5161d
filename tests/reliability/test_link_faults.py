"""Link faults between a host and `smp sim` in another process, judged from the machine's log."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from firmware_bridge import Machine
from firmware_bridge.codec import Set, encode
from firmware_bridge.events import LinkState, LinkStateChanged
from firmware_bridge.link import CommandRefused, LinkError, NotConfirmed
from protocols import MachineSettings
from tests.reliability.conftest import (
    CROWN,
    STOP_WITHIN_MS,
    WATCHDOG_MS,
    connected,
    run_pass,
    set_text,
    wait_for,
)

# Settings the host asks for in turn: one depth step apart, so a mixed-up frame shows.
STEPS = [CROWN.model_copy(update={"depth_mm": CROWN.depth_mm + Decimal("0.05") * k})
         for k in range(6)]


def apply_steps(host) -> list[MachineSettings]:
    """Apply each of STEPS; returns those the machine confirmed."""
    confirmed = []
    for s in STEPS:
        with contextlib.suppress(LinkError, CommandRefused):
            confirmed.append(host.apply(s, timeout=3))
    return confirmed


@pytest.mark.parametrize("ber", [1e-5, 1e-4, 1e-3, pytest.param(1e-2, marks=pytest.mark.slow(6))])
def test_bit_errors_never_make_the_machine_apply_or_run_what_was_not_asked(sim, ber):
    with connected(sim.address) as host:
        sim.say(f"fault bit-errors {ber}")
        confirmed = apply_steps(host)
        try:
            host.arm(timeout=3)
            sim.say("pedal down")
            time.sleep(0.5)
            sim.say("pedal up")
        except (LinkError, CommandRefused, NotConfirmed):
            # at 1e-2 the link may not carry a command, or a SET's answer was lost and its
            # outcome is unknown (then arming is refused): either way the needle must not run
            pass
        health = host.health()
        sim.say("clear bit-errors")
    print(f"\nBER {ber:g}: {len(confirmed)}/{len(STEPS)} SETs confirmed, resend ratio "
          f"{health.resend_ratio:.2f}, bad frames at host {health.bad_frames}")
    sim.log.assert_needle_safe()
    sim.log.assert_sets_once_and_as_recorded(host.events, requested=STEPS)
    if ber <= 1e-3:  # retransmission carries the whole pass at these rates
        assert confirmed == STEPS
        assert sim.log.ran()


def arm_despite_silence(sim, host, tries: int = 4) -> None:
    """Arm. Frames held back by reordering or delay can leave the host hearing nothing for
    longer than its silence limit: it then sends STOP, which cancels the ARM. That is the
    safe answer, and the machine's log must show the STOP; the latch is cleared (and settings
    the host no longer knows are sent again) and the ARM asked again, as a technician would."""
    for _ in range(tries):
        t0 = time.monotonic_ns()
        try:
            host.arm(timeout=3)
            return
        except NotConfirmed:
            host.apply(STEPS[-1])  # the silence left the settings unknown: sent again
        except LinkError as exc:
            assert "cancelled by STOP" in str(exc), exc
            assert sim.log.wait_entry("STOP", after_ns=t0, timeout=2) is not None
            host.clear_fault(timeout=3)
    pytest.fail(f"not armed in {tries} tries")


@pytest.mark.parametrize(("fault", "value"), [("drop-frames", 0.05), ("dup-frames", 0.5),
                                              ("reorder-frames", 0.2),
                                              ("delay-frames", 0.06)])
def test_dropped_duplicated_reordered_and_delayed_frames(sim, fault, value):
    with connected(sim.address) as host:
        sim.say(f"fault {fault} {value}")
        confirmed = apply_steps(host)
        arm_despite_silence(sim, host)
        sim.say("pedal down")
        assert sim.log.wait_state("RUNNING")
        sim.say("pedal up")
        assert sim.log.wait_state("ARMED")
        sim.say(f"clear {fault}")
    assert confirmed == STEPS
    sim.log.assert_needle_safe()
    sim.log.assert_sets_once_and_as_recorded(host.events, requested=STEPS)
    if fault == "dup-frames":  # the copies reached the machine and were answered, not executed
        assert any(e.what == "duplicate" for e in sim.log.entries())


@pytest.mark.parametrize("where", ["cobs-code", "length", "payload", "crc"])
def test_a_frame_with_one_bad_byte_is_dropped_amid_good_traffic(sim, where):
    bad_settings = MachineSettings(depth_mm=1.0, rate_hz=100, voltage_v=6.0)
    frame = bytearray(encode(Set(*bad_settings.to_wire()), seq=200))
    # byte 0 is COBS's first code byte (a length: where the next zero is); a code byte that
    # runs past the frame's end is a corrupt length
    index = {"cobs-code": 0, "length": 0, "payload": 6, "crc": len(frame) - 3}[where]
    frame[index] = {"cobs-code": 0x01, "length": 0xF0}.get(where, frame[index] ^ 0x10)
    with connected(sim.address) as host:
        run_pass(sim, host, seconds=0.1)
        for _ in range(5):
            sim.inject(bytes(frame))
            time.sleep(0.02)
        assert host.apply(STEPS[1]) == STEPS[1]  # the line carries on
        assert host.link_state == LinkState.CONNECTED
    assert set_text(bad_settings) not in [e.detail for e in sim.log.sets()]
    assert not sim.log.refused()  # nothing of it reached the firmware's checks either
    assert sim.log.first("watchdog") is None
    sim.log.assert_needle_safe()
    sim.log.assert_sets_once_and_as_recorded(host.events, requested=[CROWN, STEPS[1]])


def test_a_garbage_burst_during_a_pass_is_discarded(sim):
    with connected(sim.address) as host:
        assert host.apply(CROWN) == CROWN
        host.arm()
        sim.say("pedal down")
        assert sim.log.wait_state("RUNNING")
        bad_before = host.health().bad_frames
        sim.say("fault garbage 2000")
        time.sleep(0.5)
        assert host.apply(STEPS[2]) == STEPS[2]
        sim.say("pedal up")
        assert wait_for(lambda: host.health().bad_frames > bad_before)
    sim.log.assert_needle_safe()
    sim.log.assert_sets_once_and_as_recorded(host.events, requested=[CROWN, STEPS[2]])


def test_a_wrong_baud_rate_fails_connect_within_2_s_with_one_line_and_arms_nothing(make_sim):
    sim = make_sim("--fault", "bit-errors=0.5")  # every bit a coin toss: what a wrong baud reads
    t0 = time.monotonic()
    with pytest.raises(LinkError) as exc:
        Machine.connect(sim.address)
    took = time.monotonic() - t0
    print(f"\nwrong baud: refused after {took * 1000:.0f} ms: {exc.value}")
    assert took < 2.0
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"{sim.address}: the device answers garbage")
    assert "wrong baud rate" in message
    assert not sim.log.ran() and not sim.log.sets()
    assert sim.log.first("ARM") is None


def test_a_silent_device_fails_connect_with_one_line(make_sim):
    sim = make_sim("--fault", "silent=30")
    t0 = time.monotonic()
    with pytest.raises(LinkError) as exc:
        Machine.connect(sim.address)
    assert time.monotonic() - t0 < 2.0
    assert str(exc.value) == (f"{sim.address}: no answer to HELLO within 1.5 s (is the machine "
                              "switched on and is this its port?)")
    assert sim.log.first("HELLO") is not None  # it heard us: only its answers were lost
    assert not sim.log.ran() and sim.log.first("ARM") is None


def test_a_machine_gone_silent_mid_pass_is_stopped_by_the_host(sim):
    with connected(sim.address) as host:
        run_pass(sim, host, seconds=0)
        sim.say("pedal down")  # run_pass lifted it: down again, still armed
        assert sim.log.wait_state("RUNNING")
        t0 = time.monotonic_ns()
        sim.say("fault silent 1.0")
        stopped = sim.log.wait_entry("STOP", after_ns=t0, timeout=3)
        assert stopped is not None, "the host did not STOP a machine it could not hear"
        assert wait_for(lambda: host.link_state == LinkState.CONNECTED, timeout=3)
    ms = (stopped.mono_ns - t0) / 1e6
    print(f"\nsilent machine: host's STOP reached it {ms:.0f} ms after it fell silent")
    assert ms < 250 + 100 + 400  # LOST at 250 ms, judged every 50 ms heartbeat, plus margin
    assert sim.log.state() == "FAULTED"
    sim.log.assert_needle_safe()


def test_a_dropped_link_stops_the_needle_within_the_watchdog_and_it_stays_stopped(sim):
    with connected(sim.address) as host:
        host.apply(CROWN)
        host.arm()
        sim.say("pedal down")
        assert sim.log.wait_state("RUNNING")
        t0 = time.monotonic_ns()
        sim.say("fault link-drop 0.6")
        stopped = sim.log.wait_entry("watchdog", after_ns=t0, timeout=3)
        assert wait_for(lambda: host.link_state == LinkState.LOST, timeout=2)
        assert wait_for(lambda: host.link_state == LinkState.CONNECTED, timeout=3)
        time.sleep(0.5)  # the pedal is still down: nothing restarts by itself
        assert sim.log.state() == "FAULTED"
        with pytest.raises(CommandRefused, match="latched"):
            host.arm()
    ms = (sim.log.stopped_after(t0).mono_ns - t0) / 1e6
    print(f"\nlink drop: needle stopped {ms:.0f} ms after the cable was pulled "
          f"(watchdog {WATCHDOG_MS} ms)")
    assert stopped is not None and ms < STOP_WITHIN_MS
    sim.log.assert_needle_safe()


def test_the_pty_closed_under_the_host_is_reported_lost(sim):
    with connected(sim.address) as host:
        host.apply(CROWN)
        host.arm()
        t0 = time.monotonic()
        sim.kill()
        assert wait_for(lambda: host.link_state == LinkState.LOST, timeout=2)
        took = time.monotonic() - t0
        lost = [e for e in host.events if isinstance(e, LinkStateChanged)
                and e.new == LinkState.LOST]
        with pytest.raises(LinkError):
            host.apply(STEPS[1], timeout=2)
    print(f"\npty closed: host reported LOST after {took * 1000:.0f} ms ({lost[0].reason})")
    assert lost
    sim.log.assert_needle_safe()


def test_a_second_program_opening_the_port_is_refused_as_busy(sim):
    code = ("import sys\nfrom firmware_bridge import Machine\nfrom protocols.errors import "
            "SmpError\ntry:\n    Machine.connect(sys.argv[1])\nexcept SmpError as e:\n"
            "    print(e)\n    sys.exit(1)\n")
    with connected(sim.address) as host:
        host.apply(CROWN)
        host.arm()
        out = subprocess.run([sys.executable, "-c", code, sim.address], capture_output=True,
                             text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert out.returncode == 1
        assert out.stdout.strip() == f"port {sim.address} is busy: another program has it open"
        sim.say("pedal down")
        # the first host still has its machine
        assert sim.log.wait_state("RUNNING"), sim.log.entries()[-6:]
        sim.say("pedal up")
    hellos = [e for e in sim.log.entries() if e.what == "HELLO"]
    assert len(hellos) == 1  # the second program never reached the machine
    sim.log.assert_needle_safe()
