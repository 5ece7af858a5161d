"""The device clauses of docs/protocol.md, each a function that drives the device through the
probe and returns what it observed (or raises Fail / Skip). Written from the spec: the clause
ids, sections and wording are those of the document, and a test checks that this registry
and the document's clause index name the same clauses.

Each clause starts from a new session (HELLO) and undoes what it set up. Needs:
    arm      the clause sends ARM (only with --allow-arm)
    pedal    someone presses the pedal (the simulator's controls, or a person)
    fault    a fault is caused on purpose (the simulator's controls, or a person)
    boot     the machine is restarted (the simulator's controls, or a person)
"""

from __future__ import annotations

import itertools
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge.codec import (
    Arm,
    ClearFault,
    Disarm,
    Heartbeat,
    Hello,
    Nack,
    Set,
    Stop,
    Telemetry,
    Watchdog,
    cobs_encode,
    encode,
    encode_body,
    encode_raw,
)
from firmware_bridge.conformance.context import Context, Fail, Skip, describe, state_text
from firmware_bridge.schema import (
    CRC_EXTRA,
    DEPTH_SETTLE_MS,
    DEPTH_TOLERANCE_UM,
    HARD_HI,
    HARD_LO,
    KNOWN_FAULTS,
    MAX_BODY,
    MAX_BODY_SENT,
    MAX_RUN,
    OVERTEMP_CLEAR_DC,
    OVERTEMP_DC,
    PAYLOAD_SIZE,
    PROTOCOL_VERSION,
    RESERVED_FLAGS,
    STALL_TRIP_MS,
    STEPS,
    TELEMETRY_LATE_MAX_MS,
    TELEMETRY_PERIOD_MS,
    WATCHDOG_MAX_MS,
    WATCHDOG_MIN_MS,
    Capability,
    ErrorCode,
    Fault,
    Field,
    Flag,
    MsgType,
    State,
)
from protocols.settings import WireSettings

QUIET_S = 0.2  # how long to listen for an answer that must not come
WATCHDOG_TEST_MS = WATCHDOG_MIN_MS  # the shortest watchdog: the quickest waits
# The line's delay, the mapping of the device's clock onto ours, and (late only) a loaded host
# that reads our frames late: generous, since a wrong timer is wrong by far more.
EARLY_SLACK_MS, LATE_SLACK_MS = 5, 25
OTHER_VERSION = PROTOCOL_VERSION + 1
RESERVED_CAPABILITIES = 0xFFFF & ~(Capability.PEDAL | Capability.DEPTH_SENSOR
                                   | Capability.CURRENT_SENSOR | Capability.TEMPERATURE_SENSOR
                                   | Capability.SIMULATOR)


@dataclass(frozen=True)
class Clause:
    id: str
    section: str
    title: str
    needs: frozenset[str]
    run: Callable[[Context], str]
    level: str = "MUST"


CLAUSES: dict[str, Clause] = {}


def clause(cid: str, section: str, title: str, needs: str = "", level: str = "MUST"):
    def register(fn: Callable[[Context], str]) -> Callable[[Context], str]:
        CLAUSES[cid] = Clause(cid, section, title, frozenset(needs.split()), fn, level)
        return fn
    return register


# --- helpers -------------------------------------------------------------------------------

def _settings(ctx: Context, msg: Set) -> int:
    seq, f = ctx.ask(msg)
    if f.type != MsgType.APPLIED:
        raise Fail(f"SET seq {seq} {tuple(msg.settings)}: {describe(f)}, not APPLIED")
    return seq


def _setpoints(ctx: Context) -> WireSettings:
    return ctx.tel().setpoints


def _silent(ctx: Context, seq: int, mtype: int, since: int, what: str) -> None:
    ctx.probe.wait(QUIET_S)
    got = ctx.probe.answers(seq, since, mtype)
    if got:
        raise Fail(f"{what}: answered {describe(got[0].frame)}")


def _telemetry_problems(t: Telemetry, lo: WireSettings, hi: WireSettings) -> list[str]:
    """What is wrong with one frame by C-9.4 (empty when nothing)."""
    out = []
    if t.state not in set(State):
        return [f"state {t.state}"]
    s = State(t.state)
    if t.flags & RESERVED_FLAGS:
        out.append(f"reserved flag bits 0x{t.flags & RESERVED_FLAGS:02X}")
    if t.faults & ~KNOWN_FAULTS:
        out.append(f"unknown fault bits 0x{t.faults & ~KNOWN_FAULTS:04X}")
    if bool(t.flags & Flag.MOTOR) != (s == State.RUNNING):
        out.append(f"motor bit {int(bool(t.flags & Flag.MOTOR))} in {s.name}")
    if s != State.RUNNING and t.voltage_mv:
        out.append(f"{t.voltage_mv} mV in {s.name}")
    if s == State.RUNNING and (t.faults or not t.flags & Flag.PEDAL or not t.flags & Flag.LINK):
        out.append(f"RUNNING with flags 0x{t.flags:02X} faults 0x{t.faults:04X}")
    if (s == State.FAULTED) != bool(t.faults):
        out.append(f"{s.name} with faults 0x{t.faults:04X}")
    sp = t.setpoints
    if any(sp):
        bad = [i for i in range(3) if not lo[i] <= sp[i] <= hi[i] or sp[i] % STEPS[i]]
        if bad:
            out.append(f"setpoints {tuple(sp)} outside {tuple(lo)}..{tuple(hi)} or off step")
    elif s in (State.ARMED, State.RUNNING):
        out.append(f"{s.name} with no setpoints")
    if s == State.RUNNING and t.voltage_mv > t.set_voltage_mv:
        out.append(f"driven at {t.voltage_mv} mV above the setpoint {t.set_voltage_mv} mV")
    return out


def _noise(n: int) -> bytes:
    """Line noise without a 0x00 (random, from the OS: a device must cope with any)."""
    return bytes(b or 0x55 for b in os.urandom(n))


# --- 1 framing -----------------------------------------------------------------------------

