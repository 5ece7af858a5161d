"""The machine's firmware: the device side of the link protocol (docs/protocol.md, version 2).

This is the real device logic, not a mock: a state machine driven by an injected clock.
Bytes from the host go in through `feed()`, bytes for the host come out through the `output`
callback (or `take_output()`), `tick()` advances the timers (watchdog, physics, motor-fault
rules, 50 Hz telemetry) and `set_pedal()` is the foot pedal. It drives
`sim.physics.MachinePhysics` and judges its sensors' readings.

Safety invariant 1 lives in `_update_motor`: the needle runs only while ARMED, the link is
alive, the pedal is down and no fault is latched; leaving RUNNING cuts the drive in the same
step (`_set_state`). Invariant 2: every SET is checked against the firmware's own compiled
limits, whatever the host checked. Invariant 3: a command repeated with the same sequence
number is answered again, never executed twice. Invariant 4: the watchdog stops the needle and
latches LINK_LOST `watchdog_ms` after the last valid host frame.

`quirks` (sim/quirks.py) switch on deliberate deviations, for showing that conformance fails.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypedDict

from firmware_bridge.codec import (
    Ack,
    Applied,
    Decoder,
    Frame,
    Hello,
    Ident,
    Malformed,
    Message,
    Nack,
    Set,
    Telemetry,
    Watchdog,
    encode,
)
from firmware_bridge.schema import (
    DEPTH_SETTLE_MS,
    DEPTH_TOLERANCE_UM,
    HARD_HI,
    HARD_LO,
    HOST_TYPES,
    NO_SETTINGS,
    OVERCURRENT_MA,
    OVERCURRENT_TRIP_MS,
    OVERTEMP_CLEAR_DC,
    OVERTEMP_DC,
    PROTOCOL_VERSION,
    RECENT_COMMANDS,
    SETTING_FIELDS,
    STALL_BELOW_DHZ,
    STALL_TRIP_MS,
    STEPS,
    TELEMETRY_PERIOD_MS,
    WATCHDOG_DEFAULT_MS,
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
from protocols.envelope import SafetyEnvelope
from protocols.settings import WireSettings
from sim import quirks as _quirks
from sim.clock import Clock
from sim.physics import MachinePhysics

FIRMWARE_VERSION = (2, 0, 0)
MS = 1_000_000  # ns
TELEMETRY_PERIOD_NS = TELEMETRY_PERIOD_MS * MS
DEFAULT_CAPABILITIES = (Capability.PEDAL | Capability.DEPTH_SENSOR | Capability.CURRENT_SENSOR
                        | Capability.TEMPERATURE_SENSOR | Capability.SIMULATOR)


@dataclass(frozen=True)
class Event:
    """One entry of the firmware's own log (for tests and the simulator's display)."""

    at_ns: int
    what: str  # a command name, "duplicate", "state", "watchdog", ...
    seq: int = 0
    detail: str = ""


class FirmwareOptions(TypedDict, total=False):
    """Firmware's keyword arguments after the clock, for callers that pass them through."""

    output: Callable[[bytes], None] | None
    limits: SafetyEnvelope | tuple[WireSettings, WireSettings] | None
    model: str
    serial: str
    boot_id: int | None
    watchdog_ms: int
    physics: MachinePhysics | None
    capabilities: int
    quirks: Iterable[str]


