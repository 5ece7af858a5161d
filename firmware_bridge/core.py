"""The link core: the host side of docs/protocol.md as a pure state machine (sans-IO).

Bytes and time go in; bytes to write, events and the next deadline come out:

    core = LinkCore(envelope, now=t)
    core.begin(now=t)                     # HELLO, repeated until IDENT or 1.5 s
    core.receive(data, now=t)             # bytes from the machine
    ticket = core.submit(Set(...), requested=settings, now=t)
    core.stop(now=t)                      # STOP: first in line, three copies
    core.tick(now=t)                      # timers: heartbeat, retransmission, link judging
    port.write(core.take_output()); handle(core.take_events()); sleep(core.deadline() - t)

Nothing here reads a clock, sleeps, locks or touches a port, so every timing rule (heartbeat,
RTO, retransmission, link judging, STOP on silence) is tested on a fake clock. One thin I/O
loop (firmware_bridge.link.Machine) drives it; it is the only owner of a core.

What the host believes about the machine comes only from what the machine said, and what it
has not said is unknown: the state from TELEMETRY (and IDENT), the settings in force from
APPLIED and from TELEMETRY's setpoints, each telemetry frame taken in order of its counter.
A command whose outcome was lost makes the settings UNKNOWN until the machine reports them;
values a conforming machine cannot send are unsafe and answered with STOP.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from pydantic import ValidationError

from firmware_bridge.codec import (
    PROTOCOL_VERSION,
    Ack,
    Applied,
    Decoder,
    ErrorCode,
    Fault,
    Flag,
    Frame,
    Heartbeat,
    Hello,
    Ident,
    Malformed,
    Message,
    MsgType,
    Nack,
    State,
    Stop,
    Telemetry,
    VersionMismatch,
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
    SettingsUnknown,
    StateChanged,
    TelemetryReceived,
    UnsafeReport,
)
from firmware_bridge.schema import (
    HANDSHAKE_MS,
    HARD_HI,
    HARD_LO,
    HEARTBEAT_MS,
    HELLO_INTERVAL_MS,
    KNOWN_FAULTS,
    NO_SETTINGS,
    RESERVED_FLAGS,
    RETRIES,
    RTO_INITIAL_MS,
    RTO_MAX_MS,
    RTO_MIN_MS,
    STALE_AFTER_MS,
    STOP_COPIES,
    UNKNOWN_FAULTS,
    WATCHDOG_DEFAULT_MS,
    one_way_stop_ms,
)
from protocols.envelope import HARD_LIMITS, EmptyEnvelope, SafetyEnvelope
from protocols.errors import SmpError
from protocols.settings import MachineSettings, WireSettings

# The protocol's own figures (firmware_bridge/schema.py), in seconds.
HEARTBEAT_S = HEARTBEAT_MS / 1000
RTO_MIN_S, RTO_MAX_S, RTO_INITIAL_S = RTO_MIN_MS / 1000, RTO_MAX_MS / 1000, RTO_INITIAL_MS / 1000
HANDSHAKE_S = HANDSHAKE_MS / 1000
HELLO_INTERVAL_S = HELLO_INTERVAL_MS / 1000
WATCHDOG_DEFAULT_S = WATCHDOG_DEFAULT_MS / 1000
STALE_AFTER_S = STALE_AFTER_MS / 1000
HEALTH_EVERY_S = 0.250
# Deadlines are sums of float periods: a tick at exactly the due time must count as due.
_EPS = 1e-6


def stop_silence_s(watchdog_s: float) -> float:
    """How long an armed machine may stay silent before the host sends STOP (C-12 in
    docs/protocol.md): the machine's watchdog covers a cut towards the machine; a cut towards
    the host (the machine still hears us) is covered only by this, early enough that the STOP
    lands inside the watchdog time."""
    return one_way_stop_ms(round(watchdog_s * 1000)) / 1000


class Outcome(Enum):
    PENDING = "pending"
    DONE = "done"  # answered: `reply` is the ACK, APPLIED, IDENT or NACK
    FAILED = "failed"  # no answer after every try: its effect on the machine is unknown
    CANCELLED = "cancelled"  # never sent, or superseded by STOP (the STOP is what counts)


@dataclass(eq=False)
class Ticket:
    """One command's life: its frame, its tries, and how it ended."""

    msg: Message
    requested: MachineSettings | None = None
    internal: bool = False  # a handshake the link started by itself
    max_attempts: int = 1 + RETRIES
    fixed_interval: float | None = None  # HELLO while hand-shaking
    seq: int = 0
    frame: bytes = b""
    attempts: int = 0
    first_sent: float = 0.0
    deadline: float = 0.0
    outcome: Outcome = Outcome.PENDING
    reply: Message | None = None
    error: str = ""
    sent_once: bool = field(default=False, repr=False)

    @property
    def name(self) -> str:
        return self.msg.TYPE.name

    @property
    def done(self) -> bool:
        return self.outcome is not Outcome.PENDING


