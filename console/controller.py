"""The session owner: one thread holds all session state; everything else talks to it by
message.

    controller = SessionController(store, on_view=show)
    controller.connect_simulator()                 # or connect(port)
    controller.select_zone(Zone.CROWN)             # from a worker: waits for the outcome
    controller.stop()                              # straight to the machine service

Technician commands (from the screens' workers) and the machine's events arrive on one queue
and are handled on the session thread, one command at a time and in order. A command that
needs the machine or the record does not wait for it there: it sends its request and is
resumed when the answer comes back as a message, so the machine's events keep being handled
and the screen never freezes. STOP goes straight to the machine service from the caller's
thread, ahead of everything. Views leave as frozen snapshots through `on_view`.

The record is written by the recorder's sink (sessions/sink.py): every fact goes to a
durable journal first, then into the store. When the store does not write, the needle is
stopped, arming is refused and every screen says RECORD NOT WRITING until everything is in.

Run times, and the time of everything the needle did, come from the machine's uptime in its
telemetry, mapped once per session to wall time: a console that was paused or busy records
what the machine did, not when it heard of it.

Invariant 3: the record and the screen show as applied only what the machine reported.
Invariant 5: a simulator is SIMULATOR in the view and in the record's machine identity.
Invariant 7: a record that cannot write stops the needle and refuses arming.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias, TypedDict, TypeVar, TypeVarTuple, cast, overload

import console.sim_transport  # noqa: F401  (registers sim:// with the bridge's transports)
from console import flight_feed, logs, machine_process, simulator
from console.simulator import Controls
from console.view import (
    Link,
    MachineState,
    MachineView,
    View,
    WorkView,
    ZoneStatus,
    cartridge_refusal,
    fault_names,
    fault_text,
    machine_state,
)
from console.workflow import (
    Cartridge,
    ClientChoice,
    EndSummary,
    Plan,
    WorkflowError,
    next_session_text,
    next_stage,
)
from firmware_bridge import Fault, LinkState, Machine, State
from firmware_bridge.client import MachineClient
from firmware_bridge.commands import Kind, Op, Result, raise_for
from firmware_bridge.events import (
    CommandFailed,
    Event,
    FaultLatched,
    LinkHealth,
    LinkStateChanged,
    MachineRebooted,
    SettingsApplied,
    SettingsUnknown,
    StateChanged,
    TelemetryReceived,
    UnsafeReport,
)
from firmware_bridge.runs import RunCounter, RunEnded, RunStarted
from firmware_bridge.schema import KNOWN_FAULTS
from protocols import (
    DEPTH,
    HARD_LIMITS,
    QUANTITIES,
    RATE,
    VOLTAGE,
    MachineSettings,
    ProfileRefused,
    SafetyEnvelope,
    SkinCondition,
    SmpError,
    Stage,
    Zone,
    load_library,
    resolve,
)
from protocols.aftercare import AFTERCARE
from protocols.library import Library
from protocols.quantities import BY_FIELD
from sessions import facts, flight, history
from sessions.clients import NewClient, add_client
from sessions.gate import ClientFacts, Contraindication, Verdict, evaluate
from sessions.models import Outcome
from sessions.pseudonyms import Pseudonyms
from sessions.recorder import Machine as RecordMachine
from sessions.recorder import (
    OpenSession,
    Recorder,
    check_lot,
    close_interrupted,
    interrupted_sessions,
    needle_what,
    open_sessions,
    request,
)
from sessions.search import match_clients
from sessions.sink import RecorderSink, RecordStatus
from sessions.store import Store
from sessions.telemetry import Reading

log = logging.getLogger(__name__)

# The fine-adjustment keys' settings, by the name shown on screen.
ADJUSTABLE = {"depth": DEPTH.field, "rate": RATE.field, "voltage": VOLTAGE.field}
TREND_POINTS = 60
LOG_LINES = 8
CAPTION_EVERY_S = 0.5  # how often the simulator's scenario caption is asked for
COMMAND_TIMEOUT_S = 30.0
# No telemetry for this long (3 frame periods) and nothing the machine said is believed: the
# screen shows the state as UNKNOWN within 100 ms of the last frame. The session thread wakes
# this often while connected to judge it.
STALE_AFTER_S = 0.06
STALE_CHECK_S = 0.02
STOP_LATCH_WAIT_S = 2.0  # closing waits this long at most for an acknowledged STOP's latch
QUERY_FLUSH_S = 2.0  # a read waits this long at most for what was submitted to be written
UPTIME_WRAP = 1 << 32

__all__ = ["ADJUSTABLE", "SessionController", "WorkflowError"]


# --- what a command waits for -----------------------------------------------------------------

@dataclass(frozen=True)
class _MachineCall:
    """A command to the machine service; the generator is resumed with its Result."""

    op: Op
    arg: object = None


@dataclass(frozen=True)
class _OpenSession:
    """A session opened by the recorder's sink; resumed with facts.Opened or an SmpError."""

    request: facts.SessionRequest


@dataclass(frozen=True)
class _Query:
    """A read of the record, run on a worker thread once what was submitted is written;
    resumed with its result (or the SmpError it raised)."""

    fn: Callable[[], object]


# What a command's generator yields, and is resumed with the answer to. The answer's type
# depends on what was asked, so a step is resumed with an `object`; the helpers that yield
# (SessionController._machine_call, _opened, _query) say what it is.
_Wait: TypeAlias = "_MachineCall | _OpenSession | _Query"
_R = TypeVar("_R")
_Args = TypeVarTuple("_Args")
_Steps: TypeAlias = Generator[_Wait, object, _R]  # a command that waits: returns an _R


@dataclass(eq=False)
class _Command:
    fn: Callable[..., object]
    args: tuple[object, ...]
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None
    error: BaseException | None = None
    gen: Generator[_Wait, object, object] | None = None


class _FaultFields(TypedDict):
    faults: tuple[str, ...]
    fault_cause: str
    fault_action: str


# --- session state (the session thread's alone) -----------------------------------------------

@dataclass
class _ZoneState:
    run_ms: int = 0
    runs: int = 0
    coverage: int | None = None
    passes: int = 0
    settings: MachineSettings | None = None  # the last the machine confirmed here
    profile: str | None = None  # the profile chosen for this zone in this session
    # What the zone starts from (the resolved profile, or repeated settings) and why beyond
    # the profile's own reasons; the technician's steps from it hold for the session.
    start: MachineSettings | None = None
    start_why: tuple[str, ...] = ()
    steps: dict[str, int] = field(default_factory=dict)  # setting field -> steps

    def wanted(self, steps: dict[str, int] | None = None) -> MachineSettings:
        """The start plus `steps` (by default the zone's own); ValueError off the limits."""
        assert self.start is not None
        steps = self.steps if steps is None else steps
        values = {q.field: self.start.value(q) + q.step * steps.get(q.field, 0)
                  for q in QUANTITIES}
        return MachineSettings(**values)

    def why(self, steps: dict[str, int] | None = None) -> tuple[str, ...]:
        """What these settings carry beyond the profile: a repeat, the technician's steps."""
        return self.start_why + adjustment_texts(self.steps if steps is None else steps)


