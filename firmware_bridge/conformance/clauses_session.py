"""Device clauses of sections 6 to 8: the handshake, heartbeat and watchdog, STOP."""

from __future__ import annotations

from firmware_bridge.codec import (
    Arm,
    Disarm,
    Heartbeat,
    Hello,
    Nack,
    Set,
    Stop,
    Watchdog,
    encode,
    encode_raw,
)
from firmware_bridge.conformance.context import Context, Fail, describe, state_text
from firmware_bridge.conformance.registry import clause
from firmware_bridge.conformance.steps import (
    OTHER_VERSION,
    QUIET_S,
    WATCHDOG_TEST_MS,
    expect_applied,
    stopped,
    watchdog_expiry,
)
from firmware_bridge.schema import (
    PROTOCOL_VERSION,
    WATCHDOG_MAX_MS,
    WATCHDOG_MIN_MS,
    ErrorCode,
    Fault,
    Field,
    Flag,
    MsgType,
    State,
)

# --- 6 handshake ---------------------------------------------------------------------------

@clause("C-6.1", "6", "HELLO: IDENT in the machine's own version; session iff same version")
def handshake(ctx: Context) -> str:
    ctx.session()
    if not ctx.tel().flags & Flag.SESSION:
        raise Fail("IDENT answered but the session bit is clear")
    _seq, f = ctx.ask(Hello(OTHER_VERSION))
    if f.type != MsgType.IDENT or not f.payload or f.payload[0] != PROTOCOL_VERSION:
        raise Fail(f"HELLO of version {OTHER_VERSION}: {describe(f)}, not IDENT of version "
                   f"{PROTOCOL_VERSION}")
    if ctx.tel().flags & Flag.SESSION:
        raise Fail(f"HELLO of version {OTHER_VERSION} left a session established")
    ctx.hello()
    if not ctx.tel().flags & Flag.SESSION:
        raise Fail("a HELLO of this version after one of another: no session")
    return f"IDENT version {PROTOCOL_VERSION} to HELLO {PROTOCOL_VERSION} and {OTHER_VERSION}; " \
           "session only for the same version"


@clause("C-6.2", "6", "HELLO restores the default watchdog; a latched fault stays latched")
def hello_restores(ctx: Context) -> str:
    ctx.session()
    ctx.expect_ack(Watchdog(WATCHDOG_MIN_MS + 50))
    ctx.stop()
    _, i = ctx.hello()
    if i.watchdog_ms != ctx.ident.watchdog_ms:
        raise Fail(f"after HELLO the watchdog is {i.watchdog_ms} ms, not the default "
                   f"{ctx.ident.watchdog_ms} ms")
    if i.state != State.FAULTED or not i.faults & Fault.STOP:
        raise Fail(f"HELLO cleared a latched STOP: state {i.state}, faults 0x{i.faults:04X}")
    ctx.clear()
    return f"watchdog back to {i.watchdog_ms} ms; STOP still latched after HELLO"


@clause("C-6.3", "6", "HELLO disarms an armed machine", needs="arm")
def hello_disarms(ctx: Context) -> str:
    ctx.session()
    expect_applied(ctx, Set(*ctx.good))
    ctx.arm()
    ctx.wait_telemetry(lambda t: t.state == State.ARMED, 0.3, "ARMED after ARM")
    _, i = ctx.hello()
    if i.state != State.DISARMED:
        raise Fail(f"IDENT after HELLO says state {i.state}, not DISARMED")
    ctx.wait_telemetry(lambda t: t.state == State.DISARMED, 0.3, "DISARMED after HELLO")
    return "ARMED, then HELLO: IDENT and telemetry say DISARMED"


@clause("C-6.4", "6", "without a session: NOT_READY (field PROTOCOL after another version)")
def not_ready(ctx: Context) -> str:
    ctx.session()
    ctx.hello(OTHER_VERSION)
    ctx.expect_nack(Set(*ctx.good), ErrorCode.NOT_READY, Field.PROTOCOL)
    ctx.expect_nack(Disarm(), ErrorCode.NOT_READY, Field.PROTOCOL)
    ctx.hello()
    return (f"after HELLO {OTHER_VERSION}: SET and DISARM NACK NOT_READY field PROTOCOL "
            "(field NONE after boot: C-10.1)")


# --- 7 heartbeat and watchdog --------------------------------------------------------------

