"""What a clause works with: the probe, the device's first IDENT, the controls, and the small
steps every clause repeats (a new session, a command that must be answered, the next
telemetry frame). A clause raises `Fail` with what it observed, or `Skip` with why it could
not run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypedDict, Unpack

from firmware_bridge.codec import (
    Ack,
    Arm,
    ClearFault,
    Disarm,
    Frame,
    Hello,
    Ident,
    Malformed,
    Message,
    Nack,
    Stop,
    Telemetry,
    VersionMismatch,
)
from firmware_bridge.conformance.probe import Probe, Reading
from firmware_bridge.schema import (
    PROTOCOL_VERSION,
    STEPS,
    ErrorCode,
    Field,
    MsgType,
    State,
)
from protocols.settings import WireSettings

ANSWER_S = 0.3  # a command unanswered this long has no answer (RTO_MAX is 0.5 s; a device
#                 on a clean line answers in a few ms)


class Fail(Exception):
    """The device did not do what the clause requires; the message is what was observed."""


class Skip(Exception):
    """The clause cannot run here; the message says why."""


class Operator(Protocol):
    """Whoever can press the pedal or cause a fault: the simulator's control channel, or the
    person at the machine. Actions are scenario-language lines: "pedal down", "pedal up",
    "fault stall", "clear stall", "fault reboot", "fault depth-short 1200", ..."""

    name: str  # "simulator" or "person"

    def can(self, action: str) -> bool: ...

    def do(self, action: str, prompt: str | None = None,
           idle: Callable[[], None] | None = None) -> None:
        """Carry out `action`; `prompt` is what to ask a person; `idle` keeps the link going
        (call it while waiting, so the heartbeat never stops)."""


def describe(f: Frame) -> str:
    """One frame as a person reads it."""
    try:
        msg = f.message()
    except VersionMismatch as exc:
        return f"IDENT of protocol version {exc.version}"
    except Malformed:
        return f"{MsgType(f.type).name} with a {len(f.payload)}-byte payload"
    if isinstance(msg, Nack):
        code = ErrorCode(msg.code).name if msg.code in set(ErrorCode) else str(msg.code)
        fld = Field(msg.field).name if msg.field in set(Field) else str(msg.field)
        return f"NACK {code} field {fld}"
    if isinstance(msg, Ack):
        cmd = MsgType(msg.command).name if msg.command in set(MsgType) else str(msg.command)
        return f"ACK {cmd}"
    return type(msg).__name__.upper()


def state_text(t: Telemetry) -> str:
    name = State(t.state).name if t.state in set(State) else f"state {t.state}"
    return f"{name} faults 0x{t.faults:04X}"


class AskOptions(TypedDict, total=False):
    """Context.ask's keyword arguments, for the expect_* helpers that pass them through."""

    seq: int | None
    raw: tuple[int, bytes] | None
    ack: int
    timeout: float


