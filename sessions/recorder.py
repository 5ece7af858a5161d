"""The recorder used during a session: plain calls, each returning only after its commit.

One Recorder per session. Every public method takes a lock, so the console may call it from a
worker thread while another thread feeds telemetry. Raw telemetry samples are buffered and
written with the next event (or every `flush_samples`); they are not timeline events and are
never shown as "recorded".
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update

from protocols import Dilution, MachineSettings, NeedleSpec, Stage, Zone
from protocols.text import ascii_printable, check, printable
from sessions.errors import RecordError
from sessions.gate import Contraindication, Verdict, evaluate
from sessions.models import (
    Client,
    Event,
    EventKind,
    GateAnswer,
    NeedleUse,
    Outcome,
    PigmentUse,
    SessionRow,
    TelemetrySample,
    TelemetrySummary,
    ZoneWork,
)
from sessions.store import Store
from sessions.telemetry import Accumulator, Reading
from sessions.writer import Tx, Writer

Clock = Callable[[], datetime]
RAW_TELEMETRY_WINDOW = timedelta(days=30)
SIMULATOR = "SIMULATOR"


# Compiled once per dialect by the Writer (sessions/writer.py), never per event.
_events, _zone_works = Event.__table__, ZoneWork.__table__
_INSERT_EVENT = insert(_events).returning(_events.c.id)
_FIND_ZONE_WORK = select(_zone_works.c.id).where(_zone_works.c.session_id == bindparam("sid"),
                                                 _zone_works.c.zone == bindparam("zone"))
_INSERT_ZONE_WORK = insert(_zone_works).returning(_zone_works.c.id)
_UPDATE_ZONE_WORK = update(_zone_works).where(_zone_works.c.id == bindparam("zid"))
_INSERT_SUMMARY = insert(TelemetrySummary.__table__)
_INSERT_SAMPLE = insert(TelemetrySample.__table__)
_INSERT_PIGMENT = insert(PigmentUse.__table__)
_INSERT_NEEDLE = insert(NeedleUse.__table__)
_SESSION = select(SessionRow.__table__.c.client_id, SessionRow.__table__.c.outcome).where(
    SessionRow.__table__.c.id == bindparam("sid"))
_CLOSE_SESSION = update(SessionRow.__table__).where(SessionRow.__table__.c.id == bindparam("sid"))
_COUNT_ZONE = select(func.count()).select_from(_zone_works).where(
    _zone_works.c.session_id == bindparam("sid"), _zone_works.c.zone == bindparam("zone"))
_UPDATE_CLIENT = update(Client.__table__).where(Client.__table__.c.id == bindparam("cid"))
_LAST_SEQ = select(func.max(_events.c.seq)).where(_events.c.session_id == bindparam("sid"))


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


@dataclass(frozen=True)
class Recorded:
    """What a recorder call committed: the event's id, its place in the timeline and time."""

    id: int
    seq: int
    at: datetime
    kind: EventKind


@dataclass
class _Run:
    started: datetime
    acc: Accumulator = field(default_factory=Accumulator)


