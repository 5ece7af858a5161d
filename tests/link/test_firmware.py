"""The firmware core on a fake clock: states, watchdog, STOP, refusals, duplicates, pedal."""

import itertools

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from firmware_bridge.codec import (
    PROTOCOL_VERSION,
    Ack,
    Applied,
    Arm,
    ClearFault,
    Decoder,
    Disarm,
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
from protocols.envelope import HARD_LIMITS, Range, SafetyEnvelope
from protocols.settings import WireSettings
from sim.clock import FakeClock
from sim.firmware import Firmware

CROWN = WireSettings(1800, 1300, 7500)


class Bench:
    """A firmware on a fake clock and a hand-driven host."""

    def __init__(self, **options):
        self.clock = FakeClock()
        self.fw = Firmware(self.clock, boot_id=0xB007, **options)
        self.decoder = Decoder()
        self.seq = 0

    def send(self, msg, seq=None):
        if seq is None:
            self.seq = self.seq % 255 + 1
            seq = self.seq
        self.fw.feed(encode(msg, seq=seq))
        return self.replies()

    def replies(self):
        return [(f.ack, f.message()) for f in self.decoder.feed(self.fw.take_output())
                if f.type != MsgType.TELEMETRY]

    def reply(self, msg, seq=None):
        (r,) = self.send(msg, seq)
        return r[1]

    def run(self, ms, heartbeat=True, step=10):
        for t in range(0, ms, step):
            if heartbeat and t % 50 == 0:
                self.fw.feed(encode(Heartbeat()))
            self.clock.advance_ms(step)
            self.fw.tick()

    def armed(self, pedal=False):
        assert isinstance(self.reply(Hello()), Ident)
        assert self.reply(Set(*CROWN)) == Applied(*CROWN)
        assert self.reply(Arm()) == Ack(MsgType.ARM)
        self.fw.set_pedal(pedal)
        return self


@pytest.fixture
def b():
    return Bench()


def test_handshake_answers_ident_with_limits_and_boot_id(b):
    ident = b.reply(Hello())
    assert ident.boot_id == 0xB007 and ident.protocol == PROTOCOL_VERSION
    assert (ident.lo, ident.hi) == HARD_LIMITS.to_wire()
    assert ident.state == State.DISARMED and ident.applied == (0, 0, 0)


def test_commands_before_a_handshake_are_refused(b):
    assert b.reply(Set(*CROWN)) == Nack(MsgType.SET, ErrorCode.NOT_READY, Field.NONE)
    assert b.fw.applied is None


def test_a_hello_of_another_version_leaves_the_machine_refusing(b):
    assert isinstance(b.reply(Hello(PROTOCOL_VERSION + 1)), Ident)
    assert b.reply(Set(*CROWN)).code == ErrorCode.NOT_READY


def test_a_new_hello_disarms_and_stops_the_needle(b):
    """Invariant 1: a host that starts over (HELLO) has armed nothing, so a machine armed by
    an earlier host session stops and must be armed again, on purpose."""
    b.armed(pedal=True)
    assert b.fw.motor_on
    ident = b.reply(Hello())
    assert ident.state == State.DISARMED and not b.fw.motor_on
    assert b.fw.applied == CROWN  # settings are kept; arming is what must be done again
    b.fw.set_pedal(False)
    assert b.reply(Arm()) == Ack(MsgType.ARM) and b.fw.state == State.ARMED


def test_arm_needs_settings_and_a_released_pedal(b):
    b.reply(Hello())
    assert b.reply(Arm()).code == ErrorCode.NO_SETTINGS
    b.reply(Set(*CROWN))
    b.fw.set_pedal(True)
    assert b.reply(Arm()).code == ErrorCode.PEDAL_DOWN
    b.fw.set_pedal(False)
    assert b.reply(Arm()) == Ack(MsgType.ARM) and b.fw.state == State.ARMED
    b.fw.set_pedal(True)
    assert b.reply(Arm()) == Ack(MsgType.ARM) and b.fw.state == State.RUNNING  # no change


def test_pedal_runs_and_stops_the_needle(b):
    """Invariants 1 and 4 (pedal): the needle runs only while the pedal is down, and releasing
    it stops the needle at once."""
    b.armed()
    assert not b.fw.motor_on
    b.fw.set_pedal(True)
    assert b.fw.state == State.RUNNING and b.fw.motor_on
    b.run(100)
    assert b.fw.physics.rate_hz > 50
    b.fw.set_pedal(False)
    assert b.fw.state == State.ARMED and not b.fw.motor_on  # at once, not at the next tick


def test_watchdog_fires_at_250_ms_not_before():
    """Invariant 4: losing the link stops the needle within the watchdog time (250 ms)."""
    b = Bench().armed(pedal=True)
    assert b.fw.motor_on
    b.clock.advance_ms(249)
    b.fw.tick()
    assert b.fw.motor_on and b.fw.state == State.RUNNING
    b.clock.advance_ms(1)
    b.fw.tick()
    assert b.fw.state == State.FAULTED and b.fw.faults == Fault.LINK_LOST
    assert not b.fw.motor_on


def test_heartbeats_keep_the_link_alive():
    b = Bench().armed(pedal=True)
    b.run(2000)
    assert b.fw.state == State.RUNNING


def test_a_late_frame_does_not_undo_an_expired_watchdog():
    b = Bench().armed(pedal=True)
    b.clock.advance_ms(300)  # no tick in between: the frame itself must see the expiry
    b.fw.feed(encode(Heartbeat()))
    assert b.fw.state == State.FAULTED and b.fw.faults & Fault.LINK_LOST


def test_watchdog_can_be_shortened():
    b = Bench().armed(pedal=True)
    assert b.reply(Watchdog(120)) == Ack(MsgType.WATCHDOG)
    b.clock.advance_ms(119)
    b.fw.tick()
    assert b.fw.motor_on
    b.clock.advance_ms(1)
    b.fw.tick()
    assert b.fw.state == State.FAULTED and b.fw.faults == Fault.LINK_LOST


def test_watchdog_is_never_lengthened(b):
    b.reply(Hello())
    assert b.reply(Watchdog(600)) == Nack(MsgType.WATCHDOG, ErrorCode.OUT_OF_RANGE,
                                          Field.WATCHDOG)
    assert b.reply(Watchdog(300)) == Nack(MsgType.WATCHDOG, ErrorCode.WOULD_LENGTHEN,
                                          Field.WATCHDOG)
    assert b.reply(Watchdog(50)).code == ErrorCode.OUT_OF_RANGE
    assert b.reply(Watchdog(200)) == Ack(MsgType.WATCHDOG)
    assert b.reply(Watchdog(250)).code == ErrorCode.WOULD_LENGTHEN
    assert b.fw.watchdog_ms == 200


def test_a_firmware_cannot_be_built_with_a_watchdog_past_500_ms():
    with pytest.raises(ValueError):
        Firmware(FakeClock(), watchdog_ms=501)


def test_watchdog_while_disarmed_latches_nothing(b):
    b.reply(Hello())
    b.run(1000, heartbeat=False)
    assert b.fw.state == State.DISARMED and not b.fw.link_alive and not b.fw.faults


@pytest.mark.parametrize("seq", [0, 1, 200, 255])
def test_stop_with_any_seq_stops_and_latches(seq):
    b = Bench().armed(pedal=True)
    b.seq = 200  # the host's counter is elsewhere: STOP's own seq does not matter
    assert b.send(Stop(), seq=seq) == [(seq, Ack(MsgType.STOP))]
    assert b.fw.state == State.FAULTED and b.fw.faults == Fault.STOP and not b.fw.motor_on


def test_stop_repeating_the_last_commands_seq_still_stops():
    b = Bench().armed(pedal=True)
    b.send(Stop(), seq=b.seq)  # same seq as the ARM just before: not a duplicate
    assert b.fw.state == State.FAULTED


def test_stop_is_acted_on_before_a_handshake(b):
    b.send(Stop(), seq=77)
    assert b.fw.state == State.FAULTED and b.fw.faults == Fault.STOP


def test_no_rearm_without_clear_fault_then_arm():
    b = Bench().armed(pedal=True)
    b.send(Stop())
    b.fw.set_pedal(False)
    assert b.reply(Arm()) == Nack(MsgType.ARM, ErrorCode.LATCHED, Field.NONE)
    assert b.reply(Disarm()) == Ack(MsgType.DISARM) and b.fw.state == State.FAULTED
    b.fw.set_pedal(True)
    b.run(500)
    assert b.fw.state == State.FAULTED and not b.fw.motor_on  # never re-arms itself
    b.fw.set_pedal(False)
    assert b.reply(ClearFault()) == Ack(MsgType.CLEAR_FAULT)
    assert b.fw.state == State.DISARMED and not b.fw.faults  # cleared, but not armed
    b.fw.set_pedal(True)
    assert not b.fw.motor_on
    b.fw.set_pedal(False)
    assert b.reply(Arm()) == Ack(MsgType.ARM)
    b.fw.set_pedal(True)
    assert b.fw.motor_on


def test_clear_fault_is_refused_while_the_cause_persists():
    b = Bench().armed(pedal=True)
    b.fw.physics.injected.jam = True
    b.run(300)
    assert b.fw.state == State.FAULTED and b.fw.faults & Fault.STALL
    b.fw.set_pedal(False)
    assert b.reply(ClearFault()).code == ErrorCode.FAULT_PERSISTS
    b.fw.physics.injected.jam = False
    assert b.reply(ClearFault()) == Ack(MsgType.CLEAR_FAULT)


def test_duplicate_set_is_applied_once_and_answered_again(b):
    """Invariant 3: a setpoint is applied at most once."""
    b.reply(Hello())
    first = b.send(Set(*CROWN), seq=9)
    again = b.send(Set(*CROWN), seq=9)
    assert first == again == [(9, Applied(*CROWN))]
    assert b.fw.sets_applied == 1 and b.fw.duplicates == 1
    assert b.send(Set(*CROWN), seq=10) == [(10, Applied(*CROWN))]
    assert b.fw.sets_applied == 2


@pytest.mark.parametrize(("values", "code", "field"), [
    ((150, 1300, 7500), ErrorCode.OUT_OF_RANGE, Field.DEPTH),
    ((2550, 1300, 7500), ErrorCode.OUT_OF_RANGE, Field.DEPTH),
    ((1825, 1300, 7500), ErrorCode.OFF_STEP, Field.DEPTH),
    ((1800, 499, 7500), ErrorCode.OUT_OF_RANGE, Field.RATE),
    ((1800, 1501, 7500), ErrorCode.OUT_OF_RANGE, Field.RATE),
    ((1800, 1300, 12100), ErrorCode.OUT_OF_RANGE, Field.VOLTAGE),
    ((1800, 1300, 2900), ErrorCode.OUT_OF_RANGE, Field.VOLTAGE),
    ((1800, 1300, 7550), ErrorCode.OFF_STEP, Field.VOLTAGE),
    ((0xFFFF, 0xFFFF, 0xFFFF), ErrorCode.OUT_OF_RANGE, Field.DEPTH),
])
def test_raw_out_of_range_or_off_step_set_is_refused(b, values, code, field):
    """Invariant 2: the firmware refuses a raw frame injected past the host's checks."""
    b.reply(Hello())
    b.reply(Set(*CROWN))
    assert b.reply(Set(*values)) == Nack(MsgType.SET, code, field)
    assert b.fw.applied == CROWN  # unchanged


def test_narrower_compiled_limits_refuse_what_the_hard_limits_allow():
    """Invariant 2: the firmware's own compiled limits, narrower than the hard limits."""
    narrow = SafetyEnvelope(depth_mm=Range(lo="0.5", hi="2.0"), rate_hz=Range(lo="80", hi="140"),
                            voltage_v=Range(lo="5.0", hi="10.0"))
    b = Bench(limits=narrow)
    ident = b.reply(Hello())
    assert (ident.lo, ident.hi) == ((500, 800, 5000), (2000, 1400, 10000))
    assert b.reply(Set(1800, 1300, 11000)) == Nack(MsgType.SET, ErrorCode.OUT_OF_RANGE,
                                                   Field.VOLTAGE)
    assert b.fw.applied is None


def test_a_firmware_cannot_widen_the_hard_limits():
    with pytest.raises(ValueError):
        Firmware(FakeClock(), limits=((100, 500, 3000), (2500, 1500, 12000)))


def test_malformed_commands_are_refused(b):
    b.reply(Hello())
    b.fw.feed(encode_raw(5, 0, MsgType.SET, b"\x01\x02\x03"))
    b.fw.feed(encode_raw(6, 0, MsgType.ARM, b"\x01"))
    assert b.replies() == [(5, Nack(MsgType.SET, ErrorCode.MALFORMED, Field.NONE)),
                           (6, Nack(MsgType.ARM, ErrorCode.MALFORMED, Field.NONE))]


def test_machine_type_frames_from_the_host_are_ignored(b):
    b.reply(Hello())
    b.fw.feed(encode(Applied(*CROWN), seq=3))
    assert b.replies() == [] and b.fw.applied is None


def test_telemetry_at_50_hz_with_state_and_pedal():
    b = Bench().armed(pedal=True)
    b.decoder.feed(b.fw.take_output())
    frames = []
    for _ in range(100):
        b.fw.feed(encode(Heartbeat()))
        b.clock.advance_ms(10)
        b.fw.tick()
        frames += [f for f in b.decoder.feed(b.fw.take_output()) if f.type == MsgType.TELEMETRY]
    # the boot frame went out before (at the first frame fed); then one every 20 ms
    assert len(frames) == 50
    uptimes = [f.message().uptime_ms for f in frames]
    assert {b - a for a, b in itertools.pairwise(uptimes)} == {20}
    t = frames[-1].message()
    assert isinstance(t, Telemetry)
    assert t.state == State.RUNNING and t.pedal_down and t.motor_on
    assert t.voltage_mv == 7500 and 1000 < t.rate_dhz <= 1300
    assert [f.seq for f in frames] == [(frames[0].seq + i) & 0xFF for i in range(50)]


def test_reboot_forgets_everything_but_the_motor():
    b = Bench().armed(pedal=True)
    old = b.fw.boot_id
    b.fw.reboot()
    assert b.fw.boot_id != old and b.fw.state == State.DISARMED and not b.fw.motor_on
    assert b.fw.applied is None and not b.fw.handshaken
    assert b.reply(Arm()).code == ErrorCode.NOT_READY


class NeedleRules(RuleBasedStateMachine):
    """Invariant 1: the needle runs only while armed AND link alive AND pedal down AND no
    latched fault, whatever the host sends, the pedal does and the clock does."""

    def __init__(self):
        super().__init__()
        self.b = Bench()
        self.b.reply(Hello())

    @rule(msg=st.sampled_from([Arm(), Disarm(), Stop(), ClearFault(), Hello(), Set(*CROWN),
                               Set(100, 1300, 7500), Watchdog(150)]))
    def command(self, msg):
        self.b.send(msg)

    @rule(down=st.booleans())
    def pedal(self, down):
        self.b.fw.set_pedal(down)

    @rule(ms=st.integers(1, 400), heartbeat=st.booleans())
    def time_passes(self, ms, heartbeat):
        self.b.run(ms, heartbeat=heartbeat, step=min(ms, 10))

    @rule()
    def jam(self):
        self.b.fw.physics.injected.jam = not self.b.fw.physics.injected.jam

    @rule()
    def reboot(self):
        self.b.fw.reboot()

    @invariant()
    def needle_only_when_allowed(self):
        fw = self.b.fw
        if fw.motor_on:
            assert fw.state == State.RUNNING
            assert fw.link_alive and fw.pedal and not fw.faults
            assert fw.clock.now_ns() - fw.last_host_ns < fw.watchdog_ms * 1_000_000


TestNeedleRules = NeedleRules.TestCase
TestNeedleRules.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
