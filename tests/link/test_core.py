"""The link core's rules on a fake clock, against the real firmware core (tests/link/wiring.py).

Every timing rule of docs/protocol.md's host side is checked here to the millisecond, with no
sleeps: the heartbeat, retransmission and the RTO, the handshake, STOP, judging the link,
the STOP on silence that bounds a one-way cut, unsafe values, and what the host believes about
the settings when an answer is lost. The machine's side of the story is the firmware's log.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from decimal import Decimal

import pytest

from firmware_bridge.codec import (
    Arm,
    ClearFault,
    Fault,
    MsgType,
    State,
    Telemetry,
    encode,
)
from firmware_bridge.core import (
    HEARTBEAT_S,
    Knowledge,
    LinkCore,
    Outcome,
    stop_silence_s,
    unsafe_telemetry,
)
from firmware_bridge.events import (
    CommandFailed,
    LinkState,
    LinkStateChanged,
    MachineRebooted,
    SettingsApplied,
    SettingsUnknown,
    StateChanged,
    UnsafeReport,
)
from protocols.settings import MachineSettings
from tests.link.wiring import Wiring

CROWN = MachineSettings(depth_mm=Decimal("1.8"), rate_hz=Decimal("130"), voltage_v=Decimal("7.5"))
DEEP = MachineSettings(depth_mm=Decimal("2.4"), rate_hz=Decimal("150"), voltage_v=Decimal("11"))


@pytest.fixture
def w():
    w = Wiring()
    w.connect()
    return w


def running(w: Wiring, settings: MachineSettings = CROWN) -> None:
    assert w.apply(settings).outcome is Outcome.DONE
    assert w.command(Arm()).outcome is Outcome.DONE
    w.firmware.set_pedal(True)
    assert w.until(lambda: w.core.state == State.RUNNING, 200)


# --- handshake and heartbeat ---------------------------------------------------------------

def test_handshake_adopts_the_machine_and_its_limits(w):
    assert w.core.ident.boot_id == 0x1234 and w.core.simulated
    assert w.core.state == State.DISARMED and w.core.knowledge is Knowledge.NONE
    assert w.firmware.handshaken


def test_hello_is_repeated_every_250_ms_for_1_5_s_then_the_handshake_fails():
    w = Wiring()
    w.to_machine = lambda f: f.type != MsgType.HELLO
    ticket = w.act(lambda c, now: c.begin(now=now))
    w.step(1600)
    assert ticket.outcome is Outcome.FAILED
    times = [c.t_ms for c in w.sent(MsgType.HELLO)]
    assert times == [0, 250, 500, 750, 1000, 1250]
    assert "did not answer HELLO" in w.core.no_ident_reason("/dev/x")


def test_heartbeat_every_50_ms_and_no_burst_after_a_hold_up(w):
    start = w.t_ms
    w.step(500)
    beats = [c.t_ms for c in w.sent(MsgType.HEARTBEAT, after_ms=start)]
    assert [b - a for a, b in itertools.pairwise(beats)] == [50] * (len(beats) - 1)
    # The loop was held up for 400 ms: one beat, then the rhythm again, never eight at once.
    w.clock.advance_ms(400)
    w.core.tick(now=w.now())
    assert w.core.take_output().count(encode(_heartbeat())) == 1


def _heartbeat():
    from firmware_bridge.codec import Heartbeat
    return Heartbeat()


# --- retransmission and the RTO --------------------------------------------------------------

def test_a_lost_answer_is_retransmitted_with_the_same_seq_and_a_doubling_timeout(w):
    w.to_host = lambda f: f.type != MsgType.APPLIED
    t0 = w.t_ms
    ticket = w.act(lambda c, now: c.submit(_set(CROWN), requested=CROWN, now=now))
    w.until(lambda: ticket.done, 3000)
    sets = w.sent(MsgType.SET, after_ms=t0 - 1)
    assert len(sets) == 4 and len({c.frame.seq for c in sets}) == 1
    gaps = [b.t_ms - a.t_ms for a, b in itertools.pairwise(sets)]
    rto = gaps[0]
    assert gaps == [rto, 2 * rto, 4 * rto]
    assert len(w.fw_log("SET")) == 1  # executed once; the copies were answered again
    assert ticket.outcome is Outcome.FAILED and ticket.error == "no answer after 4 transmissions"
    # and it failed one (doubled) timeout after the fourth copy
    wait = min(8 * rto, 500)  # the doubled timeout, never over 500 ms
    assert w.of(CommandFailed)[0].at * 1000 == pytest.approx(sets[-1].t_ms + wait, abs=1)


def test_rto_follows_rfc_6298_and_karn(w):
    core = LinkCore(now=0.0)
    assert core.rto == pytest.approx(0.100)  # before the first sample
    core._rtt_sample(0.010)
    # SRTT 10 ms, RTTVAR 5 ms: RTO = 10 + max(5, 4 x 5) = 30 ms
    assert core.rto == pytest.approx(0.030)
    core._rtt_sample(0.010)  # RTTVAR 3.75, SRTT 10: 10 + 15 = 25 ms, the floor
    assert core.rto == pytest.approx(0.025)
    for _ in range(20):
        core._rtt_sample(0.001)
    assert core.rto == pytest.approx(0.025)  # never under 25 ms
    core._rtt_sample(2.0)
    assert core.rto == pytest.approx(0.500)  # never over 500 ms
    # Karn: a command answered only after a retransmission gives no sample.
    rto = w.core.rto
    drop = iter([True])
    w.to_host = lambda f: f.type != MsgType.APPLIED or not next(drop, False)
    assert w.apply(CROWN).outcome is Outcome.DONE
    assert w.core.rto == rto


def _set(settings):
    from firmware_bridge.codec import Set
    return Set(*settings.to_wire())


def test_a_failed_command_makes_the_host_stop_the_machine(w):
    running(w)
    w.to_host = lambda f: f.type != MsgType.ACK
    ticket = w.act(lambda c, now: c.submit(ClearFault(), now=now))
    w.until(lambda: ticket.done, 3000)
    assert ticket.outcome is Outcome.FAILED
    w.step(5)
    assert w.fw_log("STOP") and not w.firmware.motor_on


# --- STOP ----------------------------------------------------------------------------------

def test_stop_goes_first_three_times_and_cancels_what_was_queued(w):
    queued = [w.core.submit(ClearFault(), now=w.now()) for _ in range(5)]
    ticket = w.core.stop(now=w.now())
    out = w.core.take_output()
    stop_frame = ticket.frame
    assert out.startswith(stop_frame * 3)
    assert all(q.outcome is Outcome.CANCELLED and q.error == "cancelled by STOP"
               for q in queued)


def test_a_stop_nobody_acknowledges_makes_the_host_go_quiet_for_the_watchdog_time(w):
    """If STOP is not acknowledged the host cannot know the needle stopped: it stops its
    heartbeats so that the machine's watchdog stops the needle whatever became of the STOP."""
    running(w)
    w.to_host = lambda f: f.type not in (MsgType.ACK, MsgType.TELEMETRY)
    w.to_machine = lambda f: f.type != MsgType.STOP
    stop = w.act(lambda c, now: c.stop(now=now))
    w.until(lambda: stop.done, 3000)
    failed_at = w.t_ms
    assert stop.outcome is Outcome.FAILED
    w.step(400)
    beats = w.sent(MsgType.HEARTBEAT, after_ms=failed_at)
    assert beats and beats[0].t_ms - failed_at >= 250  # quiet for the watchdog time
    assert w.fw_log("watchdog") and not w.firmware.motor_on
    assert w.firmware.faults & Fault.LINK_LOST