class Context:
    def __init__(self, probe: Probe, ident: Ident, operator: Operator | None,
                 allow_arm: bool):
        self.probe = probe
        self.ident = ident
        self.operator = operator
        self.allow_arm = allow_arm
        self._cleanups: list[Callable[[], object]] = []
        lo, hi = ident.lo, ident.hi

        def pick(i: int, wanted: int) -> int:
            v = max(lo[i], min(hi[i], wanted))
            return v - (v - lo[i]) % STEPS[i]

        self.good = WireSettings(pick(0, 1800), pick(1, 1300), pick(2, 7500))
        self.other = WireSettings(pick(0, 1500), pick(1, 1100), pick(2, 6500))
        if self.other == self.good:
            self.other = WireSettings(*(pick(i, v + STEPS[i]) for i, v in enumerate(self.good)))

    # --- controls ------------------------------------------------------------------------

    def act(self, action: str, prompt: str | None = None) -> None:
        if self.operator is None or not self.operator.can(action):
            raise Skip(f"needs '{action}': no simulator control channel for this port, and "
                       "no person to ask (--non-interactive, or no terminal)")
        self.operator.do(action, prompt, self.probe.poll)

    def later(self, undo: Callable[[], object]) -> None:
        """Run `undo` when the clause ends, whatever its outcome (last registered, first)."""
        self._cleanups.append(undo)

    def finish(self) -> list[str]:
        """Undo what the clause set up; what could not be undone, as lines."""
        problems = []
        while self._cleanups:
            undo = self._cleanups.pop()
            try:
                undo()
            except (Fail, Skip) as exc:
                problems.append(str(exc))
        self.probe.heartbeat = True
        self.probe.heartbeat_feeds = True
        return problems

    # --- commands ------------------------------------------------------------------------

    def ask(self, msg: Message | None = None, *, seq: int | None = None,
            raw: tuple[int, bytes] | None = None, ack: int = 0,
            timeout: float = ANSWER_S) -> tuple[int, Frame]:
        what = MsgType(raw[0] if raw else msg.TYPE).name  # type: ignore[union-attr]
        seq, got = self.probe.command(msg, seq=seq, raw=raw, ack=ack, timeout=timeout)
        if got is None:
            raise Fail(f"{what} seq {seq}: no answer within {timeout * 1000:.0f} ms")
        return seq, got.frame

    def expect_ack(self, msg: Message, **kw: Unpack[AskOptions]) -> int:
        seq, f = self.ask(msg, **kw)
        if f.type != MsgType.ACK:
            raise Fail(f"{msg.TYPE.name} seq {seq}: {describe(f)}, not ACK")
        return seq

    def expect_nack(self, msg: Message | None, code: ErrorCode, fld: Field = Field.NONE,
                    **kw: Unpack[AskOptions]) -> int:
        what = MsgType(kw["raw"][0] if kw.get("raw") else msg.TYPE).name  # type: ignore
        seq, f = self.ask(msg, **kw)
        if f.type != MsgType.NACK:
            raise Fail(f"{what} seq {seq}: {describe(f)}, not NACK {code.name}")
        n = f.message(Nack)
        if (n.code, n.field) != (code, fld):
            raise Fail(f"{what} seq {seq}: {describe(f)}, not NACK {code.name} field "
                       f"{fld.name}")
        return seq

    def hello(self, version: int = PROTOCOL_VERSION,
              **kw: Unpack[AskOptions]) -> tuple[int, Ident]:
        seq, f = self.ask(Hello(version), **kw)
        if f.type != MsgType.IDENT:
            raise Fail(f"HELLO seq {seq}: {describe(f)}, not IDENT")
        try:
            ident = f.message(Ident)
        except VersionMismatch as exc:
            raise Fail(f"IDENT says protocol version {exc.version}, not "
                       f"{PROTOCOL_VERSION}") from None
        except Malformed as exc:
            raise Fail(f"IDENT: {exc}") from None
        return seq, ident

    def session(self) -> Ident:
        """A new session (HELLO), disarmed and with no fault latched."""
        _, ident = self.hello()
        if ident.state in (State.ARMED, State.RUNNING):
            self.expect_ack(Disarm())
        if ident.state == State.FAULTED or ident.faults:
            seq, f = self.ask(ClearFault())
            if f.type != MsgType.ACK:
                raise Fail(f"setup: CLEAR_FAULT seq {seq}: {describe(f)} (faults "
                           f"0x{ident.faults:04X})")
        return ident

    def arm(self) -> None:
        """The only way a clause sends ARM: never without --allow-arm."""
        if not self.allow_arm:
            raise Skip("needs --allow-arm")
        self.later(lambda: self.probe.command(Disarm()))
        self.expect_ack(Arm())

    def stop(self) -> int:
        seq, f = self.ask(Stop())
        if f.type != MsgType.ACK:
            raise Fail(f"STOP seq {seq}: {describe(f)}, not ACK")
        return seq

    def clear(self) -> None:
        seq, f = self.ask(ClearFault())
        if f.type != MsgType.ACK:
            raise Fail(f"CLEAR_FAULT seq {seq}: {describe(f)}, not ACK")

    # --- telemetry -----------------------------------------------------------------------

    def tel(self, timeout: float = 0.2) -> Telemetry:
        """The next telemetry frame to arrive."""
        s = self.probe.next_telemetry(timeout)
        if s is None:
            raise Fail(f"no TELEMETRY within {timeout * 1000:.0f} ms")
        return s.telemetry

    def wait_telemetry(self, predicate: Callable[[Telemetry], bool], timeout: float,
                       what: str, since: int | None = None) -> Reading:
        s = self.probe.wait_for(lambda s: isinstance(s, Reading) and predicate(s.telemetry),
                                timeout, since=since)
        if not isinstance(s, Reading):  # None: not within the timeout
            last = self.probe.telemetry()[-1:]
            seen = state_text(last[0].telemetry) if last else "no telemetry"
            raise Fail(f"{what}: not within {timeout * 1000:.0f} ms (last frame: {seen})")
        return s