class Recorder:
    def __init__(self, store: Store, session_id: int, *, next_seq: int = 1,
                 clock: Clock = utcnow, flush_samples: int = 250,
                 warnings: Sequence[str] = (), verdicts: Sequence[Verdict] = ()):
        self.store = store
        self.session_id = session_id
        self.warnings = tuple(warnings)
        self.verdicts = tuple(verdicts)  # the gate's, as recorded when the session started
        self._clock = clock
        self._seq = next_seq
        self._lock = threading.RLock()
        self._closed = False
        self._zone: Zone | None = None
        self._zone_acc = Accumulator()
        self._run: _Run | None = None
        self._runs = 0
        self._samples: list[Reading] = []
        self._flush_samples = flush_samples
        self._zone_ids: dict[Zone, int] = {}
        self._pending_zone_ids: dict[Zone, int] = {}
        self._writer = Writer(store)

    # -- starting -------------------------------------------------------------------------

    @classmethod
    def start(
        cls, store: Store, *, client_id: int, technician: str, stage: Stage, machine: Machine,
        planned_zones: Sequence[Zone], answers: Mapping[Contraindication, bool],
        overrides: Mapping[str, str] | None = None, clock: Clock = utcnow,
    ) -> Recorder:
        """Run the contraindication gate and the interval rule, then open the session.
        Raises GateRefused (nothing is written) if an item is unresolved."""
        if not technician.strip():
            raise RecordError("technician: a name is required to start a session")
        check("technician", technician)
        # A device's IDENT strings are kept to printable ASCII before they are stored.
        machine = Machine(ascii_printable(machine.model), ascii_printable(machine.serial),
                          ascii_printable(machine.firmware), machine.simulator)
        now = clock()
        with store.unit() as s:
            if s.get(Client, client_id) is None:
                raise RecordError(f"no client with id {client_id}")
            last = s.scalar(select(func.max(SessionRow.started_at))
                            .where(SessionRow.client_id == client_id))
            days = None if last is None else (now - last).total_seconds() / 86400
            verdicts = evaluate(answers, overrides or {}, days)
            row = SessionRow(
                client_id=client_id, technician=technician.strip(), started_at=now,
                stage=Stage(stage).value, simulator=machine.simulator,
                machine_model=machine.model, machine_serial=machine.serial,
                machine_firmware=machine.firmware,
                planned_zones=",".join(Zone(z).value for z in planned_zones),
                aftercare_given=False)
            s.add(row)
            s.flush()
            s.add_all(GateAnswer(session_id=row.id, item=v.item, present=v.present,
                                 detail=v.detail, decision=v.decision, reason=v.reason)
                      for v in verdicts)
            warnings = [_warning(v) for v in verdicts if v.decision != "clear"]
            payload = {"machine": _machine_json(machine), "stage": row.stage,
                       "planned_zones": row.planned_zones.split(",") if row.planned_zones
                       else [], "gate": warnings}
            s.add(Event(session_id=row.id, seq=1, at=now, kind=EventKind.SESSION_STARTED,
                        payload=json.dumps(payload)))
        return cls(store, row.id, next_seq=2, clock=clock, warnings=warnings,
                   verdicts=verdicts)

    # -- the timeline ---------------------------------------------------------------------

    def settings_requested(self, settings: MachineSettings) -> Recorded:
        return self._event(EventKind.SETTINGS_REQUESTED, settings=settings)

    def settings_applied(self, settings: MachineSettings) -> Recorded:
        """The machine's read-back: this, not the request, is what the record says was used."""
        def also(tx: Tx) -> None:
            if self._zone is not None:
                w = settings.to_wire()
                self._update_zone_work(tx, self._zone, depth_um=w.depth_um, rate_dhz=w.rate_dhz,
                                       voltage_mv=w.voltage_mv)
        return self._event(EventKind.SETTINGS_APPLIED, settings=settings, also=also)

    def settings_refused(self, settings: MachineSettings, reason: str) -> Recorded:
        return self._event(EventKind.SETTINGS_REFUSED, settings=settings,
                           payload={"reason": printable(reason)})

    def pedal_down(self) -> Recorded:
        with self._lock:
            if self._run is not None:
                raise RecordError("pedal down recorded twice without a pedal up in between")
            rec = self._event(EventKind.PEDAL_DOWN)
            self._run = _Run(rec.at)
            return rec

    def pedal_up(self, duration_ms: int | None = None) -> Recorded:
        """End of a pedal run; `duration_ms` is the machine's figure when it reports one."""
        with self._lock:
            run = self._run
            if run is None:
                raise RecordError("pedal up recorded without a pedal down")
            now = self._clock()
            ms = duration_ms if duration_ms is not None else round(
                (now - run.started).total_seconds() * 1000)
            run.acc.run_ms = ms
            self._runs += 1
            index = self._runs

            def also(tx: Tx) -> None:
                tx.execute(_INSERT_SUMMARY, dict(
                    session_id=self.session_id, zone=_v(self._zone), run_index=index,
                    **run.acc.columns()))

            rec = self._event(EventKind.PEDAL_UP, duration_ms=ms, also=also, at=now)
            self._zone_acc.merge(run.acc)
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
        return self._event(EventKind.MACHINE_REBOOTED, payload={"boot_id": printable(boot_id)})

    def zone_changed(self, zone: Zone, *, profile: str = "", reasons: Sequence[str] = (),
                     target_density_pct: int | None = None) -> Recorded:
        """Work moves to `zone`: closes the previous zone's telemetry summary."""
        zone = Zone(zone)
        with self._lock:
            previous, acc = self._zone, self._zone_acc

            def also(tx: Tx) -> None:
                if previous is not None:
                    self._write_zone_summary(tx, previous, acc)
                values: dict[str, Any] = {}
                if profile:
                    values.update(profile=profile, reasons=json.dumps(list(reasons)))
                if target_density_pct is not None:
                    values["target_density_pct"] = target_density_pct
                self._update_zone_work(tx, zone, **values)

            rec = self._event(EventKind.ZONE_CHANGED, zone=zone, also=also,
                              payload={"profile": profile, "reasons": list(reasons)})
            self._zone, self._zone_acc = zone, Accumulator()
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
        with self._lock:
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
        row = dict(session_id=self.session_id, zone=_v(zone), brand=brand, shade=shade,
                   dilution_water=dilution.water, dilution_pigment=dilution.pigment,
                   lot=lot.strip(), expiry=expiry)
        self._commit(lambda tx: tx.execute(_INSERT_PIGMENT, row))

    def use_needle(self, *, needle: NeedleSpec, lot: str, expiry: date,
                   zone: Zone | None = None) -> None:
        self._check_lot("needle cartridge", lot, expiry)
        row = dict(session_id=self.session_id, zone=_v(zone), code=needle.code,
                   lot=lot.strip(), expiry=expiry)
        self._commit(lambda tx: tx.execute(_INSERT_NEEDLE, row))

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
        self._commit(lambda tx: self._update_zone_work(tx, Zone(zone), **values))

    def telemetry(self, reading: Reading) -> None:
        """Feed one sample: summarised in memory, raw rows buffered for the bounded window."""
        with self._lock:
            self._ensure_open()
            (self._run.acc if self._run else self._zone_acc).add(reading)
            self._samples.append(reading)
            if len(self._samples) >= self._flush_samples:
                self._commit(lambda tx: None)

    # -- ending ---------------------------------------------------------------------------

    def end(self, outcome: Outcome = Outcome.COMPLETED, *, aftercare_given: bool) -> Recorded:
        outcome = Outcome(outcome)
        with self._lock:
            if self._run is not None:
                self.pedal_up()
            zone, acc = self._zone, self._zone_acc

            def also(tx: Tx) -> None:
                if zone is not None:
                    self._write_zone_summary(tx, zone, acc)
                _close(tx, self.session_id, outcome, self._clock(), aftercare_given)

            rec = self._event(EventKind.SESSION_ENDED, also=also,
                              payload={"outcome": outcome.value,
                                       "aftercare_given": aftercare_given})
            self._closed = True
            self._writer.close()
        prune_telemetry(self.store, now=self._clock())
        return rec

    def close(self) -> None:
        """Give the recorder's connection back without ending the session (end() does it)."""
        with self._lock:
            self._writer.close()

    # -- internals ------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closed:
            raise RecordError(f"session {self.session_id} has ended; nothing more can be "
                              "recorded in it (add a note to a new session instead)")

    def _commit(self, write: Callable[[Tx], Any]) -> Any:
        # One transaction on the recorder's own DBAPI connection: SQLAlchemy's per-execution
        # work cost several times the fsync on the hot path (bench/bench_recorder.py).
        with self._lock:
            self._ensure_open()
            samples, self._samples = self._samples, []
            self._pending_zone_ids = {}
            try:
                with self._writer.transaction() as tx:
                    result = write(tx)
                    if samples:
                        tx.insert_many(_INSERT_SAMPLE, [
                            dict(session_id=self.session_id, at=r.at, rate_dhz=r.rate_dhz,
                                 voltage_mv=r.voltage_mv, current_ma=r.current_ma,
                                 fault=r.fault) for r in samples])
            except BaseException:
                self._samples = samples + self._samples
                raise
            # Remembered only once committed: a rolled-back insert must not leave a stale id.
            self._zone_ids.update(self._pending_zone_ids)
            return result

    def _event(self, kind: EventKind, *, zone: Zone | None = None,
               settings: MachineSettings | None = None, duration_ms: int | None = None,
               corrects: int | None = None, payload: dict | None = None,
               also: Callable[[Tx], None] | None = None,
               at: datetime | None = None) -> Recorded:
        with self._lock:
            at = at or self._clock()
            row = _event_row(self.session_id, self._seq, at, kind,
                             zone=_v(zone if zone is not None else self._zone),
                             settings=settings, duration_ms=duration_ms, corrects=corrects,
                             payload=payload)

            def write(tx: Tx) -> int:
                event_id = tx.insert(_INSERT_EVENT, row)
                if also:
                    also(tx)
                return event_id
            event_id = self._commit(write)
            self._seq += 1
            return Recorded(event_id, row["seq"], at, kind)

    def _update_zone_work(self, tx: Tx, zone: Zone, **values: Any) -> None:
        """Set columns of this session's work on `zone`, creating the row on first use."""
        zid = self._zone_ids.get(zone)
        if zid is None:
            zid = tx.scalar(_FIND_ZONE_WORK, {"sid": self.session_id, "zone": zone.value})
        if zid is None:
            zid = tx.insert(_INSERT_ZONE_WORK, {
                "session_id": self.session_id, "zone": zone.value, "profile": "",
                "reasons": "[]", "passes": 0, "notes": "", **values})
        elif values:
            tx.execute(_UPDATE_ZONE_WORK, {**values, "zid": zid})
        self._pending_zone_ids[zone] = zid

    def _write_zone_summary(self, tx: Tx, zone: Zone, acc: Accumulator) -> None:
        tx.execute(_INSERT_SUMMARY, dict(session_id=self.session_id, zone=zone.value,
                                         run_index=None, **acc.columns()))

    def _check_lot(self, what: str, lot: str, expiry: date) -> None:
        if not lot.strip():
            raise RecordError(f"{what}: the lot number is required (recalls depend on it)")
        check(f"{what} lot", lot)
        today = self._clock().date()
        if expiry < today:
            raise RecordError(f"{what} lot {lot.strip()} expired on {expiry.isoformat()}; "
                              "use an unexpired one")


