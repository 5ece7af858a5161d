"""The recorder used during a session: it turns what happens into facts (sessions/facts.py)
and hands each to its `write`.

    rec = Recorder.start(store, client_id=..., ...)     # writes each fact at once (tests, CLI)
    rec = Recorder(session_id, write=sink.submit, ...)  # the console: journal first, then store

With `Recorder.start` every call returns after its fact is committed. In the console the sink
(sessions/sink.py) makes each fact durable in a journal before it reaches the store. Telemetry
is summarised in memory per needle run (sessions/telemetry.py): not a timeline event, and not
shown as "recorded"; every frame at full rate goes to the flight recorder (sessions/flight.py),
not here.

A needle run is the clinical unit: the machine RUNNING until it left RUNNING, at one set of
settings the machine confirmed. Settings confirmed (or lost) mid-run split the run, so that
each row of needle_runs says what the needle did for how long.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select

from protocols import Dilution, MachineSettings, NeedleSpec, Stage, Zone
from protocols.text import ascii_printable, check, printable
from sessions import facts
from sessions.errors import RecordError
from sessions.gate import Contraindication, Verdict
from sessions.models import (
    Client,
    Event,
    EventKind,
    Outcome,
    SessionRow,
    TelemetrySample,
)
from sessions.needle_runs import SPLIT
from sessions.store import Store, rowcount
from sessions.telemetry import Reading, RunStats
from sessions.writer import Writer

Clock = Callable[[], datetime]
Write = Callable[[facts.Fact], int | None]
RAW_TELEMETRY_WINDOW = timedelta(days=30)
SIMULATOR = "SIMULATOR"

_LAST_SEQ = select(func.max(Event.__table__.c.seq)).where(
    Event.__table__.c.session_id == bindparam("sid"))


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Machine:
    """Who did the work: a real machine's identity from its IDENT, or the simulator."""

    model: str
    serial: str
    firmware: str
    simulator: bool = False

    @classmethod
    def simulated(cls, firmware: str = "sim") -> Machine:
        # Invariant 5: a simulator session must be unmistakable in the record.
        return cls(SIMULATOR, SIMULATOR, firmware, simulator=True)

    def as_json(self) -> dict[str, Any]:
        return {"model": self.model, "serial": self.serial, "firmware": self.firmware,
                "simulator": self.simulator}


@dataclass(frozen=True)
class Recorded:
    """What a recorder call recorded: its place in the timeline and time, and the event's id
    once the store holds it (None while it is on its way there)."""

    id: int | None
    seq: int
    at: datetime
    kind: EventKind


@dataclass
class _Run:
    """The run going on now, from its last split: one set of settings, or unknown ones."""

    seq: int
    started: datetime
    zone: Zone | None
    profile: str
    settings: MachineSettings | None
    adjustments: tuple[str, ...]
    base_ms: int = 0  # the machine's needle time of this run before this part of it
    stats: RunStats = field(default_factory=RunStats)

    def row(self, ended: datetime, needle_ms: int, *, exact: bool, ended_by: str) -> dict[str, Any]:
        w = self.settings.to_wire() if self.settings is not None else (None, None, None)
        return {"seq": self.seq, "zone": _v(self.zone), "profile": self.profile,
                "started_at": facts.iso(self.started), "ended_at": facts.iso(ended),
                "needle_ms": max(0, needle_ms), "exact": exact, "ended_by": ended_by[:100],
                "depth_um": w[0], "rate_dhz": w[1], "voltage_mv": w[2],
                "adjustments": json.dumps(list(self.adjustments)), **self.stats.columns()}