@clause("C-1.1", "1", "the device sends only frames: COBS + 0x00, bodies of at most 60 bytes")
def frames_only(ctx: Context) -> str:
    ctx.session()
    bad0 = ctx.probe.decoder.stats.bad_frames + ctx.probe.decoder.stats.overflows
    since = ctx.probe.mark()
    ctx.hello()
    ctx.probe.wait(0.5)
    stats = ctx.probe.decoder.stats
    bad = stats.bad_frames + stats.overflows - bad0
    seen = ctx.probe.frames[since:]
    largest = max(len(s.frame.payload) + 7 for s in seen)
    if bad:
        raise Fail(f"{bad} runs that are not valid frames in 0.5 s on a clean line")
    if largest > MAX_BODY_SENT:
        raise Fail(f"a body of {largest} bytes (at most {MAX_BODY_SENT})")
    if ctx.probe.host_frames:
        raise Fail(f"{ctx.probe.host_frames} frames of host types came back (an echo?)")
    return f"{len(seen)} frames, 0 invalid runs, largest body {largest} bytes"


@clause("C-1.2", "1", "back in step at the next 0x00 after noise, over-long runs, bad frames")
def resync(ctx: Context) -> str:
    ctx.session()
    bad_crc = bytearray(encode(Set(*ctx.other), seq=200))
    bad_crc[-2] ^= 0x01
    cases = {
        "noise": _noise(40) + b"\x00",
        f"a {MAX_RUN + 48}-byte run": _noise(MAX_RUN + 48) + b"\x00",
        "empty runs": b"\x00\x00\x00",
        "a frame with a bad CRC": bytes(bad_crc),
    }
    for what, junk in cases.items():
        for values in (ctx.other, ctx.good):
            seq = ctx.probe.next_seq()
            since = ctx.probe.mark()
            ctx.probe.write(junk + encode(Set(*values), seq=seq))  # one write: nothing between
            got = ctx.probe.wait_for(lambda s, q=seq: s.frame.ack == q
                                     and s.frame.type == MsgType.APPLIED, 0.3, since=since)
            if got is None:
                raise Fail(f"the SET right after {what} was lost (no APPLIED)")
    return "a SET right after noise, a 300-byte run, empty runs, a bad CRC: each APPLIED"


@clause("C-1.3", "1", "bodies up to 250 bytes accepted (a later version's longer HELLO)")
def long_body(ctx: Context) -> str:
    ctx.session()
    extra = MAX_BODY - 7 - 1
    _seq, f = ctx.ask(raw=(MsgType.HELLO, bytes([PROTOCOL_VERSION]) + bytes(extra)))
    if f.type != MsgType.IDENT:
        raise Fail(f"HELLO with a {MAX_BODY}-byte body: {describe(f)}, not IDENT")
    t = ctx.tel()
    if not t.flags & Flag.SESSION:
        raise Fail("HELLO with a 250-byte body answered, but no session established")
    return f"HELLO with a {MAX_BODY}-byte body: IDENT, session established"


# --- 2 frame body ----------------------------------------------------------------------------

@clause("C-2.1", "2", "a host frame's ack is ignored")
def host_ack_ignored(ctx: Context) -> str:
    ctx.session()
    _seq, f = ctx.ask(Set(*ctx.other), ack=0x5A)
    if f.type != MsgType.APPLIED:
        raise Fail(f"SET with ack 0x5A: {describe(f)}, not APPLIED")
    ctx.expect_ack(Disarm(), ack=0xFF)
    return "SET with ack 0x5A: APPLIED; DISARM with ack 0xFF: ACK"


# --- 3 CRC -----------------------------------------------------------------------------------

@clause("C-3.1", "3", "frames with a bad CRC, an unknown type or a short body are not acted on")
def not_acted_on(ctx: Context) -> str:
    ctx.session()
    _settings(ctx, Set(*ctx.good))
    bad_set = bytearray(encode(Set(*ctx.other), seq=ctx.probe.next_seq()))
    bad_set[4] ^= 0x10
    # Type 0x7E, which nobody defines, with a SET's payload and a CRC made with SET's extra
    # byte: a receiver that ignored the type would take it for a good SET.
    head = bytes((ctx.probe.next_seq(), 0, 0x7E)) + Set(*ctx.other).payload()
    crc = zlib.crc32(bytes([CRC_EXTRA[MsgType.SET]]), zlib.crc32(head))
    unknown = cobs_encode(head + crc.to_bytes(4, "little")) + b"\x00"
    stop_body = bytearray(encode_body(ctx.probe.next_seq(), 0, MsgType.STOP))
    stop_body[-1] ^= 0x80
    bad_stop = cobs_encode(bytes(stop_body)) + b"\x00"
    short = cobs_encode(bytes((ctx.probe.next_seq(), 0, MsgType.STOP, 0, 0))) + b"\x00"
    for what, frame in (("a SET with a bad CRC", bytes(bad_set)),
                        ("type 0x7E with a SET's payload and CRC", unknown),
                        ("a STOP with a bad CRC", bad_stop), ("a 5-byte STOP body", short)):
        since = ctx.probe.mark()
        ctx.probe.write(frame)
        ctx.probe.wait(QUIET_S)
        answers = [s for s in ctx.probe.frames[since:] if s.telemetry is None]
        if answers:
            raise Fail(f"{what}: answered {describe(answers[0].frame)}")
        t = ctx.tel()
        if t.setpoints != ctx.good or t.state != State.DISARMED:
            raise Fail(f"{what}: acted on ({state_text(t)}, setpoints {tuple(t.setpoints)})")
    return "bad CRC, unknown type, short body: no answer, nothing changed (a bad STOP too)"


# --- 4 catalogue -----------------------------------------------------------------------------

@clause("C-4.1", "4", "HELLO: 1 byte or more accepted, the rest ignored; empty is MALFORMED")
def hello_payload(ctx: Context) -> str:
    ctx.session()
    ctx.expect_nack(None, ErrorCode.MALFORMED, raw=(MsgType.HELLO, b""))
    _seq, f = ctx.ask(raw=(MsgType.HELLO, bytes([PROTOCOL_VERSION, 0x99, 0x42])))
    if f.type != MsgType.IDENT:
        raise Fail(f"HELLO with 2 extra bytes: {describe(f)}, not IDENT")
    if not ctx.tel().flags & Flag.SESSION:
        raise Fail("HELLO with 2 extra bytes: no session")
    return "empty HELLO: NACK MALFORMED; HELLO 02 99 42: IDENT, session"


