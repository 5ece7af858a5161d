"""The firmware rules that protocol version 2 settles (docs/protocol.md), on a fake clock.

Each test names the conformance clause it checks; `smp conformance` checks the same clauses on
a device (firmware_bridge/conformance/), these check the simulator's firmware exactly.
"""

import itertools
import random

import pytest

from firmware_bridge.codec import (
    PROTOCOL_VERSION,
    Ack,
    Applied,
    Arm,
    ClearFault,
    ErrorCode,
    Fault,
    Field,
    Heartbeat,
    Hello,
    Ident,
    MsgType,
    Nack,
    Set,
    State,
    Stop,
    Telemetry,
    Watchdog,
    encode,
    encode_raw,
)
from firmware_bridge.schema import (
    DEPTH_SETTLE_MS,
    HOST_TYPES,
    STALL_BELOW_DHZ,
    STALL_TRIP_MS,
    TELEMETRY_PERIOD_MS,
    WATCHDOG_DEFAULT_MS,
    Flag,
)
from protocols.settings import WireSettings
from tests.link.test_firmware import CROWN, Bench

OTHER = WireSettings(1500, 1100, 6500)


def telemetry(b, frames=None):
    """(ack, Telemetry) of every TELEMETRY frame the firmware has sent since the last call."""
    out = []
    for f in b.decoder.feed(b.fw.take_output()) if frames is None else frames:
        if f.type == MsgType.TELEMETRY:
            out.append((f.ack, f.message()))
    return out


def tick_ms(b, ms, step=1, heartbeat=True):
    """Advance `ms` in `step` ms ticks (heartbeats every 50 ms); every frame sent meanwhile."""
    frames = []
    for t in range(0, ms, step):
        if heartbeat and t % 50 == 0:
            b.fw.feed(encode(Heartbeat()))
        b.clock.advance_ms(step)
        b.fw.tick()
        frames += b.decoder.feed(b.fw.take_output())
    return frames


# --- C-9.2, C-9.3: telemetry says what the machine did, with which settings ------------------

def test_telemetry_ack_is_the_last_command_acted_on():
    """C-9.2: 0 before any command; the seq of the last command answered (IDENT, ACK,
    APPLIED or NACK, STOP included); unchanged by a duplicate or a stale copy."""
    b = Bench()
    b.fw.tick()
    assert [a for a, _ in telemetry(b)] == [0]

    def ack_now():
        b.clock.advance_ms(TELEMETRY_PERIOD_MS)
        b.fw.tick()
        return telemetry(b)[-1][0]

    b.send(Hello(), seq=10)
    assert ack_now() == 10
    b.send(Set(*CROWN), seq=11)
    b.send(Set(*OTHER), seq=12)
    assert ack_now() == 12
    assert b.send(Set(*CROWN), seq=11) == []  # a stale copy: not acted on
    assert ack_now() == 12
    b.send(Set(*OTHER), seq=12)  # a duplicate: answered again, not acted on again
    assert ack_now() == 12
    assert b.reply(Set(1, 1, 1), seq=13).code == ErrorCode.OUT_OF_RANGE  # refused: acted on
    assert ack_now() == 13
    b.send(Stop(), seq=200)
    assert ack_now() == 200
    b.fw.reboot()
    b.fw.tick()
    assert telemetry(b)[-1][0] == 0


def test_every_telemetry_frame_carries_the_setpoints_in_force_with_its_ack():
    """C-9.3: a frame whose ack is a SET's seq shows what that SET applied; all 0 before any
    SET since boot; a refused SET changes nothing."""
    b = Bench()
    b.fw.tick()
    assert telemetry(b)[-1][1].setpoints == (0, 0, 0)
    b.reply(Hello(), seq=1)
    sets = {2: CROWN, 3: OTHER, 4: None, 5: CROWN}
    applied = {}
    frames = []
    current = WireSettings(0, 0, 0)
    for seq, s in sets.items():
        if s is None:
            b.reply(Set(100, 1, 1), seq=seq)  # refused
        else:
            b.reply(Set(*s), seq=seq)
            current = s
        applied[seq] = current
        frames += telemetry(b, tick_ms(b, 45, step=5))
    assert {a for a, _ in frames} == set(sets)
    for ack, t in frames:
        assert t.setpoints == applied[ack], (ack, t)


