"""Device clauses of sections 9 to 11: telemetry, the firmware's states, codes and fault
rules."""

from __future__ import annotations

import itertools

from firmware_bridge.codec import (
    Arm,
    ClearFault,
    Disarm,
    Nack,
    Set,
    Telemetry,
    Watchdog,
)
from firmware_bridge.conformance.context import Context, Fail, Skip, describe, state_text
from firmware_bridge.conformance.registry import clause
from firmware_bridge.conformance.steps import (
    EARLY_SLACK_MS,
    LATE_SLACK_MS,
    OTHER_VERSION,
    WATCHDOG_TEST_MS,
    expect_applied,
    telemetry_problems,
)
from firmware_bridge.schema import (
    DEPTH_SETTLE_MS,
    DEPTH_TOLERANCE_UM,
    OVERTEMP_CLEAR_DC,
    OVERTEMP_DC,
    STALL_BELOW_DHZ,
    STALL_TRIP_MS,
    STEPS,
    TELEMETRY_LATE_MAX_MS,
    TELEMETRY_PERIOD_MS,
    Capability,
    ErrorCode,
    Fault,
    Field,
    Flag,
    MsgType,
    State,
)
from protocols.settings import WireSettings

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
    seq = expect_applied(ctx, Set(*ctx.good))
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
def telemetrysetpoints(ctx: Context) -> str:
    ctx.session()
    since = ctx.probe.mark()
    applied: dict[int, WireSettings] = {}
    for values in (ctx.good, ctx.other, None, ctx.good):
        if values is None:
            seq = ctx.expect_nack(Set(1, 1, 1), ErrorCode.OUT_OF_RANGE, Field.DEPTH)
            applied[seq] = list(applied.values())[-1] if applied else WireSettings(0, 0, 0)
        else:
            seq = expect_applied(ctx, Set(*values))
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
    expect_applied(ctx, Set(*ctx.good))
    ctx.probe.wait(0.2)
    ctx.stop()
    ctx.probe.wait(0.2)
    ctx.clear()
    ctx.expect_ack(Watchdog(WATCHDOG_TEST_MS))
    ctx.probe.wait(0.2)
    tel = ctx.probe.telemetry(since)
    for s in tel:
        problems = telemetry_problems(s.telemetry, ctx.ident.lo, ctx.ident.hi)
        if problems:
            raise Fail(f"frame at uptime {s.telemetry.uptime_ms} ms: {'; '.join(problems)}")
    states = sorted({State(s.telemetry.state).name for s in tel})
    return f"{len(tel)} frames in {', '.join(states)}: all consistent"


@clause("C-9.5", "9", "TELEMETRY runs counts every run, needle_ms times each on the device",
        needs="arm pedal")
def runs_and_needle_time(ctx: Context) -> str:
    ctx.session()
    expect_applied(ctx, Set(*ctx.good))
    ctx.arm()
    before = ctx.wait_telemetry(lambda t: t.state == State.ARMED, 0.3, "ARMED").telemetry
    since = ctx.probe.mark()
    ctx.later(lambda: ctx.act("pedal up", prompt="release the pedal"))
    ctx.act("pedal down", prompt="press the pedal now, release it when the needle runs")
    ctx.wait_telemetry(lambda t: t.state == State.RUNNING, 30, "RUNNING on the pedal")
    if ctx.operator is not None and ctx.operator.name != "person":
        ctx.probe.wait(0.4)
        ctx.act("pedal up")
    after = ctx.wait_telemetry(lambda t: t.state != State.RUNNING, 30,
                               "the pedal released").telemetry
    ctx.expect_ack(Disarm())
    running = [s.telemetry for s in ctx.probe.telemetry(since)
               if s.telemetry.state == State.RUNNING]
    runs = (after.runs - before.runs) % 256
    if runs != 1:
        raise Fail(f"one run, but runs went from {before.runs} to {after.runs}")
    driven = (after.needle_ms - before.needle_ms) % (1 << 32)
    # The frames that saw it running bound the run on the device's own clock: it started
    # after the last ARMED frame and ended before the first frame after it.
    lo = running[-1].uptime_ms - running[0].uptime_ms
    hi = after.uptime_ms - before.uptime_ms
    if not lo - 1 <= driven <= hi + 1:
        raise Fail(f"needle_ms grew {driven} ms over a run seen RUNNING for {lo} to {hi} ms")
    return f"runs +1, needle_ms +{driven} ms (the frames bound the run to {lo} to {hi} ms)"


# --- 10 states -------------------------------------------------------------------------------

@clause("C-10.1", "10", "after boot: DISARMED, no settings, no session, link 0, ack 0",
        needs="boot")