class Knowledge(Enum):
    """What the host knows of the settings in force."""

    NONE = "none"  # the machine has applied nothing since boot
    KNOWN = "known"  # `applied` is what the machine reported
    UNKNOWN = "unknown"  # a SET's outcome was lost and the machine has not told us since


def _answers(ticket: Ticket, msg: Message) -> bool:
    t = ticket.msg.TYPE
    if isinstance(msg, Ident):
        return t == MsgType.HELLO
    if isinstance(msg, Applied):
        return t == MsgType.SET
    if isinstance(msg, Ack | Nack):
        return msg.command == t
    return False


def _seq_after(a: int, b: int) -> bool:
    """Sequence number `a` (1..255, 0 skipped) comes after `b` within half the cycle."""
    return 0 < (a - b) % 255 < 128


def unsafe_telemetry(t: Telemetry) -> str:
    """Why this frame cannot come from a conforming machine ("" if it can)."""
    if t.state not in State._value2member_map_:
        return f"unknown state {t.state}"
    if t.flags & RESERVED_FLAGS:
        return f"reserved flag bits set (flags {t.flags:#04x})"
    if t.faults & UNKNOWN_FAULTS:
        return f"unknown fault bits (faults {t.faults:#06x})"
    running, motor = t.state == State.RUNNING, bool(t.flags & Flag.MOTOR)
    if running != motor:
        return f"state {State(t.state).name} with the motor bit {'set' if motor else 'clear'}"
    if not motor and t.voltage_mv:
        return f"{t.voltage_mv} mV drive voltage while the motor is not driven"
    if t.voltage_mv > HARD_HI.voltage_mv:
        return f"drive voltage {t.voltage_mv} mV above the hard limit"
    setpoints = t.setpoints
    if setpoints != NO_SETTINGS:
        try:
            MachineSettings.from_wire(*setpoints)
        except ValidationError:
            return f"setpoints {tuple(setpoints)} outside the hard limits or off step"
    return ""


def envelope_problems(envelope: SafetyEnvelope, configured: SafetyEnvelope,
                      machine: SafetyEnvelope | None, settings: MachineSettings) -> list[str]:
    """Why `settings` lie outside the adopted `envelope`, naming both ranges it came from."""
    out = []
    for v in envelope.check(settings):
        q = v.quantity
        where = []
        if machine is not None:
            r = machine.range(q)
            where.append(f"the machine allows {q.range_text(r.lo, r.hi)}")
        r = configured.range(q)
        where.append(f"the configured envelope {q.range_text(r.lo, r.hi)}")
        out.append(f"{v} ({', '.join(where)})")
    return out