def adjustment_texts(steps: dict[str, int]) -> tuple[str, ...]:
    """"technician: depth +0.05 mm": each setting the technician moved, by how much."""
    out = []
    for name, fld in ADJUSTABLE.items():
        n = steps.get(fld, 0)
        if n:
            q = BY_FIELD[fld]
            out.append(f"technician: {name} {'+' if n > 0 else '-'}"
                       f"{q.fmt_unit(abs(q.step * n))}")
    return tuple(out)


@dataclass
class _Work:
    recorder: Recorder
    plan: Plan
    client: ClientChoice
    zones: dict[Zone, _ZoneState]
    zone: Zone | None = None
    profile: str = ""
    reasons: tuple[str, ...] = ()
    advisories: tuple[str, ...] = ()
    target: int | None = None
    runs: RunCounter = field(default_factory=RunCounter)  # from the machine's counters
    run_told: bool = False  # a run's start is in the record, its end not yet
    armed_once: bool = False
    clock: tuple[int, datetime] | None = None  # (machine uptime ms, wall time) at one instant
    # Each zone's cartridge (planned, or last fitted for it) and the one on the machine: none
    # at the start (a client's cartridge is fitted at the chair, confirmed on the first zone).
    cartridges: dict[Zone, Cartridge] = field(default_factory=dict)
    fitted: Cartridge | None = None
    # The needle_uses rows written (zone, code, lot, expiry): fitting the same lot for the
    # same zone again is a note on the timeline, not a second row for recalls to count.
    needles: set[tuple[Zone, str, str, date]] = field(default_factory=set)


def _since(later: int, earlier: int) -> int:
    """Milliseconds between two uptimes (it wraps at 2^32)."""
    return (later - earlier) % UPTIME_WRAP