# --- C-9.5: no run is lost between two frames, and each is timed by the machine ----------------

def test_runs_and_needle_time_count_what_happened_between_two_frames():
    """C-9.5: two taps of the pedal, 6 ms and 4 ms, both between two telemetry frames: no
    frame says RUNNING, yet `runs` moves by two and `needle_ms` by the 10 ms driven."""
    b = Bench().armed()
    frames = telemetry(b, tick_ms(b, 21))  # just after the frame due at 20 ms
    runs0, needle0 = frames[-1][1].runs, frames[-1][1].needle_ms
    for ms in (6, 4):
        b.fw.set_pedal(True)
        frames += telemetry(b, tick_ms(b, ms, heartbeat=False))
        b.fw.set_pedal(False)
        frames += telemetry(b, tick_ms(b, 2, heartbeat=False))
    frames += telemetry(b, tick_ms(b, 30))
    last = frames[-1][1]
    assert not [t for _, t in frames if t.state == State.RUNNING]  # never seen running
    assert ((last.runs - runs0) % 256, last.needle_ms - needle0) == (2, 10)


def test_needle_time_is_the_machine_s_own_across_a_run():
    """C-9.5: a run's length is the difference of needle_ms across it, to the millisecond."""
    b = Bench().armed()
    telemetry(b, tick_ms(b, 30))
    b.fw.set_pedal(True)
    frames = telemetry(b, tick_ms(b, 1234, heartbeat=True))
    b.fw.set_pedal(False)
    frames += telemetry(b, tick_ms(b, 40))
    before = next(t for _, t in frames if t.state == State.RUNNING)
    after = frames[-1][1]
    assert after.runs == before.runs and after.state == State.ARMED
    assert after.needle_ms == 1234 and before.needle_ms <= TELEMETRY_PERIOD_MS


# --- C-11.6: the latch and the drive cut are one step -----------------------------------------

@pytest.mark.parametrize("cause", ["overcurrent", "stall"])
def test_the_first_faulted_frame_after_a_motor_fault_says_the_motor_is_not_driven(cause):
    """C-11.6: the tick that latches the fault cuts the drive before it builds its telemetry
    (seen before: FAULTED with 7500 mV in 4 of 8 over-currents)."""
    for phase in range(20):  # the fault may trip in any millisecond of the 20 ms rhythm
        b = Bench().armed(pedal=True)
        tick_ms(b, 300 + phase)
        if cause == "stall":
            b.fw.physics.injected.jam = True
        else:
            b.fw.physics.injected.short_a = 3.0
        faulted = [t for _, t in telemetry(b, tick_ms(b, 400)) if t.state == State.FAULTED]
        assert faulted, cause
        first = faulted[0]
        assert first.faults & (Fault.STALL if cause == "stall" else Fault.OVERCURRENT)
        assert not first.motor_on and first.voltage_mv == 0 and first.current_ma == 0, first


def test_every_frame_that_says_not_driven_reports_no_drive_voltage():
    """C-9.4: voltage_mv is 0 and the motor bit clear in every state but RUNNING."""
    rng = random.Random(3)
    b = Bench().armed()
    frames = []
    for _ in range(300):
        r = rng.random()
        if r < 0.05:
            b.fw.set_pedal(rng.random() < 0.6)
        elif r < 0.07:
            b.send(rng.choice([Stop(), ClearFault(), Arm(), Set(*CROWN)]))
        elif r < 0.08:
            b.fw.physics.injected.short_a = rng.choice([0.0, 3.0])
        frames += telemetry(b, tick_ms(b, 7))
    states = {t.state for _, t in frames}
    assert {State.RUNNING, State.FAULTED, State.ARMED} <= states
    for _, t in frames:
        assert t.motor_on == (t.state == State.RUNNING)
        if not t.motor_on:
            assert t.voltage_mv == 0 and t.current_ma == 0, t


