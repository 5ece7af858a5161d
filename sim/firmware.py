"""The machine's firmware: the device side of the link protocol (docs/protocol.md).

This is the real device logic, not a mock: a state machine driven by an injected clock.
Bytes from the host go in through `feed()`, bytes for the host come out through the `output`
callback (or `take_output()`), `tick()` advances the timers (watchdog, physics, 50 Hz
telemetry) and `set_pedal()` is the foot pedal. It drives `sim.physics.MachinePhysics` for
what its sensors read.

Safety invariant 1 (DESIGN.md) lives in `_update_motor`: the needle runs only while ARMED,
the link is alive, the pedal is down and no fault is latched. Invariant 2: every SET is checked
against the firmware's own compiled limits, whatever the host checked. Invariant 3: a command
repeated with the same sequence number is answered again, never executed twice. Invariant 4:
the watchdog stops the needle and latches LINK_LOST `watchdog_ms` after the last valid host
frame.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge.codec import (
    HOST_COMMANDS,
    PROTOCOL_VERSION,
    Ack,
    Applied,
    Capability,
    Decoder,
    ErrorCode,
    Fault,
    Field,
    Frame,
    Hello,
    Ident,
    Malformed,
    MsgType,
    Nack,
    Set,
    State,
    Telemetry,
    Watchdog,
    encode,
)
from protocols.envelope import HARD_LIMITS, SafetyEnvelope
from protocols.settings import WireSettings
from sim.clock import Clock
from sim.physics import MachinePhysics

FIRMWARE_VERSION = (1, 0, 0)
WATCHDOG_DEFAULT_MS = 250
WATCHDOG_MIN_MS = 100  # two heartbeat periods
WATCHDOG_MAX_MS = 500
TELEMETRY_PERIOD_NS = 20_000_000  # 50 Hz
# The depth actuator travels 2 mm/s, so any move is done within 1.15 s; a measured depth still
# more than 0.1 mm off its setpoint after 1.5 s means it stopped short.
DEPTH_TOLERANCE_UM = 100
DEPTH_SETTLE_NS = 1_500_000_000
# Commands remembered against re-execution: a host numbers them 1..255 in turn, so a number seen
# among the last few is a late copy (reordered behind a newer command), never a new command.
RECENT_COMMANDS = 8
# Steps of the three settings in wire units (0.05 mm, 0.1 Hz, 0.1 V).
STEPS = WireSettings(depth_um=50, rate_dhz=1, voltage_mv=100)
_FIELDS = (Field.DEPTH, Field.RATE, Field.VOLTAGE)
_PHYSICAL_FAULTS = {"stall": Fault.STALL, "overcurrent": Fault.OVERCURRENT,
                    "overtemp": Fault.OVERTEMP}
_NO_SETTINGS = WireSettings(0, 0, 0)
DEFAULT_CAPABILITIES = (Capability.PEDAL | Capability.DEPTH_SENSOR | Capability.CURRENT_SENSOR
                        | Capability.TEMPERATURE_SENSOR | Capability.SIMULATOR)


@dataclass(frozen=True)
class Event:
    """One entry of the firmware's own log (for tests and the simulator's display)."""

    at_ns: int
    what: str  # a command name, "duplicate", "state", "watchdog", ...
    seq: int = 0
    detail: str = ""


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
    ):
        hard_lo, hard_hi = HARD_LIMITS.to_wire()
        if limits is None:
            lo, hi = hard_lo, hard_hi
        elif isinstance(limits, SafetyEnvelope):
            lo, hi = limits.to_wire()
        else:
            lo, hi = (WireSettings(*limits[0]), WireSettings(*limits[1]))
        for i in range(3):
            if lo[i] < hard_lo[i] or hi[i] > hard_hi[i] or lo[i] > hi[i]:
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
        self._last_cmd: tuple[int, int] | None = None  # (seq, type) of the last command
        self._recent: deque[tuple[int, int]] = deque(maxlen=RECENT_COMMANDS)
        self._last_reply = b""
        self._acted = 0  # seq of the last command acted on (TELEMETRY's ack)
        self._decoder = Decoder()
        self._last_tick = now
        self._next_telemetry = now
        self._telemetry_seq = 0
        self.motor_off_ns: int | None = None
        self._depth_off_since: int | None = None
        self.sets_applied = 0
        self.duplicates = 0
        self._event("boot", detail=f"boot id {self.boot_id:08x}")

    def reboot(self, boot_id: int | None = None) -> None:
        """A power cycle or reset: everything but the physical machine starts again."""
        with self._lock:
            old = self.state
            self._boot(boot_id)
            if old == State.RUNNING:
                self.motor_off_ns = self.boot_ns

    # --- inputs --------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes received from the host."""
        with self._lock:
            now = self.clock.now_ns()
            # A frame that arrives after the watchdog expired does not undo the expiry.
            self._check_watchdog(now)
            for frame in self._decoder.feed(data):
                self._on_frame(frame, now)

    def set_pedal(self, down: bool) -> None:
        with self._lock:
            self.pedal = bool(down)
            self._check_watchdog(self.clock.now_ns())
            self._update_motor()

    def tick(self) -> None:
        """Advance timers to the clock's present: watchdog, physics, telemetry."""
        with self._lock:
            now = self.clock.now_ns()
            self._check_watchdog(now)
            dt = now - self._last_tick
            self._last_tick = now
            if dt > 0:
                self.physics.step(dt / 1e9, motor_on=self.state == State.RUNNING,
                                  target=self.applied or _NO_SETTINGS)
                fault = self.physics.fault
                if fault is not None:
                    flag = _PHYSICAL_FAULTS.get(fault, Fault.STALL)
                    if not self.faults & flag:
                        self._latch(flag, f"physics: {fault}")
                self._check_depth(now)
            if now >= self._next_telemetry:
                self._send(self._telemetry(now), seq=self._telemetry_seq, ack=self._acted)
                self._telemetry_seq = (self._telemetry_seq + 1) & 0xFF
                self._next_telemetry += TELEMETRY_PERIOD_NS
                if self._next_telemetry <= now:  # fell behind: no burst of stale frames
                    self._next_telemetry = now + TELEMETRY_PERIOD_NS

    # --- outputs -------------------------------------------------------------------------

    def take_output(self) -> bytes:
        with self._lock:
            out = bytes(self._outbox)
            self._outbox.clear()
            return out

    @property
    def motor_on(self) -> bool:
        return self.state == State.RUNNING

    def ident(self) -> Ident:
        return Ident(
            protocol=PROTOCOL_VERSION, fw_major=FIRMWARE_VERSION[0],
            fw_minor=FIRMWARE_VERSION[1], fw_patch=FIRMWARE_VERSION[2], model=self.model,
            serial=self.serial, boot_id=self.boot_id, capabilities=self.capabilities,
            lo=self.lo, hi=self.hi, watchdog_ms=self.watchdog_ms, state=self.state,
            faults=self.faults, applied=self.applied or _NO_SETTINGS,
        )

    def uptime_ms(self, now: int | None = None) -> int:
        now = self.clock.now_ns() if now is None else now
        return ((now - self.boot_ns) // 1_000_000) & 0xFFFFFFFF

    # --- internals -----------------------------------------------------------------------

    def _event(self, what: str, seq: int = 0, detail: str = "") -> None:
        event = Event(self.clock.now_ns(), what, seq, detail)
        self.log.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _send(self, msg, *, seq: int = 0, ack: int = 0) -> bytes:
        frame = encode(msg, seq=seq, ack=ack)
        if self.output is not None:
            self.output(frame)
        else:
            self._outbox += frame
        return frame

    def _telemetry(self, now: int) -> Telemetry:
        r = self.physics.readings()
        applied = self.applied or _NO_SETTINGS
        flags = ((Telemetry.PEDAL if self.pedal else 0)
                 | (Telemetry.MOTOR if self.state == State.RUNNING else 0)
                 | (Telemetry.LINK if self.link_alive else 0)
                 | (Telemetry.SESSION if self.handshaken else 0))
        clamp16 = lambda v: max(0, min(0xFFFF, v))  # noqa: E731
        return Telemetry(
            state=self.state, flags=flags, faults=self.faults, rate_dhz=clamp16(r.rate_dhz),
            voltage_mv=clamp16(r.voltage_mv), current_ma=clamp16(r.current_ma),
            depth_um=clamp16(r.depth_um), temperature_dc=max(-32768, min(32767,
                                                                         r.temperature_dc)),
            uptime_ms=self.uptime_ms(now), set_depth_um=applied.depth_um,
            set_rate_dhz=applied.rate_dhz, set_voltage_mv=applied.voltage_mv,
        )

    def _set_state(self, new: State, why: str) -> None:
        if new != self.state:
            if self.state == State.RUNNING:
                self.motor_off_ns = self.clock.now_ns()
            self._event("state", detail=f"{self.state.name} -> {new.name}: {why}")
            self.state = new

    def _latch(self, fault: Fault, why: str) -> None:
        self.faults |= fault
        self._set_state(State.FAULTED, why)

    def _update_motor(self) -> None:
        """Invariant 1: RUNNING only while armed, link alive, pedal down, nothing latched."""
        if self.state == State.ARMED and self.pedal and self.link_alive and not self.faults:
            self._set_state(State.RUNNING, "pedal down")
        elif self.state == State.RUNNING and not (self.pedal and self.link_alive):
            self._set_state(State.ARMED, "pedal up" if not self.pedal else "link down")

    def _depth_error_um(self) -> int:
        if self.applied is None:
            return 0
        return abs(self.physics.readings().depth_um - self.applied.depth_um)

    def _check_depth(self, now: int) -> None:
        """Latch DEPTH when an armed machine's needle stays off its depth setpoint."""
        if self.state not in (State.ARMED, State.RUNNING) or (
                self._depth_error_um() <= DEPTH_TOLERANCE_UM):
            self._depth_off_since = None
            return
        if self._depth_off_since is None:
            self._depth_off_since = now
        elif now - self._depth_off_since >= DEPTH_SETTLE_NS:
            self._depth_off_since = None
            self._latch(Fault.DEPTH, f"depth {self._depth_error_um()} um off its setpoint")

    def _check_watchdog(self, now: int) -> None:
        if self.link_alive and now - self.last_host_ns >= self.watchdog_ms * 1_000_000:
            self.link_alive = False
            self._event("watchdog", detail=f"no valid host frame for {self.watchdog_ms} ms")
            if self.state in (State.ARMED, State.RUNNING):
                self._latch(Fault.LINK_LOST, "watchdog")
            self._update_motor()

    def _on_frame(self, frame: Frame, now: int) -> None:
        t = frame.type
        if t == MsgType.HEARTBEAT:
            self._host_alive(now)
            if self.log_heartbeats:
                self._event("heartbeat")
            return
        if t not in HOST_COMMANDS:
            # A machine-to-host type coming in (an echo, a loopback): not from a host.
            return
        self._host_alive(now)
        seq = frame.seq
        if t == MsgType.STOP:
            # Acted on as soon as the CRC checks, whatever its sequence number; answered, but it
            # neither takes part in nor disturbs duplicate detection.
            self._latch(Fault.STOP, "STOP")
            self._acted = seq
            self._event("STOP", seq)
            self._send(Ack(MsgType.STOP), ack=seq)
            return
        if t == MsgType.HELLO:
            self._hello(frame, now)
            return
        if self._last_cmd == (seq, t):
            self.duplicates += 1
            self._event("duplicate", seq, MsgType(t).name)
            if self.output is not None:
                self.output(self._last_reply)
            else:
                self._outbox += self._last_reply
            return
        if (seq, t) in self._recent:
            # An older command's late copy: executing it would put back what a newer command
            # replaced. Its answer was already given; the host has moved on.
            self.duplicates += 1
            self._event("duplicate", seq, f"{MsgType(t).name}: stale copy")
            return
        self._last_cmd = (seq, t)
        self._recent.append((seq, t))
        self._last_reply = self._execute(frame, seq)
        self._acted = seq

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

    def _hello(self, frame: Frame, now: int) -> None:
        try:
            hello = Hello.from_payload(frame.payload)
        except Malformed:
            self._last_cmd, self._last_reply = None, b""
            self._nack(frame, ErrorCode.MALFORMED)
            return
        # HELLO starts a host session: it is never a duplicate, resets duplicate detection
        # and the watchdog timeout, and is always answered with IDENT.
        self.handshaken = hello.protocol == PROTOCOL_VERSION
        self.watchdog_ms = self.watchdog_default_ms
        # A host that says HELLO is starting over and has armed nothing: whoever armed the
        # machine before (a crashed console, another program) no longer controls the needle.
        if self.state in (State.ARMED, State.RUNNING):
            self._set_state(State.DISARMED, "HELLO: a new host session starts disarmed")
        self._event("HELLO", frame.seq, f"host protocol {hello.protocol}")
        reply = self._send(self.ident(), ack=frame.seq)
        self._acted = frame.seq
        self._last_cmd, self._last_reply = (frame.seq, MsgType.HELLO), reply
        self._recent.clear()
        self._recent.append(self._last_cmd)

    def _execute(self, frame: Frame, seq: int) -> bytes:
        t = MsgType(frame.type)
        if not self.handshaken:
            return self._nack(frame, ErrorCode.NOT_READY)
        try:
            msg = frame.message()
        except Malformed:
            return self._nack(frame, ErrorCode.MALFORMED)
        if t == MsgType.SET:
            return self._set(frame, msg)
        if t == MsgType.ARM:
            if self.faults or self.state == State.FAULTED:
                return self._nack(frame, ErrorCode.LATCHED)
            if self.state in (State.ARMED, State.RUNNING):
                return self._ack(frame)  # already armed: nothing to do
            if self.applied is None:
                return self._nack(frame, ErrorCode.NO_SETTINGS)
            if self.pedal:
                return self._nack(frame, ErrorCode.PEDAL_DOWN)
            self._set_state(State.ARMED, "ARM")
            return self._ack(frame)
        if t == MsgType.DISARM:
            if self.state in (State.ARMED, State.RUNNING):
                self._set_state(State.DISARMED, "DISARM")
            return self._ack(frame)
        if t == MsgType.WATCHDOG:
            return self._watchdog(frame, msg)
        if t == MsgType.CLEAR_FAULT:
            if self.state != State.FAULTED:
                return self._ack(frame)
            if self.physics.fault is not None and not self.physics.clear_fault():
                return self._nack(frame, ErrorCode.FAULT_PERSISTS)
            if self.faults & Fault.DEPTH and self._depth_error_um() > DEPTH_TOLERANCE_UM:
                return self._nack(frame, ErrorCode.FAULT_PERSISTS)
            self.faults = Fault.NONE
            self._set_state(State.DISARMED, "CLEAR_FAULT")
            return self._ack(frame)
        return self._nack(frame, ErrorCode.UNSUPPORTED)  # pragma: no cover

    def _set(self, frame: Frame, msg: Set) -> bytes:
        values = msg.settings
        for i, fld in enumerate(_FIELDS):
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
        self._event("SET", frame.seq, f"{values.depth_um} um {values.rate_dhz} dHz "
                                      f"{values.voltage_mv} mV")
        return self._send(Applied(*values), ack=frame.seq)

    def _watchdog(self, frame: Frame, msg: Watchdog) -> bytes:
        t = msg.timeout_ms
        if not WATCHDOG_MIN_MS <= t <= WATCHDOG_MAX_MS:
            return self._nack(frame, ErrorCode.OUT_OF_RANGE, Field.WATCHDOG)
        if t > self.watchdog_ms:
            return self._nack(frame, ErrorCode.WOULD_LENGTHEN, Field.WATCHDOG)
        self.watchdog_ms = t
        return self._ack(frame)