class Recorder:
    def __init__(self, session_id: int, *, write: Write, next_seq: int = 1,
                 clock: Clock = utcnow,
                 warnings: Sequence[str] = (), verdicts: Sequence[Verdict] = (),
                 store: Store | None = None, on_close: Callable[[], None] | None = None):
        self.session_id = session_id
        self.store = store
        self.warnings = tuple(warnings)
        self.verdicts = tuple(verdicts)  # the gate's, as recorded when the session started
        self._write = write
        self._on_close = on_close or (lambda: None)
        self._clock = clock
        self._seq = next_seq
        self._lock = threading.RLock()
        self._closed = False
        self._zone: Zone | None = None
        self._profile = ""
        self._settings: MachineSettings | None = None  # what the machine last confirmed
        self._adjustments: tuple[str, ...] = ()  # the technician's steps in those settings
        self._run: _Run | None = None
        self._runs = 0

    # -- starting -------------------------------------------------------------------------

    @classmethod
    def start(
        cls, store: Store, *, client_id: int, technician: str, stage: Stage, machine: Machine,
        planned_zones: Sequence[Zone], answers: Mapping[Contraindication, bool],
        overrides: Mapping[str, str] | None = None, clock: Clock = utcnow,
    ) -> Recorder:
        """Run the contraindication gate and the interval rule, then open the session; every
        later call writes at once. Raises GateRefused (nothing is written) if an item is
        unresolved."""
        writer = facts.StoreWriter(store)
        try:
            opened = writer.open_session(request(
                client_id=client_id, technician=technician, stage=stage, machine=machine,
                planned_zones=planned_zones, answers=answers, overrides=overrides,
                at=clock()))
        except BaseException:
            writer.close()
            raise
        return cls(opened.session_id, write=writer.write, next_seq=2, clock=clock,
                   warnings=opened.warnings, verdicts=opened.verdicts, store=store,
                   on_close=writer.close)

    # -- the timeline ---------------------------------------------------------------------

    def settings_requested(self, settings: MachineSettings) -> Recorded:
        return self._event(EventKind.SETTINGS_REQUESTED, settings=settings)

    def settings_applied(self, settings: MachineSettings, *, source: str = "read-back",
                         adjustments: Sequence[str] = (),
                         run_ms: int | None = None) -> Recorded:
        """What the machine reports it holds: this, not the request, is what the record says
        was used. `source` is "read-back" (its answer to our SET) or "telemetry" (what its
        telemetry named after an answer was lost, or a change nobody asked for).
        `adjustments` are the technician's steps these settings carry ("technician: depth
        +0.05 mm"); `run_ms` is the machine's needle time of the run going on, if one is."""
        w = settings.to_wire()
        values = {"depth_um": w.depth_um, "rate_dhz": w.rate_dhz, "voltage_mv": w.voltage_mv}
        payload: dict[str, Any] = {} if source == "read-back" else {"source": source}
        if adjustments:
            payload["adjustments"] = list(adjustments)
        with self._lock:
            at = self._clock()
            run = self._split(settings, tuple(adjustments), at, run_ms)
            return self._event(EventKind.SETTINGS_APPLIED, settings=settings,
                               zone_work=self._zone_values(values), payload=payload or None,
                               run=run, at=at)

    def settings_unknown(self, requested: MachineSettings | None, reason: str, *,
                         run_ms: int | None = None) -> Recorded:
        """A SET's outcome was lost: what the machine holds is not known until it reports."""
        with self._lock:
            at = self._clock()
            run = self._split(None, (), at, run_ms)
            return self._event(EventKind.SETTINGS_UNKNOWN, settings=requested,
                               payload={"reason": printable(reason)}, run=run, at=at)

    def settings_refused(self, settings: MachineSettings, reason: str) -> Recorded:
        return self._event(EventKind.SETTINGS_REFUSED, settings=settings,
                           payload={"reason": printable(reason)})

    def pedal_down(self, *, at: datetime | None = None) -> Recorded:
        """A needle run began (the machine entered RUNNING)."""
        with self._lock:
            if self._run is not None:
                raise RecordError("pedal down recorded twice without a pedal up in between")
            rec = self._event(EventKind.PEDAL_DOWN, at=at)
            self._run = self._new_run(rec.at)
            return rec

    def pedal_up(self, duration_ms: int | None = None, *, at: datetime | None = None,
                 ended_by: str = "pedal up", exact: bool = True) -> Recorded:
        """End of a needle run; `duration_ms` is the machine's figure for the whole run when
        it reports one (else the wall time since it began)."""
        with self._lock:
            run = self._run
            if run is None:
                raise RecordError("pedal up recorded without a pedal down")
            now = at or self._clock()
            total = duration_ms if duration_ms is not None else run.base_ms + round(
                (now - run.started).total_seconds() * 1000)
            row = run.row(now, total - run.base_ms, exact=exact, ended_by=printable(ended_by))
            rec = self._event(EventKind.PEDAL_UP, duration_ms=total, run=row, at=now,
                              payload={"ended_by": printable(ended_by)})
            self._run = None
            return rec

    def stop(self, reason: str = "") -> Recorded:
        return self._event(EventKind.STOP, payload={"reason": printable(reason)})

    def fault(self, code: str, message: str = "") -> Recorded:
        return self._event(EventKind.FAULT, payload={"code": printable(code),
                                                     "message": printable(message)})

    def link_lost(self, detail: str = "") -> Recorded:
        return self._event(EventKind.LINK_LOST, payload={"detail": printable(detail)})

    def link_restored(self) -> Recorded:
        return self._event(EventKind.LINK_RESTORED)

    def machine_rebooted(self, boot_id: str) -> Recorded:
        with self._lock:
            self._settings, self._adjustments = None, ()  # it forgot them
            return self._event(EventKind.MACHINE_REBOOTED,
                               payload={"boot_id": printable(boot_id)})

    def zone_changed(self, zone: Zone, *, profile: str = "", reasons: Sequence[str] = (),
                     target_density_pct: int | None = None) -> Recorded:
        """Work moves to `zone` (the pedal is up: a zone is never changed mid-run)."""
        zone = Zone(zone)
        with self._lock:
            values: dict[str, Any] = {}
            if profile:
                values.update(profile=profile, reasons=json.dumps(list(reasons)))
            if target_density_pct is not None:
                values["target_density_pct"] = target_density_pct
            rec = self._event(EventKind.ZONE_CHANGED, zone=zone,
                              zone_work={"zone": zone.value, "values": values},
                              payload={"profile": profile, "reasons": list(reasons)})
            self._zone, self._profile = zone, profile
            return rec

    def note(self, text: str) -> Recorded:
        if not text.strip():
            raise RecordError("note: the text is empty")
        check("note", text, multiline=True)
        return self._event(EventKind.NOTE, payload={"text": text})

    def correct(self, event_id: int, text: str, **fields: Any) -> Recorded:
        """A correction of an earlier event of this session; the original stays as it was."""
        if not text.strip():
            raise RecordError("correction: say what was wrong (the text is empty)")
        check("correction", text, multiline=True)
        for key, value in fields.items():
            if isinstance(value, str):
                check(f"correction {key}", value)
        if self.store is not None:
            with self.store.reading() as s:
                target = s.get(Event, event_id)
            if target is None or target.session_id != self.session_id:
                raise RecordError(f"correction: event {event_id} is not in session "
                                  f"{self.session_id}")
        return self._event(EventKind.CORRECTION, corrects=event_id,
                           payload={"text": text, **fields})

    # -- consumables and coverage ---------------------------------------------------------

    def use_pigment(self, *, brand: str, shade: str, dilution: Dilution, lot: str,
                    expiry: date, zone: Zone | None = None) -> None:
        self._check_lot("pigment", lot, expiry)
        check("pigment brand", brand)
        check("pigment shade", shade)
        self._put(facts.use(self.session_id, "pigment", dict(
            zone=_v(zone), brand=brand, shade=shade, dilution_water=dilution.water,
            dilution_pigment=dilution.pigment, lot=lot.strip(), expiry=expiry)))

    def use_needle(self, *, needle: NeedleSpec, lot: str, expiry: date,
                   zone: Zone | None = None) -> None:
        self._check_lot(needle_what(zone), lot, expiry)
        self._put(facts.use(self.session_id, "needle", dict(
            zone=_v(zone), code=needle.code, lot=lot.strip(), expiry=expiry)))

    def record_passes(self, zone: Zone, passes: int) -> Recorded:
        """The technician marked a pass over `zone`: `passes` so far in this session."""
        if passes < 0:
            raise RecordError(f"passes {passes} is negative")
        zone = Zone(zone)
        return self._event(EventKind.PASS_MARKED, zone=zone,
                           zone_work={"zone": zone.value, "values": {"passes": passes}},
                           payload={"passes": passes})

    def record_coverage(self, zone: Zone, *, coverage_pct: int, passes: int | None = None,
                        notes: str | None = None) -> None:
        if not 0 <= coverage_pct <= 100:
            raise RecordError(f"coverage {coverage_pct}% is outside 0 to 100%")
        if passes is not None and passes < 0:
            raise RecordError(f"passes {passes} is negative")
        values: dict[str, Any] = {"coverage_pct": coverage_pct}
        if passes is not None:
            values["passes"] = passes
        if notes is not None:
            values["notes"] = check("zone notes", notes, multiline=True)
        self._put(facts.zone_work(self.session_id, Zone(zone).value, values))

    def telemetry(self, reading: Reading) -> None:
        """Feed one sample: summarised in memory (the flight recorder keeps the frames)."""
        with self._lock:
            self._ensure_open()
            if self._run is not None:
                run = self._run
                run.stats.add(reading, None if run.settings is None
                              else run.settings.to_wire().rate_dhz)

    # -- ending ---------------------------------------------------------------------------

    def end(self, outcome: Outcome = Outcome.COMPLETED, *, aftercare_given: bool) -> Recorded:
        outcome = Outcome(outcome)
        with self._lock:
            if self._run is not None:
                self.pedal_up(ended_by="session ended", exact=False)
            rec = self._event(EventKind.SESSION_ENDED, close={"outcome": outcome.value,
                                     "aftercare_given": aftercare_given},
                              payload={"outcome": outcome.value,
                                       "aftercare_given": aftercare_given})
            self._closed = True
            self._on_close()
        if self.store is not None:
            prune_telemetry(self.store, now=self._clock())
        return rec

    def close(self) -> None:
        """Let go, without ending the session (end() does it)."""
        with self._lock:
            self._on_close()

    # -- internals ------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closed:
            raise RecordError(f"session {self.session_id} has ended; nothing more can be "
                              "recorded in it (add a note to a new session instead)")

    def _new_run(self, at: datetime, base_ms: int = 0) -> _Run:
        self._runs += 1
        return _Run(self._runs, at, self._zone, self._profile, self._settings,
                    self._adjustments, base_ms)

    def _split(self, settings: MachineSettings | None, adjustments: tuple[str, ...],
               at: datetime, run_ms: int | None) -> dict[str, Any] | None:
        """New settings (or unknown ones) take effect: mid-run, the run so far is closed at
        `run_ms` of needle time and the rest is a run of its own. The closed part's row."""
        old = self._run
        self._settings, self._adjustments = settings, adjustments
        if old is None or old.settings == settings:
            return None
        ms = run_ms if run_ms is not None else old.base_ms + round(
            (at - old.started).total_seconds() * 1000)
        row = old.row(at, ms - old.base_ms, exact=False, ended_by=SPLIT)
        self._run = self._new_run(at, base_ms=max(ms, old.base_ms))
        return row

    def _zone_values(self, values: dict[str, Any]) -> dict[str, Any] | None:
        return None if self._zone is None else {"zone": self._zone.value, "values": values}

    def _put(self, fact: facts.Fact) -> int | None:
        with self._lock:
            self._ensure_open()
            return self._write(fact)

    def _event(self, kind: EventKind, *, zone: Zone | None = None,
               settings: MachineSettings | None = None, duration_ms: int | None = None,
               corrects: int | None = None, payload: dict[str, Any] | None = None,
               zone_work: dict[str, Any] | None = None, run: dict[str, Any] | None = None,
               close: dict[str, Any] | None = None, at: datetime | None = None) -> Recorded:
        with self._lock:
            self._ensure_open()
            at = at or self._clock()
            seq = self._seq
            fact = facts.event(
                self.session_id, seq, at, kind,
                zone=_v(zone if zone is not None else self._zone),
                settings=settings.to_wire() if settings else None, duration_ms=duration_ms,
                corrects=corrects, payload=payload, zone_work=zone_work, run=run, close=close)
            event_id = self._write(fact)
            self._seq += 1
            return Recorded(event_id, seq, at, kind)

    def _check_lot(self, what: str, lot: str, expiry: date) -> None:
        check_lot(what, lot, expiry, self._clock().date())