def _v(zone: Zone | None) -> str | None:
    return None if zone is None else Zone(zone).value


def _machine_json(m: Machine) -> dict[str, Any]:
    return {"model": m.model, "serial": m.serial, "firmware": m.firmware,
            "simulator": m.simulator}


def _warning(v: Verdict) -> str:
    text = f"{v.item}: {v.decision}"
    if v.detail:
        text += f" ({v.detail})"
    return text + (f": {v.reason}" if v.reason else "")


def _event_row(session_id: int, seq: int, at: datetime, kind: EventKind, *,
               zone: str | None = None, settings: MachineSettings | None = None,
               duration_ms: int | None = None, corrects: int | None = None,
               payload: dict | None = None) -> dict[str, Any]:
    wire = settings.to_wire() if settings else (None, None, None)
    return dict(session_id=session_id, seq=seq, at=at, kind=kind.value, zone=zone,
                depth_um=wire[0], rate_dhz=wire[1], voltage_mv=wire[2],
                duration_ms=duration_ms, corrects_id=corrects,
                payload=json.dumps(payload or {}, sort_keys=True))


def _close(tx: Tx, session_id: int, outcome: Outcome, now: datetime,
           aftercare_given: bool) -> None:
    client_id, _ = tx.first(_SESSION, {"sid": session_id})
    tx.execute(_CLOSE_SESSION, {"sid": session_id, "outcome": outcome.value, "ended_at": now,
                                "aftercare_given": aftercare_given})
    if outcome is Outcome.COMPLETED:
        client: dict[str, Any] = {"cid": client_id, "last_completed_at": now}
        if tx.scalar(_COUNT_ZONE, {"sid": session_id, "zone": Zone.SCAR.value}):
            client["scar_work"] = True  # once a scar client, always on the shorter cycle
        tx.execute(_UPDATE_CLIENT, client)


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