# --- C-11.3: motor faults --------------------------------------------------------------------

def test_stall_trips_100_ms_after_the_drive_starts_and_spin_up_lies_inside_that():
    """C-11.3: below 20 Hz continuously for 100 ms while driven, counted from the drive's
    start: a jammed motor trips exactly then; a free one spins up and never trips."""
    b = Bench().armed()
    b.fw.physics.injected.jam = True
    tick_ms(b, 500)
    assert b.fw.state == State.ARMED and not b.fw.faults  # not driven: no stall
    b.fw.set_pedal(True)
    start = b.clock.now_ns()
    tick_ms(b, STALL_TRIP_MS - 1)
    assert b.fw.state == State.RUNNING
    tick_ms(b, 1)
    assert b.fw.state == State.FAULTED and b.fw.faults == Fault.STALL
    assert b.fw.motor_off_ns - start == STALL_TRIP_MS * 1_000_000
    free = Bench().armed(pedal=True)
    tick_ms(free, 5)
    assert free.fw.physics.readings().rate_dhz < STALL_BELOW_DHZ  # spinning up: below 20 Hz
    tick_ms(free, 995)
    assert free.fw.state == State.RUNNING and not free.fw.faults
    assert free.fw.physics.readings().rate_dhz > 1000


def test_stall_needs_100_ms_continuously_below_20_hz():
    b = Bench().armed(pedal=True)
    tick_ms(b, 300)
    for _ in range(5):  # 60 ms jammed, 60 ms free: never 100 ms in a row
        b.fw.physics.injected.jam = True
        tick_ms(b, 60)
        b.fw.physics.injected.jam = False
        tick_ms(b, 60)
    assert b.fw.state == State.RUNNING and not b.fw.faults


def test_overcurrent_and_stall_only_while_driven_overtemp_in_any_state():
    """C-11.3, C-11.4 and the state table agree: STALL and OVERCURRENT while RUNNING only,
    OVERTEMP whatever the state."""
    b = Bench().armed()
    b.fw.physics.injected.jam = True
    b.fw.physics.injected.short_a = 3.0
    tick_ms(b, 1000, step=10)
    assert b.fw.state == State.ARMED and not b.fw.faults
    b.fw.physics.injected.jam = False
    b.fw.set_pedal(True)
    tick_ms(b, 300)
    assert b.fw.faults == Fault.OVERCURRENT
    hot = Bench()
    hot.reply(Hello())
    hot.fw.physics.injected.heat_w = 150.0
    tick_ms(hot, 6000, step=20)
    assert hot.fw.state == State.FAULTED and hot.fw.faults == Fault.OVERTEMP
    assert hot.reply(ClearFault()).code == ErrorCode.FAULT_PERSISTS  # still at or above 60 °C


def test_a_stall_is_reported_as_a_stall_not_as_an_overcurrent():
    """A motor that cannot turn draws its stall current (3.75 A): that is STALL."""
    b = Bench().armed(pedal=True)
    tick_ms(b, 300)
    b.fw.physics.injected.jam = True
    tick_ms(b, 300)
    assert b.fw.faults == Fault.STALL


# --- C-11.5: the depth fault's timer --------------------------------------------------------