def check_lot(what: str, lot: str, expiry: date, today: date) -> None:
    """A consumable's lot as the record takes it: `what` names it in the one-line error
    ("crown cartridge", "pigment"). Callers check before anything is written."""
    if not lot.strip():
        raise RecordError(f"{what}: the lot number is required (recalls depend on it)")
    check(f"{what} lot", lot)
    if expiry < today:
        raise RecordError(f"{what} lot {lot.strip()} expired on {expiry.isoformat()}; "
                          "use an unexpired one")


def needle_what(zone: Zone | None) -> str:
    """How errors name a cartridge: by its zone ("crown cartridge") when it has one."""
    return "needle cartridge" if zone is None else f"{Zone(zone).value} cartridge"


def request(*, client_id: int, technician: str, stage: Stage, machine: Machine,
            planned_zones: Sequence[Zone], answers: Mapping[Contraindication, bool],
            overrides: Mapping[str, str] | None, at: datetime) -> facts.SessionRequest:
    """What opening a session takes; refuses unsafe text before anything is written."""
    if technician.strip():
        check("technician", technician)
    # A device's IDENT strings are kept to printable ASCII before they are stored.
    machine = Machine(ascii_printable(machine.model), ascii_printable(machine.serial),
                      ascii_printable(machine.firmware), machine.simulator)
    return facts.SessionRequest(client_id, technician, Stage(stage), machine.as_json(),
                                tuple(Zone(z) for z in planned_zones), dict(answers),
                                dict(overrides or {}), at)


