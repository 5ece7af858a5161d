"""The session workflow without a user interface: the console's screens only call this.

Blocking methods (bridge commands, database writes) are plain calls meant to be run from the
app's worker threads. What the bridge reports arrives on the link's threads; it is queued and
handled on the controller's own thread, which records it and publishes a new frozen `View`
through `on_view`. Telemetry (50 Hz) is summarised for the record on every sample and
published to the screen at most every `publish_every_s`.

Invariant 3: the record and the screen show as applied only the machine's read-back.
Invariant 5: a simulator is SIMULATOR in the view and in the record's machine identity.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import sim  # noqa: F401  (registers sim:// with the bridge's transports)
from console.view import (
    Link,
    MachineState,
    MachineView,
    View,
    WorkView,
    ZoneStatus,
    fault_text,
    machine_state,
)
from firmware_bridge import Fault, LinkState, Machine, SettingsMismatch, State
from firmware_bridge.events import (
    CommandFailed,
    Event,
    FaultLatched,
    LinkHealth,
    LinkStateChanged,
    MachineRebooted,
    SettingsApplied,
    StateChanged,
    TelemetryReceived,
)
from protocols import (
    DEPTH,
    HARD_LIMITS,
    QUANTITIES,
    RATE,
    VOLTAGE,
    Dilution,
    MachineSettings,
    NeedleSpec,
    ProfileRefused,
    SafetyEnvelope,
    SkinCondition,
    SmpError,
    Stage,
    Zone,
    load_library,
    resolve,
)
from protocols.library import Library
from protocols.quantities import BY_FIELD
from sessions import history
from sessions.clients import NewClient, add_client
from sessions.errors import GateRefused
from sessions.gate import REFUSE_UNDER_DAYS, Contraindication, Verdict, evaluate
from sessions.pseudonyms import Pseudonyms
from sessions.recorder import Machine as RecordMachine
from sessions.recorder import Recorder
from sessions.store import Store
from sessions.telemetry import Reading

log = logging.getLogger(__name__)

# The fine-adjustment keys' settings, by the name shown on screen.
ADJUSTABLE = {"depth": DEPTH.field, "rate": RATE.field, "voltage": VOLTAGE.field}
TREND_POINTS = 60
LOG_LINES = 8
RECONNECT_AFTER_S = 1.0
RECONNECT_EVERY_S = 0.5
NEXT_SESSION_DAYS = (10, 14)  # DOMAIN.md: 10 to 14 days typical
TOUCH_UP_YEARS, SCAR_TOUCH_UP_YEARS = history.TOUCH_UP_YEARS, history.SCAR_TOUCH_UP_YEARS
AFTERCARE = (
    "Do not wash the scalp for 3 days (keep it dry for 72 hours).",
    "Keep out of the sun for 7 days; after that use SPF 30 to 50 on the scalp.",
    "No heavy exercise or sweating for 5 days.",
    "No swimming, sauna or steam room for 28 days after the final session.",
    "No exfoliants on the scalp for a month.",
    "From day 4, cleanse gently and moisturise.",
    "Redness fades in about 2 days; small scabs and pigment shedding from about day 3 "
    "are normal.",
)


class WorkflowError(SmpError):
    """A step taken out of order, or input the workflow cannot accept."""


@dataclass(frozen=True)
class Pigment:
    brand: str
    shade: str
    dilution: Dilution
    lot: str
    expiry: date


@dataclass(frozen=True)
class Cartridge:
    needle: NeedleSpec
    lot: str
    expiry: date


@dataclass(frozen=True)
class Plan:
    technician: str
    stage: Stage
    zones: tuple[Zone, ...]
    conditions: tuple[SkinCondition, ...]
    pigment: Pigment
    cartridge: Cartridge


@dataclass(frozen=True)
class ClientChoice:
    id: int
    name: str
    sessions: int
    days_since_last: float | None
    last_stage: str | None
    suggested_stage: Stage
    alias: str = ""  # the client's pseudonym, shown instead of the name in presentation mode


@dataclass(frozen=True)
class EndSummary:
    session_id: int
    aftercare: tuple[str, ...]
    next_session: str
    coverage: tuple[tuple[Zone, int | None], ...]


@dataclass
class _ZoneState:
    run_ms: int = 0
    runs: int = 0
    coverage: int | None = None
    settings: MachineSettings | None = None
    profile: str | None = None  # the profile chosen for this zone in this session


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
    run_started: float | None = None
    armed_once: bool = False


def next_stage(stage: Stage) -> Stage:
    return {Stage.S1: Stage.S2, Stage.S2: Stage.S3, Stage.S3: Stage.S4}.get(stage,
                                                                           Stage.TOUCH_UP)


def next_session_text(stage: Stage, worked: Sequence[Zone], today: date) -> str:
    """The next session within the interval rules (DOMAIN.md "Sessions and density")."""
    lo, hi = (today + timedelta(days=d) for d in NEXT_SESSION_DAYS)
    earliest = today + timedelta(days=REFUSE_UNDER_DAYS)
    if stage in (Stage.S1, Stage.S2):
        return (f"{next_stage(stage).label} between {lo} and {hi} "
                f"(not before {earliest} without an override)")
    if stage == Stage.S3:
        return (f"stage 4 between {lo} and {hi} if scars, alopecia, very dry, sensitive or "
                f"thick skin need it; otherwise a touch-up in {TOUCH_UP_YEARS} years")
    years = SCAR_TOUCH_UP_YEARS if Zone.SCAR in worked else TOUCH_UP_YEARS
    due = today.replace(year=today.year + years) if not (today.month == 2 and today.day == 29) \
        else today.replace(year=today.year + years, day=28)
    return f"a touch-up around {due} ({years} years)"


def _one_command(method):
    """Run a technician command under the controller's command lock (see __init__)."""

    @functools.wraps(method)
    def serialised(self, *args, **kwargs):
        with self._commands:
            return method(self, *args, **kwargs)

    return serialised