@clause("C-4.2", "4", "a payload of the wrong length is MALFORMED and not executed")
def wrong_length(ctx: Context) -> str:
    ctx.session()
    _settings(ctx, Set(*ctx.good))
    ctx.expect_nack(None, ErrorCode.MALFORMED, raw=(MsgType.SET, Set(*ctx.other).payload()[:5]))
    ctx.expect_nack(None, ErrorCode.MALFORMED,
                    raw=(MsgType.SET, Set(*ctx.other).payload() + b"\x00"))
    ctx.expect_nack(None, ErrorCode.MALFORMED, raw=(MsgType.WATCHDOG, b"\x96\x00\x00"))
    ctx.expect_nack(None, ErrorCode.MALFORMED, raw=(MsgType.DISARM, b"\x01"))
    ctx.expect_nack(None, ErrorCode.MALFORMED, raw=(MsgType.CLEAR_FAULT, b"\x01\x02"))
    t = ctx.tel()
    if t.setpoints != ctx.good:
        raise Fail(f"a malformed SET was applied: setpoints {tuple(t.setpoints)}")
    return "SET of 5 and 7 bytes, WATCHDOG of 3, DISARM of 1, CLEAR_FAULT of 2: MALFORMED"


@clause("C-4.3", "4", "IDENT: 53 bytes, its version, sane limits, watchdog, reserved bits 0")
def ident_layout(ctx: Context) -> str:
    _, f = ctx.ask(Hello())
    if f.type != MsgType.IDENT or len(f.payload) != PAYLOAD_SIZE[MsgType.IDENT]:
        raise Fail(f"IDENT payload of {len(f.payload)} bytes, not "
                   f"{PAYLOAD_SIZE[MsgType.IDENT]}")
    _, i = ctx.hello()
    problems = []
    for n, (lo, hi) in enumerate(zip(i.lo, i.hi, strict=True)):
        if not HARD_LO[n] <= lo <= hi <= HARD_HI[n] or lo % STEPS[n] or hi % STEPS[n]:
            problems.append(f"limits {lo}..{hi} for {Set.SCHEMA.names[n]}")
    if not WATCHDOG_MIN_MS <= i.watchdog_ms <= WATCHDOG_MAX_MS:
        problems.append(f"watchdog {i.watchdog_ms} ms")
    if i.state not in set(State) or i.faults & ~KNOWN_FAULTS:
        problems.append(f"state {i.state} faults 0x{i.faults:04X}")
    if any(i.applied) and not all(i.lo[n] <= i.applied[n] <= i.hi[n] for n in range(3)):
        problems.append(f"applied {tuple(i.applied)}")
    if i.capabilities & RESERVED_CAPABILITIES:
        problems.append(f"reserved capability bits 0x{i.capabilities:04X}")
    if problems:
        raise Fail("; ".join(problems))
    return (f"{i.model} {i.serial} firmware {i.firmware_version}, limits {tuple(i.lo)} to "
            f"{tuple(i.hi)}, watchdog {i.watchdog_ms} ms")


@clause("C-4.4", "4", "SET applies exactly what it carries: APPLIED equals the SET")
def read_back(ctx: Context) -> str:
    ctx.session()
    for values in (ctx.good, ctx.other, ctx.ident.lo, ctx.ident.hi):
        _seq, f = ctx.ask(Set(*values))
        if f.type != MsgType.APPLIED:
            raise Fail(f"SET {tuple(values)}: {describe(f)}")
        if f.message().settings != values:
            raise Fail(f"SET {tuple(values)}: APPLIED {tuple(f.message().settings)}")
    return "four SETs, limits included: each APPLIED as sent"


# --- 5 sequence numbers and duplicates ---------------------------------------------------------

@clause("C-5.1", "5", "every command answered once per copy, ack = seq, the command's type")
def answered_once(ctx: Context) -> str:
    ctx.session()
    since = ctx.probe.mark()
    sent = []
    for msg in (Hello(), Set(*ctx.good), Watchdog(ctx.ident.watchdog_ms), Disarm(),
                ClearFault(), Set(1, 1, 1)):
        seq, f = ctx.ask(msg)
        sent.append((seq, msg.TYPE))
    ctx.probe.wait(QUIET_S)
    for seq, mtype in sent:
        got = ctx.probe.answers(seq, since)
        if len(got) != 1:
            raise Fail(f"{MsgType(mtype).name} seq {seq}: {len(got)} answers")
        f = got[0].frame
        if f.seq != 0:
            raise Fail(f"{describe(f)} answering seq {seq} has seq {f.seq}, not 0")
        if f.type in (MsgType.ACK, MsgType.NACK) and f.payload[0] != mtype:
            raise Fail(f"{describe(f)} answering {MsgType(mtype).name} names type "
                       f"0x{f.payload[0]:02X}")
    return "HELLO, SET, WATCHDOG, DISARM, CLEAR_FAULT, a refused SET: one answer each"


@clause("C-5.2", "5", "a copy of the last command: the remembered answer, not executed again")
def duplicate(ctx: Context) -> str:
    ctx.session()
    since = ctx.probe.mark()
    seq = _settings(ctx, Set(*ctx.good))
    first = ctx.probe.answers(seq, since)[0].frame
    _, again = ctx.ask(Set(*ctx.other), seq=seq)  # same seq and type, other values
    if again != first:
        raise Fail(f"the copy was answered {describe(again)} "
                   f"{tuple(again.message().settings) if again.type == MsgType.APPLIED else ''}"
                   ", not the remembered APPLIED")
    if _setpoints(ctx) != ctx.good:
        raise Fail(f"the copy was executed: setpoints {tuple(_setpoints(ctx))}")
    refused = ctx.expect_nack(Set(1, 1, 1), ErrorCode.OUT_OF_RANGE, Field.DEPTH)
    _, f = ctx.ask(Set(*ctx.other), seq=refused)
    if f.type != MsgType.NACK:
        raise Fail(f"a copy of a refused SET was answered {describe(f)}, not its NACK")
    if _setpoints(ctx) != ctx.good:
        raise Fail("a copy of a refused SET was executed")
    return "copies answered with the remembered APPLIED and NACK, byte for byte; not executed"