def _v(zone: Zone | None) -> str | None:
    return None if zone is None else Zone(zone).value


# -- sessions a crash left open -----------------------------------------------------------

@dataclass(frozen=True)
class OpenSession:
    id: int
    client_id: int
    client_name: str
    technician: str
    started_at: datetime
    events: int
    last_event_at: datetime
    owner: str = ""
    lease_until: datetime | None = None

    def held(self, now: datetime) -> bool:
        """Another chair holds it: its lease has not run out."""
        return self.lease_until is not None and self.lease_until > now


def open_sessions(store: Store) -> list[OpenSession]:
    """Sessions never ended, with who holds them and until when. Only those whose lease has
    run out were interrupted; the others are running at another chair."""
    with store.reading() as s:
        rows = s.execute(
            select(SessionRow.id, SessionRow.client_id, Client.name, SessionRow.technician,
                   SessionRow.started_at, func.count(Event.id), func.max(Event.at),
                   SessionRow.owner, SessionRow.lease_until)
            .join(Client, Client.id == SessionRow.client_id)
            .join(Event, Event.session_id == SessionRow.id)
            .where(SessionRow.outcome.is_(None))
            .group_by(SessionRow.id, SessionRow.client_id, Client.name, SessionRow.technician,
                      SessionRow.started_at, SessionRow.owner, SessionRow.lease_until)
            .order_by(SessionRow.id)).all()
    return [OpenSession(*r) for r in rows]


