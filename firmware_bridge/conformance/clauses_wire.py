"""Device clauses of sections 1 to 5: framing, the frame body, CRC, the message catalogue,
sequence numbers and duplicates."""

from __future__ import annotations

import zlib

from firmware_bridge.codec import (
    Applied,
    ClearFault,
    Disarm,
    Hello,
    Set,
    Watchdog,
    cobs_encode,
    encode,
    encode_body,
)
from firmware_bridge.conformance.context import Context, Fail, describe, state_text
from firmware_bridge.conformance.probe import Seen
from firmware_bridge.conformance.registry import clause
from firmware_bridge.conformance.steps import (
    QUIET_S,
    WATCHDOG_TEST_MS,
    expect_applied,
    noise,
    setpoints,
    silent,
)
from firmware_bridge.schema import (
    CRC_EXTRA,
    HARD_HI,
    HARD_LO,
    MAX_BODY,
    MAX_BODY_SENT,
    MAX_RUN,
    PAYLOAD_SIZE,
    PROTOCOL_VERSION,
    RESERVED_CAPABILITIES,
    STEPS,
    UNKNOWN_FAULTS,
    WATCHDOG_MAX_MS,
    WATCHDOG_MIN_MS,
    ErrorCode,
    Field,
    Flag,
    MsgType,
    State,
)

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
        "noise": noise(40) + b"\x00",
        f"a {MAX_RUN + 48}-byte run": noise(MAX_RUN + 48) + b"\x00",
        "empty runs": b"\x00\x00\x00",
        "a frame with a bad CRC": bytes(bad_crc),
    }
    for what, junk in cases.items():
        for values in (ctx.other, ctx.good):
            seq = ctx.probe.next_seq()
            since = ctx.probe.mark()
            ctx.probe.write(junk + encode(Set(*values), seq=seq))  # one write: nothing between
            def applied(s: Seen, q: int = seq) -> bool:
                return s.frame.ack == q and s.frame.type == MsgType.APPLIED

            got = ctx.probe.wait_for(applied, 0.3, since=since)
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
    expect_applied(ctx, Set(*ctx.good))
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
    expect_applied(ctx, Set(*ctx.good))
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
    if i.state not in set(State) or i.faults & UNKNOWN_FAULTS:
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
        if f.message(Applied).settings != values:
            raise Fail(f"SET {tuple(values)}: APPLIED {tuple(f.message(Applied).settings)}")
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
    seq = expect_applied(ctx, Set(*ctx.good))
    first = ctx.probe.answers(seq, since)[0].frame
    _, again = ctx.ask(Set(*ctx.other), seq=seq)  # same seq and type, other values
    if again != first:
        applied = (str(tuple(again.message(Applied).settings))
                   if again.type == MsgType.APPLIED else "")
        raise Fail(f"the copy was answered {describe(again)} {applied}, not the remembered "
                   "APPLIED")
    if setpoints(ctx) != ctx.good:
        raise Fail(f"the copy was executed: setpoints {tuple(setpoints(ctx))}")
    refused = ctx.expect_nack(Set(1, 1, 1), ErrorCode.OUT_OF_RANGE, Field.DEPTH)
    _, f = ctx.ask(Set(*ctx.other), seq=refused)
    if f.type != MsgType.NACK:
        raise Fail(f"a copy of a refused SET was answered {describe(f)}, not its NACK")
    if setpoints(ctx) != ctx.good:
        raise Fail("a copy of a refused SET was executed")
    return "copies answered with the remembered APPLIED and NACK, byte for byte; not executed"


@clause("C-5.3", "5", "a copy of an older remembered command: neither executed nor answered")
def stale_copy(ctx: Context) -> str:
    ctx.session()
    older = expect_applied(ctx, Set(*ctx.good))
    expect_applied(ctx, Set(*ctx.other))
    since = ctx.probe.mark()
    ctx.probe.send(Set(*ctx.good), seq=older)
    silent(ctx, older, MsgType.SET, since, f"a stale copy of SET seq {older}")
    if setpoints(ctx) != ctx.other:
        raise Fail(f"a stale copy was executed: setpoints {tuple(setpoints(ctx))}")
    refused = ctx.expect_nack(Set(1, 1, 1), ErrorCode.OUT_OF_RANGE, Field.DEPTH)
    expect_applied(ctx, Set(*ctx.good))
    since = ctx.probe.mark()
    ctx.probe.send(Set(*ctx.other), seq=refused)
    silent(ctx, refused, MsgType.SET, since, f"a stale copy of refused SET seq {refused}")
    if setpoints(ctx) != ctx.good:
        raise Fail("a stale copy of a refused SET was executed")
    return "stale copies of an applied and of a refused SET: no answer, not executed"


@clause("C-5.4", "5", "HELLO is never a duplicate and starts duplicate detection afresh")
def hello_afresh(ctx: Context) -> str:
    ctx.session()
    seq = expect_applied(ctx, Set(*ctx.good))
    h, _ = ctx.hello()
    ctx.hello(seq=h)  # a HELLO with the same seq: executed again, never a duplicate
    _, f = ctx.ask(Set(*ctx.other), seq=seq)
    if f.type != MsgType.APPLIED or f.message(Applied).settings != ctx.other:
        raise Fail(f"after HELLO, SET seq {seq} (a number seen before) was answered "
                   f"{describe(f)}, not executed")
    return "HELLO repeated: IDENT each time; after HELLO a number seen before is a new SET"


@clause("C-5.5", "5", "a command with seq 0 is refused MALFORMED and not executed")
def seq_zero(ctx: Context) -> str:
    ctx.session()
    expect_applied(ctx, Set(*ctx.good))
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