@clause("C-7.1", "7", "any valid host frame feeds the watchdog; machine-type frames do not")
def feeds_watchdog(ctx: Context) -> str:
    ctx.session()
    ctx.expect_ack(Watchdog(WATCHDOG_TEST_MS))
    probe = ctx.probe
    probe.heartbeat_frame = encode_raw(0, 0, MsgType.HEARTBEAT, b"\x01\x02\x03")
    since = probe.mark()
    probe.wait(3 * WATCHDOG_TEST_MS / 1000)
    dropped = [s for s in probe.telemetry(since) if not s.telemetry.flags & Flag.LINK]
    probe.heartbeat_frame = encode(Heartbeat())
    if dropped:
        raise Fail("HEARTBEATs with a payload did not keep the link alive")
    # Machine-type frames only (as an echo would send): they must not feed the watchdog.
    probe.heartbeat_frame = encode(Nack(MsgType.SET, 2, 0), seq=1)
    probe.heartbeat_feeds = False
    try:
        ms, _ = watchdog_expiry(ctx, WATCHDOG_TEST_MS, lambda t: not t.flags & Flag.LINK,
                                 "link flag 0 while only machine-type frames arrived")
    finally:
        probe.heartbeat_frame = encode(Heartbeat())
        probe.heartbeat_feeds = True
    return (f"HEARTBEAT with a payload keeps the link; with only NACK-type frames the link "
            f"dropped {ms:.0f} ms after the last host frame")


@clause("C-7.2", "7", "the watchdog expires at its timeout; while DISARMED nothing latches")
def watchdog_disarmed(ctx: Context) -> str:
    ctx.session()
    ctx.expect_ack(Watchdog(WATCHDOG_TEST_MS))
    ms, t = watchdog_expiry(ctx, WATCHDOG_TEST_MS, lambda t: not t.flags & Flag.LINK,
                             "link flag 0")
    if t.state != State.DISARMED or t.faults:
        raise Fail(f"the watchdog expired while DISARMED and latched: {state_text(t)}")
    ctx.probe.wait(0.05)
    if not ctx.tel().flags & Flag.LINK:
        raise Fail("heartbeats resumed but the link flag stays 0")
    return f"link flag 0 {ms:.0f} ms after the last host frame (timeout {WATCHDOG_TEST_MS} ms), " \
           "nothing latched"


@clause("C-7.3", "7", "the watchdog expiring while ARMED latches LINK_LOST", needs="arm")
def watchdog_armed(ctx: Context) -> str:
    ctx.session()
    expect_applied(ctx, Set(*ctx.good))
    ctx.expect_ack(Watchdog(WATCHDOG_TEST_MS))
    ctx.arm()
    ctx.wait_telemetry(lambda t: t.state == State.ARMED, 0.3, "ARMED after ARM")
    ms, t = watchdog_expiry(ctx, WATCHDOG_TEST_MS, lambda t: t.state == State.FAULTED,
                             "FAULTED")
    if not t.faults & Fault.LINK_LOST or t.flags & Flag.LINK:
        raise Fail(f"the watchdog expired while ARMED: {state_text(t)}, flags 0x{t.flags:02X}")
    ctx.clear()
    return f"FAULTED with LINK_LOST {ms:.0f} ms after the last host frame"


@clause("C-7.4", "7", "WATCHDOG: 100 to 500 ms, only shorter; OUT_OF_RANGE before "
                      "WOULD_LENGTHEN")
def watchdog_command(ctx: Context) -> str:
    ident = ctx.session()
    default = ident.watchdog_ms
    ctx.expect_nack(Watchdog(WATCHDOG_MIN_MS - 1), ErrorCode.OUT_OF_RANGE, Field.WATCHDOG)
    ctx.expect_nack(Watchdog(WATCHDOG_MAX_MS + 1), ErrorCode.OUT_OF_RANGE, Field.WATCHDOG)
    if default < WATCHDOG_MAX_MS:
        ctx.expect_nack(Watchdog(default + 10), ErrorCode.WOULD_LENGTHEN, Field.WATCHDOG)
    shorter = max(WATCHDOG_MIN_MS, default - 100)
    ctx.expect_ack(Watchdog(shorter))
    ctx.expect_ack(Watchdog(shorter))  # equal to the one in force
    ctx.expect_nack(Watchdog(WATCHDOG_MAX_MS + 100), ErrorCode.OUT_OF_RANGE, Field.WATCHDOG)
    if shorter < WATCHDOG_MAX_MS:
        ctx.expect_nack(Watchdog(shorter + 1), ErrorCode.WOULD_LENGTHEN, Field.WATCHDOG)
    _, i = ctx.hello()
    return (f"{WATCHDOG_MIN_MS - 1} and {WATCHDOG_MAX_MS + 1} OUT_OF_RANGE, longer than in force "
            f"WOULD_LENGTHEN, {shorter} ACK, HELLO back to {i.watchdog_ms} ms")