def interrupted_sessions(store: Store, *, now: datetime | None = None) -> list[OpenSession]:
    now = now or utcnow()
    return [s for s in open_sessions(store) if not s.held(now)]


def close_interrupted(store: Store, session_id: int, *, clock: Clock = utcnow,
                      reason: str = "left open by a crash") -> Recorded:
    """Close an open session as interrupted, keeping every event it has. Refused for a
    session another chair holds (its lease has not run out)."""
    now = clock()
    held = next((s for s in open_sessions(store) if s.id == session_id), None)
    if held is not None and held.held(now):
        raise RecordError(f"session {session_id} is held by {held.owner or 'another chair'} "
                          f"until {held.lease_until:%H:%M:%S} UTC: it is running there, not "
                          "interrupted")
    writer = Writer(store)
    try:
        with writer.transaction() as tx:
            seq = (tx.scalar(_LAST_SEQ, {"sid": session_id}) or 0) + 1
    finally:
        writer.close()
    fact = facts.event(session_id, seq, now, EventKind.SESSION_ENDED,
                       payload={"outcome": Outcome.INTERRUPTED.value, "reason": reason},
                       close={"outcome": Outcome.INTERRUPTED.value, "aftercare_given": False})
    sw = facts.StoreWriter(store)
    try:
        event_id = sw.write(fact)
    except facts.Rejected as exc:
        raise RecordError(str(exc)) from None
    finally:
        sw.close()
    return Recorded(event_id, seq, now, EventKind.SESSION_ENDED)


def prune_telemetry(store: Store, *, now: datetime | None = None,
                    keep: timedelta = RAW_TELEMETRY_WINDOW) -> int:
    """Delete raw telemetry (records before the flight recorder) older than `keep`
    (summaries stay). Returns rows deleted."""
    cutoff = (now or utcnow()) - keep
    with store.unit() as s:
        return rowcount(s.execute(delete(TelemetrySample).where(TelemetrySample.at < cutoff)))