def test_the_depth_timer_restarts_with_every_new_setpoint():
    """C-11.5: 1.5 s from the first moment the depth is off while ARMED or RUNNING, or from
    the latest SET; reset when back within 100 µm or when no longer armed."""
    b = Bench().armed()
    b.fw.physics.injected.depth_limit_um = 1000  # asked for 1800: it stops short
    tick_ms(b, 1000, step=10)
    b.reply(Set(1850, 1300, 7500))  # a new setpoint: the timer starts again
    tick_ms(b, DEPTH_SETTLE_MS - 10, step=10)
    assert b.fw.state == State.ARMED and not b.fw.faults
    tick_ms(b, 20, step=10)
    assert b.fw.faults == Fault.DEPTH
    assert b.reply(ClearFault()).code == ErrorCode.FAULT_PERSISTS  # still short
    b.fw.physics.injected.depth_limit_um = None
    tick_ms(b, 1000, step=10)
    assert b.reply(ClearFault()) == Ack(MsgType.CLEAR_FAULT)


def test_the_depth_timer_does_not_run_while_disarmed_and_the_actuator_follows_anyway():
    """C-10.6: the actuator follows the applied setpoint in every state; the depth fault is
    judged only while ARMED or RUNNING."""
    b = Bench()
    b.reply(Hello())
    b.reply(Set(*CROWN))
    tick_ms(b, 1200, step=10)
    assert b.fw.physics.readings().depth_um == CROWN.depth_um  # moved while DISARMED
    b.send(Stop())
    b.reply(Set(*OTHER))
    tick_ms(b, 1200, step=10)
    assert b.fw.state == State.FAULTED and b.fw.faults == Fault.STOP
    assert b.fw.physics.readings().depth_um == OTHER.depth_um  # and while FAULTED
    b.fw.physics.injected.depth_limit_um = 900
    b.reply(ClearFault())
    b.reply(Set(*CROWN))
    tick_ms(b, 3000, step=10)
    assert b.fw.state == State.DISARMED and not b.fw.faults


# --- C-9.1: the telemetry rhythm ------------------------------------------------------------