class LinkCore:
    """The host's half of one machine link. Not thread-safe: one owner drives it."""

    def __init__(self, envelope: SafetyEnvelope = HARD_LIMITS, *, now: float,
                 seq: int | None = None, rng: random.Random | None = None):
        self.configured = envelope
        self.envelope = envelope  # narrowed to the machine's limits by the handshake
        self.machine_envelope: SafetyEnvelope | None = None
        self.ident: Ident | None = None
        self.state: State | None = None  # None: not known (before IDENT, or unsafe telemetry)
        self.faults = Fault.NONE
        self.knowledge = Knowledge.NONE
        self.applied: MachineSettings | None = None  # the settings in force, when KNOWN
        self.confirmed = False  # a SET answered by APPLIED since the settings were last unknown
        self.telemetry: Telemetry | None = None
        self.link_state = LinkState.CONNECTED
        self.dead = ""  # the port went away
        self.closed = False
        self.watchdog_s = WATCHDOG_DEFAULT_S
        self._decoder = Decoder()
        self._out = bytearray()
        self._events: list[Event] = []
        self._queue: deque[Ticket] = deque()
        self._outstanding: Ticket | None = None
        rng = rng or random.Random()
        self._seq = seq if seq is not None else rng.randint(1, 255)
        self._last_rx = now
        self._last_telemetry_at: float | None = None
        self._telemetry_seq: int | None = None
        self._telemetry_lost = 0
        self._echoes = 0
        self._srtt: float | None = None
        self._rttvar = 0.0
        self.rto = RTO_INITIAL_S
        self._sent = 0
        self._resent = 0
        self._next_hb = now
        self._hb_last: float | None = None
        self._hb_gap_max = 0.0
        self._quiet_until = 0.0  # after a STOP nobody acknowledged: only STOP copies go out
        self._next_health = now + HEALTH_EVERY_S
        self._armed_hint = False  # an acknowledged ARM, until telemetry says otherwise
        self._silence_stop = False  # STOP already sent for this silence
        self._unsafe = ""  # the unsafe report in force (one STOP per distinct report)
        self.handshake: Ticket | None = None
        self.heartbeat_gaps: deque[float] = deque(maxlen=5000)

    # --- inputs --------------------------------------------------------------------------

    def begin(self, *, now: float, timeout_s: float = HANDSHAKE_S) -> Ticket:
        """Start the handshake: HELLO every 250 ms until IDENT, for at most `timeout_s`."""
        attempts = max(1, round(timeout_s / HELLO_INTERVAL_S))
        self.handshake = self.submit(Hello(PROTOCOL_VERSION), max_attempts=attempts,
                                     fixed_interval=HELLO_INTERVAL_S, now=now)
        return self.handshake

    def submit(self, msg: Message, *, now: float, requested: MachineSettings | None = None,
               max_attempts: int = 1 + RETRIES, fixed_interval: float | None = None,
               front: bool = False, internal: bool = False) -> Ticket:
        """Queue a command (stop-and-wait: it goes out when the one before it is answered)."""
        ticket = Ticket(msg, requested=requested, internal=internal, max_attempts=max_attempts,
                        fixed_interval=fixed_interval)
        if self.closed or self.dead:
            self._finish(ticket, Outcome.CANCELLED, error=self.dead or "the link is closed")
            return ticket
        if front:
            self._queue.appendleft(ticket)
        else:
            self._queue.append(ticket)
        self._pump(now)
        return ticket

    def stop(self, *, now: float) -> Ticket:
        """STOP at once, ahead of everything queued, three copies; it cancels the rest."""
        out = self._outstanding
        if out is not None and out.msg.TYPE == MsgType.STOP and not self.dead:
            # A STOP is already on its way: the same frame again (acted on whatever its seq).
            self._out = bytearray(out.frame * STOP_COPIES)
            return out
        pending = [*([self._outstanding] if self._outstanding else []), *self._queue]
        self._queue.clear()
        # A HELLO is harmless and a handshake must finish: it goes out again after the STOP.
        hellos = [c for c in pending if c.msg.TYPE == MsgType.HELLO]
        cancelled = [c for c in pending if c.msg.TYPE != MsgType.HELLO]
        for h in hellos:
            h.attempts = 0
        self._queue.extend(hellos)
        ticket = Ticket(Stop())
        ticket.seq = self._next_seq()
        ticket.frame = encode(ticket.msg, seq=ticket.seq)
        ticket.attempts, ticket.first_sent = 1, now
        ticket.deadline = now + self.rto
        self._outstanding = ticket
        self._sent += 1
        for c in cancelled:
            self._finish(c, Outcome.CANCELLED, error="cancelled by STOP")
            if c.msg.TYPE == MsgType.SET and c.sent_once:
                # It may have reached the machine before the STOP: not known until it says.
                self._settings_unknown(c, "a SET was in flight when STOP was sent", now)
        if self.dead or self.closed:
            self._finish(ticket, Outcome.FAILED, error=self.dead or "the link is closed")
            self._outstanding = None
            return ticket
        # Ahead of everything: what was not yet written is superseded by the STOP.
        self._out = bytearray(ticket.frame * STOP_COPIES)
        return ticket

    def receive(self, data: bytes, *, now: float) -> None:
        for frame in self._decoder.feed(data):
            self._on_frame(frame, now)

    def port_gone(self, reason: str, *, now: float) -> None:
        if self.dead or self.closed:
            return
        self.dead = reason
        for c in [*self._queue, *([self._outstanding] if self._outstanding else [])]:
            self._finish(c, Outcome.FAILED, error=reason)
            if c.msg.TYPE == MsgType.SET and c.sent_once:
                self._settings_unknown(c, reason, now)
        self._queue.clear()
        self._outstanding = None
        self._out.clear()
        self._set_link(LinkState.LOST, reason, now)

    def reconnected(self, *, now: float) -> None:
        """The port is open again after it went away: hand-shake again (a restarted machine
        is then reported as such). Nothing is re-armed: that is a person's act."""
        if not self.dead or self.closed:
            return
        self.dead = ""
        self._decoder.reset()
        self._telemetry_seq = None
        self._silence_stop = False
        self._last_rx = now  # silence is counted from the port's return, not from before it
        self._next_hb = now
        self._rehandshake(now)

    def close(self) -> None:
        self.closed = True
        for c in [*self._queue, *([self._outstanding] if self._outstanding else [])]:
            self._finish(c, Outcome.CANCELLED, error="the link was closed")
        self._queue.clear()
        self._outstanding = None

    def tick(self, *, now: float) -> None:
        """Advance every timer to `now`."""
        if self.dead or self.closed:
            return
        self._pump(now)
        if now >= self._next_hb - _EPS:
            if now >= self._quiet_until - _EPS:
                self._out += _HEARTBEAT
                if self._hb_last is not None:
                    gap = now - self._hb_last
                    self.heartbeat_gaps.append(gap)
                    self._hb_gap_max = max(self._hb_gap_max, gap)
                self._hb_last = now
            self._next_hb += HEARTBEAT_S
            if self._next_hb <= now + _EPS:  # held up: no burst of heartbeats to catch up
                self._next_hb = now + HEARTBEAT_S
        self._judge_link(now)
        if now >= self._next_health - _EPS:
            self._next_health = now + HEALTH_EVERY_S
            self._events.append(self.health(now))
            self._hb_gap_max = 0.0

    # --- outputs -------------------------------------------------------------------------

    def take_output(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def take_events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def busy(self) -> bool:
        """Output or events waiting to be taken."""
        return bool(self._out or self._events)

    def deadline(self) -> float:
        """When `tick` must next be called, at the latest (never, on a dead link: only
        a reopened port wakes it)."""
        if self.dead or self.closed:
            return math.inf
        times = [self._next_hb, self._next_health]
        if self._outstanding is not None:
            times.append(self._outstanding.deadline)
        if self._watching():
            times.append(self._last_rx + stop_silence_s(self.watchdog_s))
        if self.link_state == LinkState.CONNECTED:
            times.append(self._last_rx + STALE_AFTER_S)
        elif self.link_state == LinkState.STALE:
            times.append(self._last_rx + self.watchdog_s)
        return min(times)

    # --- what the host knows ---------------------------------------------------------------

    @property
    def simulated(self) -> bool:
        from firmware_bridge.codec import Capability

        return bool(self.ident and self.ident.capabilities & Capability.SIMULATOR)

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def may_be_armed(self) -> bool:
        """Armed, running, or not known not to be: the states where silence means STOP."""
        return self._armed_hint or self.state in (State.ARMED, State.RUNNING, None)

    def check(self, settings: MachineSettings) -> list[str]:
        """Why `settings` would be refused before sending (empty if they would be sent)."""
        return envelope_problems(self.envelope, self.configured, self.machine_envelope,
                                 settings)

    def health(self, now: float) -> LinkHealth:
        age = None if self._last_telemetry_at is None else now - self._last_telemetry_at
        return LinkHealth(
            at=now, rtt_ms=None if self._srtt is None else self._srtt * 1000,
            rto_ms=self.rto * 1000, resend_ratio=self._resent / self._sent if self._sent else 0.0,
            telemetry_age_ms=None if age is None else age * 1000,
            telemetry_lost=self._telemetry_lost, bad_frames=self._decoder.stats.bad_frames,
            heartbeat_gap_max_ms=self._hb_gap_max * 1000)

    def no_ident_reason(self, url: str) -> str:
        """Why the handshake found no machine, in words a person can act on."""
        t = self.handshake
        if t is not None and t.error and not t.error.startswith("no answer"):
            return f"{url}: {t.error}"
        if self.dead:
            return f"{url}: {self.dead}"
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

    # --- internals: commands ---------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1  # 1..255; 0 means "not a command"
        return self._seq

    def _timeout_for(self, t: Ticket) -> float:
        if t.fixed_interval is not None:
            return t.fixed_interval
        return min(RTO_MAX_S, self.rto * 2.0 ** (t.attempts - 1))  # (int ** int is Any)

    def _pump(self, now: float) -> None:
        """Send the next queued command, or retry / fail the outstanding one."""
        t = self._outstanding
        if t is None:
            if not self._queue or now < self._quiet_until - _EPS:
                return
            t = self._outstanding = self._queue.popleft()
            t.seq = self._next_seq()
            t.frame = encode(t.msg, seq=t.seq)
            t.attempts, t.first_sent, t.sent_once = 1, now, True
            t.deadline = now + self._timeout_for(t)
            self._sent += 1
            self._out += t.frame
            return
        if now < t.deadline - _EPS:
            return
        if t.attempts >= t.max_attempts:
            self._outstanding = None
            self._failed(t, now)
            self._pump(now)
            return
        t.attempts += 1
        t.deadline = now + self._timeout_for(t)
        self._sent += 1
        self._resent += 1
        self._out += t.frame

    def _failed(self, t: Ticket, now: float) -> None:
        reason = f"no answer after {t.attempts} transmissions"
        self._finish(t, Outcome.FAILED, error=reason)
        if t.msg.TYPE == MsgType.HELLO and not t.internal and self.ident is None:
            return  # the handshake reports this itself
        self._events.append(CommandFailed(now, t.name, reason))
        if t.msg.TYPE == MsgType.STOP:
            # Nobody confirmed the needle stopped. Go quiet (STOP copies aside) for the
            # watchdog time: a machine that hears us latches the STOP, one that does not hear
            # us is stopped by its own watchdog, whichever became of the STOP.
            self._quiet_until = now + self.watchdog_s + HEARTBEAT_S
            retry = Ticket(Stop(), max_attempts=1 << 30, fixed_interval=RTO_MAX_S)
            retry.seq, retry.frame = t.seq, t.frame
            retry.attempts, retry.first_sent, retry.sent_once = 1, now, True
            retry.deadline = now + RTO_MAX_S
            self._outstanding = retry
            self._out += retry.frame
            return
        if t.msg.TYPE == MsgType.SET:
            self._settings_unknown(t, reason, now)
        # A command the machine never confirmed: stop rather than guess its state.
        self.stop(now=now)

    def _finish(self, t: Ticket, outcome: Outcome, *, reply: Message | None = None,
                error: str = "") -> None:
        if t.done:
            return
        t.outcome, t.reply, t.error = outcome, reply, error

    def _rtt_sample(self, r: float) -> None:
        # RFC 6298 smoothing; Karn: only commands answered on their first transmission.
        if self._srtt is None:
            self._srtt, self._rttvar = r, r / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - r)
            self._srtt = 0.875 * self._srtt + 0.125 * r
        self.rto = min(RTO_MAX_S, max(RTO_MIN_S, self._srtt + max(0.005, 4 * self._rttvar)))

    def _rehandshake(self, now: float) -> None:
        pending = [c for c in self._queue if c.msg.TYPE == MsgType.HELLO and c.internal]
        out = self._outstanding
        if pending or (out is not None and out.msg.TYPE == MsgType.HELLO):
            return
        self.submit(Hello(PROTOCOL_VERSION), front=True, internal=True, now=now)

    # --- internals: what the machine says -------------------------------------------------

    def _on_frame(self, frame: Frame, now: float) -> None:
        if frame.type == MsgType.TELEMETRY:
            try:
                tel = frame.message(Telemetry)
            except Malformed:
                return
            self._last_rx = now
            self._on_telemetry(frame, tel, now)
            return
        if frame.type not in (MsgType.ACK, MsgType.NACK, MsgType.APPLIED, MsgType.IDENT):
            self._echoes += 1
            return  # a host-type frame (an echo): not from the machine
        try:
            msg = frame.message()
        except VersionMismatch as exc:
            self._last_rx = now
            t = self._outstanding
            if t is not None and t.msg.TYPE == MsgType.HELLO and frame.ack == t.seq:
                self._outstanding = None
                self._finish(t, Outcome.FAILED, error=(
                    f"protocol version mismatch: the machine speaks version {exc.version}, "
                    f"this smp speaks version {PROTOCOL_VERSION}"))
                if self.ident is not None:
                    self._events.append(CommandFailed(now, "HELLO", t.error))
                    self._unsafe_report(now, t.error)
            return
        except Malformed:
            return
        self._last_rx = now
        t = self._outstanding
        if t is None or frame.ack != t.seq or not _answers(t, msg):
            if isinstance(msg, Ident) and self.ident is not None:
                self._on_ident(msg, now)
            return  # a late copy of an answer already handled
        self._outstanding = None
        if t.attempts == 1 and t.fixed_interval is None:
            self._rtt_sample(now - t.first_sent)
        if isinstance(msg, Ident):
            if self.ident is None:
                try:
                    self._adopt(msg, now)
                except LinkRefused as exc:
                    self._finish(t, Outcome.FAILED, error=str(exc))
                    return
            else:
                self._on_ident(msg, now)
        elif isinstance(msg, Nack) and msg.code == ErrorCode.NOT_READY:
            self._rehandshake(now)
        if t.msg.TYPE == MsgType.SET:
            self._set_answered(t, msg, now)
        elif t.msg.TYPE == MsgType.ARM and isinstance(msg, Ack):
            # Armed from its ACK on, for the decision to STOP on silence; what is shown as
            # ARMED still comes from the machine's telemetry.
            self._armed_hint = True
        elif t.msg.TYPE == MsgType.STOP and isinstance(msg, Ack):
            self._quiet_until = 0.0
        self._finish(t, Outcome.DONE, reply=msg)
        self._pump(now)

    def _set_answered(self, t: Ticket, msg: Message, now: float) -> None:
        assert t.requested is not None
        if isinstance(msg, Nack):
            self._events.append(SettingsRefused(now, t.requested, msg.describe(), "machine"))
            return
        assert isinstance(msg, Applied)
        try:
            confirmed = MachineSettings.from_wire(*msg.settings)
        except ValidationError:
            self._unsafe_report(now, f"read-back {tuple(msg.settings)} outside the hard limits")
            return
        self._know(confirmed, now, requested=t.requested, seq=t.seq, source="read-back")
        self.confirmed = True
        if confirmed != t.requested:
            # The machine is set to something nobody asked for: stop it. What it applied is
            # still what is published and recorded.
            self.stop(now=now)

    def _know(self, settings: MachineSettings | None, now: float, *,
              requested: MachineSettings | None, seq: int, source: str) -> None:
        if settings is None:
            self.knowledge, self.applied = Knowledge.NONE, None
            return
        changed = self.knowledge is not Knowledge.KNOWN or settings != self.applied
        self.knowledge, self.applied = Knowledge.KNOWN, settings
        if changed or source == "read-back":
            self._events.append(SettingsApplied(now, requested, settings, seq, source))

    def _settings_unknown(self, t: Ticket, reason: str, now: float) -> None:
        self.knowledge, self.applied, self.confirmed = Knowledge.UNKNOWN, None, False
        self._events.append(SettingsUnknown(now, t.requested, t.seq, reason))

    def _adopt(self, ident: Ident, now: float) -> None:
        lo = WireSettings(*(max(a, b) for a, b in zip(ident.lo, HARD_LO, strict=True)))
        hi = WireSettings(*(min(a, b) for a, b in zip(ident.hi, HARD_HI, strict=True)))
        try:
            machine_env = SafetyEnvelope.from_wire(lo, hi)
        except (ValidationError, ValueError) as exc:
            raise LinkRefused(f"the machine reports unusable limits "
                              f"({exc.__class__.__name__})") from None
        try:
            envelope = self.configured.intersect(machine_env, other_name="machine")
        except EmptyEnvelope as exc:
            raise LinkRefused(str(exc)) from None
        self.machine_envelope, self.envelope = machine_env, envelope
        self.ident = ident
        self.watchdog_s = ident.watchdog_ms / 1000
        self._note_state(State(ident.state) if ident.state in State._value2member_map_
                         else None, Fault(ident.faults & KNOWN_FAULTS), now)
        try:
            applied = (MachineSettings.from_wire(*ident.applied)
                       if ident.applied != NO_SETTINGS else None)
        except ValidationError:
            applied = None
        self._know(applied, now, requested=None, seq=0, source="telemetry")
        self.confirmed = applied is not None

    def _on_ident(self, ident: Ident, now: float) -> None:
        old = self.ident
        assert old is not None
        if ident.boot_id != old.boot_id:
            self._armed_hint = False
            self.confirmed = False
            self._events.append(MachineRebooted(now, old.boot_id, ident.boot_id))
            try:
                self._adopt(ident, now)
            except LinkRefused as exc:
                self._events.append(CommandFailed(now, "HELLO", str(exc)))
                self._unsafe_report(now, str(exc))
        else:
            self.ident = ident
            self.watchdog_s = ident.watchdog_ms / 1000
            self._note_state(State(ident.state) if ident.state in State._value2member_map_
                             else None, Fault(ident.faults & KNOWN_FAULTS), now)

    def _on_telemetry(self, frame: Frame, t: Telemetry, now: float) -> None:
        if self._telemetry_seq is not None and t.flags & Flag.SESSION:
            # In counter order: a copy, or an older frame overtaken by newer ones, says
            # nothing new. (A frame without the session bit is a restarted machine, whose
            # counter began again: always taken.)
            step = (frame.seq - self._telemetry_seq) & 0xFF
            if step == 0 or step >= 128:
                return
            self._telemetry_lost += step - 1
        self._telemetry_seq = frame.seq
        prev = self.telemetry
        self._last_telemetry_at = now
        self.telemetry = t
        problem = unsafe_telemetry(t)
        if problem:
            self._note_state(None, self.faults, now)
            self._unsafe_report(now, f"the machine reported {problem}")
            self._events.append(TelemetryReceived(now, t, frame.ack))
            return
        self._unsafe = ""
        state = State(t.state)
        if state not in (State.ARMED, State.RUNNING):
            self._armed_hint = False
        self._note_state(state, Fault(t.faults), now)
        if self.ident is not None and (not t.flags & Flag.SESSION or (
                prev is not None and t.uptime_ms < prev.uptime_ms)):
            # The machine forgot our handshake, or its clock went back: it restarted, and
            # holds no settings of ours. Ask who it is now (a new boot id is reported as
            # MachineRebooted).
            if self.knowledge is not Knowledge.NONE and t.setpoints == NO_SETTINGS:
                self._know(None, now, requested=None, seq=0, source="telemetry")
                self.confirmed = False
            self._rehandshake(now)
        else:
            self._settings_from_telemetry(frame.ack, t, now)
        self._events.append(TelemetryReceived(now, t, frame.ack))

    def _settings_from_telemetry(self, ack: int, t: Telemetry, now: float) -> None:
        """Telemetry names the setpoints in force, sampled with the last command acted on."""
        out = self._outstanding
        if out is not None and out.msg.TYPE == MsgType.SET and ack != out.seq:
            return  # our SET is in flight: this frame may be from before it
        setpoints = t.setpoints
        held = None if setpoints == NO_SETTINGS else MachineSettings.from_wire(*setpoints)
        if self.knowledge is Knowledge.UNKNOWN:
            if held is not None:
                self._know(held, now, requested=None, seq=ack, source="telemetry")
            else:
                self.knowledge = Knowledge.NONE
            return
        current = self.applied if self.knowledge is Knowledge.KNOWN else None
        if held == current:
            return
        if out is not None and out.msg.TYPE == MsgType.SET:
            return  # acted on, its APPLIED still to come: that answer is the read-back
        # The machine holds settings we were never told of: believe the machine, and stop.
        self._know(held, now, requested=None, seq=ack, source="telemetry")
        self.confirmed = False
        self._unsafe_report(now, f"the machine's setpoints changed without a SET answered "
                                 f"({tuple(setpoints)})")

    def _unsafe_report(self, now: float, what: str) -> None:
        if what == self._unsafe:
            return  # one STOP per distinct report, not one per frame
        self._unsafe = what
        self._events.append(UnsafeReport(now, what))
        if not self.dead and not self.closed:
            self.stop(now=now)

    def _note_state(self, state: State | None, faults: Fault, now: float) -> None:
        old_state, old_faults = self.state, self.faults
        self.state, self.faults = state, faults
        if state != old_state or faults != old_faults:
            self._events.append(StateChanged(now, old_state, state, faults))
        new = faults & ~old_faults
        if new:
            self._events.append(FaultLatched(now, Fault(new), faults))

    # --- internals: judging the link --------------------------------------------------------

    def _watching(self) -> bool:
        return (self.ident is not None and self.may_be_armed and not self._silence_stop
                and not self.dead)

    def _judge_link(self, now: float) -> None:
        age = now - self._last_rx
        if age < stop_silence_s(self.watchdog_s):
            self._silence_stop = False
        elif self._watching():
            # The machine may be running and we cannot see it: STOP now, early enough to land
            # inside the watchdog time if the machine still hears us.
            self._silence_stop = True
            self.stop(now=now)
            self._events.append(UnsafeReport(now, f"nothing from the machine for "
                                                  f"{age * 1000:.0f} ms while it may be armed; "
                                                  "STOP sent"))
        new = (LinkState.LOST if age > self.watchdog_s
               else LinkState.STALE if age > STALE_AFTER_S else LinkState.CONNECTED)
        self._set_link(new, f"last frame from the machine {age * 1000:.0f} ms ago", now)

    def _set_link(self, new: LinkState, reason: str, now: float) -> None:
        if new == self.link_state:
            return
        old, self.link_state = self.link_state, new
        self._events.append(LinkStateChanged(now, old, new, reason))


class LinkRefused(SmpError):
    """The machine answered, but this host must not drive it (limits, version)."""


_HEARTBEAT = encode(Heartbeat())