@clause("C-7.5", "7", "HEARTBEAT is never answered")
def heartbeatsilent(ctx: Context) -> str:
    ctx.session()
    since = ctx.probe.mark()
    for seq in (0, 0, 7, 200):
        ctx.probe.send(Heartbeat(), seq=seq)
    ctx.probe.wait(QUIET_S)
    answers = [s for s in ctx.probe.frames[since:] if s.telemetry is None]
    if answers:
        raise Fail(f"a HEARTBEAT was answered: {describe(answers[0].frame)}")
    return "4 HEARTBEATs (seq 0, 7, 200): no answer"


# --- 8 STOP --------------------------------------------------------------------------------

@clause("C-8.1", "8", "STOP acted on whatever its seq or payload; every copy answered")
def stop_any(ctx: Context) -> str:
    ctx.session()
    for what, seq, payload in (("STOP seq 0", 0, b""), ("STOP with a payload", None, b"\x01" * 4)):
        since = ctx.probe.mark()
        seq = ctx.probe.send_raw(ctx.probe.next_seq() if seq is None else seq, MsgType.STOP,
                                 payload)
        ctx.probe.wait(0.05)
        stopped(ctx, seq, since, what)
        ctx.clear()
    last = expect_applied(ctx, Set(*ctx.good))
    since = ctx.probe.mark()
    ctx.probe.send(Stop(), seq=last)
    ctx.probe.wait(0.05)
    stopped(ctx, last, since, "STOP with the last command's seq")
    ctx.clear()
    since = ctx.probe.mark()
    seq = ctx.probe.next_seq()
    ctx.probe.write(encode(Stop(), seq=seq) * 3)
    ctx.probe.wait(0.1)
    acks = ctx.probe.answers(seq, since, MsgType.STOP)
    if len(acks) != 3:
        raise Fail(f"3 copies of STOP: {len(acks)} ACKs")
    ctx.clear()
    return "STOP with seq 0, with a payload, with the last command's seq: FAULTED; 3 copies: " \
           "3 ACKs"


@clause("C-8.2", "8", "STOP is acted on without a session")
def stop_no_session(ctx: Context) -> str:
    ctx.session()
    ctx.hello(OTHER_VERSION)
    since = ctx.probe.mark()
    seq = ctx.probe.send(Stop())
    ctx.probe.wait(0.05)
    stopped(ctx, seq, since, "STOP after a HELLO of another version")
    ctx.hello()
    ctx.clear()
    return "no session: STOP ACK, FAULTED with STOP"


@clause("C-8.3", "8", "STOP is never compared as a duplicate")
def stop_not_duplicate(ctx: Context) -> str:
    ctx.session()
    since = ctx.probe.mark()
    last = expect_applied(ctx, Set(*ctx.good))
    remembered = ctx.probe.answers(last, since)[0].frame
    since = ctx.probe.mark()
    ctx.probe.send(Stop(), seq=last)
    ctx.probe.wait(0.05)
    stopped(ctx, last, since, f"STOP with seq {last}, the number of the SET before it")
    _, f = ctx.ask(Set(*ctx.good), seq=last)
    if f != remembered:
        raise Fail(f"a copy of the SET after the STOP was answered {describe(f)}, not the "
                   "remembered APPLIED")
    ctx.clear()
    return "STOP with the last SET's seq acted on; the SET's copy still gets its APPLIED"


@clause("C-8.4", "8", "STOP from RUNNING: FAULTED, motor off, 0 V; ARM then LATCHED",
        needs="arm pedal")
def stop_running(ctx: Context) -> str:
    ctx.session()
    expect_applied(ctx, Set(*ctx.good))
    ctx.arm()
    ctx.later(lambda: ctx.act("pedal up", prompt="release the pedal"))
    ctx.act("pedal down", prompt="press and hold the pedal (the needle will run, then stop)")
    ctx.wait_telemetry(lambda t: t.state == State.RUNNING and t.voltage_mv > 0, 30,
                       "RUNNING with the pedal down")
    seq = ctx.stop()
    first = ctx.tel()
    if first.state != State.FAULTED or first.motor_on or first.voltage_mv:
        raise Fail(f"the first frame after STOP's ACK: {state_text(first)}, motor "
                   f"{int(first.motor_on)}, {first.voltage_mv} mV")
    ctx.expect_nack(Arm(), ErrorCode.LATCHED)
    return f"STOP seq {seq} from RUNNING: next frame FAULTED, motor 0, 0 mV; ARM LATCHED"


