"""What the clauses share: the probe's limits, and the steps several clauses take (a SET that
must be applied, an answer that must not come, a watchdog left to expire, a frame judged by
C-9.4)."""

from __future__ import annotations

import os
from collections.abc import Callable

from firmware_bridge.codec import (
    Set,
    Telemetry,
)
from firmware_bridge.conformance.context import Context, Fail, describe, state_text
from firmware_bridge.schema import (
    PROTOCOL_VERSION,
    RESERVED_FLAGS,
    STEPS,
    TELEMETRY_LATE_MAX_MS,
    TELEMETRY_PERIOD_MS,
    UNKNOWN_FAULTS,
    WATCHDOG_MIN_MS,
    Fault,
    Flag,
    MsgType,
    State,
)
from protocols.settings import WireSettings

QUIET_S = 0.2  # how long to listen for an answer that must not come
WATCHDOG_TEST_MS = WATCHDOG_MIN_MS  # the shortest watchdog: the quickest waits
# The line's delay, the mapping of the device's clock onto ours, and (late only) a loaded host
# that reads our frames late: generous, since a wrong timer is wrong by far more.
EARLY_SLACK_MS, LATE_SLACK_MS = 5, 50
OTHER_VERSION = PROTOCOL_VERSION + 1




def expect_applied(ctx: Context, msg: Set) -> int:
    seq, f = ctx.ask(msg)
    if f.type != MsgType.APPLIED:
        raise Fail(f"SET seq {seq} {tuple(msg.settings)}: {describe(f)}, not APPLIED")
    return seq


def setpoints(ctx: Context) -> WireSettings:
    return ctx.tel().setpoints


def silent(ctx: Context, seq: int, mtype: int, since: int, what: str) -> None:
    ctx.probe.wait(QUIET_S)
    got = ctx.probe.answers(seq, since, mtype)
    if got:
        raise Fail(f"{what}: answered {describe(got[0].frame)}")


def telemetry_problems(t: Telemetry, lo: WireSettings, hi: WireSettings) -> list[str]:
    """What is wrong with one frame by C-9.4 (empty when nothing)."""
    out = []
    if t.state not in set(State):
        return [f"state {t.state}"]
    s = State(t.state)
    if t.flags & RESERVED_FLAGS:
        out.append(f"reserved flag bits 0x{t.flags & RESERVED_FLAGS:02X}")
    if t.faults & UNKNOWN_FAULTS:
        out.append(f"unknown fault bits 0x{t.faults & UNKNOWN_FAULTS:04X}")
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


def noise(n: int) -> bytes:
    """Line noise without a 0x00 (random, from the OS: a device must cope with any)."""
    return bytes(b or 0x55 for b in os.urandom(n))



def watchdog_expiry(ctx: Context, timeout_ms: int, until: Callable[[Telemetry], bool],
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


def stopped(ctx: Context, seq: int, since: int, what: str) -> None:
    acks = [s for s in ctx.probe.answers(seq, since, MsgType.STOP)
            if s.frame.type == MsgType.ACK]
    if not acks:
        got = ctx.probe.answers(seq, since)
        raise Fail(f"{what}: {describe(got[0].frame) if got else 'no answer'}, not ACK")
    t = ctx.tel()
    if t.state != State.FAULTED or not t.faults & Fault.STOP:
        raise Fail(f"{what}: ACK but {state_text(t)}")