# --- judging the link, and the STOP on silence -------------------------------------------------

def test_link_states_follow_the_age_of_the_last_frame(w):
    w.to_host = lambda f: False
    w.step(300)
    last = max(c.t_ms for c in w.wire if not c.to_machine and c.t_ms <= w.t_ms - 300)
    changes = [(e.new, round(e.at * 1000) - last) for e in w.of(LinkStateChanged)]
    assert changes == [(LinkState.STALE, 101), (LinkState.LOST, 251)]
    w.to_host = lambda f: True
    w.step(40)
    assert w.core.link_state == LinkState.CONNECTED


@pytest.mark.parametrize("watchdog_ms", [100, 250, 500])
def test_a_cut_towards_the_host_is_answered_with_stop_inside_the_watchdog_time(watchdog_ms):
    """The machine still hears the host, so its watchdog is fed; only the host can stop it.
    The STOP must reach it within the watchdog time of the cut, whatever the watchdog."""
    w = Wiring(watchdog_ms=watchdog_ms)
    w.connect()
    running(w)
    w.to_host = lambda f: False
    cut = w.t_ms
    w.step(watchdog_ms + 50)
    (stop,) = w.sent(MsgType.STOP, after_ms=cut)[:1]
    limit = stop_silence_s(watchdog_ms / 1000) * 1000
    assert stop.t_ms - cut <= limit + 20  # the last frame came up to one telemetry period before
    assert stop.t_ms - cut < watchdog_ms
    stopped = next(e for e in w.firmware.log if e.what == "state" and "RUNNING ->" in e.detail)
    assert stopped.at_ns // 1_000_000 - cut < watchdog_ms
    assert w.of(UnsafeReport)[0].what.endswith("while it may be armed; STOP sent")


