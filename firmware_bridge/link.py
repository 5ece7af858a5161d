"""The link supervisor: a plain Python API to a machine (no UI, usable from a script).

    from firmware_bridge import Machine
    with Machine.connect("/dev/ttyUSB0") as m:        # or "sim://", "socket://...", ...
        m.subscribe(print)
        confirmed = m.apply(settings)                  # the machine's read-back
        m.arm()
        ...
        m.stop()

Two threads per machine: a reader that owns the port's input and decodes frames, and a link
thread that sends the heartbeat every 50 ms, one command at a time with retransmission, and
judges link health. Neither waits on the caller, so a busy UI thread does not delay the
heartbeat (docs/protocol.md gives the measured gaps; the firmware's watchdog covers the rest:
a host that stalls makes the needle stop, never run on). STOP is written at once from the
calling thread, ahead of anything queued, three times.

Subscriber callbacks run on the reader or link thread: keep them short and thread-safe.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

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
    Frame,
    Heartbeat,
    Hello,
    Ident,
    Malformed,
    Message,
    MsgType,
    Nack,
    Set,
    State,
    Stop,
    Telemetry,
    VersionMismatch,
    Watchdog,
    encode,
)
from firmware_bridge.events import (
    CommandFailed,
    Event,
    FaultLatched,
    LinkHealth,
    LinkState,
    LinkStateChanged,
    MachineRebooted,
    SettingsApplied,
    SettingsRefused,
    StateChanged,
    TelemetryReceived,
)
from firmware_bridge.schema import (
    HANDSHAKE_MS,
    HEARTBEAT_MS,
    HELLO_INTERVAL_MS,
    RETRIES,
    RTO_INITIAL_MS,
    RTO_MAX_MS,
    RTO_MIN_MS,
    STALE_AFTER_MS,
    STOP_COPIES,
    WATCHDOG_DEFAULT_MS,
    Capability,
)
from firmware_bridge.transport import Transport, TransportError, open_transport
from protocols.envelope import HARD_LIMITS, EmptyEnvelope, SafetyEnvelope
from protocols.errors import SmpError
from protocols.settings import MachineSettings, WireSettings

log = logging.getLogger(__name__)

# The protocol's own figures, from firmware_bridge/schema.py, in seconds.
HEARTBEAT_S = HEARTBEAT_MS / 1000
RTO_MIN_S, RTO_MAX_S, RTO_INITIAL_S = RTO_MIN_MS / 1000, RTO_MAX_MS / 1000, RTO_INITIAL_MS / 1000
HANDSHAKE_S = HANDSHAKE_MS / 1000  # a device that has not answered HELLO by then is not ours
HELLO_INTERVAL_S = HELLO_INTERVAL_MS / 1000
STALE_AFTER_S = STALE_AFTER_MS / 1000
# Lost after the machine's default watchdog time: by then a machine that cannot hear us has
# stopped itself, and one that we cannot hear is stopped by us (see _judge_link).
LOST_AFTER_S = WATCHDOG_DEFAULT_MS / 1000
HEALTH_EVERY_S = 0.250
SWITCH_INTERVAL_S = 0.0005  # see Machine._start


class LinkError(SmpError):
    """The machine could not be reached or did not answer as it must."""


class CommandRefused(SmpError):
    """The machine answered a command with a refusal (NACK)."""

    def __init__(self, message: str, nack: Nack | None = None):
        super().__init__(message)
        self.nack = nack


class SettingsMismatch(LinkError):
    """The machine applied other settings than asked; `applied` is its read-back."""

    def __init__(self, requested: MachineSettings, applied: MachineSettings):
        self.requested, self.applied = requested, applied
        super().__init__(f"the machine applied {applied} but {requested} was asked; STOP sent")


class OutsideEnvelope(SmpError):
    """Settings outside the adopted envelope: refused by the bridge, never sent."""


@dataclass(eq=False)
class _Command:
    msg: Message
    requested: MachineSettings | None = None
    seq: int = 0
    frame: bytes = b""
    attempts: int = 0
    first_sent: float = 0.0
    deadline: float = 0.0
    max_attempts: int = 1 + RETRIES
    fixed_interval: float | None = None  # HELLO during the handshake
    done: threading.Event = field(default_factory=threading.Event)
    reply: Message | None = None
    error: str | None = None
    internal: bool = False  # a re-handshake started by the link itself

    @property
    def name(self) -> str:
        return self.msg.TYPE.name


def _answers(cmd: _Command, msg: Message) -> bool:
    t = cmd.msg.TYPE
    if isinstance(msg, Ident):
        return t == MsgType.HELLO
    if isinstance(msg, Applied):
        return t == MsgType.SET
    if isinstance(msg, Ack | Nack):
        return msg.command == t
    return False


class Machine:
    """A connected machine. Build it with `Machine.connect(url)`."""

    def __init__(self, transport: Transport, envelope: SafetyEnvelope = HARD_LIMITS):
        self.transport = transport
        self.configured = envelope
        self.envelope = envelope  # narrowed to the machine's limits by the handshake
        self.machine_envelope: SafetyEnvelope | None = None
        self.ident: Ident | None = None
        self.state: State | None = None
        self.faults = Fault.NONE
        self.applied: MachineSettings | None = None
        self.telemetry: Telemetry | None = None
        self.link_state = LinkState.CONNECTED
        self._decoder = Decoder()
        self._cond = threading.Condition()
        self._queue: deque[_Command] = deque()
        self._outstanding: _Command | None = None
        self._seq = random.randint(1, 255)
        self._subscribers: list[Callable[[Event], None]] = []
        self._closing = threading.Event()
        self._dead: str | None = None  # the port went away
        self._echoes = 0  # host-type frames received: our own, echoed
        now = time.monotonic()
        self._last_rx = now
        self._last_telemetry_at: float | None = None
        self._telemetry_seq: int | None = None
        self._telemetry_lost = 0
        self._srtt: float | None = None
        self._rttvar = 0.0
        self.rto = RTO_INITIAL_S
        self._sent = 0
        self._resent = 0
        self._hb_last: float | None = None
        self._hb_gap_max = 0.0
        self.heartbeat_gaps: deque[float] = deque(maxlen=5000)  # seconds, for measurement
        self._reader = threading.Thread(target=self._read_loop, name="smp-link-reader",
                                        daemon=True)
        self._link = threading.Thread(target=self._link_loop, name="smp-link-heartbeat",
                                      daemon=True)

    # --- connecting ----------------------------------------------------------------------

    @classmethod
    def connect(cls, url: str, envelope: SafetyEnvelope = HARD_LIMITS, *,
                baudrate: int = 115200, handshake_s: float = HANDSHAKE_S, dtr: bool = False,
                rts: bool = False) -> Machine:
        """Open the port, hand-shake (HELLO -> IDENT) and adopt the narrower envelope.

        `dtr`/`rts` are the modem lines' levels set before the port opens (low by default, so
        that a board that resets on DTR is not reset by connecting).
        """
        transport = open_transport(url, baudrate=baudrate, dtr=dtr, rts=rts)
        machine = cls(transport, envelope)
        try:
            machine._start()
            machine._handshake(handshake_s)
        except BaseException:
            machine.close(disarm=False)
            raise
        return machine

    def _start(self) -> None:
        # A thread waiting for the GIL gets it only after the holder's switch interval (5 ms
        # by default), and a heartbeat takes several acquisitions: with four busy Python
        # threads beats stretched to 150 ms; at 0.5 ms the worst was 60 ms (bench_link_load).
        # Process-wide, and only ever lowered: the heartbeat is the needle's lifeline.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        self.transport.reset_input()
        self._reader.start()
        self._link.start()

    def _handshake(self, timeout_s: float) -> None:
        attempts = max(1, round(timeout_s / HELLO_INTERVAL_S))
        cmd = self._submit(Hello(PROTOCOL_VERSION), max_attempts=attempts,
                           fixed_interval=HELLO_INTERVAL_S)
        if not cmd.done.wait(timeout_s + 1.0) or cmd.error:
            raise LinkError(self._no_ident_reason(cmd))
        assert isinstance(cmd.reply, Ident)
        self._adopt(cmd.reply)

    def _no_ident_reason(self, cmd: _Command) -> str:
        url = self.transport.url
        if cmd.error and cmd.error.startswith("protocol"):
            return f"{url}: {cmd.error}"
        if self._dead:
            return f"{url}: {self._dead}"
        s = self._decoder.stats
        if s.bytes == 0:
            return (f"{url}: no answer to HELLO within {HANDSHAKE_S:.1f} s (is the machine "
                    f"switched on and is this its port?)")
        if s.frames == 0:
            return (f"{url}: the device answers garbage ({s.bytes} bytes, no valid frame): "
                    f"wrong baud rate, or not an SMP machine")
        if self._echoes and s.frames == self._echoes:
            return (f"{url}: only our own frames came back (a loopback or an echoing device), "
                    f"no machine answered")
        return f"{url}: the device sends frames but did not answer HELLO"

    def _adopt(self, ident: Ident) -> None:
        lo = WireSettings(*(max(a, b) for a, b in zip(ident.lo, HARD_LIMITS.to_wire()[0],
                                                       strict=True)))
        hi = WireSettings(*(min(a, b) for a, b in zip(ident.hi, HARD_LIMITS.to_wire()[1],
                                                       strict=True)))
        try:
            machine_env = SafetyEnvelope.from_wire(lo, hi)
        except (ValidationError, ValueError) as exc:
            raise LinkError(f"{self.transport.url}: the machine reports unusable limits "
                            f"({exc.__class__.__name__})") from None
        self.machine_envelope = machine_env
        self.envelope = self.configured.intersect(machine_env, other_name="machine")
        self.ident = ident
        self._note_state(State(ident.state), Fault(ident.faults))
        try:
            self.applied = (MachineSettings.from_wire(*ident.applied)
                            if any(ident.applied) else None)
        except ValidationError:
            self.applied = None

    @property
    def simulated(self) -> bool:
        return bool(self.ident and self.ident.capabilities & Capability.SIMULATOR)

    # --- commands ------------------------------------------------------------------------

    def apply(self, settings: MachineSettings, *, timeout: float = 10.0) -> MachineSettings:
        """Send the three setpoints; returns what the machine confirmed it applied."""
        problems = self.check(settings)
        if problems:
            reason = "; ".join(problems)
            self._publish(SettingsRefused(time.time(), settings, reason, "bridge"))
            raise OutsideEnvelope(f"not sent: {reason}")
        cmd = self._call(Set(*settings.to_wire()), timeout, requested=settings)
        if isinstance(cmd.reply, Nack):
            raise CommandRefused(f"the machine refused {settings}: {cmd.reply.describe()}",
                                 cmd.reply)
        assert isinstance(cmd.reply, Applied)
        try:
            confirmed = MachineSettings.from_wire(*cmd.reply.settings)
        except ValidationError:
            self.stop(wait=False)
            raise LinkError(f"the machine reports applied settings {tuple(cmd.reply.settings)} "
                            "outside the hard limits; STOP sent") from None
        if confirmed != settings:
            # The machine is set to something nobody asked for: stop it. What it applied is
            # still what was published and recorded (SettingsApplied carries the read-back).
            self.stop(wait=False)
            raise SettingsMismatch(settings, confirmed)
        return confirmed

    def check(self, settings: MachineSettings) -> list[str]:
        """Why `settings` would be refused before sending (empty if they would be sent)."""
        out = []
        for v in self.envelope.check(settings):
            q = v.quantity
            where = []
            if self.machine_envelope is not None:
                r = self.machine_envelope.range(q)
                where.append(f"the machine allows {q.range_text(r.lo, r.hi)}")
            r = self.configured.range(q)
            where.append(f"the configured envelope {q.range_text(r.lo, r.hi)}")
            out.append(f"{v} ({', '.join(where)})")
        return out

    def arm(self, *, timeout: float = 10.0) -> None:
        self._expect_ack(self._call(Arm(), timeout), "arm")

    def disarm(self, *, timeout: float = 10.0) -> None:
        self._expect_ack(self._call(Disarm(), timeout), "disarm")

    def clear_fault(self, *, timeout: float = 10.0) -> None:
        """The deliberate act after a latched fault; the machine is then DISARMED."""
        self._expect_ack(self._call(ClearFault(), timeout), "clear the fault")

    def set_watchdog(self, timeout_ms: int, *, timeout: float = 10.0) -> None:
        """Shorten the machine's watchdog (100 to 500 ms, never longer than in force)."""
        self._expect_ack(self._call(Watchdog(timeout_ms), timeout), "set the watchdog")

    def stop(self, *, wait: bool = True, timeout: float = 2.0) -> bool:
        """STOP: written at once ahead of anything queued, three times; the machine latches.

        Everything queued or outstanding is cancelled. Returns True once the machine has
        acknowledged (or at once, without waiting, if `wait` is False).
        """
        now = time.monotonic()
        with self._cond:
            cancelled = list(self._queue)
            self._queue.clear()
            if self._outstanding is not None:
                cancelled.append(self._outstanding)
            cmd = _Command(Stop())
            cmd.seq = self._next_seq()
            cmd.frame = encode(cmd.msg, seq=cmd.seq)
            cmd.attempts, cmd.first_sent = 1, now
            cmd.deadline = now + self.rto
            self._outstanding = cmd
            self._sent += 1
            for c in cancelled:
                self._finish(c, error="cancelled by STOP")
            self._cond.notify_all()
        with contextlib.suppress(TransportError):
            for _ in range(STOP_COPIES):
                self.transport.write(cmd.frame)
        if not wait:
            return False
        return cmd.done.wait(timeout) and cmd.error is None

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback(event)` for every event; returns a function that unsubscribes."""
        with self._cond:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._cond, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)
        return unsubscribe

    def health(self) -> LinkHealth:
        now = time.monotonic()
        age = None if self._last_telemetry_at is None else (now - self._last_telemetry_at)
        return LinkHealth(
            at=time.time(), rtt_ms=None if self._srtt is None else self._srtt * 1000,
            rto_ms=self.rto * 1000, resend_ratio=self._resent / self._sent if self._sent else 0.0,
            telemetry_age_ms=None if age is None else age * 1000,
            telemetry_lost=self._telemetry_lost, bad_frames=self._decoder.stats.bad_frames,
            heartbeat_gap_max_ms=self._hb_gap_max * 1000,
        )

    def close(self, *, disarm: bool = True) -> None:
        """Disarm, stop the heartbeat and release the port."""
        if self._closing.is_set():
            return
        if disarm and self._dead is None and self.ident is not None:
            with contextlib.suppress(SmpError):
                self.disarm(timeout=1.0)
        self._closing.set()
        with self._cond:
            for c in [*self._queue, *([self._outstanding] if self._outstanding else [])]:
                self._finish(c, error="the link was closed")
            self._queue.clear()
            self._outstanding = None
            self._cond.notify_all()
        for t in (self._link, self._reader):
            if t.is_alive() and t is not threading.current_thread():
                self.transport.cancel_read()
                t.join(timeout=2.0)
        self.transport.close()

    def __enter__(self) -> Machine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals: commands -------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1  # 1..255; 0 means "not a command"
        return self._seq

    def _submit(self, msg: Message, *, requested: MachineSettings | None = None,
                max_attempts: int = 1 + RETRIES, fixed_interval: float | None = None,
                front: bool = False, internal: bool = False) -> _Command:
        cmd = _Command(msg, requested=requested, max_attempts=max_attempts,
                       fixed_interval=fixed_interval, internal=internal)
        with self._cond:
            if self._closing.is_set() or self._dead:
                cmd.error = self._dead or "the link is closed"
                cmd.done.set()
                return cmd
            if front:
                self._queue.appendleft(cmd)
            else:
                self._queue.append(cmd)
            self._cond.notify_all()
        return cmd

    def _call(self, msg: Message, timeout: float, *,
              requested: MachineSettings | None = None) -> _Command:
        cmd = self._submit(msg, requested=requested)
        if not cmd.done.wait(timeout):
            raise LinkError(f"{cmd.name}: no result within {timeout:.1f} s")
        if cmd.error:
            raise LinkError(f"{cmd.name} failed: {cmd.error}")
        return cmd

    @staticmethod
    def _expect_ack(cmd: _Command, what: str) -> None:
        if isinstance(cmd.reply, Nack):
            raise CommandRefused(f"the machine refused to {what}: {cmd.reply.describe()}",
                                 cmd.reply)

    def _finish(self, cmd: _Command, *, reply: Message | None = None,
                error: str | None = None) -> None:
        cmd.reply, cmd.error = reply, error
        cmd.done.set()

    def _timeout_for(self, cmd: _Command) -> float:
        if cmd.fixed_interval is not None:
            return cmd.fixed_interval
        return min(RTO_MAX_S, self.rto * (2 ** (cmd.attempts - 1)))

    def _rtt_sample(self, r: float) -> None:
        # RFC 6298 smoothing; Karn: only commands answered on their first transmission.
        if self._srtt is None:
            self._srtt, self._rttvar = r, r / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - r)
            self._srtt = 0.875 * self._srtt + 0.125 * r
        self.rto = min(RTO_MAX_S, max(RTO_MIN_S, self._srtt + max(0.005, 4 * self._rttvar)))

    # --- internals: threads --------------------------------------------------------------

    def _write(self, frame: bytes) -> None:
        try:
            self.transport.write(frame)
        except TransportError as exc:
            self._gone(str(exc))

    def _link_loop(self) -> None:
        now = time.monotonic()
        next_hb = now
        next_health = now + HEALTH_EVERY_S
        hb_frame = encode(Heartbeat())
        while not self._closing.is_set() and not self._dead:
            to_send: list[bytes] = []
            failed: _Command | None = None
            with self._cond:
                now = time.monotonic()
                cmd = self._outstanding
                if cmd is None and self._queue:
                    cmd = self._outstanding = self._queue.popleft()
                    cmd.seq = self._next_seq()
                    cmd.frame = encode(cmd.msg, seq=cmd.seq)
                    cmd.attempts, cmd.first_sent = 1, now
                    cmd.deadline = now + self._timeout_for(cmd)
                    self._sent += 1
                    to_send.append(cmd.frame)
                elif cmd is not None and now >= cmd.deadline:
                    if cmd.attempts >= cmd.max_attempts:
                        failed, self._outstanding = cmd, None
                    else:
                        cmd.attempts += 1
                        cmd.deadline = now + self._timeout_for(cmd)
                        self._sent += 1
                        self._resent += 1
                        to_send.append(cmd.frame)
                if not to_send and failed is None and now < next_hb:
                    wake = min(next_hb, next_health)
                    if self._outstanding is not None:
                        wake = min(wake, self._outstanding.deadline)
                    elif self._queue:
                        wake = now
                    if wake > now:
                        self._cond.wait(wake - now)
                        continue
            for frame in to_send:
                self._write(frame)
            if failed is not None:
                self._command_failed(failed)
            now = time.monotonic()
            if now >= next_hb:
                self._write(hb_frame)
                if self._hb_last is not None:
                    gap = now - self._hb_last
                    self.heartbeat_gaps.append(gap)
                    self._hb_gap_max = max(self._hb_gap_max, gap)
                self._hb_last = now
                next_hb += HEARTBEAT_S
                if next_hb <= now:  # we were held up: no burst of heartbeats to catch up
                    next_hb = now + HEARTBEAT_S
                self._judge_link(now)  # every heartbeat, so LOST shows within ~300 ms
            if now >= next_health:
                next_health = now + HEALTH_EVERY_S
                self._publish(self.health())
                self._hb_gap_max = 0.0

    def _command_failed(self, cmd: _Command) -> None:
        reason = f"no answer after {cmd.attempts} transmissions"
        self._finish(cmd, error=reason)
        if cmd.msg.TYPE == MsgType.HELLO and not cmd.internal and self.ident is None:
            return  # the handshake reports this itself
        self._publish(CommandFailed(time.time(), cmd.name, reason))
        if cmd.msg.TYPE != MsgType.STOP:
            # A command the machine never confirmed: stop rather than guess its state.
            self.stop(wait=False)

    def _judge_link(self, now: float) -> None:
        age = now - self._last_rx
        new = (LinkState.LOST if age > LOST_AFTER_S or self._dead
               else LinkState.STALE if age > STALE_AFTER_S else LinkState.CONNECTED)
        if new != self.link_state:
            old, self.link_state = self.link_state, new
            reason = self._dead or f"last frame from the machine {age * 1000:.0f} ms ago"
            if (new == LinkState.LOST and not self._dead
                    and self.state in (State.ARMED, State.RUNNING)):
                # We cannot see the needle. The machine's watchdog covers a link cut in our
                # direction; a machine that has gone silent but still hears us is stopped here.
                self.stop(wait=False)
                reason += "; STOP sent"
            self._publish(LinkStateChanged(time.time(), old, new, reason))

    def _gone(self, reason: str) -> None:
        if self._dead or self._closing.is_set():
            return
        self._dead = reason
        with self._cond:
            for c in [*self._queue, *([self._outstanding] if self._outstanding else [])]:
                self._finish(c, error=reason)
            self._queue.clear()
            self._outstanding = None
            self._cond.notify_all()
        old, self.link_state = self.link_state, LinkState.LOST
        if old != LinkState.LOST:
            self._publish(LinkStateChanged(time.time(), old, LinkState.LOST, reason))

    def _read_loop(self) -> None:
        while not self._closing.is_set():
            try:
                data = self.transport.read()
            except TransportError as exc:
                self._gone(str(exc))
                return
            if not data:
                continue
            for frame in self._decoder.feed(data):
                try:
                    self._on_frame(frame)
                except Exception:  # a bug in a subscriber must not kill the link
                    log.exception("while handling a frame")

    def _on_frame(self, frame: Frame) -> None:
        now = time.monotonic()
        if frame.type == MsgType.TELEMETRY:
            self._last_rx = now
            try:
                t = Telemetry.from_payload(frame.payload)
            except Malformed:
                return
            self._on_telemetry(frame.seq, t, now)
            return
        if frame.type not in (MsgType.ACK, MsgType.NACK, MsgType.APPLIED, MsgType.IDENT):
            self._echoes += 1
            return  # a host-type frame (an echo): not from the machine
        self._last_rx = now
        try:
            msg = frame.message()
        except VersionMismatch as exc:
            with self._cond:
                cmd = self._outstanding
                if cmd is not None and cmd.msg.TYPE == MsgType.HELLO and frame.ack == cmd.seq:
                    self._outstanding = None
                    self._finish(cmd, error=(
                        f"protocol version mismatch: the machine speaks version {exc.version},"
                        f" this smp speaks version {PROTOCOL_VERSION}"))
                    self._cond.notify_all()
            return
        except Malformed:
            return
        cmd = None
        with self._cond:
            out = self._outstanding
            if out is not None and frame.ack == out.seq and _answers(out, msg):
                cmd, self._outstanding = out, None
                if out.attempts == 1 and out.fixed_interval is None:
                    self._rtt_sample(now - out.first_sent)
                self._cond.notify_all()
        if isinstance(msg, Ident):
            self._on_ident(msg, internal=cmd is not None and cmd.internal)
        if cmd is None:
            return  # a late duplicate answer: already handled
        if isinstance(msg, Nack) and msg.code == ErrorCode.NOT_READY:
            self._rehandshake()
        if cmd.msg.TYPE == MsgType.SET and cmd.requested is not None:
            if isinstance(msg, Applied):
                try:
                    confirmed = MachineSettings.from_wire(*msg.settings)
                except ValidationError:
                    confirmed = None
                if confirmed is not None:
                    self.applied = confirmed
                    self._publish(SettingsApplied(time.time(), cmd.requested, confirmed,
                                                  cmd.seq))
            elif isinstance(msg, Nack):
                self._publish(SettingsRefused(time.time(), cmd.requested, msg.describe(),
                                              "machine"))
        if (cmd.msg.TYPE == MsgType.ARM and isinstance(msg, Ack)
                and self.state not in (State.ARMED, State.RUNNING)):
            # The machine is armed from its ACK on, not from the next telemetry: a machine that
            # falls silent in between must still be stopped when the link is judged LOST.
            # (It acknowledges ARM only with nothing latched.)
            self._note_state(State.ARMED, Fault.NONE)
        self._finish(cmd, reply=msg)

    def _on_ident(self, ident: Ident, *, internal: bool) -> None:
        old = self.ident
        if old is None:
            return  # the first handshake: connect() adopts it
        if ident.boot_id != old.boot_id:
            self.applied = None
            self._publish(MachineRebooted(time.time(), old.boot_id, ident.boot_id))
            try:
                self._adopt(ident)
            except SmpError as exc:
                self._publish(CommandFailed(time.time(), "HELLO", str(exc)))
        else:
            self.ident = ident
            self._note_state(State(ident.state), Fault(ident.faults))

    def _rehandshake(self) -> None:
        with self._cond:
            pending = [c for c in self._queue if c.msg.TYPE == MsgType.HELLO and c.internal]
            out = self._outstanding
            if pending or (out is not None and out.msg.TYPE == MsgType.HELLO):
                return
        self._submit(Hello(PROTOCOL_VERSION), front=True, internal=True)

    def _on_telemetry(self, seq: int, t: Telemetry, now: float) -> None:
        prev = self.telemetry
        if self._telemetry_seq is not None:
            self._telemetry_lost += (seq - self._telemetry_seq - 1) & 0xFF
        self._telemetry_seq = seq
        self._last_telemetry_at = now
        self.telemetry = t
        self._note_state(State(t.state), Fault(t.faults))
        if self.ident is not None and (not t.flags & Telemetry.SESSION or (
                prev is not None and t.uptime_ms < prev.uptime_ms)):
            # The machine forgot our handshake, or its clock went back: it restarted.
            # Ask who it is now (a new boot id is reported as MachineRebooted).
            self._rehandshake()
        self._publish(TelemetryReceived(time.time(), t))

    def _note_state(self, state: State, faults: Fault) -> None:
        old_state, old_faults = self.state, self.faults
        self.state, self.faults = state, faults
        if state != old_state or faults != old_faults:
            self._publish(StateChanged(time.time(), old_state, state, faults))
        new = faults & ~old_faults
        if new:
            self._publish(FaultLatched(time.time(), Fault(new), faults))

    def _publish(self, event: Event) -> None:
        for cb in list(self._subscribers):
            try:
                cb(event)
            except Exception:
                log.exception("subscriber %r failed on %r", cb, event)


__all__ = ["CommandRefused", "EmptyEnvelope", "LinkError", "Machine", "OutsideEnvelope"]