def boot_state(ctx: Context) -> str:
    ctx.session()
    expect_applied(ctx, Set(*ctx.good))
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
        assert t is not None  # `first` matched on its telemetry; the rest are Readings
        # ~int: an IntFlag's ~ keeps only the defined bits, and reserved ones must be 0 too
        if (t.state, t.faults, t.flags & ~int(Flag.PEDAL), s.ack, tuple(t.setpoints)) != (
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
    expect_applied(ctx, Set(*ctx.good))
    ctx.expect_ack(Arm())
    ctx.expect_ack(Arm())
    t = ctx.wait_telemetry(lambda t: t.state == State.ARMED, 0.3, "ARMED").telemetry
    ctx.expect_ack(Disarm())
    return ("no settings: LATCHED before NO_SETTINGS" + (", NO_SETTINGS before PEDAL_DOWN"
            if pedal else "") + f"; ARM twice: ACK, {State(t.state).name}")


@clause("C-10.3", "10", "ARM is refused PEDAL_DOWN while the pedal is held", needs="arm pedal")
def arm_pedal_down(ctx: Context) -> str:
    ctx.session()
    expect_applied(ctx, Set(*ctx.good))
    if not ctx.allow_arm:
        raise Skip("needs --allow-arm")
    ctx.later(lambda: ctx.act("pedal up", prompt="release the pedal"))
    ctx.act("pedal down", prompt="press and hold the pedal (the machine must refuse to arm)")
    ctx.wait_telemetry(lambda t: t.pedal_down, 30, "pedal down")
    ctx.later(lambda: ctx.probe.command(Disarm()))
    _seq, f = ctx.ask(Arm())
    if f.type != MsgType.NACK or f.message(Nack).code != ErrorCode.PEDAL_DOWN:
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
    expect_applied(ctx, Set(*ctx.good))
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
    if max(t.rate_dhz for t in driven) < STALL_BELOW_DHZ:
        raise Fail("RUNNING but the measured rate never reached 20 Hz")
    if back.telemetry.voltage_mv or back.telemetry.motor_on:
        raise Fail(f"ARMED again but {back.telemetry.voltage_mv} mV")
    ctx.expect_ack(Arm())  # already armed: nothing changes
    if ctx.tel().state != State.ARMED:
        raise Fail("ARM while ARMED changed the state")
    ctx.expect_ack(Disarm())
    ctx.wait_telemetry(lambda t: t.state == State.DISARMED, 0.3, "DISARMED after DISARM")
    top = max(t.rate_hz for t in driven)
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
        expect_applied(ctx, Set(*values))
        def at_depth(t: Telemetry, d: int = values.depth_um) -> bool:
            return abs(t.depth_um - d) <= DEPTH_TOLERANCE_UM

        s = ctx.wait_telemetry(at_depth, 2.5,
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
    expect_applied(ctx, Set(*ctx.good))
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
        raise Fail(f"OVERTEMP at {t.temperature_c:.1f} °C, below 70 °C")
    warm = [x.telemetry for x in ctx.probe.telemetry(since) if x.telemetry.state != State.FAULTED]
    if warm and warm[-1].temperature_dc > OVERTEMP_DC + 5:
        raise Fail(f"still not latched at {warm[-1].temperature_c:.1f} °C")
    _, f = ctx.ask(ClearFault())
    now = ctx.tel()
    if now.temperature_dc >= OVERTEMP_CLEAR_DC and (
            f.type != MsgType.NACK or f.message(Nack).code != ErrorCode.FAULT_PERSISTS):
        raise Fail(f"CLEAR_FAULT at {now.temperature_c:.1f} °C: {describe(f)}")
    return f"DISARMED machine: OVERTEMP at {t.temperature_c:.1f} °C; CLEAR_FAULT " \
           f"refused at {now.temperature_c:.1f} °C (the machine stays latched until it " \
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
    expect_applied(ctx, Set(*ctx.good))
    ctx.arm()
    ctx.later(lambda: ctx.act("clear depth-short", prompt="free the depth actuator"))
    ctx.act(f"fault depth-short {short}", prompt=f"block the depth actuator at {short} µm")
    expect_applied(ctx, Set(*target))
    since = ctx.probe.mark()
    ctx.probe.wait(1.0)
    second = ctx.probe.clock()  # the second SET is sent after this: its timer starts later
    expect_applied(ctx, Set(*target._replace(depth_um=target.depth_um - STEPS.depth_um)))
    s = ctx.wait_telemetry(lambda t: t.state == State.FAULTED, 4.0, "FAULTED by DEPTH")
    if not s.telemetry.faults & Fault.DEPTH:
        raise Fail(f"latched {state_text(s.telemetry)}, not DEPTH")
    # On the device's clock (its uptime mapped onto ours): from the second SET to the frame.
    offset = ctx.probe.device_offset(since)
    assert offset is not None  # `s` is a telemetry frame since the mark
    after = (s.telemetry.uptime_ms / 1000 + offset - second) * 1000
    settle = DEPTH_SETTLE_MS
    if after < settle - EARLY_SLACK_MS:
        raise Fail(f"DEPTH {after:.0f} ms after the second SET: its timer did not restart")
    if after > settle + TELEMETRY_PERIOD_MS + TELEMETRY_LATE_MAX_MS + LATE_SLACK_MS:
        raise Fail(f"DEPTH only {after:.0f} ms after the second SET (the rule: 1.5 s)")
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
    expect_applied(ctx, Set(*ctx.good))
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