@clause("C-5.3", "5", "a copy of an older remembered command: neither executed nor answered")
def stale_copy(ctx: Context) -> str:
    ctx.session()
    older = _settings(ctx, Set(*ctx.good))
    _settings(ctx, Set(*ctx.other))
    since = ctx.probe.mark()
    ctx.probe.send(Set(*ctx.good), seq=older)
    _silent(ctx, older, MsgType.SET, since, f"a stale copy of SET seq {older}")
    if _setpoints(ctx) != ctx.other:
        raise Fail(f"a stale copy was executed: setpoints {tuple(_setpoints(ctx))}")
    refused = ctx.expect_nack(Set(1, 1, 1), ErrorCode.OUT_OF_RANGE, Field.DEPTH)
    _settings(ctx, Set(*ctx.good))
    since = ctx.probe.mark()
    ctx.probe.send(Set(*ctx.other), seq=refused)
    _silent(ctx, refused, MsgType.SET, since, f"a stale copy of refused SET seq {refused}")
    if _setpoints(ctx) != ctx.good:
        raise Fail("a stale copy of a refused SET was executed")
    return "stale copies of an applied and of a refused SET: no answer, not executed"


@clause("C-5.4", "5", "HELLO is never a duplicate and starts duplicate detection afresh")
def hello_afresh(ctx: Context) -> str:
    ctx.session()
    seq = _settings(ctx, Set(*ctx.good))
    h, _ = ctx.hello()
    ctx.hello(seq=h)  # a HELLO with the same seq: executed again, never a duplicate
    _, f = ctx.ask(Set(*ctx.other), seq=seq)
    if f.type != MsgType.APPLIED or f.message().settings != ctx.other:
        raise Fail(f"after HELLO, SET seq {seq} (a number seen before) was answered "
                   f"{describe(f)}, not executed")
    return "HELLO repeated: IDENT each time; after HELLO a number seen before is a new SET"


@clause("C-5.5", "5", "a command with seq 0 is refused MALFORMED and not executed")
def seq_zero(ctx: Context) -> str:
    ctx.session()
    _settings(ctx, Set(*ctx.good))
    ctx.expect_nack(Set(*ctx.other), ErrorCode.MALFORMED, seq=0)
    ctx.expect_nack(Watchdog(WATCHDOG_TEST_MS), ErrorCode.MALFORMED, seq=0)
    ctx.expect_nack(Hello(), ErrorCode.MALFORMED, seq=0)
    t = ctx.tel()
    if t.setpoints != ctx.good:
        raise Fail(f"SET seq 0 was executed: setpoints {tuple(t.setpoints)}")
    _, i = ctx.hello()
    if i.watchdog_ms != ctx.ident.watchdog_ms:
        raise Fail("WATCHDOG seq 0 was executed")
    return "SET, WATCHDOG and HELLO with seq 0: NACK MALFORMED, nothing changed"


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
    _settings(ctx, Set(*ctx.good))
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