def open_sessions(store: Store) -> list[OpenSession]:
    """Sessions never ended: on start-up these were interrupted by a crash (or are running
    at another chair, on a shared PostgreSQL; the console offers, never forces, closing)."""
    with store.reading() as s:
        rows = s.execute(
            select(SessionRow.id, SessionRow.client_id, Client.name, SessionRow.technician,
                   SessionRow.started_at, func.count(Event.id), func.max(Event.at))
            .join(Client, Client.id == SessionRow.client_id)
            .join(Event, Event.session_id == SessionRow.id)
            .where(SessionRow.outcome.is_(None))
            .group_by(SessionRow.id, SessionRow.client_id, Client.name, SessionRow.technician,
                      SessionRow.started_at)
            .order_by(SessionRow.id)).all()
    return [OpenSession(*r) for r in rows]


def close_interrupted(store: Store, session_id: int, *, clock: Clock = utcnow,
                      reason: str = "left open by a crash") -> Recorded:
    """Close an open session as interrupted, keeping every event it has."""
    now = clock()
    writer = Writer(store)
    try:
        with writer.transaction() as tx:
            row = tx.first(_SESSION, {"sid": session_id})
            if row is None:
                raise RecordError(f"no session with id {session_id}")
            if row[1] is not None:
                raise RecordError(f"session {session_id} is already closed ({row[1]})")
            seq = (tx.scalar(_LAST_SEQ, {"sid": session_id}) or 0) + 1
            event_id = tx.insert(_INSERT_EVENT, _event_row(
                session_id, seq, now, EventKind.SESSION_ENDED,
                payload={"outcome": Outcome.INTERRUPTED.value, "reason": reason}))
            _close(tx, session_id, Outcome.INTERRUPTED, now, False)
    finally:
        writer.close()
    return Recorded(event_id, seq, now, EventKind.SESSION_ENDED)


def prune_telemetry(store: Store, *, now: datetime | None = None,
                    keep: timedelta = RAW_TELEMETRY_WINDOW) -> int:
    """Delete raw telemetry older than `keep` (summaries stay). Returns rows deleted."""
    cutoff = (now or utcnow()) - keep
    with store.unit() as s:
        return s.execute(delete(TelemetrySample).where(TelemetrySample.at < cutoff)).rowcount