class SessionController:
    def __init__(self, store: Store, *, on_view: Callable[[View], None] | None = None,
                 envelope: SafetyEnvelope = HARD_LIMITS, library: Library | None = None,
                 publish_every_s: float = 0.2, today: Callable[[], date] | None = None):
        self.store = store
        self.envelope = envelope
        self.library = library or load_library()
        self.on_view = on_view or (lambda view: None)
        # Telemetry alone refreshes the screen 5 times a second, as an instrument's readout
        # does; a state change, a fault, a link change or a read-back is shown at once.
        # (bench/bench_console.py: 10 Hz cost the console more than a quarter of a core.)
        self.publish_every_s = publish_every_s
        self._today = today or (lambda: datetime.now(UTC).date())
        self.machine: Machine | None = None
        self.url = ""
        self._lock = threading.RLock()
        # One technician command at a time, each reading and changing the state it acts on as a
        # whole: two quick presses of "depth +" give two steps, never one. STOP never waits here.
        self._commands = threading.RLock()
        self._events: queue.Queue[Event | None] = queue.Queue()
        self._unsubscribe: Callable[[], None] | None = None
        self._machine_view = MachineView()
        self._trends = {k: deque(maxlen=TREND_POINTS) for k in ("rate", "voltage", "current",
                                                                 "depth")}
        self._log: deque[str] = deque(maxlen=LOG_LINES)
        self._work: _Work | None = None
        self._client: ClientChoice | None = None
        self._pseudonyms: Pseudonyms | None = None
        self._revision = 0
        self._view = View()
        self._dirty = False
        self._last_publish = 0.0
        self._stopping = False  # a STOP we sent, to tell it from one the link sent
        self._closed = threading.Event()
        self._reconnecting = False
        self._pump = threading.Thread(target=self._pump_loop, name="smp-controller",
                                      daemon=True)
        self._pump.start()

    # --- the view --------------------------------------------------------------------------

    @property
    def view(self) -> View:
        return self._view

    @property
    def simulator(self):
        """The simulated machine's trainer controls (sim:// only), else None."""
        transport = getattr(self.machine, "transport", None)
        sim_ = getattr(transport, "simulator", None)
        return getattr(sim_, "machine", None)

    def pseudonyms(self) -> Pseudonyms:
        """The record's keyed pseudonyms (reads, or on first use creates, the key)."""
        if self._pseudonyms is None:
            self._pseudonyms = Pseudonyms(self.store)
        return self._pseudonyms

    def _note(self, text: str) -> None:
        self._log.append(text)

    def _publish(self) -> None:
        """Build a new View from the current state and hand it to `on_view`."""
        with self._lock:
            self._revision += 1
            m = self._machine_view
            m = replace(m, rate_trend=tuple(self._trends["rate"]),
                        voltage_trend=tuple(self._trends["voltage"]),
                        current_trend=tuple(self._trends["current"]),
                        depth_trend=tuple(self._trends["depth"]))
            self._view = View(machine=m, work=self._work_view(), log=tuple(self._log),
                              revision=self._revision)
            self._dirty = False
            self._last_publish = time.monotonic()
            view = self._view
        try:
            self.on_view(view)
        except Exception:  # a display problem must never stop the recording
            log.exception("on_view failed")

    def _work_view(self) -> WorkView | None:
        w = self._work
        if w is None:
            return None
        now = time.monotonic()
        zones = tuple(
            ZoneStatus(z, z in w.plan.zones, s.coverage, s.run_ms, s.runs, s.settings)
            for z, s in w.zones.items())
        running = round((now - w.run_started) * 1000) if w.run_started is not None else 0
        return WorkView(
            session_id=w.recorder.session_id, client=w.client.name,
            client_alias=w.client.alias, stage=w.plan.stage.label,
            zone=w.zone, profile=w.profile, reasons=w.reasons, advisories=w.advisories,
            profiles=tuple(e.profile.name for e in self.library.for_zone(w.zone))
            if w.zone else (),
            target_density_pct=w.target, zones=zones, run_ms=running,
            armed_once=w.armed_once)

    # --- connecting ------------------------------------------------------------------------

    def connect(self, url: str) -> None:
        """Open the link (a port URL, or sim:// for the in-process simulator)."""
        machine = Machine.connect(url, self.envelope)
        with self._lock:
            old, self.machine, self.url = self.machine, machine, url
            if self._unsubscribe:
                self._unsubscribe()
            self._unsubscribe = machine.subscribe(self._events.put)
            self._adopt_identity(machine)
            self._note(f"connected to {self.identity_text(machine)} on {url}")
            self._publish()
        if old is not None:
            old.close(disarm=False)

    @staticmethod
    def identity_text(machine: Machine) -> str:
        ident = machine.ident
        assert ident is not None
        if machine.simulated:
            return f"SIMULATOR (firmware {ident.firmware_version})"
        return f"{ident.model} serial {ident.serial}, firmware {ident.firmware_version}"

    def _adopt_identity(self, machine: Machine) -> None:
        self._machine_view = replace(
            self._machine_view, connected=True, simulator=machine.simulated,
            identity=self.identity_text(machine), url=self.url,
            state=machine_state(machine.state, machine.faults), link=Link.CONNECTED,
            applied=machine.applied, envelope=str(machine.envelope),
            **self._fault_fields(machine.faults))

    @staticmethod
    def _fault_fields(faults: Fault) -> dict:
        cause, action = fault_text(faults)
        names = tuple(f.name for f in Fault if f and f in faults)
        return {"faults": names, "fault_cause": cause, "fault_action": action}

    def record_identity(self) -> RecordMachine:
        m = self._require_machine()
        ident = m.ident
        assert ident is not None
        if m.simulated:
            return RecordMachine.simulated(ident.firmware_version)
        return RecordMachine(ident.model, ident.serial, ident.firmware_version)

    def _require_machine(self) -> Machine:
        if self.machine is None:
            raise WorkflowError("no machine is connected: connect to a port or the simulator")
        return self.machine

    def close(self) -> None:
        """Disarm and release the machine; the session, if any, stays open in the record."""
        self._closed.set()
        self._events.put(None)
        self._pump.join(timeout=2.0)
        with self._lock:
            machine, self.machine = self.machine, None
            if self._work is not None:
                self._work.recorder.close()
        if machine is not None:
            machine.close()

    # --- clients and the gate --------------------------------------------------------------

    def find_clients(self, text: str = "", *,
                     presentation: bool = False) -> list[history.ClientSummary]:
        """Clients matching `text`; in presentation mode each named by its pseudonym, and
        matched by that alone (what is shown), never by the name or id behind it."""
        key = text.strip().lower()
        everyone = history.list_clients(self.store)
        if presentation:
            names = self.pseudonyms()
            everyone = sorted((replace(c, name=names.client(c.id)) for c in everyone),
                              key=lambda c: c.name)
            return [c for c in everyone if key in c.name.lower()]
        if not key:
            return everyone
        if key.lstrip("#").isdigit():
            return [c for c in everyone if str(c.id) == key.lstrip("#")]
        return [c for c in everyone if key in c.name.lower()]

    def add_client(self, client: NewClient) -> ClientChoice:
        return self.choose_client(add_client(self.store, client))

    def choose_client(self, client_id: int) -> ClientChoice:
        record = history.client_record(self.store, client_id)
        sessions = record.sessions
        last = sessions[-1] if sessions else None
        days = None
        if last is not None:
            started = last.started_at if last.started_at.tzinfo else last.started_at.replace(
                tzinfo=UTC)
            days = (datetime.now(UTC) - started).total_seconds() / 86400
        completed = [s for s in sessions if s.outcome == "completed"]
        suggested = next_stage(Stage(completed[-1].stage)) if completed else Stage.S1
        choice = ClientChoice(client_id, record.client.name, len(sessions), days,
                              last.stage if last else None, suggested,
                              self.pseudonyms().client(client_id))
        with self._lock:
            self._client = choice
        return choice

    def check_gate(self, answers: Mapping[Contraindication, bool],
                   overrides: Mapping[str, str]) -> list[Verdict]:
        """The gate's verdicts; GateRefused names every unresolved item and how to override."""
        client = self._require_client()
        return evaluate(answers, overrides, client.days_since_last)

    def _require_client(self) -> ClientChoice:
        if self._client is None:
            raise WorkflowError("no client chosen: pick or create a client first")
        return self._client

    # --- starting the session ----------------------------------------------------------------

    def start_session(self, plan: Plan, answers: Mapping[Contraindication, bool],
                      overrides: Mapping[str, str]) -> int:
        """Open the session in the record (the gate runs again there) with its consumables."""
        client = self._require_client()
        self._require_machine()
        if not plan.zones:
            raise WorkflowError("session plan: choose at least one zone")
        if self._work is not None:
            raise WorkflowError(f"session {self._work.recorder.session_id} is still open: "
                                "end it first")
        try:
            recorder = Recorder.start(
                self.store, client_id=client.id, technician=plan.technician, stage=plan.stage,
                machine=self.record_identity(), planned_zones=list(plan.zones),
                answers=answers, overrides=overrides)
        except GateRefused:
            raise
        p, c = plan.pigment, plan.cartridge
        recorder.use_needle(needle=c.needle, lot=c.lot, expiry=c.expiry)
        recorder.use_pigment(brand=p.brand, shade=p.shade, dilution=p.dilution, lot=p.lot,
                             expiry=p.expiry)
        zones = {z: _ZoneState() for z in Zone}
        with self._lock:
            self._work = _Work(recorder, plan, client, zones)
            self._note(f"session {recorder.session_id} started: {plan.stage.label}, "
                       f"{len(plan.zones)} zones planned")
            for v in recorder.verdicts:  # the reasons are in the record, not on the screen
                if v.decision != "clear":
                    self._note(f"gate: {v.item} {v.decision}" + (" (reason recorded)"
                                                                 if v.reason else ""))
            self._publish()
        return recorder.session_id

    def _require_work(self) -> _Work:
        if self._work is None:
            raise WorkflowError("no session is open: start one first")
        return self._work

    # --- zones and settings ------------------------------------------------------------------

    def profiles_for(self, zone: Zone) -> list[tuple[str, str]]:
        """The library's profiles for `zone`, its default first: (name, the profile's notes)."""
        return [(e.profile.name, e.profile.notes) for e in self.library.for_zone(Zone(zone))]

    @_one_command
    def select_zone(self, zone: Zone, profile: str | None = None) -> MachineSettings:
        """Work moves to `zone`: resolve its profile, apply it, record the read-back.

        `profile` chooses among the zone's profiles; the choice holds for this zone for the
        rest of the session. Without one, the zone's last choice, else its default.
        """
        work = self._require_work()
        machine = self._require_machine()
        zone = Zone(zone)
        if self._machine_view.pedal:
            raise WorkflowError("release the pedal before changing zone")
        entries = self.library.for_zone(zone)
        if not entries:
            raise WorkflowError(f"no profile for zone {zone.value} in the library")
        name = profile or work.zones[zone].profile
        entry = next((e for e in entries if e.profile.name == name), entries[0])
        if profile and entry.profile.name != profile:
            raise WorkflowError(f"profile {profile!r} is not for {zone.label}: allowed "
                                f"{', '.join(e.profile.name for e in entries)}")
        chosen = entry.profile
        target = None
        try:
            res = resolve(chosen, work.plan.stage, work.plan.conditions, machine.envelope)
        except ProfileRefused as exc:
            with self._lock:
                work.recorder.zone_changed(zone, profile=chosen.name, reasons=exc.reasons)
                work.zone, work.profile, work.reasons = zone, chosen.name, exc.reasons
                work.zones[zone].profile = chosen.name
                work.advisories = (str(exc),)
                self._note(f"{zone.label}: {exc}")
                self._publish()
            raise
        target = res.plan.target_density_pct
        with self._lock:
            work.recorder.zone_changed(zone, profile=chosen.name, reasons=res.reasons,
                                       target_density_pct=target)
            work.zone, work.profile, work.reasons = zone, chosen.name, res.reasons
            work.zones[zone].profile = chosen.name
            work.advisories, work.target = res.advisories, target
            self._note(f"zone {zone.label}: profile {chosen.name}")
            self._publish()
        return self._apply(res.settings)

    @_one_command
    def adjust(self, field: str, steps: int) -> MachineSettings:
        """Fine adjustment: `steps` steps of one setting from the confirmed value."""
        work = self._require_work()
        q = BY_FIELD[field]
        current = self._current_settings(work)
        values = {x.field: current.value(x) for x in QUANTITIES}
        values[q.field] = values[q.field] + q.step * steps
        try:
            wanted = MachineSettings(**values)
        except ValueError:
            raise WorkflowError(f"{q.label} {q.fmt_unit(values[q.field])} is outside the hard "
                                f"limits {q.range_text()}") from None
        return self._apply(wanted)

    @_one_command
    def repeat_last(self) -> MachineSettings:
        """The settings confirmed on this zone at this client's last visit to it."""
        work = self._require_work()
        if work.zone is None:
            raise WorkflowError("choose a zone first")
        # The newest visit may be this session's own (once a setting is applied here).
        visits = history.zone_history(self.store, work.client.id, work.zone, limit=2,
                                      with_settings=True)
        visit = next((v for v in visits if v.session_id != work.recorder.session_id), None)
        if visit is None or visit.work.settings is None:
            raise WorkflowError(f"no earlier session of this client has confirmed settings "
                                f"for {work.zone.label}")
        with self._lock:
            work.recorder.note(f"repeating {work.zone.value} settings of session "
                               f"{visit.session_id} ({visit.started_at:%Y-%m-%d})")
        return self._apply(visit.work.settings)

    def _current_settings(self, work: _Work) -> MachineSettings:
        if work.zone is None:
            raise WorkflowError("choose a zone first")
        s = work.zones[work.zone].settings
        if s is None:
            raise WorkflowError(f"{work.zone.label} has no confirmed settings to adjust")
        return s

    def _apply(self, wanted: MachineSettings) -> MachineSettings:
        work = self._require_work()
        machine = self._require_machine()
        problems = machine.check(wanted)
        if problems:
            with self._lock:
                work.recorder.settings_refused(wanted, "; ".join(problems))
                self._note(f"refused, not sent: {'; '.join(problems)}")
                self._publish()
            raise WorkflowError(f"not sent: {'; '.join(problems)}")
        with self._lock:
            work.recorder.settings_requested(wanted)
        try:
            confirmed = machine.apply(wanted)
        except SettingsMismatch as exc:
            # The machine is set to its read-back, whatever was asked: that is the record's
            # truth (invariant 3); the bridge has already stopped it.
            with self._lock:
                work.recorder.settings_applied(exc.applied)
                if work.zone is not None:
                    work.zones[work.zone].settings = exc.applied
                self._machine_view = replace(self._machine_view, applied=exc.applied)
                self._note(f"MISMATCH: {exc}")
                self._publish()
            raise
        except SmpError as exc:
            with self._lock:
                work.recorder.settings_refused(wanted, str(exc))
                self._note(f"not applied: {exc}")
                self._publish()
            raise
        with self._lock:
            work.recorder.settings_applied(confirmed)
            if work.zone is not None:
                work.zones[work.zone].settings = confirmed
            self._machine_view = replace(self._machine_view, applied=confirmed)
            self._note(f"applied (read-back): {confirmed}")
            self._publish()
        return confirmed

    @_one_command
    def set_coverage(self, zone: Zone, pct: int) -> None:
        work = self._require_work()
        if not 0 <= pct <= 100:
            raise WorkflowError(f"coverage {pct}%: allowed 0 to 100%")
        with self._lock:
            work.recorder.record_coverage(zone, coverage_pct=pct)
            work.zones[zone].coverage = pct
            self._publish()

    @_one_command
    def bump_coverage(self, delta: int) -> int:
        """Coverage of the current zone up or down by `delta` points, within 0 to 100%."""
        work = self._require_work()
        if work.zone is None:
            raise WorkflowError("choose a zone first")
        pct = max(0, min(100, (work.zones[work.zone].coverage or 0) + delta))
        self.set_coverage(work.zone, pct)
        return pct

    # --- arming and STOP ---------------------------------------------------------------------

    @_one_command
    def arm(self) -> None:
        """The deliberate act that lets the pedal run the needle. After STOP or a fault the
        latch is cleared first (the app asks for a confirmation before calling this)."""
        work = self._require_work()
        machine = self._require_machine()
        if machine.link_state == LinkState.LOST:
            raise WorkflowError("the link is lost: wait until it is back, then arm")
        if self._machine_view.pedal:
            raise WorkflowError("release the pedal before arming")
        if work.zone is None:
            raise WorkflowError("choose a zone before arming")
        if machine.state == State.FAULTED:
            machine.clear_fault()
            with self._lock:
                work.recorder.note("latched fault cleared by the technician")
        if machine.applied is None or machine.applied != work.zones[work.zone].settings:
            # The machine forgot its settings (restart or new connection): send them again.
            self._apply(self._current_settings(work))
        machine.arm()
        with self._lock:
            work.armed_once = True
            work.recorder.note("armed")
            self._note("armed by the technician")
            self._publish()

    @_one_command
    def disarm(self) -> None:
        machine = self._require_machine()
        machine.disarm()
        with self._lock:
            if self._work is not None:
                self._work.recorder.note("disarmed")
            self._note("disarmed")
            self._publish()

    def stop(self) -> bool:
        """STOP now; True once the machine acknowledged it. Recorded either way."""
        machine = self.machine
        if machine is None:
            return False
        self._stopping = True
        acked = machine.stop(wait=True, timeout=1.0)
        with self._lock:
            text = "STOP acknowledged by the machine" if acked else \
                "STOP sent, not acknowledged (the machine's watchdog stops the needle)"
            if self._work is not None:
                self._work.recorder.stop(text)
            self._note(text)
            self._publish()
        return acked

    # --- ending ------------------------------------------------------------------------------

    @_one_command
    def end_session(self, coverage: Mapping[Zone, int], notes: str = "", *,
                    aftercare_given: bool) -> EndSummary:
        work = self._require_work()
        if self._machine_view.state in (MachineState.ARMED, MachineState.RUNNING) and \
                self.machine is not None:
            self.machine.disarm()
        for zone, pct in coverage.items():
            if not 0 <= pct <= 100:
                raise WorkflowError(f"coverage of {Zone(zone).label} {pct}%: allowed 0 to 100%")
        with self._lock:
            for zone, pct in coverage.items():
                work.recorder.record_coverage(zone, coverage_pct=pct)
                work.zones[zone].coverage = pct
            if notes.strip():
                work.recorder.note(notes.strip())
            worked = [z for z, s in work.zones.items() if s.settings is not None or
                      z in coverage]
            nxt = next_session_text(work.plan.stage, worked, self._today())
            work.recorder.note(f"next session: {nxt}")
            work.recorder.end(aftercare_given=aftercare_given)
            summary = EndSummary(work.recorder.session_id, AFTERCARE, nxt,
                                 tuple((z, work.zones[z].coverage) for z in worked))
            self._note(f"session {summary.session_id} ended")
            self._work = None
            self._publish()
        return summary

    # --- what the bridge reports (on the controller's thread) --------------------------------

    def _pump_loop(self) -> None:
        while not self._closed.is_set():
            try:
                event = self._events.get(timeout=self.publish_every_s)
            except queue.Empty:
                event = False
            if event is None:
                return
            try:
                with self._lock:
                    if event is not False:
                        self._handle(event)
                    due = time.monotonic() - self._last_publish >= self.publish_every_s
                    if self._dirty and due:
                        self._sample_trends()
                        self._publish()
            except Exception:
                # A record that cannot be written is shown, never silently dropped.
                log.exception("while handling %r", event)
                self._note(f"ERROR: could not handle {type(event).__name__}: see the log")
                self._publish()

    def _record(self) -> Recorder | None:
        return self._work.recorder if self._work is not None else None

    def _handle(self, event: Event) -> None:
        rec = self._record()
        mv = self._machine_view
        if isinstance(event, TelemetryReceived):
            t = event.telemetry
            faults = Fault(t.faults)
            self._machine_view = replace(
                mv, state=machine_state(State(t.state), faults), pedal=t.pedal_down,
                motor=t.motor_on, rate_hz=t.rate_dhz / 10, voltage_v=t.voltage_mv / 1000,
                current_a=t.current_ma / 1000, depth_mm=t.depth_um / 1000,
                temperature_c=t.temperature_dc / 10, **self._fault_fields(faults))
            if rec is not None:
                rec.telemetry(Reading(datetime.now(UTC), t.rate_dhz, t.voltage_mv,
                                      t.current_ma, fault=bool(faults)))
            if self._needle_changed(mv) or t.pedal_down != mv.pedal:
                self._publish()
            else:
                self._dirty = True
            return
        if isinstance(event, LinkHealth):
            self._machine_view = replace(mv, rtt_ms=event.rtt_ms,
                                         telemetry_age_ms=event.telemetry_age_ms,
                                         resend_ratio=event.resend_ratio)
            self._dirty = True
            return
        if isinstance(event, StateChanged):
            self._machine_view = replace(mv, state=machine_state(event.new, event.faults),
                                         **self._fault_fields(event.faults))
            self._note(f"machine {self._machine_view.state.value}")
            self._needle_changed(mv)
        elif isinstance(event, FaultLatched):
            self._fault(event)
        elif isinstance(event, LinkStateChanged):
            self._link(event)
        elif isinstance(event, MachineRebooted):
            self._machine_view = replace(mv, applied=None)
            if rec is not None:
                rec.machine_rebooted(f"{event.new_boot_id:#010x}")
            self._note(f"MACHINE RESTARTED (boot {event.new_boot_id:#010x}): it is disarmed "
                       "and forgot its settings; arm (a) sends them again")
        elif isinstance(event, CommandFailed):
            if rec is not None:
                rec.note(f"command {event.command} failed: {event.reason}")
            self._note(f"command {event.command} failed: {event.reason}")
        elif isinstance(event, SettingsApplied):
            return  # recorded by _apply, which waits for the same read-back
        else:
            return
        self._publish()

    def _needle_changed(self, before: MachineView) -> bool:
        """A run is the needle running, whatever the pedal does: it starts when the machine
        reports RUNNING and ends when it leaves it (pedal up, STOP, a fault), so a pedal held
        through a fault, or pressed while disarmed, adds no needle time."""
        running = self._machine_view.state == MachineState.RUNNING
        if running == (before.state == MachineState.RUNNING):
            return False
        state = self._machine_view.state
        self._run(running, ended_by="pedal up" if state == MachineState.ARMED else state.value)
        return True

    def _run(self, start: bool, *, ended_by: str = "") -> None:
        work = self._work
        if work is None:
            return
        now = time.monotonic()
        if start and work.run_started is None:
            work.run_started = now
            work.recorder.pedal_down()
            self._note("needle running")
        elif not start and work.run_started is not None:
            ms = round((now - work.run_started) * 1000)
            work.run_started = None
            work.recorder.pedal_up(ms)
            if work.zone is not None:
                zs = work.zones[work.zone]
                zs.run_ms += ms
                zs.runs += 1
            self._note(f"needle stopped ({ended_by}): run of {ms / 1000:.1f} s")

    def _fault(self, event: FaultLatched) -> None:
        rec = self._record()
        cause, action = fault_text(event.new)
        names = str(event)
        if event.new == Fault.STOP:
            if not self._stopping:  # the link supervisor or the machine stopped on its own
                if rec is not None:
                    rec.stop("STOP latched by the machine (sent by the link supervisor)")
                self._note("STOP latched by the machine")
            self._stopping = False
            return
        if rec is not None:
            rec.fault(names, f"{cause}; {action}")
        self._note(f"FAULT {names}: {cause}; {action}")

    def _link(self, event: LinkStateChanged) -> None:
        rec = self._record()
        mv = self._machine_view
        link = {LinkState.CONNECTED: Link.CONNECTED, LinkState.STALE: Link.STALE,
                LinkState.LOST: Link.LOST}[event.new]
        self._machine_view = replace(mv, link=link)
        if event.new == LinkState.LOST:
            if rec is not None:
                rec.link_lost(event.reason)
            self._note(f"LINK LOST: {event.reason}")
            self._run(False, ended_by="LINK LOST")
            self._reconnect_later()
        elif event.old == LinkState.LOST:
            if rec is not None:
                rec.link_restored()
            self._note("link restored: re-arm (a) to continue")

    # --- reconnecting a port that went away --------------------------------------------------

    def _reconnect_later(self) -> None:
        if self.url.startswith("sim://") or self._reconnecting or self._closed.is_set():
            return  # the in-process simulator's link recovers by itself
        self._reconnecting = True
        threading.Thread(target=self._reconnect_loop, name="smp-reconnect",
                         daemon=True).start()

    def _reconnect_loop(self) -> None:
        """Open the port again once the machine is back. Never re-arms: a person does."""
        try:
            if self._closed.wait(RECONNECT_AFTER_S):
                return
            old = self.machine
            if old is None or old.link_state != LinkState.LOST:
                return
            old_boot = old.ident.boot_id if old.ident else None
            old.close(disarm=False)
            while not self._closed.is_set():
                try:
                    machine = Machine.connect(self.url, self.envelope)
                except SmpError:
                    self._closed.wait(RECONNECT_EVERY_S)
                    continue
                break
            else:
                return
            with self._lock:
                if self._closed.is_set():
                    machine.close()
                    return
                if self._unsubscribe:
                    self._unsubscribe()
                self.machine = machine
                self._unsubscribe = machine.subscribe(self._events.put)
                self._adopt_identity(machine)
                rec = self._record()
                if rec is not None:
                    rec.link_restored()
                    new_boot = machine.ident.boot_id if machine.ident else None
                    if new_boot != old_boot:
                        rec.machine_rebooted(f"{new_boot:#010x}")
                self._note(f"link restored on {self.url}: the machine is "
                           f"{self._machine_view.state.value}; re-arm (a) to continue")
                self._publish()
        finally:
            self._reconnecting = False

    def _sample_trends(self) -> None:
        m = self._machine_view
        for key, value in (("rate", m.rate_hz), ("voltage", m.voltage_v),
                           ("current", m.current_a), ("depth", m.depth_mm)):
            if value is not None:
                self._trends[key].append(value)