def test_telemetry_keeps_the_boot_grid_when_ticks_are_irregular_or_late():
    """C-9.1: frame k is due at boot + 20 k ms. The simulated firmware's timers fire at their
    deadlines even when it is stepped late (as a device's timer interrupt does), so every frame
    is built at its slot's time; of the slots that fell due in one late step only the last is
    sent (no burst)."""
    b = Bench()
    rng = random.Random(11)
    frames, late_steps = [], 0
    for _ in range(400):
        gap = rng.choice([1, 2, 3, 4, 5, 45])  # sometimes 45 ms late
        late_steps += gap > TELEMETRY_PERIOD_MS
        b.clock.advance_ms(gap)
        b.fw.tick()
        sent = telemetry(b)
        assert len(sent) <= 1, "a burst"
        frames += sent
    uptimes = [t.uptime_ms for _, t in frames]
    assert all(u % TELEMETRY_PERIOD_MS == 0 for u in uptimes)
    slots = [u // TELEMETRY_PERIOD_MS for u in uptimes]
    assert slots == sorted(set(slots))
    skipped = sum(b - a - 1 for a, b in itertools.pairwise(slots))
    assert 0 < skipped <= 2 * late_steps  # a 45 ms step skips the older slots it missed
    assert len(frames) + skipped == slots[-1] + 1  # and no slot is otherwise missing
    # The machine's own account of what it skipped is exactly the slots missing on the wire.
    assert b.fw.skipped_slots == sorted(set(range(slots[-1] + 1)) - set(slots))


def test_a_firmware_woken_at_each_due_time_sends_every_20_ms_exactly():
    b = Bench()
    frames = []
    for _ in range(100):
        b.clock.advance_ns(b.fw.next_deadline_ns() - b.clock.now_ns())
        b.fw.tick()
        frames += telemetry(b)
    uptimes = [t.uptime_ms for _, t in frames]
    assert {y - x for x, y in itertools.pairwise(uptimes)} == {TELEMETRY_PERIOD_MS}


def test_the_link_flag_is_0_before_any_host_frame():
    """C-10.1: after boot: DISARMED, no settings, no session, link 0, ack 0."""
    b = Bench()
    frames = telemetry(b, tick_ms(b, 100, heartbeat=False))
    assert frames and all(
        a == 0 and t.flags == 0 and t.state == State.DISARMED and t.setpoints == (0, 0, 0)
        and t.faults == 0 for a, t in frames)
    b.fw.feed(encode(Heartbeat()))
    b.clock.advance_ms(20)
    b.fw.tick()
    assert telemetry(b)[-1][1].flags == Flag.LINK


# --- C-5.x: sequence numbers and duplicates ---------------------------------------------------

def test_a_command_with_seq_0_is_refused_malformed_and_not_executed():
    """C-5.5: 0 is not a command's number; STOP is acted on whatever its seq."""
    b = Bench()
    assert b.reply(Hello(), seq=0) == Nack(MsgType.HELLO, ErrorCode.MALFORMED, Field.NONE)
    assert not b.fw.handshaken
    b.reply(Hello(), seq=1)
    assert b.reply(Set(*CROWN), seq=0) == Nack(MsgType.SET, ErrorCode.MALFORMED, Field.NONE)
    assert b.fw.applied is None
    b.reply(Set(*CROWN), seq=2)
    assert b.reply(Arm(), seq=0).code == ErrorCode.MALFORMED and b.fw.state == State.DISARMED
    assert b.reply(Watchdog(150), seq=0).code == ErrorCode.MALFORMED
    assert b.fw.watchdog_ms == WATCHDOG_DEFAULT_MS
    assert b.reply(Stop(), seq=0) == Ack(MsgType.STOP) and b.fw.faults == Fault.STOP


def test_the_history_counts_refused_commands_and_hello_starts_it_afresh():
    """C-5.4: a copy of a refused command gets the remembered NACK, not a new verdict; an older
    refused one is a stale copy; after HELLO a number seen before is a new command."""
    b = Bench()
    b.reply(Hello(), seq=1)
    b.reply(Set(*CROWN), seq=2)
    b.fw.set_pedal(True)
    refused = b.send(Arm(), seq=3)
    assert refused == [(3, Nack(MsgType.ARM, ErrorCode.PEDAL_DOWN, Field.NONE))]
    b.fw.set_pedal(False)
    assert b.send(Arm(), seq=3) == refused  # the remembered answer: not armed now
    assert b.fw.state == State.DISARMED
    b.reply(Set(*OTHER), seq=4)
    assert b.send(Arm(), seq=3) == []  # a stale copy of a refused command: ignored
    assert b.fw.state == State.DISARMED
    b.reply(Hello(), seq=5)
    assert b.send(Set(*CROWN), seq=2) == [(2, Applied(*CROWN))]  # history cleared by HELLO
    assert b.send(Arm(), seq=3) == [(3, Ack(MsgType.ARM))]


def test_stop_takes_no_part_in_duplicate_detection():
    """C-8.3: STOP between a command and its copy does not make the copy new."""
    b = Bench()
    b.reply(Hello(), seq=1)
    first = b.send(Set(*CROWN), seq=30)
    b.send(Stop(), seq=30)
    assert b.send(Set(*OTHER), seq=30) == first  # the remembered APPLIED of CROWN
    assert b.fw.applied == CROWN


def test_stop_and_heartbeat_with_a_payload_and_host_frames_with_an_ack():
    """C-8.1: a STOP with a payload is acted on. C-7.1: a HEARTBEAT with a payload feeds the
    watchdog. C-2.1: a host frame's ack is ignored."""
    b = Bench().armed(pedal=True)
    for _ in range(10):
        b.fw.feed(encode_raw(0, 0, MsgType.HEARTBEAT, b"\x01\x02"))
        b.clock.advance_ms(100)
        b.fw.tick()
    assert b.fw.state == State.RUNNING and b.fw.link_alive
    assert b.replies() == []  # C-7.5: a HEARTBEAT is never answered
    b.fw.feed(encode_raw(77, 0x55, MsgType.SET, Set(*OTHER).payload()))
    assert b.replies() == [(77, Applied(*OTHER))]
    b.fw.feed(encode_raw(78, 0, MsgType.STOP, b"\xff" * 4))
    assert b.replies() == [(78, Ack(MsgType.STOP))]
    assert b.fw.state == State.FAULTED and not b.fw.motor_on


def test_a_hello_of_one_byte_or_more_is_accepted_and_an_empty_one_is_malformed():
    """C-4.1: the version is byte 0 in every version; what follows it is ignored."""
    b = Bench()
    b.fw.feed(encode_raw(1, 0, MsgType.HELLO, b""))
    assert b.replies() == [(1, Nack(MsgType.HELLO, ErrorCode.MALFORMED, Field.NONE))]
    assert not b.fw.handshaken
    b.fw.feed(encode_raw(2, 0, MsgType.HELLO, bytes([PROTOCOL_VERSION]) + b"later fields"))
    (ack, ident), = b.replies()
    assert ack == 2 and isinstance(ident, Ident) and b.fw.handshaken


def test_hello_restores_the_default_watchdog_and_keeps_a_latched_fault():
    """C-6.2."""
    b = Bench()
    b.reply(Hello())
    assert b.reply(Watchdog(120)) == Ack(MsgType.WATCHDOG)
    b.send(Stop())
    ident = b.reply(Hello())
    assert ident.watchdog_ms == b.fw.watchdog_ms == WATCHDOG_DEFAULT_MS
    assert ident.state == State.FAULTED and ident.faults == Fault.STOP


def test_machine_type_frames_do_not_feed_the_watchdog():
    """C-7.1: a frame of a machine-to-host type (an echo) is ignored: no answer, no watchdog."""
    b = Bench()
    b.reply(Hello())
    assert b.fw.link_alive
    for _ in range(10):
        for msg in (Ack(MsgType.ARM), Applied(*CROWN), Nack(2, 2, 0), b.fw.ident()):
            b.fw.feed(encode(msg, seq=1))
        b.clock.advance_ms(30)
        b.fw.tick()
    assert b.replies() == [] and not b.fw.link_alive


def test_the_watchdog_counts_from_the_frames_delimiter():
    """C-7.2: a frame arrives when its delimiter does: the first bytes of a frame do not feed
    the watchdog; the complete frame feeds it from then."""
    b = Bench()
    b.reply(Hello())
    frame = encode(Heartbeat())
    b.clock.advance_ms(200)
    b.fw.feed(frame[:-1])  # all but the delimiter, 200 ms after the HELLO
    b.clock.advance_ms(WATCHDOG_DEFAULT_MS - 200)
    b.fw.tick()
    assert not b.fw.link_alive  # 250 ms after the HELLO: expired
    b.fw.feed(frame[-1:])
    arrived = b.clock.now_ns()
    b.clock.advance_ms(WATCHDOG_DEFAULT_MS - 1)
    b.fw.tick()
    assert b.fw.link_alive and b.fw.last_host_ns == arrived
    b.clock.advance_ms(1)
    b.fw.tick()
    assert not b.fw.link_alive


# --- C-6.x, C-11.1: handshake and refusals ---------------------------------------------------

def test_not_ready_says_protocol_after_a_hello_of_another_version():
    """C-6.4: NOT_READY carries field PROTOCOL after a HELLO of another version, NONE when no
    HELLO since boot. C-6.1: that HELLO is answered with the machine's own version."""
    b = Bench()
    assert b.reply(Set(*CROWN)) == Nack(MsgType.SET, ErrorCode.NOT_READY, Field.NONE)
    ident = b.reply(Hello(PROTOCOL_VERSION + 1))
    assert isinstance(ident, Ident) and ident.protocol == PROTOCOL_VERSION
    assert b.reply(Set(*CROWN)) == Nack(MsgType.SET, ErrorCode.NOT_READY, Field.PROTOCOL)
    b.reply(Hello())
    assert b.reply(Set(*CROWN)) == Applied(*CROWN)


def test_a_hello_of_another_version_disarms_and_establishes_no_session():
    """C-6.3: any HELLO disarms an armed machine."""
    b = Bench().armed()
    b.reply(Hello(PROTOCOL_VERSION - 1))
    assert b.fw.state == State.DISARMED and not b.fw.handshaken


def test_one_precedence_for_refusals():
    """C-11.1: NOT_READY, MALFORMED, then the command's own checks in their listed order."""
    b = Bench()
    b.fw.feed(encode_raw(1, 0, MsgType.SET, b"\x01"))  # malformed and no session
    assert b.replies() == [(1, Nack(MsgType.SET, ErrorCode.NOT_READY, Field.NONE))]
    b.reply(Hello(), seq=2)
    b.fw.set_pedal(True)
    assert b.reply(Arm(), seq=3).code == ErrorCode.NO_SETTINGS  # before PEDAL_DOWN
    b.send(Stop(), seq=4)
    assert b.reply(Arm(), seq=5).code == ErrorCode.LATCHED  # before NO_SETTINGS
    cases = [((2525, 499, 7550), ErrorCode.OUT_OF_RANGE, Field.DEPTH),  # range before step
             ((1825, 499, 12100), ErrorCode.OFF_STEP, Field.DEPTH),  # depth before rate
             ((1800, 499, 7550), ErrorCode.OUT_OF_RANGE, Field.RATE),
             ((1800, 1300, 12150), ErrorCode.OUT_OF_RANGE, Field.VOLTAGE)]
    for seq, (values, code, fld) in enumerate(cases, start=10):
        assert b.reply(Set(*values), seq=seq) == Nack(MsgType.SET, code, fld)
    assert b.reply(Watchdog(200), seq=20) == Ack(MsgType.WATCHDOG)
    assert b.reply(Watchdog(600), seq=21) == Nack(MsgType.WATCHDOG, ErrorCode.OUT_OF_RANGE,
                                                  Field.WATCHDOG)  # before WOULD_LENGTHEN
    assert b.reply(Watchdog(300), seq=22).code == ErrorCode.WOULD_LENGTHEN


def test_a_version_2_machine_never_sends_unsupported():
    """C-11.1: UNSUPPORTED is reserved. Random host frames, payloads and numbers."""
    rng = random.Random(5)
    b = Bench()
    codes = set()
    for i in range(3000):
        t = rng.choice(sorted(HOST_TYPES))
        payload = rng.randbytes(rng.choice([0, 0, 1, 2, 6, 7]))
        b.fw.feed(encode_raw(rng.randrange(256), rng.randrange(256), t, payload))
        if i % 50 == 0:
            b.fw.feed(encode(Hello(), seq=rng.randrange(1, 256)))
        if i % 20 == 0:
            b.fw.set_pedal(rng.random() < 0.3)
            b.clock.advance_ms(30)
            b.fw.tick()
        codes |= {f.message().code for f in b.decoder.feed(b.fw.take_output())
                  if f.type == MsgType.NACK}
    assert ErrorCode.UNSUPPORTED not in codes
    assert {ErrorCode.MALFORMED, ErrorCode.NOT_READY, ErrorCode.OUT_OF_RANGE} <= codes


def test_telemetry_flags_reserved_bits_are_zero_and_state_is_known():
    """C-9.4 on the firmware: every frame over a busy random session."""
    rng = random.Random(9)
    b = Bench().armed()
    frames = []
    for _ in range(500):
        if rng.random() < 0.1:
            b.fw.set_pedal(rng.random() < 0.5)
        if rng.random() < 0.03:
            b.send(rng.choice([Stop(), ClearFault(), Arm(), Hello()]))
        frames += telemetry(b, tick_ms(b, 5, heartbeat=rng.random() < 0.9))
    assert all(isinstance(t, Telemetry) and t.flags & 0xF0 == 0 and t.state in set(State)
               and not t.faults & ~0x3F for _, t in frames)