class SessionController:
    # The keys that arm and disarm, as the console's key map has them (the app sets them):
    # the lines that say "re-arm (a)" or "disarm (x)" name the key that does it.
    arm_key = "a"
    disarm_key = "x"

    def __init__(self, store: Store, *, on_view: Callable[[View], None] | None = None,
                 envelope: SafetyEnvelope = HARD_LIMITS, library: Library | None = None,
                 publish_every_s: float = 0.2, today: Callable[[], date] | None = None,
                 journal_dir: Path | None = None, owner: str = "",
                 flight_retention: timedelta = flight.RETENTION):
        self.store = store
        self.flight_retention = flight_retention  # console.toml flight_retention_days
        self._flight: flight.FlightRecorder | None = None  # the open session's
        self.envelope = envelope
        self.library = library or load_library()
        self.on_view = on_view or (lambda view: None)
        # Telemetry alone refreshes the screen 5 times a second, as an instrument's readout
        # does; a state change, a fault, a link change or a read-back is shown at once.
        self.publish_every_s = publish_every_s
        self._today = today or (lambda: datetime.now(UTC).date())
        self.machine: Machine | MachineClient | None = None
        self.url = ""
        self._service: machine_process.Service | None = None
        self._sim_process: machine_process.Simulator | None = None
        self._controls: Controls | None = None
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._unsubscribe: Callable[[], None] | None = None
        self._machine_view = MachineView()
        self._trends: dict[str, deque[float]] = {
            k: deque(maxlen=TREND_POINTS) for k in ("rate", "voltage", "current", "depth")}
        self._log: deque[str] = deque(maxlen=LOG_LINES)
        self._work: _Work | None = None
        self._client: ClientChoice | None = None
        self._pseudonyms: Pseudonyms | None = None
        self._record = RecordStatus()
        self._revision = 0
        self._view = View()
        self._dirty = False
        self._last_publish = 0.0
        self._caption_at = 0.0
        self._commands: deque[_Command] = deque()
        self._current: _Command | None = None
        self._stops_sent = 0.0  # when we last sent STOP ourselves (to tell ours from the link's)
        self._stop_by = "the technician"  # who the last STOP we sent was for, as recorded
        self._stop_latched = False  # the machine's STOP latch, as its FaultLatched told it
        self._stop_awaited = False  # a STOP it acknowledged whose latch is still to come
        self._last_unsafe = ""
        self._closed = threading.Event()
        journal_dir = journal_dir or _journal_dir(store)
        self.sink = RecorderSink(store, journal_dir, owner=owner or machine_process.who(),
                                 on_status=lambda s: self._inbox.put(("record", s)))
        self.sink.start()
        self._thread = threading.Thread(target=self._run, name="smp-session", daemon=True)
        self._thread.start()

    # --- what the screens read ----------------------------------------------------------------

    @property
    def view(self) -> View:
        return self._view

    @property
    def simulator(self) -> Controls | None:
        """The trainer's controls of the simulated machine, else None (a real machine)."""
        return self._controls

    def pseudonyms(self) -> Pseudonyms:
        """The record's keyed pseudonyms (reads, or on first use creates, the key)."""
        if self._pseudonyms is None:
            self._pseudonyms = Pseudonyms(self.store)
        return self._pseudonyms

    # --- connecting (slow: processes start; run from a worker) --------------------------------

    def connect(self, url: str) -> None:
        """Control the machine on `url` through its machine service (started for it, or one
        already running). `sim://` runs an in-process simulator and link instead (tests)."""
        service: machine_process.Service | None = None
        controls: Controls | None = None
        machine: Machine | MachineClient
        if url.startswith("sim://"):
            local = Machine.connect(url, self.envelope)
            controls = simulator.InProcess(local.transport.simulator.machine)
            machine = local
        else:
            machine, service = machine_process.connect_machine(url)
        self._hand_over(machine, url, service, controls)

    def connect_simulator(self) -> None:
        """Start the simulated machine in a process of its own on a pty, and connect to it
        as to a real one (the service holds the simulator's lifeline)."""
        child = machine_process.start_simulator()
        try:
            machine, service = machine_process.connect_machine(child.port, hold=child.lifeline)
        except BaseException:
            child.close()
            raise
        controls = simulator.Remote(child.control) if child.control else None
        self._hand_over(machine, child.port, service, controls, child)

    def _hand_over(self, machine: Machine | MachineClient, url: str,
                   service: machine_process.Service | None, controls: Controls | None,
                   child: machine_process.Simulator | None = None) -> None:
        """Give a connected machine to the session thread; if the console closed while it
        was connecting, nobody will: it is released here (service, simulator and all)."""
        if child is not None:
            self._sim_process = child
        try:
            self._call(self._adopt, machine, url, service, controls)
        except BaseException:
            if self.machine is not machine:
                machine.close()
                for part in (service, child, controls):
                    if part is not None:
                        part.close()
            raise

    @staticmethod
    def identity_text(machine: Machine | MachineClient) -> str:
        ident = machine.ident
        assert ident is not None
        if machine.simulated:
            return f"SIMULATOR (firmware {ident.firmware_version})"
        return f"{ident.model} serial {ident.serial}, firmware {ident.firmware_version}"

    def record_identity(self) -> RecordMachine:
        m = self._require_machine()
        ident = m.ident
        assert ident is not None
        if m.simulated:
            return RecordMachine.simulated(ident.firmware_version)
        return RecordMachine(ident.model, ident.serial, ident.firmware_version)

    def close(self) -> None:
        """Release the machine (the service disarms and ends), let the sink write what it can;
        an open session stays open in the record."""
        if self._closed.is_set():
            return
        self._inbox.put(("close", None))
        self._thread.join(timeout=5.0)
        self._closed.set()
        machine, self.machine = self.machine, None
        if self._unsubscribe:
            self._unsubscribe()
        if machine is not None:
            machine.close()
        for child in (self._service, self._sim_process):
            if child is not None:
                child.close()
        if self._controls is not None:
            self._controls.close()
        self.sink.close()

    # --- sessions a crash left open (before connecting: the caller's thread) ------------------

    def interrupted_sessions(self) -> tuple[list[OpenSession], int]:
        """The open sessions nobody holds any longer (a crash left them), and how many others
        are open because another chair is running them (their lease is renewed)."""
        interrupted = interrupted_sessions(self.store)
        return interrupted, len(open_sessions(self.store)) - len(interrupted)

    def close_interrupted(self, session_ids: list[int]) -> int:
        """Close these as INTERRUPTED, every recorded event kept; how many were closed."""
        for session_id in session_ids:
            close_interrupted(self.store, session_id)
        return len(session_ids)

    # --- clients and the gate (reads and writes outside a session: the caller's thread) -------

    def find_clients(self, text: str = "", *,
                     presentation: bool = False) -> list[history.ClientSummary]:
        """Clients matching `text`; in presentation mode each named by its pseudonym, and
        matched by that alone (what is shown), never by the name or id behind it."""
        if not presentation:
            return history.find_clients(self.store, text)
        names = self.pseudonyms()
        shown = sorted((replace(c, name=names.client(c.id))
                        for c in history.list_clients(self.store)), key=lambda c: c.name)
        return match_clients(shown, text, by_id=False)

    def add_client(self, client: NewClient) -> ClientChoice:
        return self.choose_client(add_client(self.store, client))

    def choose_client(self, client_id: int) -> ClientChoice:
        self.sink.flush(QUERY_FLUSH_S)  # the session that just ended counts
        record = history.client_record(self.store, client_id)
        sessions = record.sessions
        last = sessions[-1] if sessions else None
        days = None
        if last is not None:
            started = last.started_at if last.started_at.tzinfo else last.started_at.replace(
                tzinfo=UTC)
            days = (datetime.now(UTC) - started).total_seconds() / 86400
        completed = [s for s in sessions if s.outcome is Outcome.COMPLETED]
        suggested = next_stage(completed[-1].stage) if completed else Stage.S1
        known = ClientFacts(record.client.date_of_birth,
                            any(c.procedure for c in record.consents))
        fitz = record.health.fitzpatrick if record.health else None
        skin = (SkinCondition.FITZPATRICK_IV_VI,) if fitz is not None and fitz >= 4 else ()
        choice = ClientChoice(client_id, record.client.name, len(sessions), days,
                              last.stage if last else None, suggested, known,
                              skin=skin, alias=self.pseudonyms().client(client_id))
        self._call(self._choose, choice)
        return choice

    def check_gate(self, answers: Mapping[Contraindication, bool],
                   overrides: Mapping[str, str]) -> list[Verdict]:
        """The gate's verdicts; GateRefused names every unresolved item and how to override."""
        client = self._require_client()
        return evaluate(answers, overrides, client.days_since_last, client=client.facts,
                        day=self._today())

    def profiles_for(self, zone: Zone) -> list[tuple[str, str]]:
        """The library's profiles for `zone`, its default first: (name, the profile's notes)."""
        return [(e.profile.name, e.profile.notes) for e in self.library.for_zone(Zone(zone))]

    # --- technician commands (from a worker: each waits for its outcome) ----------------------

    def start_session(self, plan: Plan, answers: Mapping[Contraindication, bool],
                      overrides: Mapping[str, str]) -> int:
        """Open the session in the record (the gate runs again there) with its consumables."""
        return self._call(self._start_session, plan, answers, overrides)

    def select_zone(self, zone: Zone, profile: str | None = None, *,
                    unplanned: bool = False,
                    cartridge: Cartridge | None = None) -> MachineSettings:
        """Work moves to `zone`: resolve its profile, apply it, record the read-back.

        `profile` chooses among the zone's profiles; the choice holds for this zone for the
        rest of the session. Without one, the zone's last choice, else its default. A zone
        not in the session's plan is refused unless `unplanned` says the technician chose it
        knowingly (and the record says so).

        A zone whose cartridge is not the one fitted (the first zone of a session, a zone
        planned with another cartridge, an unplanned zone) is refused unless `cartridge` is
        the one the technician confirmed fitting: it is recorded for the zone first, never
        while the machine is armed, running or its state unknown.
        """
        return self._call(self._select_zone, Zone(zone), profile, unplanned, cartridge)

    def adjust(self, field_name: str, steps: int) -> MachineSettings:
        """Fine adjustment: `steps` more steps of one setting from the zone's start (the
        profile, or repeated settings); they hold for the zone for the session."""
        return self._call(self._adjust, field_name, steps)

    def repeat_last(self) -> str:
        """Apply the settings used on skin in this zone at the client's last session that
        ran the needle there (sessions.history.settings_to_repeat); says what and whence."""
        return self._call(self._repeat_last)

    def mark_pass(self) -> int:
        """The technician finished a pass over the current zone: the passes so far."""
        return self._call(self._mark_pass)

    def set_coverage(self, zone: Zone, pct: int) -> None:
        self._call(self._set_coverage, Zone(zone), pct)

    def bump_coverage(self, delta: int) -> int:
        """Coverage of the current zone up or down by `delta` points, within 0 to 100%."""
        return self._call(self._bump_coverage, delta)

    def arm(self) -> None:
        """The deliberate act that lets the pedal run the needle. After STOP or a fault the
        latch is cleared first (the app asks for a confirmation before calling this)."""
        self._call(self._arm)

    def disarm(self) -> None:
        self._call(self._disarm)

    def end_session(self, coverage: Mapping[Zone, int], notes: str = "", *,
                    aftercare_given: bool) -> EndSummary:
        return self._call(self._end_session, dict(coverage), notes, aftercare_given)

    def stop(self, by: str = "the technician") -> tuple[bool, str]:
        """STOP now, straight to the machine service (never behind a command). Returns
        whether the machine acknowledged it, and where the record stands. `by` is who the
        record says sent it."""
        machine = self.machine
        if machine is None:
            return False, self._record.text
        self._stops_sent, self._stop_by = time.monotonic(), by
        acked = machine.stop(wait=True, timeout=1.0)
        self._inbox.put(("stopped", acked))
        return acked, self._record.text

    def stop_now(self, by: str = "the technician") -> None:
        """STOP, sent at once from the calling thread without waiting for the answer (the
        terminal's input thread: console/stop_driver.py). `stop()` then says the outcome."""
        machine = self.machine
        if machine is None:
            return
        self._stops_sent, self._stop_by = time.monotonic(), by
        machine.stop(wait=False)

    # --- the queue ----------------------------------------------------------------------------

    @overload
    def _call(self, fn: Callable[[*_Args], _Steps[_R]], *args: *_Args) -> _R: ...
    @overload
    def _call(self, fn: Callable[[*_Args], _R], *args: *_Args) -> _R: ...

    def _call(self, fn: Callable[..., object], *args: object) -> object:
        """Run `fn(*args)` on the session thread and wait for its outcome: what it returns,
        or, for a command that waits (a generator), what it returns when it is done."""
        if self._closed.is_set():
            raise WorkflowError("the console is closing")
        cmd = _Command(fn, args)
        self._inbox.put(("command", cmd))
        if not cmd.done.wait(COMMAND_TIMEOUT_S):
            raise WorkflowError("no answer from the session: see the log "
                                f"({logs.log_path()})")
        if cmd.error is not None:
            raise cmd.error
        return cmd.result

    def _run(self) -> None:
        while True:
            try:
                what, arg = self._inbox.get(timeout=STALE_CHECK_S if self.machine is not None
                                            else self.publish_every_s)
            except queue.Empty:
                what, arg = "", None
            if what == "close":
                self._await_stop_latch()
                self._shut_commands()
                return
            try:
                self._dispatch(what, arg)
            except Exception:
                log.exception("the session could not handle %s", what or "a tick")
                self._note(f"ERROR: an internal error; see {logs.log_path()}")
                self._publish()

    def _await_stop_latch(self) -> None:
        """A STOP the machine acknowledged is recorded when its telemetry shows it latched,
        and the run it ended when its telemetry shows the needle still: both can still be on
        their way when the console closes (a hung-up terminal closes straight after its STOP).
        Wait for them, briefly, so that what the machine did is kept."""
        deadline = time.monotonic() + STOP_LATCH_WAIT_S
        while self._stop_pending() and time.monotonic() < deadline:
            try:
                what, arg = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if what == "command":
                self._commands.append(arg)  # refused with the rest: the console is closing
            elif what != "close":
                self._dispatch(what, arg)

    def _stop_pending(self) -> bool:
        run_open = self._work is not None and self._work.run_told
        return self._stop_awaited or (self._stop_latched and run_open)

    def _dispatch(self, what: str, arg: Any) -> None:
        if what == "command":
            self._commands.append(arg)
            self._next_command()
        elif what == "resume":
            cmd, value = arg
            if self._current is not None and cmd is self._current:
                self._step(self._current, value)
        elif what == "event":
            self._handle(arg)
        elif what == "record":
            self._record_changed(arg)
        elif what == "stopped":
            self._stopped(arg)
        self._judge_stale()
        due = time.monotonic() - self._last_publish >= self.publish_every_s
        if self._dirty and due:
            self._sample_trends()
            self._publish()
        self._poll_caption()

    def _judge_stale(self) -> None:
        mv = self._machine_view
        if mv.stale or mv.telemetry_at is None or self.machine is None:
            return
        if time.monotonic() - mv.telemetry_at > STALE_AFTER_S:
            self._machine_view = replace(mv, stale=True)
            self._publish()

    def _next_command(self) -> None:
        while self._current is None and self._commands:
            cmd = self._commands.popleft()
            try:
                out = cmd.fn(*cmd.args)
            except BaseException as exc:
                self._finish(cmd, error=exc)
                continue
            if isinstance(out, Generator):
                cmd.gen = out
                self._current = cmd
                self._step(cmd, None)
            else:
                self._finish(cmd, result=out)

    def _step(self, cmd: _Command, value: object) -> None:
        assert cmd.gen is not None
        try:
            wanted = cmd.gen.send(value)
        except StopIteration as stop:
            self._finish(cmd, result=stop.value)
        except BaseException as exc:
            self._finish(cmd, error=exc)
        else:
            self._wait_for(cmd, wanted)
            return
        self._current = None
        self._next_command()

    def _wait_for(self, cmd: _Command, wanted: _Wait) -> None:
        def resume(value: object) -> None:
            self._inbox.put(("resume", (cmd, value)))

        if isinstance(wanted, _MachineCall):
            machine = self.machine
            if machine is None:
                resume(Result(wanted.op, Kind.FAILED, "no machine is connected"))
            else:
                machine.submit(wanted.op, wanted.arg, resume)
        elif isinstance(wanted, _OpenSession):
            self.sink.open_session(wanted.request, resume)
        elif isinstance(wanted, _Query):
            def query() -> None:
                # Whatever it raises resumes the command (and a bug ends it as an internal
                # error, logged): a thread that died instead would hold the session's one
                # command slot, and every command after it would wait and fail.
                try:
                    self.sink.flush(QUERY_FLUSH_S)
                    resume(wanted.fn())
                except Exception as exc:
                    resume(exc)
            threading.Thread(target=query, name="smp-query", daemon=True).start()
        else:  # pragma: no cover: a bug in a command
            resume(None)

    def _finish(self, cmd: _Command, *, result: object = None,
                error: BaseException | None = None) -> None:
        cmd.result, cmd.error = result, error
        if error is not None and not isinstance(error, SmpError):
            log.error("a command failed", exc_info=error)
            cmd.error = WorkflowError(f"internal error; see {logs.log_path()}")
        cmd.done.set()

    def _shut_commands(self) -> None:
        for cmd in [*([self._current] if self._current else []), *self._commands]:
            self._finish(cmd, error=WorkflowError("the console is closing"))
        self._commands.clear()
        self._current = None
        if self._flight is not None:
            self._flight.close()
        if self._work is not None:
            self._work.recorder.close()

    # --- commands (each runs on the session thread) -------------------------------------------

    def _adopt(self, machine: Machine | MachineClient, url: str,
               service: machine_process.Service | None,
               controls: Controls | None) -> None:
        old, self.machine, self.url = self.machine, machine, url
        old_service, self._service = self._service, service
        self._controls = controls
        if self._unsubscribe:
            self._unsubscribe()
        self._unsubscribe = machine.subscribe(lambda e: self._inbox.put(("event", e)))
        self._machine_view = replace(
            self._machine_view, connected=True, simulator=machine.simulated,
            identity=self.identity_text(machine), url=url,
            state=machine_state(machine.state, machine.faults), link=Link.CONNECTED,
            applied=machine.applied, settings_known=True, envelope=str(machine.envelope),
            **self._fault_fields(machine.faults))
        self._note(f"connected to {self.identity_text(machine)} on {url}")
        self._publish()
        if old is not None:
            threading.Thread(target=old.close, kwargs={"disarm": False}, daemon=True).start()
        if old_service is not None:
            threading.Thread(target=old_service.close, daemon=True).start()

    def _choose(self, choice: ClientChoice) -> None:
        self._client = choice

    def _start_session(self, plan: Plan, answers: Mapping[Contraindication, bool],
                       overrides: Mapping[str, str]) -> _Steps[int]:
        client = self._require_client()
        self._require_machine()
        if not plan.zones:
            raise WorkflowError("session plan: choose at least one zone")
        if self._work is not None:
            raise WorkflowError(f"session {self._work.recorder.session_id} is already open: "
                                "end it first")
        self._require_record("start a session")
        # Every lot is checked before the session opens: a refused one leaves nothing behind.
        p, today = plan.pigment, self._today()
        check_lot("pigment", p.lot, p.expiry, today)
        for zone in plan.zones:
            c = plan.cartridges.get(zone)
            if c is None:
                raise WorkflowError(f"{needle_what(zone)}: required for a planned zone")
            check_lot(needle_what(zone), c.lot, c.expiry, today)
        opened = yield from self._opened(request(
            client_id=client.id, technician=plan.technician, stage=plan.stage,
            machine=self.record_identity(), planned_zones=list(plan.zones), answers=answers,
            overrides=overrides, at=datetime.now(UTC)))
        recorder = Recorder(opened.session_id, write=self._write, next_seq=2,
                            warnings=opened.warnings)
        self._flight = flight.FlightRecorder(opened.session_id, write=self._write)
        work = _Work(recorder, plan, client, {z: _ZoneState() for z in Zone},
                     cartridges={z: plan.cartridges[z] for z in plan.zones})
        for zone, c in work.cartridges.items():
            self._use_needle(work, zone, c)
        recorder.use_pigment(brand=p.brand, shade=p.shade, dilution=p.dilution, lot=p.lot,
                             expiry=p.expiry)
        self._work = work
        self._note(f"session {opened.session_id} started: {plan.stage.label}, "
                   f"{len(plan.zones)} zones planned")
        for v in opened.verdicts:  # the reasons are in the record, not on the screen
            if v.decision != "clear":
                self._note(f"gate: {v.item} {v.decision}" + (" (reason recorded)"
                                                             if v.reason else ""))
        self._publish()
        return opened.session_id

    def _select_zone(self, zone: Zone, profile: str | None, unplanned: bool = False,
                     cartridge: Cartridge | None = None) -> _Steps[MachineSettings]:
        work = self._require_work()
        self._require_machine()
        if self._machine_view.pedal:
            raise WorkflowError("release the pedal before changing zone")
        leaving_plan = zone not in work.plan.zones and zone is not work.zone
        if leaving_plan and not unplanned:
            raise WorkflowError(f"{zone.label} is not in this session's plan "
                                f"({', '.join(z.label for z in work.plan.zones)}): "
                                "confirm to work on it")
        entries = self.library.for_zone(zone)
        if not entries:
            raise WorkflowError(f"no profile for zone {zone.value} in the library")
        name = profile or work.zones[zone].profile
        entry = next((e for e in entries if e.profile.name == name), entries[0])
        if profile and entry.profile.name != profile:
            raise WorkflowError(f"profile {profile!r} is not for {zone.label}: allowed "
                                f"{', '.join(e.profile.name for e in entries)}")
        # Everything refusable is refused before anything is recorded.
        if cartridge is not None:
            if refused := cartridge_refusal(self._machine_view, self.disarm_key):
                raise WorkflowError(refused)
            check_lot(needle_what(zone), cartridge.lot, cartridge.expiry, self._today())
        else:
            planned = work.cartridges.get(zone)
            if planned is None:
                raise WorkflowError(f"{zone.label} has no cartridge in this session: "
                                    "confirm the one fitted for it")
            if not planned.same(work.fitted):
                raise WorkflowError(f"fit the {planned.text} cartridge for {zone.label} "
                                    "and confirm it first")
        if leaving_plan:
            work.recorder.note(f"unplanned zone {zone.value} chosen by the technician")
        if cartridge is not None:
            self._fit(work, zone, cartridge)
        chosen = entry.profile
        machine = self._require_machine()
        try:
            res = resolve(chosen, work.plan.stage, work.plan.conditions, machine.envelope)
        except ProfileRefused as exc:
            work.recorder.zone_changed(zone, profile=chosen.name, reasons=exc.reasons)
            work.zone, work.profile, work.reasons = zone, chosen.name, exc.reasons
            work.zones[zone].profile = chosen.name
            work.advisories = (str(exc),)
            self._note(f"{zone.label}: {exc}")
            self._publish()
            raise
        target = res.plan.target_density_pct
        work.recorder.zone_changed(zone, profile=chosen.name, reasons=res.reasons,
                                   target_density_pct=target)
        zs = work.zones[zone]
        if zs.profile != chosen.name or zs.start is None:
            if zs.steps or zs.start_why:
                self._note(f"{zone.label}: another profile, so the earlier adjustments and "
                           "repeat no longer apply")
            zs.start, zs.start_why, zs.steps = res.settings, (), {}
        work.zone, work.profile, work.reasons = zone, chosen.name, res.reasons
        zs.profile = chosen.name
        work.advisories, work.target = entry.advisories(res.advisories), target
        held = " (its adjustments hold)" if zs.steps or zs.start_why else ""
        self._note(f"zone {zone.label}: profile {chosen.name}{held}")
        self._publish()
        return (yield from self._apply(zs.wanted(), zs.why()))

    def _use_needle(self, work: _Work, zone: Zone, c: Cartridge) -> None:
        key = (zone, c.needle.code, c.lot.strip(), c.expiry)
        if key not in work.needles:
            work.recorder.use_needle(needle=c.needle, lot=c.lot, expiry=c.expiry, zone=zone)
            work.needles.add(key)

    def _fit(self, work: _Work, zone: Zone, c: Cartridge) -> None:
        """The technician confirmed fitting `c` for `zone`: the record says so, and when."""
        self._use_needle(work, zone, c)
        planned = work.plan.cartridges.get(zone) if zone in work.plan.zones else None
        was = f" (was {work.fitted.text})" if work.fitted is not None else ""
        off_plan = (f", not the planned {planned.needle.code}"
                    if planned is not None and planned.needle != c.needle else "")
        text = f"cartridge {c.text} fitted for {zone.value}{off_plan}{was}"
        work.recorder.note(text)
        work.cartridges[zone], work.fitted = c, c
        self._note(text)

    def _adjust(self, field_name: str, steps: int) -> _Steps[MachineSettings]:
        """Steps from the zone's start; they hold for the zone for the rest of the session."""
        work = self._require_work()
        q = BY_FIELD[field_name]
        if work.zone is None:
            raise WorkflowError("choose a zone first")  # as _current_settings says it
        zone = work.zone
        self._current_settings(work)  # refuses a zone with no confirmed settings
        zs = work.zones[zone]
        if zs.start is None:
            raise WorkflowError(f"{zone.label}: choose its profile again before adjusting")
        moved = {**zs.steps, q.field: zs.steps.get(q.field, 0) + steps}
        try:
            wanted = zs.wanted(moved)
        except ValueError:
            value = zs.start.value(q) + q.step * moved[q.field]
            raise WorkflowError(f"{q.label} {q.fmt_unit(value)} is outside the hard "
                                f"limits {q.range_text()}") from None
        applied = yield from self._apply(wanted, zs.why(moved))
        zs.steps = {k: v for k, v in moved.items() if v}
        self._publish()
        return applied

    def _repeat_last(self) -> _Steps[str]:
        work = self._require_work()
        if work.zone is None:
            raise WorkflowError("choose a zone first")
        zone = work.zone
        found = yield from self._query(functools.partial(
            history.settings_to_repeat, self.store, work.client.id, zone,
            excluding=work.recorder.session_id))
        if found is None:
            raise WorkflowError(f"no earlier session of this client ran the needle in "
                                f"{zone.label} at confirmed settings")
        text = f"{found.text()} (session {found.session_id})"
        work.recorder.note(f"{zone.value}: {text}")
        zs = work.zones[zone]
        yield from self._apply(found.settings, (text,))
        zs.start, zs.start_why, zs.steps = found.settings, (text,), {}
        self._note(f"{zone.label}: {text}")
        self._publish()
        return found.text()

    def _mark_pass(self) -> int:
        work = self._require_work()
        if work.zone is None:
            raise WorkflowError("choose a zone first: a pass is over one zone")
        self._require_record("mark a pass")
        zs = work.zones[work.zone]
        zs.passes += 1
        work.recorder.record_passes(work.zone, zs.passes)
        self._note(f"{work.zone.label}: pass {zs.passes} done")
        self._publish()
        return zs.passes

    def _run_ms(self) -> int | None:
        """The machine's needle time of the run going on, if one is (to split it)."""
        work = self._work
        return work.runs.open_ms if work is not None and work.run_told else None

    def _apply(self, wanted: MachineSettings,
               adjustments: tuple[str, ...] = ()) -> _Steps[MachineSettings]:
        """Send settings; what the record and the screen get is what the machine reported.
        `adjustments` are the technician's steps they carry, recorded with them."""
        work = self._require_work()
        machine = self._require_machine()
        problems = machine.check(wanted)
        if problems:
            work.recorder.settings_refused(wanted, "; ".join(problems))
            self._note(f"refused, not sent: {'; '.join(problems)}")
            self._publish()
            raise WorkflowError(f"not sent: {'; '.join(problems)}")
        work.recorder.settings_requested(wanted)
        result = yield from self._machine_call(Op.SET, wanted)
        if result.kind in (Kind.DONE, Kind.MISMATCH):
            # The machine is set to its read-back, whatever was asked (on a mismatch the
            # service has stopped it): that is the record's truth.
            applied = result.applied
            assert applied is not None
            work.recorder.settings_applied(applied, adjustments=adjustments,
                                           run_ms=self._run_ms())
            if work.zone is not None:
                work.zones[work.zone].settings = applied
            self._machine_view = replace(self._machine_view, applied=applied,
                                         settings_known=True)
            self._note(f"applied (read-back): {applied}" if result.ok else
                       f"MISMATCH: {result.message}")
            self._publish()
        elif result.kind is Kind.UNKNOWN:
            # Not refused: nobody knows. The link's SettingsUnknown event records it, and the
            # machine's telemetry will say what it holds.
            self._note(f"not confirmed: {result.message}")
            self._publish()
        else:
            work.recorder.settings_refused(wanted, result.message)
            self._note(f"not applied: {result.message}")
            self._publish()
        raise_for(result, wanted)  # DONE from here on: its read-back was recorded above
        assert result.applied is not None
        return result.applied

    def _set_coverage(self, zone: Zone, pct: int) -> None:
        work = self._require_work()
        if not 0 <= pct <= 100:
            raise WorkflowError(f"coverage {pct}%: allowed 0 to 100%")
        work.recorder.record_coverage(zone, coverage_pct=pct)
        work.zones[zone].coverage = pct
        self._publish()

    def _bump_coverage(self, delta: int) -> int:
        work = self._require_work()
        if work.zone is None:
            raise WorkflowError("choose a zone first")
        pct = max(0, min(100, (work.zones[work.zone].coverage or 0) + delta))
        self._set_coverage(work.zone, pct)
        return pct

    def _arm(self) -> _Steps[None]:
        work = self._require_work()
        machine = self._require_machine()
        self._require_record("arm")
        if machine.link_state == LinkState.LOST:
            raise WorkflowError("the link is lost: wait until it is back, then arm")
        if self._machine_view.pedal:
            raise WorkflowError("release the pedal before arming")
        if work.zone is None:
            raise WorkflowError("choose a zone before arming")
        if machine.state == State.FAULTED:
            raise_for((yield from self._machine_call(Op.CLEAR_FAULT)))
            work.recorder.note("latched fault cleared by the technician")
        if (machine.applied is None or not machine.confirmed
                or machine.applied != work.zones[work.zone].settings):
            # The machine forgot its settings, or they are not confirmed: send them again.
            current, zs = self._current_settings(work), work.zones[work.zone]
            carried = zs.why() if zs.start is not None and current == zs.wanted() else ()
            yield from self._apply(current, carried)
        raise_for((yield from self._machine_call(Op.ARM)))
        work.armed_once = True
        work.recorder.note("armed")
        self._note("armed by the technician")
        self._publish()

    def _disarm(self) -> _Steps[None]:
        raise_for((yield from self._machine_call(Op.DISARM)))
        if self._work is not None:
            self._work.recorder.note("disarmed")
        self._note("disarmed")
        self._publish()

    def _end_session(self, coverage: dict[Zone, int], notes: str,
                     aftercare_given: bool) -> _Steps[EndSummary]:
        work = self._require_work()
        for zone, pct in coverage.items():
            if not 0 <= pct <= 100:
                raise WorkflowError(f"coverage of {Zone(zone).label} {pct}%: allowed 0 to 100%")
        machine = self.machine
        # The session can always be ended: the record says why the machine was not disarmed.
        unreachable = ""
        if machine is not None and machine.link_state == LinkState.LOST:
            # Nothing would answer a DISARM: STOP goes out anyway, and the machine's watchdog
            # has already stopped the needle (docs/protocol.md C-7.3).
            machine.stop(wait=False)
            unreachable = "the link is lost (the machine's watchdog stops the needle)"
        elif machine is not None and machine.state in (State.ARMED, State.RUNNING, None):
            result = yield from self._machine_call(Op.DISARM)
            if not result.ok:
                unreachable = result.message
        if unreachable:
            work.recorder.note(f"machine unreachable at end: {unreachable}")
            self._note(f"machine unreachable at end: {unreachable}")
        elif machine is not None and machine.state == State.FAULTED and \
                machine.faults == Fault.STOP:
            # A STOP latched in this session ends with it: the next client starts from a
            # disarmed machine, not under this one's STOPPED banner. Other faults stay latched
            # (their cause is the machine's, and it is shown until someone deals with it).
            result = yield from self._machine_call(Op.CLEAR_FAULT)
            if result.ok:
                work.recorder.note("the STOP latch was cleared at the end of the session")
        self._end_run("session ended")
        for zone, pct in coverage.items():
            work.recorder.record_coverage(zone, coverage_pct=pct)
            work.zones[zone].coverage = pct
        if notes.strip():
            work.recorder.note(notes.strip())
        worked = [z for z, s in work.zones.items() if s.settings is not None or z in coverage]
        nxt = next_session_text(work.plan.stage, worked, self._today())
        work.recorder.note(f"next session: {nxt}")
        if self._flight is not None:
            self._flight.close()
            self._flight = None
        work.recorder.end(aftercare_given=aftercare_given)
        self._write(flight.prune_fact(work.recorder.session_id, now=datetime.now(UTC),
                                      keep=self.flight_retention))
        self.sink.release(work.recorder.session_id)
        summary = EndSummary(work.recorder.session_id, AFTERCARE, nxt,
                             tuple((z, work.zones[z].coverage) for z in worked))
        self._note(f"session {summary.session_id} ended")
        self._work = None
        self._publish()
        return summary

    # --- what a command waits for (each resumed by _wait_for with the answer) ---------------

    @staticmethod
    def _machine_call(op: Op, arg: object = None) -> _Steps[Result]:
        """The machine service's Result for `op`."""
        result = yield _MachineCall(op, arg)
        assert isinstance(result, Result), result  # _wait_for resumes it with one
        return result

    @staticmethod
    def _opened(req: facts.SessionRequest) -> _Steps[facts.Opened]:
        """The session the sink opened; the SmpError it refused it with is raised."""
        opened = yield _OpenSession(req)
        if isinstance(opened, BaseException):
            raise opened
        assert isinstance(opened, facts.Opened), opened  # the sink replies with one or other
        return opened

    @staticmethod
    def _query(fn: Callable[[], _R]) -> _Steps[_R]:
        """`fn()` run on a worker once what was submitted is written; its SmpError is raised."""
        found = yield _Query(fn)
        if isinstance(found, BaseException):
            raise found
        return cast(_R, found)  # _wait_for resumes a _Query with fn's result or its error

    # --- requirements -------------------------------------------------------------------------

    def _require_client(self) -> ClientChoice:
        if self._client is None:
            raise WorkflowError("no client chosen: pick or create a client first")
        return self._client

    def _require_machine(self) -> Machine | MachineClient:
        if self.machine is None:
            raise WorkflowError("no machine is connected: connect to a port or the simulator")
        return self.machine

    def _require_work(self) -> _Work:
        if self._work is None:
            raise WorkflowError("no session is open: start one first")
        return self._work

    def _require_record(self, what: str) -> None:
        """Nothing is done at the chair that cannot be recorded."""
        r = self._record
        if not r.writing or r.pending:
            raise WorkflowError(f"cannot {what}: the record is not writing ({r.text}); "
                                "wait until it writes again")

    def _current_settings(self, work: _Work) -> MachineSettings:
        if work.zone is None:
            raise WorkflowError("choose a zone first")
        s = work.zones[work.zone].settings
        if s is None:
            raise WorkflowError(f"{work.zone.label} has no confirmed settings to adjust")
        return s

    def _write(self, fact: facts.Fact) -> None:
        self.sink.submit(fact)

    # --- the record's state -------------------------------------------------------------------

    def _record_changed(self, status: RecordStatus) -> None:
        was, self._record = self._record, status
        if not status.writing and was.writing:
            log.error("the record is not writing: %s", status.reason)
            machine = self.machine
            if machine is not None and machine.state in (State.ARMED, State.RUNNING, None):
                # Invariant 7: what cannot be recorded is not done. STOP, ahead of everything.
                self._stops_sent = time.monotonic()
                self._stop_by = "the console: the record is not writing"
                machine.stop(wait=False)
                self._note(f"RECORD NOT WRITING ({status.reason}): STOP sent; arming refused "
                           "until it writes again")
            else:
                self._note(f"RECORD NOT WRITING ({status.reason}): arming refused until it "
                           "writes again")
        elif status.writing and not was.writing:
            self._note("the record writes again: every event kept meanwhile is in it; "
                       f"re-arm ({self.arm_key}) to continue")
        if status.replayed and not was.replayed:
            self._note(f"{status.replayed} event(s) a crash left in the journal are now in "
                       "the record")
        self._publish()

    def _stopped(self, acked: bool) -> None:
        self._stop_awaited = acked and not self._stop_latched
        text = ("STOP acknowledged by the machine" if acked else
                "STOP sent, not acknowledged (the machine's watchdog stops the needle)")
        self._note(text)
        if self._work is not None and not acked:
            self._work.recorder.stop(text)
        self._publish()

    # --- what the machine reports (on the session thread) -------------------------------------

    def _handle(self, event: Event) -> None:
        work = self._work
        rec = work.recorder if work is not None else None
        mv = self._machine_view
        if isinstance(event, TelemetryReceived):
            self._telemetry(event)
            return
        if isinstance(event, LinkHealth):
            if self._flight is not None:
                self._flight.health(flight_feed.health(event))
            self._machine_view = replace(mv, rtt_ms=event.rtt_ms,
                                         telemetry_age_ms=event.telemetry_age_ms,
                                         resend_ratio=event.resend_ratio)
            self._dirty = True
            return
        if isinstance(event, StateChanged):
            self._machine_view = replace(mv, state=machine_state(event.new, event.faults),
                                         **self._fault_fields(event.faults))
            self._note(f"machine {self._machine_view.state.value}")
        elif isinstance(event, FaultLatched):
            self._fault(event)
        elif isinstance(event, LinkStateChanged):
            self._link(event)
        elif isinstance(event, MachineRebooted):
            self._machine_view = replace(mv, applied=None)
            if rec is not None:
                rec.machine_rebooted(f"{event.new_boot_id:#010x}")
            if work is not None:
                self._end_run("the machine restarted")
                work.clock = None  # a new boot: a new uptime, new counters
                work.runs.reset()
            self._note(f"MACHINE RESTARTED (boot {event.new_boot_id:#010x}): it is disarmed "
                       f"and forgot its settings; arm ({self.arm_key}) sends them again")
        elif isinstance(event, CommandFailed):
            if rec is not None:
                rec.note(f"command {event.command} failed: {event.reason}")
            self._note(f"command {event.command} failed: {event.reason}")
        elif isinstance(event, SettingsApplied):
            if event.source == "read-back":
                return  # recorded by _apply, which waits for the same read-back
            # Learnt from the machine's telemetry: an answer was lost, or the machine changed
            # by itself. This is what it holds, whatever was asked.
            self._machine_view = replace(mv, applied=event.applied, settings_known=True)
            if rec is not None:
                rec.settings_applied(event.applied, source="telemetry", run_ms=self._run_ms())
            if work is not None and work.zone is not None:
                work.zones[work.zone].settings = event.applied
            self._note(f"the machine reports holding {event.applied} (from its telemetry)")
        elif isinstance(event, SettingsUnknown):
            self._machine_view = replace(mv, applied=None, settings_known=False)
            if rec is not None:
                rec.settings_unknown(event.requested, event.reason, run_ms=self._run_ms())
            self._note(f"settings not confirmed: {event.reason}")
        elif isinstance(event, UnsafeReport):
            self._last_unsafe = event.what
            if rec is not None:
                rec.note(f"link: {event.what}")
            self._note(f"UNSAFE: {event.what}")
        else:
            return
        self._publish()

    def _telemetry(self, event: TelemetryReceived) -> None:
        t, mv, work = event.telemetry, self._machine_view, self._work
        faults = Fault(t.faults & KNOWN_FAULTS)
        if not faults & Fault.STOP:
            self._stop_latched = False
        state = State(t.state) if t.state in State._value2member_map_ else None
        self._machine_view = replace(
            mv, state=machine_state(state, faults), pedal=t.pedal_down, motor=t.motor_on,
            rate_hz=t.rate_hz, voltage_v=t.voltage_v, current_a=t.current_a,
            depth_mm=t.depth_mm, temperature_c=t.temperature_c, telemetry_at=time.monotonic(),
            stale=False,
            **self._fault_fields(faults))
        changed = (self._machine_view.state != mv.state or t.pedal_down != mv.pedal
                   or mv.stale)
        if work is not None:
            if work.clock is None or _since(t.uptime_ms, work.clock[0]) > UPTIME_WRAP // 2:
                # Uptime went back: a new boot the link has not reported yet (runs.py).
                work.clock = (t.uptime_ms, datetime.now(UTC))
            work.recorder.telemetry(Reading(self._wall(t.uptime_ms), t.rate_dhz, t.voltage_mv,
                                            t.current_ma, fault=bool(faults),
                                            depth_um=t.depth_um))
            for run in work.runs.feed(t):
                changed = True
                if isinstance(run, RunStarted):
                    self._start_run(run.uptime_ms)
                else:
                    ended = machine_state(run.state, faults)
                    self._end_run("pedal up" if ended == MachineState.ARMED else ended.value,
                                  run)
            if self._flight is not None:  # after the runs: nothing here may keep one out
                self._flight.telemetry(flight_feed.frame(event, self._wall(t.uptime_ms)))
        if changed:
            self._publish()
        else:
            self._dirty = True

    def _wall(self, uptime_ms: int) -> datetime:
        """The wall time of a machine uptime, by this session's one mapping."""
        work = self._work
        if work is None or work.clock is None:
            return datetime.now(UTC)
        u0, w0 = work.clock
        return w0 + timedelta(milliseconds=_since(uptime_ms, u0))

    def _start_run(self, uptime_ms: int) -> None:
        """A run is the needle running, whatever the pedal does, counted and timed by the
        machine itself (TELEMETRY runs and needle_ms: firmware_bridge/runs.py)."""
        work = self._require_work()
        work.run_told = True
        work.recorder.pedal_down(at=self._wall(uptime_ms))
        self._note("needle running")

    def _end_run(self, ended_by: str, run: RunEnded | None = None) -> None:
        """A run ended: as the machine's counters tell it, or (with no telemetry to tell it,
        the session ending or the machine restarting) with the needle time known so far."""
        work = self._work
        if work is None or not work.run_told:
            return
        work.run_told = False
        if run is None:
            ms, at, exact = work.runs.open_ms, datetime.now(UTC), False
            work.runs.reset()
            ended_by += " (at least: the machine has not said more)"
        else:
            ms, at, exact = run.duration_ms, self._wall(run.uptime_ms), run.exact
        work.recorder.pedal_up(ms, at=at, ended_by=ended_by, exact=exact)
        if work.zone is not None:
            zs = work.zones[work.zone]
            zs.run_ms += ms
            zs.runs += 1
        self._note(f"needle stopped ({ended_by}): run of {ms / 1000:.1f} s")

    def _fault(self, event: FaultLatched) -> None:
        rec = self._work.recorder if self._work is not None else None
        cause, action = fault_text(event.new, self.arm_key)
        if event.new & Fault.STOP:
            # Every STOP the machine latched is recorded, and who sent it.
            ours = time.monotonic() - self._stops_sent < 2.0
            why = (f"STOP sent by {self._stop_by}" if ours and not self._last_unsafe else
                   f"STOP sent by the link: {self._last_unsafe}" if self._last_unsafe else
                   "STOP latched by the machine")
            self._last_unsafe = ""
            self._stop_latched, self._stop_awaited = True, False
            if rec is not None:
                rec.stop(why)
            self._note(why)
        rest = event.new & ~Fault.STOP
        if rest:
            names = ", ".join(fault_names(rest))
            if rec is not None:
                rec.fault(names, f"{cause}; {action}")
            self._note(f"FAULT {names}: {cause}; {action}")

    def _link(self, event: LinkStateChanged) -> None:
        rec = self._work.recorder if self._work is not None else None
        link = {LinkState.CONNECTED: Link.CONNECTED, LinkState.STALE: Link.STALE,
                LinkState.LOST: Link.LOST}[event.new]
        self._machine_view = replace(self._machine_view, link=link)
        if event.new == LinkState.LOST:
            if rec is not None:
                rec.link_lost(event.reason)
            # A run going on stays open: when the machine speaks again its counters say how
            # long the needle really ran (the session's end closes it otherwise).
            self._note(f"LINK LOST: {event.reason}")
        elif event.old == LinkState.LOST:
            if rec is not None:
                rec.link_restored()
            self._note(f"link restored: re-arm ({self.arm_key}) to continue")

    # --- the view -----------------------------------------------------------------------------

    def _note(self, text: str) -> None:
        self._log.append(text)

    def _fault_fields(self, faults: Fault) -> _FaultFields:
        cause, action = fault_text(faults, self.arm_key)
        return {"faults": fault_names(faults), "fault_cause": cause, "fault_action": action}

    def _publish(self) -> None:
        """Build a new View from the session's state and hand it to `on_view`."""
        self._revision += 1
        m = replace(self._machine_view, rate_trend=tuple(self._trends["rate"]),
                    voltage_trend=tuple(self._trends["voltage"]),
                    current_trend=tuple(self._trends["current"]),
                    depth_trend=tuple(self._trends["depth"]))
        self._view = View(machine=m, work=self._work_view(), log=tuple(self._log),
                          record=self._record, revision=self._revision)
        self._dirty = False
        self._last_publish = time.monotonic()
        try:
            self.on_view(self._view)
        except Exception:  # a display problem must never stop the recording
            log.exception("on_view failed")

    def _work_view(self) -> WorkView | None:
        w = self._work
        if w is None:
            return None
        running = w.runs.open_ms if w.run_told else 0
        # The zone being worked counts the run going on, so its tile's time moves with it.
        zones = tuple(
            ZoneStatus(z, z in w.plan.zones, s.coverage,
                       s.run_ms + (running if z is w.zone else 0), s.runs, s.settings,
                       s.passes, w.cartridges.get(z))
            for z, s in w.zones.items())
        zs = w.zones[w.zone] if w.zone is not None else None
        why = w.reasons + (zs.why() if zs else ())
        return WorkView(
            session_id=w.recorder.session_id, client=w.client.name,
            client_alias=w.client.alias, stage=w.plan.stage,
            zone=w.zone, profile=w.profile, reasons=why, advisories=w.advisories,
            profiles=tuple(e.profile.name for e in self.library.for_zone(w.zone))
            if w.zone else (),
            target_density_pct=w.target, zones=zones, run_ms=running,
            armed_once=w.armed_once, fitted=w.fitted)

    def _sample_trends(self) -> None:
        m = self._machine_view
        for key, value in (("rate", m.rate_hz), ("voltage", m.voltage_v),
                           ("current", m.current_a), ("depth", m.depth_mm)):
            if value is not None:
                self._trends[key].append(value)

    def _poll_caption(self) -> None:
        """The playing scenario's caption, asked of the simulator now and then (it may be a
        socket away: never asked for by the screen)."""
        controls, now = self._controls, time.monotonic()
        if controls is None or now - self._caption_at < CAPTION_EVERY_S:
            return
        self._caption_at = now
        try:
            caption = controls.caption()
        except SmpError:
            caption = ""
        if caption != self._machine_view.sim_caption:
            self._machine_view = replace(self._machine_view, sim_caption=caption)
            self._dirty = True


def _journal_dir(store: Store) -> Path:
    """The journals of this record, in the data directory: one folder per record URL (the
    sink checks the record there is still the one they were written for)."""
    import hashlib

    from console.paths import data_dir
    from sessions.store import describe

    key = hashlib.sha256(describe(store.url).encode()).hexdigest()[:16]
    return data_dir() / "journal" / key