def _watchdog_expiry(ctx: Context, timeout_ms: int, until: Callable[[Telemetry], bool],
                     what: str) -> tuple[float, Telemetry]:
    """Stop every host frame; return how long after our last frame (device clock) the first
    telemetry frame satisfying `until` was built, and that frame."""
    probe = ctx.probe
    probe.heartbeat = False
    since = probe.mark()
    last = probe.last_host_frame_at
    s = ctx.wait_telemetry(until, (timeout_ms + 200) / 1000, what, since=since)
    probe.heartbeat = True
    offset = probe.device_offset(since)
    assert offset is not None
    # When the frame was built, on the probe's clock, after our last host frame.
    expired_ms = (s.telemetry.uptime_ms / 1000 + offset - last) * 1000
    if expired_ms < timeout_ms - EARLY_SLACK_MS:
        raise Fail(f"{what} {expired_ms:.0f} ms after the last host frame, before the "
                   f"{timeout_ms} ms timeout")
    if expired_ms > timeout_ms + TELEMETRY_PERIOD_MS + TELEMETRY_LATE_MAX_MS + LATE_SLACK_MS:
        raise Fail(f"{what} only {expired_ms:.0f} ms after the last host frame "
                   f"(timeout {timeout_ms} ms)")
    return expired_ms, s.telemetry


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
        ms, _ = _watchdog_expiry(ctx, WATCHDOG_TEST_MS, lambda t: not t.flags & Flag.LINK,
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
    ms, t = _watchdog_expiry(ctx, WATCHDOG_TEST_MS, lambda t: not t.flags & Flag.LINK,
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
    _settings(ctx, Set(*ctx.good))
    ctx.expect_ack(Watchdog(WATCHDOG_TEST_MS))
    ctx.arm()
    ctx.wait_telemetry(lambda t: t.state == State.ARMED, 0.3, "ARMED after ARM")
    ms, t = _watchdog_expiry(ctx, WATCHDOG_TEST_MS, lambda t: t.state == State.FAULTED,
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
def heartbeat_silent(ctx: Context) -> str:
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

def _stopped(ctx: Context, seq: int, since: int, what: str) -> None:
    acks = [s for s in ctx.probe.answers(seq, since, MsgType.STOP)
            if s.frame.type == MsgType.ACK]
    if not acks:
        got = ctx.probe.answers(seq, since)
        raise Fail(f"{what}: {describe(got[0].frame) if got else 'no answer'}, not ACK")
    t = ctx.tel()
    if t.state != State.FAULTED or not t.faults & Fault.STOP:
        raise Fail(f"{what}: ACK but {state_text(t)}")


@clause("C-8.1", "8", "STOP acted on whatever its seq or payload; every copy answered")
def stop_any(ctx: Context) -> str:
    ctx.session()
    for what, seq, payload in (("STOP seq 0", 0, b""), ("STOP with a payload", None, b"\x01" * 4)):
        since = ctx.probe.mark()
        seq = ctx.probe.send_raw(ctx.probe.next_seq() if seq is None else seq, MsgType.STOP,
                                 payload)
        ctx.probe.wait(0.05)
        _stopped(ctx, seq, since, what)
        ctx.clear()
    last = _settings(ctx, Set(*ctx.good))
    since = ctx.probe.mark()
    ctx.probe.send(Stop(), seq=last)
    ctx.probe.wait(0.05)
    _stopped(ctx, last, since, "STOP with the last command's seq")
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
    _stopped(ctx, seq, since, "STOP after a HELLO of another version")
    ctx.hello()
    ctx.clear()
    return "no session: STOP ACK, FAULTED with STOP"


@clause("C-8.3", "8", "STOP is never compared as a duplicate")
def stop_not_duplicate(ctx: Context) -> str:
    ctx.session()
    since = ctx.probe.mark()
    last = _settings(ctx, Set(*ctx.good))
    remembered = ctx.probe.answers(last, since)[0].frame
    since = ctx.probe.mark()
    ctx.probe.send(Stop(), seq=last)
    ctx.probe.wait(0.05)
    _stopped(ctx, last, since, f"STOP with seq {last}, the number of the SET before it")
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
    _settings(ctx, Set(*ctx.good))
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


# --- 9 telemetry ---------------------------------------------------------------------------

@clause("C-9.1", "9", "telemetry on the boot + 20 k ms grid, within 5 ms, no burst")
def rhythm(ctx: Context) -> str:
    ctx.session()
    since = ctx.probe.mark()
    ctx.probe.wait(0.5)
    ctx.stop()  # state changes: a device that sends telemetry on change shows it here
    ctx.probe.wait(0.3)
    ctx.clear()
    ctx.probe.wait(0.7)
    tel = ctx.probe.telemetry(since)
    if len(tel) < 50:
        raise Fail(f"{len(tel)} frames in 1.5 s (50 Hz is 75)")
    late = [s.telemetry.uptime_ms % TELEMETRY_PERIOD_MS for s in tel]
    worst = max(late)
    if worst > TELEMETRY_LATE_MAX_MS:
        u = tel[late.index(worst)].telemetry.uptime_ms
        raise Fail(f"a frame built at uptime {u} ms, {worst} ms after its due time "
                   f"(at most {TELEMETRY_LATE_MAX_MS})")
    for a, b in itertools.pairwise(tel):
        ua, ub = a.telemetry.uptime_ms, b.telemetry.uptime_ms
        slots = ub // TELEMETRY_PERIOD_MS - ua // TELEMETRY_PERIOD_MS
        seqs = (b.frame.seq - a.frame.seq) & 0xFF
        if slots < 1:
            raise Fail(f"two frames in one 20 ms slot (uptime {ua} and {ub} ms): a burst")
        if seqs not in (1, slots):
            raise Fail(f"telemetry seq {a.frame.seq} then {b.frame.seq} across {slots} slots")
    steps = [b.telemetry.uptime_ms - a.telemetry.uptime_ms for a, b in itertools.pairwise(tel)]
    return f"{len(tel)} frames, at most {worst} ms after their due time, steps " \
           f"{min(steps)} to {max(steps)} ms"


@clause("C-9.2", "9", "TELEMETRY ack: the seq of the last command acted on")
def telemetry_ack(ctx: Context) -> str:
    def check(what: str, expected: int) -> None:
        t = ctx.probe.next_telemetry()  # built after the answer: the line keeps order
        if t is None or t.ack != expected:
            raise Fail(f"after {what} seq {expected}: TELEMETRY ack "
                       f"{t.ack if t else 'missing'}")

    h, _ = ctx.hello()
    check("HELLO", h)
    seq = _settings(ctx, Set(*ctx.good))
    check("SET", seq)
    ctx.ask(Set(*ctx.good), seq=seq)
    check("a duplicate of that SET", seq)
    refused = ctx.expect_nack(Set(1, 1, 1), ErrorCode.OUT_OF_RANGE, Field.DEPTH)
    check("a refused SET", refused)
    stop = ctx.stop()
    check("STOP", stop)
    ctx.clear()
    return "ack follows HELLO, SET, a refused SET and STOP; a duplicate does not move it"


@clause("C-9.3", "9", "TELEMETRY carries the setpoints in force, sampled with its ack")
def telemetry_setpoints(ctx: Context) -> str:
    ctx.session()
    since = ctx.probe.mark()
    applied: dict[int, WireSettings] = {}
    for values in (ctx.good, ctx.other, None, ctx.good):
        if values is None:
            seq = ctx.expect_nack(Set(1, 1, 1), ErrorCode.OUT_OF_RANGE, Field.DEPTH)
            applied[seq] = list(applied.values())[-1] if applied else WireSettings(0, 0, 0)
        else:
            seq = _settings(ctx, Set(*values))
            applied[seq] = values
        mark = ctx.probe.mark()
        ctx.probe.wait(0.06)
        for s in ctx.probe.telemetry(mark):
            if s.telemetry.setpoints != applied[seq]:
                raise Fail(f"after APPLIED {tuple(applied[seq])} (seq {seq}) a frame says "
                           f"setpoints {tuple(s.telemetry.setpoints)}")
    for s in ctx.probe.telemetry(since):
        if s.ack in applied and s.telemetry.setpoints != applied[s.ack]:
            raise Fail(f"a frame with ack {s.ack} says setpoints {tuple(s.telemetry.setpoints)},"
                       f" the command left {tuple(applied[s.ack])}")
    return "every frame after each APPLIED shows its setpoints; frames agree with their ack"


@clause("C-9.4", "9", "every TELEMETRY frame consistent: state, flags, faults, 0 V undriven")
def telemetry_consistent(ctx: Context) -> str:
    ctx.session()
    since = ctx.probe.mark()
    _settings(ctx, Set(*ctx.good))
    ctx.probe.wait(0.2)
    ctx.stop()
    ctx.probe.wait(0.2)
    ctx.clear()
    ctx.expect_ack(Watchdog(WATCHDOG_TEST_MS))
    ctx.probe.wait(0.2)
    tel = ctx.probe.telemetry(since)
    for s in tel:
        problems = _telemetry_problems(s.telemetry, ctx.ident.lo, ctx.ident.hi)
        if problems:
            raise Fail(f"frame at uptime {s.telemetry.uptime_ms} ms: {'; '.join(problems)}")
    states = sorted({State(s.telemetry.state).name for s in tel})
    return f"{len(tel)} frames in {', '.join(states)}: all consistent"


# --- 10 states -------------------------------------------------------------------------------

@clause("C-10.1", "10", "after boot: DISARMED, no settings, no session, link 0, ack 0",
        needs="boot")
def boot_state(ctx: Context) -> str:
    ctx.session()
    _settings(ctx, Set(*ctx.good))
    probe = ctx.probe
    probe.heartbeat = False
    since = probe.mark()
    ctx.later(lambda: setattr(probe, "heartbeat", True))
    ctx.act("fault reboot", prompt="switch the machine off and on again")
    first = probe.wait_for(lambda s: s.telemetry is not None and s.telemetry.uptime_ms < 1000,
                           60, since=since)
    if first is None:
        raise Fail("no telemetry from a fresh boot (uptime below 1 s)")
    mark = probe.mark()
    probe.wait(0.1)
    boot = [first, *probe.telemetry(mark)]
    for s in boot:
        t = s.telemetry
        if (t.state, t.faults, t.flags & ~Flag.PEDAL, s.ack, tuple(t.setpoints)) != (
                State.DISARMED, 0, 0, 0, (0, 0, 0)):
            raise Fail(f"after boot: {state_text(t)}, flags 0x{t.flags:02X}, ack {s.ack}, "
                       f"setpoints {tuple(t.setpoints)}")
    ctx.expect_nack(Set(*ctx.good), ErrorCode.NOT_READY, Field.NONE)
    _, i = ctx.hello()
    if i.boot_id == ctx.ident.boot_id:
        raise Fail(f"the boot id did not change ({i.boot_id:08x})")
    ctx.ident = i
    return (f"{len(boot)} frames after boot: DISARMED, no setpoints, flags 0, ack 0; SET NACK "
            f"NOT_READY field NONE; new boot id {i.boot_id:08x}")


@clause("C-10.2", "10", "ARM refusals in order: LATCHED, NO_SETTINGS, PEDAL_DOWN",
        needs="arm boot")
def arm_precedence(ctx: Context) -> str:
    ctx.probe.heartbeat = False
    ctx.later(lambda: setattr(ctx.probe, "heartbeat", True))
    since = ctx.probe.mark()
    ctx.act("fault reboot", prompt="switch the machine off and on again")
    if ctx.probe.wait_for(lambda s: s.telemetry is not None and s.telemetry.uptime_ms < 1000,
                          60, since=since) is None:
        raise Fail("no telemetry from a fresh boot")
    ctx.probe.heartbeat = True
    _, ctx.ident = ctx.hello()
    if not ctx.allow_arm:
        raise Skip("needs --allow-arm")
    ctx.later(lambda: ctx.probe.command(Disarm()))
    ctx.stop()
    ctx.expect_nack(Arm(), ErrorCode.LATCHED)
    ctx.clear()
    ctx.expect_nack(Arm(), ErrorCode.NO_SETTINGS)
    pedal = ctx.operator is not None and ctx.operator.can("pedal down")
    if pedal:
        ctx.act("pedal down", prompt="press and hold the pedal")
        ctx.wait_telemetry(lambda t: t.pedal_down, 30, "pedal down")
        ctx.expect_nack(Arm(), ErrorCode.NO_SETTINGS)
        ctx.act("pedal up", prompt="release the pedal")
        ctx.wait_telemetry(lambda t: not t.pedal_down, 30, "pedal up")
    _settings(ctx, Set(*ctx.good))
    ctx.expect_ack(Arm())
    ctx.expect_ack(Arm())
    t = ctx.wait_telemetry(lambda t: t.state == State.ARMED, 0.3, "ARMED").telemetry
    ctx.expect_ack(Disarm())
    return ("no settings: LATCHED before NO_SETTINGS" + (", NO_SETTINGS before PEDAL_DOWN"
            if pedal else "") + f"; ARM twice: ACK, {State(t.state).name}")


@clause("C-10.3", "10", "ARM is refused PEDAL_DOWN while the pedal is held", needs="arm pedal")
def arm_pedal_down(ctx: Context) -> str:
    ctx.session()
    _settings(ctx, Set(*ctx.good))
    if not ctx.allow_arm:
        raise Skip("needs --allow-arm")
    ctx.later(lambda: ctx.act("pedal up", prompt="release the pedal"))
    ctx.act("pedal down", prompt="press and hold the pedal (the machine must refuse to arm)")
    ctx.wait_telemetry(lambda t: t.pedal_down, 30, "pedal down")
    ctx.later(lambda: ctx.probe.command(Disarm()))
    _seq, f = ctx.ask(Arm())
    if f.type != MsgType.NACK or f.message().code != ErrorCode.PEDAL_DOWN:
        ctx.stop()  # it may be running now
        ctx.later(lambda: ctx.probe.command(ClearFault()))
        raise Fail(f"ARM with the pedal held: {describe(f)}, not NACK PEDAL_DOWN (STOP sent)")
    t = ctx.tel()
    if t.state != State.DISARMED:
        raise Fail(f"refused PEDAL_DOWN but {state_text(t)}")
    return "pedal held: ARM NACK PEDAL_DOWN, still DISARMED"


@clause("C-10.4", "10", "ARM, pedal: RUNNING; release: ARMED; DISARM; no stall on spin-up",
        needs="arm pedal")
def run_needle(ctx: Context) -> str:
    ctx.session()
    _settings(ctx, Set(*ctx.good))
    ctx.arm()
    ctx.wait_telemetry(lambda t: t.state == State.ARMED and not t.motor_on, 0.3, "ARMED")
    ctx.later(lambda: ctx.act("pedal up", prompt="release the pedal"))
    since = ctx.probe.mark()
    ctx.act("pedal down", prompt="press the pedal now, release it when the needle runs")
    ctx.wait_telemetry(lambda t: t.state == State.RUNNING, 30, "RUNNING on the pedal")
    if ctx.operator is not None and ctx.operator.name != "person":
        ctx.probe.wait(0.4)
        ctx.act("pedal up")
    back = ctx.wait_telemetry(lambda t: t.state != State.RUNNING, 30, "the pedal released")
    if back.telemetry.state != State.ARMED:
        raise Fail(f"after the run: {state_text(back.telemetry)} (a stall on spin-up?)")
    driven = [s.telemetry for s in ctx.probe.telemetry(since)
              if s.telemetry.state == State.RUNNING]
    if max(t.rate_dhz for t in driven) < 200:
        raise Fail("RUNNING but the measured rate never reached 20 Hz")
    if back.telemetry.voltage_mv or back.telemetry.motor_on:
        raise Fail(f"ARMED again but {back.telemetry.voltage_mv} mV")
    ctx.expect_ack(Arm())  # already armed: nothing changes
    if ctx.tel().state != State.ARMED:
        raise Fail("ARM while ARMED changed the state")
    ctx.expect_ack(Disarm())
    ctx.wait_telemetry(lambda t: t.state == State.DISARMED, 0.3, "DISARMED after DISARM")
    top = max(t.rate_dhz for t in driven) / 10
    return f"ARMED, RUNNING up to {top:.1f} Hz, ARMED on release, DISARMED"


@clause("C-10.5", "10", "DISARM and CLEAR_FAULT in every state")
def disarm_clear(ctx: Context) -> str:
    ctx.session()
    ctx.expect_ack(Disarm())
    ctx.expect_ack(ClearFault())
    if ctx.tel().state != State.DISARMED:
        raise Fail("DISARM or CLEAR_FAULT while DISARMED changed the state")
    ctx.stop()
    ctx.expect_ack(Disarm())
    t = ctx.tel()
    if t.state != State.FAULTED:
        raise Fail(f"DISARM while FAULTED: {state_text(t)}, not FAULTED")
    ctx.clear()
    t = ctx.wait_telemetry(lambda t: t.state != State.FAULTED, 0.2, "CLEAR_FAULT").telemetry
    if t.state != State.DISARMED or t.faults:
        raise Fail(f"after CLEAR_FAULT: {state_text(t)}")
    return "DISARMED: both ACK, unchanged; FAULTED: DISARM unchanged, CLEAR_FAULT to DISARMED"


@clause("C-10.6", "10", "the depth actuator follows the setpoint while DISARMED and FAULTED")
def depth_follows(ctx: Context) -> str:
    ident = ctx.session()
    if not ident.capabilities & Capability.DEPTH_SENSOR:
        raise Skip("the machine has no depth sensor (IDENT capabilities)")
    reached = []
    for values, faulted in ((ctx.good, False), (ctx.other, True)):
        if faulted:
            ctx.stop()
        _settings(ctx, Set(*values))
        s = ctx.wait_telemetry(lambda t, d=values.depth_um: abs(t.depth_um - d)
                               <= DEPTH_TOLERANCE_UM, 2.5,
                               f"depth {values.depth_um} µm {'FAULTED' if faulted else ''}")
        reached.append(f"{s.telemetry.depth_um} µm in {State(s.telemetry.state).name}")
    ctx.clear()
    return "depth reached " + ", ".join(reached)


# --- 11 codes and fault rules ---------------------------------------------------------------

@clause("C-11.1", "11", "one precedence for refusals; UNSUPPORTED never sent")
def precedence(ctx: Context) -> str:
    ctx.session()
    lo, hi = ctx.ident.lo, ctx.ident.hi
    ctx.hello(OTHER_VERSION)
    ctx.expect_nack(None, ErrorCode.NOT_READY, Field.PROTOCOL, raw=(MsgType.SET, b"\x01"))
    ctx.expect_nack(Set(*ctx.good), ErrorCode.NOT_READY, Field.PROTOCOL, seq=0)
    ctx.hello()
    cases = [
        ((hi.depth_um + STEPS.depth_um // 2, hi.rate_dhz + 1, lo.voltage_mv + 50),
         ErrorCode.OUT_OF_RANGE, Field.DEPTH),  # range before step, depth first
        ((lo.depth_um + STEPS.depth_um // 2, hi.rate_dhz + 1, hi.voltage_mv + 100),
         ErrorCode.OFF_STEP, Field.DEPTH),  # depth before rate and voltage
        ((lo.depth_um, hi.rate_dhz + 1, lo.voltage_mv + 50), ErrorCode.OUT_OF_RANGE, Field.RATE),
        ((lo.depth_um, lo.rate_dhz, lo.voltage_mv + 50), ErrorCode.OFF_STEP, Field.VOLTAGE),
        ((lo.depth_um, lo.rate_dhz, hi.voltage_mv + 100), ErrorCode.OUT_OF_RANGE,
         Field.VOLTAGE),
    ]
    for values, code, fld in cases:
        if max(values) > 0xFFFF:
            continue
        ctx.expect_nack(Set(*values), code, fld)
    ctx.expect_nack(None, ErrorCode.MALFORMED, raw=(MsgType.SET, b"\x01"), seq=0)
    seen = {f.frame.payload[1] for f in ctx.probe.frames if f.frame.type == MsgType.NACK
            and len(f.frame.payload) == 3}
    if ErrorCode.UNSUPPORTED in seen:
        raise Fail("a NACK UNSUPPORTED was sent")
    return "NOT_READY before MALFORMED; SET field by field, range before step"


@clause("C-11.3", "11", "STALL: below 20 Hz for 100 ms while driven, from the drive's start",
        needs="arm pedal fault")
def stall(ctx: Context) -> str:
    ctx.session()
    _settings(ctx, Set(*ctx.good))
    ctx.arm()
    ctx.wait_telemetry(lambda t: t.state == State.ARMED, 0.3, "ARMED")
    ctx.later(lambda: ctx.act("clear stall", prompt="unblock the needle"))
    since = ctx.probe.mark()
    ctx.act("fault stall", prompt="block the needle so that the motor cannot turn")
    ctx.probe.wait(0.3)
    t = ctx.tel()
    if t.state != State.ARMED:
        raise Fail(f"jammed but not driven: {state_text(t)} (STALL only while driven)")
    ctx.later(lambda: ctx.act("pedal up", prompt="release the pedal"))
    ctx.act("pedal down", prompt="press and hold the pedal")
    fault = ctx.wait_telemetry(lambda t: t.state == State.FAULTED, 30, "FAULTED by the stall",
                               since=since)
    if not fault.telemetry.faults & Fault.STALL:
        raise Fail(f"the jammed motor latched {state_text(fault.telemetry)}, not STALL")
    frames = [s.telemetry.uptime_ms for s in ctx.probe.telemetry(since)]
    states = [s.telemetry.state for s in ctx.probe.telemetry(since)]
    last_armed = max(u for u, st in zip(frames, states, strict=True) if st == State.ARMED)
    first_after = min(u for u, st in zip(frames, states, strict=True)
                      if st != State.ARMED and u > last_armed)
    # The drive started after the last ARMED frame was built and before the first other one.
    lower = fault.telemetry.uptime_ms - last_armed
    upper = fault.telemetry.uptime_ms - first_after
    if lower < STALL_TRIP_MS:
        raise Fail(f"STALL {lower} ms after the last ARMED frame: before {STALL_TRIP_MS} ms")
    if upper > STALL_TRIP_MS + TELEMETRY_PERIOD_MS + 2 * TELEMETRY_LATE_MAX_MS:
        raise Fail(f"STALL {upper} ms after the drive had started: later than "
                   f"{STALL_TRIP_MS} ms")
    ctx.act("pedal up", prompt="release the pedal")
    ctx.expect_nack(ClearFault(), ErrorCode.FAULT_PERSISTS)
    ctx.act("clear stall", prompt="unblock the needle")
    ctx.clear()
    return f"not while ARMED; FAULTED with STALL {lower} ms after the last ARMED frame; " \
           "CLEAR_FAULT refused while jammed"


@clause("C-11.4", "11", "OVERTEMP latches in any state; CLEAR_FAULT refused above 60 °C",
        needs="fault")
def overtemp(ctx: Context) -> str:
    ctx.session()
    ctx.later(lambda: ctx.act("clear overtemp", prompt="let the motor cool down"))
    since = ctx.probe.mark()
    ctx.act("fault overtemp", prompt="heat the motor to 70 °C (the maker's test procedure)")
    s = ctx.wait_telemetry(lambda t: t.state == State.FAULTED, 60, "FAULTED by heat")
    t = s.telemetry
    if not t.faults & Fault.OVERTEMP:
        raise Fail(f"the hot motor latched {state_text(t)}, not OVERTEMP")
    if t.temperature_dc < OVERTEMP_DC - 5:
        raise Fail(f"OVERTEMP at {t.temperature_dc / 10:.1f} °C, below 70 °C")
    warm = [x.telemetry for x in ctx.probe.telemetry(since) if x.telemetry.state != State.FAULTED]
    if warm and warm[-1].temperature_dc > OVERTEMP_DC + 5:
        raise Fail(f"still not latched at {warm[-1].temperature_dc / 10:.1f} °C")
    _, f = ctx.ask(ClearFault())
    now = ctx.tel()
    if now.temperature_dc >= OVERTEMP_CLEAR_DC and (
            f.type != MsgType.NACK or f.message().code != ErrorCode.FAULT_PERSISTS):
        raise Fail(f"CLEAR_FAULT at {now.temperature_dc / 10:.1f} °C: {describe(f)}")
    return f"DISARMED machine: OVERTEMP at {t.temperature_dc / 10:.1f} °C; CLEAR_FAULT " \
           f"refused at {now.temperature_dc / 10:.1f} °C (the machine stays latched until it " \
           "cools below 60 °C)"


@clause("C-11.5", "11", "DEPTH: off by over 100 µm for 1.5 s while ARMED; timer restarts on SET",
        needs="arm fault")
def depth_fault(ctx: Context) -> str:
    ident = ctx.session()
    if not ident.capabilities & Capability.DEPTH_SENSOR:
        raise Skip("the machine has no depth sensor (IDENT capabilities)")
    lo, hi = ident.lo.depth_um, ident.hi.depth_um
    short = lo + (hi - lo) // 4
    far = hi - (hi - lo) // 4
    target = ctx.good._replace(depth_um=far - (far - lo) % STEPS.depth_um)
    _settings(ctx, Set(*ctx.good))
    ctx.arm()
    ctx.later(lambda: ctx.act("clear depth-short", prompt="free the depth actuator"))
    ctx.act(f"fault depth-short {short}", prompt=f"block the depth actuator at {short} µm")
    _settings(ctx, Set(*target))
    t0 = ctx.probe.clock()
    ctx.probe.wait(1.0)
    _settings(ctx, Set(*target._replace(depth_um=target.depth_um - STEPS.depth_um)))
    t1 = ctx.probe.clock()
    s = ctx.wait_telemetry(lambda t: t.state == State.FAULTED, 4.0, "FAULTED by DEPTH")
    if not s.telemetry.faults & Fault.DEPTH:
        raise Fail(f"latched {state_text(s.telemetry)}, not DEPTH")
    after = (s.at - t1) * 1000
    settle = DEPTH_SETTLE_MS
    if after < settle - EARLY_SLACK_MS:
        raise Fail(f"DEPTH {after:.0f} ms after the second SET: its timer did not restart")
    if (s.at - t0) * 1000 > settle + 1000 + TELEMETRY_PERIOD_MS + LATE_SLACK_MS + 100:
        raise Fail(f"DEPTH only {(s.at - t0) * 1000:.0f} ms after the first SET")
    ctx.expect_nack(ClearFault(), ErrorCode.FAULT_PERSISTS)
    ctx.act("clear depth-short", prompt="free the depth actuator")
    ctx.wait_telemetry(lambda t: abs(t.depth_um - t.set_depth_um) <= DEPTH_TOLERANCE_UM, 2.5,
                       "the depth back on its setpoint")
    ctx.clear()
    return f"DEPTH {after:.0f} ms after the last SET (the timer restarted); CLEAR_FAULT " \
           "refused while short, accepted once back"


@clause("C-11.6", "11", "latch and cut in one step: the first FAULTED frame says 0 V",
        needs="arm pedal fault")
def latch_and_cut(ctx: Context) -> str:
    ctx.session()
    _settings(ctx, Set(*ctx.good))
    ctx.arm()
    ctx.later(lambda: ctx.act("pedal up", prompt="release the pedal"))
    ctx.act("pedal down", prompt="press and hold the pedal")
    ctx.wait_telemetry(lambda t: t.state == State.RUNNING and t.voltage_mv > 0, 30,
                       "RUNNING and driven")
    ctx.probe.wait(0.2)
    since = ctx.probe.mark()
    ctx.later(lambda: ctx.act("clear overcurrent", prompt="remove the over-current load"))
    ctx.act("fault overcurrent", prompt="connect the over-current test load")
    s = ctx.wait_telemetry(lambda t: t.state == State.FAULTED, 30, "FAULTED by over-current",
                           since=since)
    t = s.telemetry
    if not t.faults & Fault.OVERCURRENT:
        raise Fail(f"over-current latched {state_text(t)}, not OVERCURRENT")
    if t.motor_on or t.voltage_mv:
        raise Fail(f"the first FAULTED frame says motor {int(t.motor_on)}, {t.voltage_mv} mV, "
                   f"{t.current_ma} mA")
    ctx.act("pedal up", prompt="release the pedal")
    ctx.act("clear overcurrent", prompt="remove the over-current load")
    ctx.clear()
    return f"first FAULTED frame: OVERCURRENT, motor 0, 0 mV ({t.current_ma} mA)"


# C-11.4 heats the motor and leaves it latched until it cools: it runs last.
ORDER = [cid for cid in CLAUSES if cid != "C-11.4"] + ["C-11.4"]