def test_silence_while_disarmed_is_not_a_reason_to_stop(w):
    w.to_host = lambda f: False
    w.step(400)
    assert not w.sent(MsgType.STOP)
    assert w.core.link_state == LinkState.LOST


def test_a_cut_towards_the_machine_is_stopped_by_its_watchdog(w):
    running(w)
    w.to_machine = lambda f: False
    cut = w.t_ms
    w.step(300)
    stopped = next(e for e in w.firmware.log if e.what == "state" and "RUNNING ->" in e.detail)
    assert stopped.at_ns // 1_000_000 - cut <= 250


# --- values a conforming machine cannot send ---------------------------------------------------

def _telemetry(**changes) -> Telemetry:
    base = Telemetry(state=0, flags=0x0C, faults=0, rate_dhz=0, voltage_mv=0, current_ma=0,
                     depth_um=1800, temperature_dc=250, uptime_ms=1000, set_depth_um=0,
                     set_rate_dhz=0, set_voltage_mv=0, runs=0, needle_ms=0)
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(("changes", "what"), [
    ({"state": 7}, "unknown state 7"),
    ({"flags": 0x1C}, "reserved flag bits set"),
    ({"faults": 0x0100}, "unknown fault bits"),
    ({"state": 2, "flags": 0x0D}, "RUNNING with the motor bit clear"),
    ({"state": 3, "faults": 8, "voltage_mv": 7500}, "7500 mV drive voltage while the motor is "
                                                     "not driven"),
    ({"set_depth_um": 9000, "set_rate_dhz": 1200, "set_voltage_mv": 7000},
     "outside the hard limits"),
])
def test_impossible_telemetry_is_named(changes, what):
    assert what in unsafe_telemetry(_telemetry(**changes))
    assert unsafe_telemetry(_telemetry()) == ""


def test_an_unknown_state_from_the_machine_is_answered_with_one_stop(w):
    running(w)
    real = w.firmware._telemetry

    def odd(now):
        return dataclasses.replace(real(now), state=9)

    w.firmware._telemetry = odd
    w.step(200)
    reports = w.of(UnsafeReport)
    assert len(reports) == 1 and "unknown state 9" in reports[0].what
    assert len({c.frame.seq for c in w.sent(MsgType.STOP)}) == 1  # one STOP, not one a frame
    assert w.core.state is None and w.core.may_be_armed
    assert any(e.new is None for e in w.of(StateChanged))


# --- what the host believes about the settings -------------------------------------------------