class Firmware:
    def __init__(
        self,
        clock: Clock,
        *,
        output: Callable[[bytes], None] | None = None,
        limits: SafetyEnvelope | tuple[WireSettings, WireSettings] | None = None,
        model: str = "SMP-R1",
        serial: str = "SIM-0001",
        boot_id: int | None = None,
        watchdog_ms: int = WATCHDOG_DEFAULT_MS,
        physics: MachinePhysics | None = None,
        capabilities: int = DEFAULT_CAPABILITIES,
        quirks: Iterable[str] = (),
    ):
        if limits is None:
            lo, hi = HARD_LO, HARD_HI
        elif isinstance(limits, SafetyEnvelope):
            lo, hi = limits.to_wire()
        else:
            lo, hi = (WireSettings(*limits[0]), WireSettings(*limits[1]))
        for i in range(3):
            if lo[i] < HARD_LO[i] or hi[i] > HARD_HI[i] or lo[i] > hi[i]:
                raise ValueError("a firmware's limits can only narrow the hard limits")
        if not WATCHDOG_MIN_MS <= watchdog_ms <= WATCHDOG_MAX_MS:
            raise ValueError(f"watchdog {watchdog_ms} ms is outside {WATCHDOG_MIN_MS} to "
                             f"{WATCHDOG_MAX_MS} ms")
        self.clock = clock
        self.output = output
        self.lo, self.hi = lo, hi
        self.model, self.serial = model, serial
        self.capabilities = int(capabilities)
        self.watchdog_default_ms = watchdog_ms
        self.physics = physics or MachinePhysics()
        self.quirks = _quirks.check(quirks)
        self.log: deque[Event] = deque(maxlen=10_000)
        self.misapply = False  # an injected firmware bug: applies other values than asked
        self.log_heartbeats = False  # log every heartbeat's arrival (for measuring gaps)
        # Called with every log entry as it happens (`smp sim --events` writes them out).
        self.on_event: Callable[[Event], None] | None = None
        self._lock = threading.RLock()
        self._outbox = bytearray()
        self.pedal = False
        self._boot(boot_id)

    # --- lifecycle -----------------------------------------------------------------------

    def _boot(self, boot_id: int | None) -> None:
        now = self.clock.now_ns()
        self.boot_id = boot_id if boot_id is not None else int.from_bytes(os.urandom(4), "little")
        self.boot_ns = now
        self.state = State.DISARMED
        self.faults = Fault.NONE
        self.applied: WireSettings | None = None
        self.watchdog_ms = self.watchdog_default_ms
        self.link_alive = False
        self.last_host_ns: int | None = None
        self.handshaken = False
        self.hello_version: int | None = None  # of the last HELLO answered since boot
        self.acted_seq = 0  # the seq of the last command acted on (TELEMETRY's ack)
        self.runs = 0  # entries to RUNNING since boot (TELEMETRY's runs)
        self._needle_ns = 0  # needle time of the runs that have ended (TELEMETRY's needle_ms)
        self._run_since: int | None = None
        self._last_cmd: tuple[int, int] | None = None  # (seq, type) of the last command
        self._recent: deque[tuple[int, int]] = deque(maxlen=RECENT_COMMANDS)
        self._last_reply = b""
        self._decoder = (_quirks.NoResyncDecoder() if "no-resync-after-garbage" in self.quirks
                         else Decoder())
        self._last_tick = now
        self._t = now  # the firmware's own time: where its timers have got to
        self._next_telemetry = now  # frame k is due at boot + k * 20 ms
        # The slots a starved machine (a late step) did not send: its own account of every
        # TELEMETRY it did not send, so that a test can tell a frame lost on the way from one
        # never sent. Grows only while the machine is starved.
        self.skipped_slots: list[int] = []
        self._telemetry_seq = 0
        self.motor_off_ns: int | None = None
        self._slow_since: int | None = None  # driven below the stall rate since
        self._over_since: int | None = None  # driven above the current limit since
        self._depth_off_since: int | None = None
        self._uncut = False  # the drive still on after a latch (the quirk fault-frame-voltage)
        self.sets_applied = 0
        self.duplicates = 0
        self._event("boot", detail=f"boot id {self.boot_id:08x}")

    def reboot(self, boot_id: int | None = None) -> None:
        """A power cycle or reset: everything but the physical machine starts again."""
        with self._lock:
            self._advance(self.clock.now_ns())  # the machine ran until now
            old = self.state
            self._boot(boot_id)
            self.physics.drive_off()
            if old == State.RUNNING:
                self.motor_off_ns = self.boot_ns

    # --- inputs --------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes received from the host; a frame counts as arriving now (its delimiter)."""
        with self._lock:
            now = self.clock.now_ns()
            # Timers first, so that a frame arriving after the watchdog expired does not
            # undo the expiry.
            self._advance(now)
            for frame in self._decoder.feed(data):
                self._on_frame(frame, now)

    def set_pedal(self, down: bool) -> None:
        with self._lock:
            self._advance(self.clock.now_ns())
            self.pedal = bool(down)
            self._update_motor()

    def tick(self) -> None:
        """Advance timers to the clock's present: watchdog, physics, faults, telemetry."""
        with self._lock:
            self._advance(self.clock.now_ns())

    def _advance(self, now: int) -> None:
        """Run the firmware's timers up to `now`, each at its own deadline, as a device's timer
        interrupts fire on time even when the simulator's thread ran late. Of the telemetry
        slots that fell due meanwhile only the last is sent (no burst); it is built at its
        slot's time."""
        for _ in range(10_000):  # every step moves a deadline past itself; this is a bound
            due = self._next_timer_ns()
            if due > now:
                break
            self._step_to(due, now)
        self._step_to(now, now)

    def _next_timer_ns(self) -> int:
        times = [self._next_telemetry]
        if self.link_alive and self.last_host_ns is not None:
            times.append(self.last_host_ns + self.watchdog_ms * MS)
        if self._slow_since is not None:
            times.append(self._slow_since + STALL_TRIP_MS * MS)
        if self._over_since is not None:
            times.append(self._over_since + OVERCURRENT_TRIP_MS * MS)
        return min(times)

    def _step_to(self, t: int, now: int) -> None:
        t = self._t = max(t, self._t)  # the firmware's time never goes back
        self._check_watchdog(t)
        dt = t - self._last_tick
        if dt > 0:
            self._last_tick = t
            driven = self.state == State.RUNNING or self._uncut
            self.physics.step(dt / 1e9, motor_on=driven, target=self.applied or NO_SETTINGS)
        self._judge_motor(t)
        self._check_depth(t)
        if t >= self._next_telemetry:
            first = (self._next_telemetry - self.boot_ns) // TELEMETRY_PERIOD_NS
            slot = (t - self.boot_ns) // TELEMETRY_PERIOD_NS
            self._next_telemetry = self.boot_ns + (slot + 1) * TELEMETRY_PERIOD_NS
            if self._next_telemetry > now:  # the last slot due by now: sent; older: skipped
                self.skipped_slots.extend(range(first, slot))
                self._send_telemetry(t)
            else:
                self.skipped_slots.extend(range(first, slot + 1))

    # --- outputs -------------------------------------------------------------------------

    def take_output(self) -> bytes:
        with self._lock:
            out = bytes(self._outbox)
            self._outbox.clear()
            return out

    @property
    def motor_on(self) -> bool:
        return self.state == State.RUNNING

    def next_deadline_ns(self) -> int:
        """When the firmware next has something to do by itself (a timer interrupt): the next
        telemetry frame, the watchdog's expiry, a fault rule's trip."""
        with self._lock:
            return self._next_timer_ns()

    def ident(self) -> Ident:
        return Ident(
            protocol=PROTOCOL_VERSION, fw_major=FIRMWARE_VERSION[0],
            fw_minor=FIRMWARE_VERSION[1], fw_patch=FIRMWARE_VERSION[2], model=self.model,
            serial=self.serial, boot_id=self.boot_id, capabilities=self.capabilities,
            lo=self.lo, hi=self.hi, watchdog_ms=self.watchdog_ms, state=self.state,
            faults=self.faults, applied=self.applied or NO_SETTINGS,
        )

    def uptime_ms(self, now: int | None = None) -> int:
        now = self.clock.now_ns() if now is None else now
        return ((now - self.boot_ns) // MS) & 0xFFFFFFFF

    # --- internals -----------------------------------------------------------------------

    def _event(self, what: str, seq: int = 0, detail: str = "") -> None:
        event = Event(self.clock.now_ns(), what, seq, detail)
        self.log.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _emit(self, frame: bytes) -> None:
        if self.output is not None:
            self.output(frame)
        else:
            self._outbox += frame

    def _send(self, msg: Message, *, seq: int = 0, ack: int = 0) -> bytes:
        frame = encode(msg, seq=seq, ack=ack)
        self._emit(frame)
        return frame

    def _send_telemetry(self, now: int) -> None:
        ack = 0 if "telemetry-ack-zero" in self.quirks else self.acted_seq
        self._send(self._telemetry(now), seq=self._telemetry_seq, ack=ack)
        self._telemetry_seq = (self._telemetry_seq + 1) & 0xFF
        if self._uncut:  # the quirk `fault-frame-voltage`: the cut comes after the frame
            self._uncut = False
            self.physics.drive_off()

    def _telemetry(self, now: int) -> Telemetry:
        r = self.physics.readings()
        flags = ((Flag.PEDAL if self.pedal else 0)
                 | (Flag.MOTOR if self.state == State.RUNNING else 0)
                 | (Flag.LINK if self.link_alive else 0)
                 | (Flag.SESSION if self.handshaken else 0))
        s = self.applied or NO_SETTINGS
        return Telemetry(
            state=self.state, flags=flags, faults=self.faults, rate_dhz=r.rate_dhz,
            voltage_mv=r.voltage_mv, current_ma=r.current_ma, depth_um=r.depth_um,
            temperature_dc=r.temperature_dc, uptime_ms=self.uptime_ms(now),
            set_depth_um=s.depth_um, set_rate_dhz=s.rate_dhz, set_voltage_mv=s.voltage_mv,
            runs=self.runs & 0xFF,
            needle_ms=(self.needle_ns(now) // MS) & 0xFFFFFFFF,
        )

    def needle_ns(self, now: int) -> int:
        """How long the needle has been driven since boot, up to `now`."""
        if self.state == State.RUNNING and self._run_since is not None:
            return self._needle_ns + max(0, now - self._run_since)
        return self._needle_ns

    def _set_state(self, new: State, why: str, *, cut: bool = True) -> None:
        if new == self.state:
            return
        now = self._t
        if self.state == State.RUNNING:
            # The drive is cut in the same step as the state changes, so that no frame can
            # say FAULTED (or ARMED) with drive volts on the motor.
            self.motor_off_ns = now
            self._needle_ns = self.needle_ns(now)
            self._run_since = None
            if cut:
                self.physics.drive_off()
            else:
                self._uncut = True
            self._slow_since = self._over_since = None
        elif new == State.RUNNING:
            self._slow_since = now  # the stall rule's 100 ms count from the drive's start
            self.runs += 1
            self._run_since = now
        self._event("state", detail=f"{self.state.name} -> {new.name}: {why}")
        self.state = new
        if "telemetry-burst" in self.quirks:
            self._send_telemetry(now)

    def _latch(self, fault: Fault, why: str, *, cut: bool = True) -> None:
        self.faults |= fault
        self._set_state(State.FAULTED, why, cut=cut)

    def _update_motor(self) -> None:
        """Invariant 1: RUNNING only while armed, link alive, pedal down, nothing latched."""
        if self.state == State.ARMED and self.pedal and self.link_alive and not self.faults:
            self._set_state(State.RUNNING, "pedal down")
        elif self.state == State.RUNNING and not (self.pedal and self.link_alive):
            self._set_state(State.ARMED, "pedal up" if not self.pedal else "link down")

    def _judge_motor(self, now: int) -> None:
        """The motor-fault rules of section 11.3, from the sensors' readings."""
        r = self.physics.readings()
        cut = "fault-frame-voltage" not in self.quirks
        if r.temperature_dc >= OVERTEMP_DC and not self.faults & Fault.OVERTEMP:
            self._latch(Fault.OVERTEMP, f"motor at {r.temperature_c:.1f} C", cut=cut)
        if self.state != State.RUNNING:
            self._slow_since = self._over_since = None
            return
        # STALL: below 20 Hz continuously for 100 ms while driven. At the drive's start the
        # rate is 0, so the count starts there and spin-up lies inside it.
        if r.rate_dhz >= STALL_BELOW_DHZ:
            self._slow_since = None
        elif self._slow_since is None:
            self._slow_since = now
        # OVERCURRENT: above the limit continuously for 50 ms while driven and turning (a
        # motor that cannot turn draws its stall current: that is a stall).
        if r.current_ma > OVERCURRENT_MA and r.rate_dhz >= STALL_BELOW_DHZ:
            if self._over_since is None:
                self._over_since = now
        else:
            self._over_since = None
        if self._slow_since is not None and now - self._slow_since >= STALL_TRIP_MS * MS:
            self._latch(Fault.STALL, f"stall: {r.rate_hz:.1f} Hz for {STALL_TRIP_MS} ms",
                        cut=cut)
        elif self._over_since is not None and (
                now - self._over_since >= OVERCURRENT_TRIP_MS * MS):
            self._latch(Fault.OVERCURRENT, f"over-current: {r.current_ma} mA", cut=cut)

    def _depth_error_um(self) -> int:
        if self.applied is None:
            return 0
        return abs(self.physics.readings().depth_um - self.applied.depth_um)

    def _check_depth(self, now: int) -> None:
        """Latch DEPTH when an armed machine's needle stays off its depth setpoint: the timer
        starts when the depth is first off by more than the tolerance while ARMED or RUNNING,
        restarts with every new setpoint, and resets when back within it or disarmed."""
        if self.state not in (State.ARMED, State.RUNNING) or (
                self._depth_error_um() <= DEPTH_TOLERANCE_UM):
            self._depth_off_since = None
            return
        if self._depth_off_since is None:
            self._depth_off_since = now
        elif now - self._depth_off_since >= DEPTH_SETTLE_MS * MS:
            self._depth_off_since = None
            self._latch(Fault.DEPTH, f"depth {self._depth_error_um()} um off its setpoint")

    def _check_watchdog(self, now: int) -> None:
        if (self.link_alive and self.last_host_ns is not None
                and now - self.last_host_ns >= self.watchdog_ms * MS):
            self.link_alive = False
            self._event("watchdog", detail=f"no valid host frame for {self.watchdog_ms} ms")
            if self.state in (State.ARMED, State.RUNNING):
                self._latch(Fault.LINK_LOST, "watchdog")
            self._update_motor()

    def _on_frame(self, frame: Frame, now: int) -> None:
        t = frame.type
        if t not in HOST_TYPES:
            # A machine-to-host type coming in (an echo, a loopback): not from a host. It is
            # not answered and does not feed the watchdog.
            return
        self._host_alive(now)  # any valid host frame, whatever its payload or ack
        if t == MsgType.HEARTBEAT:
            if self.log_heartbeats:
                self._event("heartbeat")
            return
        seq = frame.seq
        if t == MsgType.STOP:
            self._stop(frame)
            return
        if t == MsgType.HELLO:
            self._hello(frame)
            return
        last = self._last_cmd == (seq, t)
        if last and "duplicate-reexecuted" not in self.quirks:
            self.duplicates += 1
            self._event("duplicate", seq, MsgType(t).name)
            self._emit(self._last_reply)
            return
        if not last and (seq, t) in self._recent and "stale-copy-executed" not in self.quirks:
            # An older command's late copy: executing it would put back what a newer command
            # replaced. Its answer was already given; the host has moved on.
            self.duplicates += 1
            self._event("duplicate", seq, f"{MsgType(t).name}: stale copy")
            return
        self._last_cmd = (seq, t)
        self._recent.append((seq, t))
        self._last_reply = self._execute(frame)
        self.acted_seq = seq

    def _host_alive(self, now: int) -> None:
        self.last_host_ns = now
        if not self.link_alive:
            self.link_alive = True
            self._event("link", detail="host frames arriving")
            self._update_motor()

    def _nack(self, frame: Frame, code: ErrorCode, fld: Field = Field.NONE) -> bytes:
        self._event("refused", frame.seq, f"{MsgType(frame.type).name}: {code.name} "
                                          f"{fld.name if fld else ''}".rstrip())
        return self._send(Nack(frame.type, code, fld), ack=frame.seq)

    def _ack(self, frame: Frame) -> bytes:
        self._event(MsgType(frame.type).name, frame.seq)
        return self._send(Ack(frame.type), ack=frame.seq)

    def _stop(self, frame: Frame) -> None:
        # Acted on as soon as the CRC checks, whatever its seq, payload, state or session;
        # every copy is answered; it neither takes part in nor disturbs duplicate detection.
        if not self.handshaken and "stop-needs-session" in self.quirks:
            self._nack(frame, ErrorCode.NOT_READY)
            return
        self._latch(Fault.STOP, "STOP")
        self._event("STOP", frame.seq)
        self._send(Ack(MsgType.STOP), ack=frame.seq)
        self.acted_seq = frame.seq

    def _hello(self, frame: Frame) -> None:
        seq = frame.seq
        try:
            hello = Hello.from_payload(frame.payload)
        except Malformed:
            hello = None
        if hello is None or (seq == 0 and "seq0-executed" not in self.quirks):
            # Refused and not executed: session and duplicate history stay as they were.
            self._nack(frame, ErrorCode.MALFORMED)
            self.acted_seq = seq
            return
        # HELLO starts a host session: it is never a duplicate, starts duplicate detection
        # afresh, restores the default watchdog, and is always answered with IDENT.
        self.hello_version = hello.protocol
        self.handshaken = hello.protocol == PROTOCOL_VERSION
        self.watchdog_ms = self.watchdog_default_ms
        # A host that says HELLO is starting over and has armed nothing: whoever armed the
        # machine before (a crashed console, another program) no longer controls the needle.
        if self.state in (State.ARMED, State.RUNNING) and "hello-keeps-armed" not in self.quirks:
            self._set_state(State.DISARMED, "HELLO: a new host session starts disarmed")
        self._event("HELLO", seq, f"host protocol {hello.protocol}")
        reply = self._send(self.ident(), ack=seq)
        self._last_cmd, self._last_reply = (seq, MsgType.HELLO), reply
        self._recent.clear()
        self._recent.append(self._last_cmd)
        self.acted_seq = seq

    def _execute(self, frame: Frame) -> bytes:
        """A command that is not STOP, HELLO or a copy. Refusals in the order of section 11.1:
        NOT_READY, then MALFORMED, then the command's own checks."""
        t = MsgType(frame.type)
        if not self.handshaken:
            other = self.hello_version is not None and self.hello_version != PROTOCOL_VERSION
            return self._nack(frame, ErrorCode.NOT_READY, Field.PROTOCOL if other else Field.NONE)
        if frame.seq == 0 and "seq0-executed" not in self.quirks:
            return self._nack(frame, ErrorCode.MALFORMED)  # 0 is not a command's number
        try:
            msg = frame.message()
        except Malformed:
            return self._nack(frame, ErrorCode.MALFORMED)
        if isinstance(msg, Set):
            return self._set(frame, msg)
        if isinstance(msg, Watchdog):
            return self._watchdog(frame, msg)
        if t == MsgType.ARM:
            return self._arm(frame)
        if t == MsgType.DISARM:
            if self.state in (State.ARMED, State.RUNNING):
                self._set_state(State.DISARMED, "DISARM")
            return self._ack(frame)
        if t == MsgType.CLEAR_FAULT:
            return self._clear_fault(frame)
        raise AssertionError(f"no rule for {t.name}")  # pragma: no cover (every type has one)

    def _arm(self, frame: Frame) -> bytes:
        if self.faults or self.state == State.FAULTED:
            return self._nack(frame, ErrorCode.LATCHED)
        if self.state in (State.ARMED, State.RUNNING):
            return self._ack(frame)  # already armed: nothing to do
        if self.applied is None:
            return self._nack(frame, ErrorCode.NO_SETTINGS)
        if self.pedal and "arm-with-pedal-down" not in self.quirks:
            return self._nack(frame, ErrorCode.PEDAL_DOWN)
        self._set_state(State.ARMED, "ARM")
        reply = self._ack(frame)
        self._update_motor()
        return reply

    def _persisting(self) -> Fault:
        """The latched faults whose cause the sensors still see."""
        r = self.physics.readings()
        out = Fault.NONE
        if self.faults & Fault.STALL and self.physics.cause_present("stall"):
            out |= Fault.STALL
        if self.faults & Fault.OVERCURRENT and self.physics.cause_present("overcurrent"):
            out |= Fault.OVERCURRENT
        if self.faults & Fault.OVERTEMP and r.temperature_dc >= OVERTEMP_CLEAR_DC:
            out |= Fault.OVERTEMP
        if self.faults & Fault.DEPTH and self._depth_error_um() > DEPTH_TOLERANCE_UM:
            out |= Fault.DEPTH
        return out

    def _clear_fault(self, frame: Frame) -> bytes:
        if self.state != State.FAULTED:
            return self._ack(frame)
        if self._persisting():
            return self._nack(frame, ErrorCode.FAULT_PERSISTS)
        self.faults = Fault.NONE
        self._set_state(State.DISARMED, "CLEAR_FAULT")
        return self._ack(frame)

    def _set(self, frame: Frame, msg: Set) -> bytes:
        values = msg.settings
        for i, fld in enumerate(SETTING_FIELDS):  # field by field, range before step
            v = values[i]
            if not self.lo[i] <= v <= self.hi[i]:
                return self._nack(frame, ErrorCode.OUT_OF_RANGE, fld)
            if v % STEPS[i]:
                return self._nack(frame, ErrorCode.OFF_STEP, fld)
        if self.misapply:  # a firmware bug: one step deeper than asked, when the limits allow
            deeper = values.depth_um + STEPS.depth_um
            values = values._replace(depth_um=deeper if deeper <= self.hi.depth_um
                                     else values.depth_um - STEPS.depth_um)
        self.applied = values
        self.sets_applied += 1
        self._depth_off_since = None  # a new setpoint restarts the depth-fault timer
        self._check_depth(self._t)
        self._event("SET", frame.seq, f"{values.depth_um} um {values.rate_dhz} dHz "
                                      f"{values.voltage_mv} mV")
        return self._send(Applied(*values), ack=frame.seq)

    def _watchdog(self, frame: Frame, msg: Watchdog) -> bytes:
        t = msg.timeout_ms
        if not WATCHDOG_MIN_MS <= t <= WATCHDOG_MAX_MS:
            return self._nack(frame, ErrorCode.OUT_OF_RANGE, Field.WATCHDOG)
        if t > self.watchdog_ms and "watchdog-lengthens" not in self.quirks:
            return self._nack(frame, ErrorCode.WOULD_LENGTHEN, Field.WATCHDOG)
        self.watchdog_ms = t
        return self._ack(frame)