def test_a_set_whose_answers_were_lost_but_that_the_machine_applied_is_learnt_from_telemetry(w):
    """The machine applied the SET; every APPLIED was lost. The host must not keep showing
    the old settings: they are unknown until telemetry names them, then they are what the
    machine holds (and arming waits for a SET confirmed again)."""
    assert w.apply(CROWN).outcome is Outcome.DONE
    w.to_host = lambda f: f.type != MsgType.APPLIED
    ticket = w.apply(DEEP)
    assert ticket.outcome is Outcome.FAILED
    (unknown,) = w.of(SettingsUnknown)
    assert unknown.requested == DEEP
    assert w.until(lambda: w.core.knowledge is Knowledge.KNOWN, 100)
    assert w.core.applied == DEEP  # what the machine holds, from its telemetry
    learnt = [e for e in w.of(SettingsApplied) if e.source == "telemetry"]
    assert learnt and learnt[-1].applied == DEEP and learnt[-1].requested is None
    assert not w.core.confirmed
    assert w.fw_log("STOP")  # and the host stopped the machine when the outcome was lost


def test_a_set_that_never_reached_the_machine_leaves_the_old_settings_known(w):
    assert w.apply(CROWN).outcome is Outcome.DONE
    w.to_machine = lambda f: f.type != MsgType.SET
    assert w.apply(DEEP).outcome is Outcome.FAILED
    assert w.until(lambda: w.core.knowledge is Knowledge.KNOWN, 100)
    assert w.core.applied == CROWN


def test_telemetry_sent_before_our_set_does_not_count_as_its_answer(w):
    assert w.apply(CROWN).outcome is Outcome.DONE
    w.to_host = lambda f: f.type != MsgType.APPLIED
    ticket = w.act(lambda c, now: c.submit(_set(DEEP), requested=DEEP, now=now))
    w.step(5)
    # In flight: the machine acted on it, the answer is lost; no "unexplained change" STOP.
    assert not ticket.done and not w.of(UnsafeReport)


def test_setpoints_that_change_without_a_set_answered_are_believed_and_stop_the_machine(w):
    running(w)
    w.firmware.applied = DEEP.to_wire()  # a firmware that changed its own setpoints
    w.step(40)
    assert w.core.applied == DEEP
    assert any("setpoints changed without a SET answered" in r.what for r in w.of(UnsafeReport))
    assert not w.firmware.motor_on and w.firmware.faults & Fault.STOP


def test_an_older_telemetry_frame_overtaken_by_newer_ones_is_ignored(w):
    core = w.core
    w.step(40)
    before = core.telemetry
    old = encode(dataclasses.replace(before, state=State.ARMED), seq=(w.firmware._telemetry_seq
                                                                         - 5) & 0xFF)
    core.receive(old, now=w.now())
    assert core.state == State.DISARMED


def test_a_restarted_machine_is_met_with_a_new_handshake_and_forgets_the_settings(w):
    assert w.apply(CROWN).outcome is Outcome.DONE
    w.firmware.reboot(boot_id=0x5678)
    w.step(100)
    (ev,) = w.of(MachineRebooted)
    assert (ev.old_boot_id, ev.new_boot_id) == (0x1234, 0x5678)
    assert w.core.knowledge is Knowledge.NONE and w.core.applied is None
    assert w.firmware.handshaken and not w.of(UnsafeReport)


def test_health_is_reported_every_250_ms(w):
    from firmware_bridge.events import LinkHealth
    start = len(w.of(LinkHealth))
    w.step(1000)
    assert len(w.of(LinkHealth)) - start == 4


def test_stop_silence_bounds():
    assert stop_silence_s(0.250) == pytest.approx(0.150)
    assert stop_silence_s(0.100) == pytest.approx(0.050)
    assert stop_silence_s(0.500) == pytest.approx(0.400)
    assert pytest.approx(0.050) == HEARTBEAT_S


def test_a_dead_link_sets_no_deadline_until_its_port_is_back(w):
    """Nothing is due on a dead link (a deadline in the past would spin the loop); when the
    port is back, the silence while it was gone is not taken for a silent machine."""
    assert w.apply(CROWN).outcome is Outcome.DONE
    assert w.command(Arm()).outcome is Outcome.DONE
    w.act(lambda core, now: core.port_gone("unplugged", now=now))
    assert w.core.deadline() == math.inf
    w.step(1000)
    back = w.t_ms
    w.act(lambda core, now: core.reconnected(now=now))
    assert w.core.deadline() <= w.now() + HEARTBEAT_S
    w.step(100)
    assert w.core.ident is not None and not w.sent(MsgType.STOP, after_ms=back)
