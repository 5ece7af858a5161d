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

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.orm import Session

from protocols import Dilution, MachineSettings, NeedleSpec, Stage, Zone
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

Clock = Callable[[], datetime]
RAW_TELEMETRY_WINDOW = timedelta(days=30)
SIMULATOR = "SIMULATOR"


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
                 warnings: Sequence[str] = ()):
        self.store = store
        self.session_id = session_id
        self.warnings = tuple(warnings)
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
        return cls(store, row.id, next_seq=2, clock=clock, warnings=warnings)

    # -- the timeline ---------------------------------------------------------------------

    def settings_requested(self, settings: MachineSettings) -> Recorded:
        return self._event(EventKind.SETTINGS_REQUESTED, settings=settings)

    def settings_applied(self, settings: MachineSettings) -> Recorded:
        """The machine's read-back: this, not the request, is what the record says was used."""
        def also(c: Connection) -> None:
            if self._zone is not None:
                w = settings.to_wire()
                self._update_zone_work(c, self._zone, depth_um=w.depth_um, rate_dhz=w.rate_dhz,
                                       voltage_mv=w.voltage_mv)
        return self._event(EventKind.SETTINGS_APPLIED, settings=settings, also=also)

    def settings_refused(self, settings: MachineSettings, reason: str) -> Recorded:
        return self._event(EventKind.SETTINGS_REFUSED, settings=settings,
                           payload={"reason": reason})

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

            def also(c: Connection) -> None:
                c.execute(insert(TelemetrySummary), dict(
                    session_id=self.session_id, zone=_v(self._zone), run_index=index,
                    **run.acc.columns()))

            rec = self._event(EventKind.PEDAL_UP, duration_ms=ms, also=also, at=now)
            self._zone_acc.merge(run.acc)
            self._run = None
            return rec

    def stop(self, reason: str = "") -> Recorded:
        return self._event(EventKind.STOP, payload={"reason": reason})

    def fault(self, code: str, message: str = "") -> Recorded:
        return self._event(EventKind.FAULT, payload={"code": code, "message": message})

    def link_lost(self, detail: str = "") -> Recorded:
        return self._event(EventKind.LINK_LOST, payload={"detail": detail})

    def link_restored(self) -> Recorded:
        return self._event(EventKind.LINK_RESTORED)

    def machine_rebooted(self, boot_id: str) -> Recorded:
        return self._event(EventKind.MACHINE_REBOOTED, payload={"boot_id": boot_id})

    def zone_changed(self, zone: Zone, *, profile: str = "", reasons: Sequence[str] = (),
                     target_density_pct: int | None = None) -> Recorded:
        """Work moves to `zone`: closes the previous zone's telemetry summary."""
        zone = Zone(zone)
        with self._lock:
            previous, acc = self._zone, self._zone_acc

            def also(c: Connection) -> None:
                if previous is not None:
                    self._write_zone_summary(c, previous, acc)
                values: dict[str, Any] = {}
                if profile:
                    values.update(profile=profile, reasons=json.dumps(list(reasons)))
                if target_density_pct is not None:
                    values["target_density_pct"] = target_density_pct
                self._update_zone_work(c, zone, **values)

            rec = self._event(EventKind.ZONE_CHANGED, zone=zone, also=also,
                              payload={"profile": profile, "reasons": list(reasons)})
            self._zone, self._zone_acc = zone, Accumulator()
            return rec

    def note(self, text: str) -> Recorded:
        if not text.strip():
            raise RecordError("note: the text is empty")
        return self._event(EventKind.NOTE, payload={"text": text})

    def correct(self, event_id: int, text: str, **fields: Any) -> Recorded:
        """A correction of an earlier event of this session; the original stays as it was."""
        if not text.strip():
            raise RecordError("correction: say what was wrong (the text is empty)")
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
        row = dict(session_id=self.session_id, zone=_v(zone), brand=brand, shade=shade,
                   dilution_water=dilution.water, dilution_pigment=dilution.pigment,
                   lot=lot.strip(), expiry=expiry)
        self._commit(lambda c: c.execute(insert(PigmentUse), row))

    def use_needle(self, *, needle: NeedleSpec, lot: str, expiry: date,
                   zone: Zone | None = None) -> None:
        self._check_lot("needle cartridge", lot, expiry)
        row = dict(session_id=self.session_id, zone=_v(zone), code=needle.code,
                   lot=lot.strip(), expiry=expiry)
        self._commit(lambda c: c.execute(insert(NeedleUse), row))

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
            values["notes"] = notes
        self._commit(lambda c: self._update_zone_work(c, Zone(zone), **values))

    def telemetry(self, reading: Reading) -> None:
        """Feed one sample: summarised in memory, raw rows buffered for the bounded window."""
        with self._lock:
            self._ensure_open()
            (self._run.acc if self._run else self._zone_acc).add(reading)
            self._samples.append(reading)
            if len(self._samples) >= self._flush_samples:
                self._commit(lambda c: None)

    # -- ending ---------------------------------------------------------------------------

    def end(self, outcome: Outcome = Outcome.COMPLETED, *, aftercare_given: bool) -> Recorded:
        outcome = Outcome(outcome)
        with self._lock:
            if self._run is not None:
                self.pedal_up()
            zone, acc = self._zone, self._zone_acc

            def also(c: Connection) -> None:
                if zone is not None:
                    self._write_zone_summary(c, zone, acc)
                with Session(bind=c) as s:
                    _close(s, self.session_id, outcome, self._clock(), aftercare_given)
                    s.flush()

            rec = self._event(EventKind.SESSION_ENDED, also=also,
                              payload={"outcome": outcome.value,
                                       "aftercare_given": aftercare_given})
            self._closed = True
        prune_telemetry(self.store, now=self._clock())
        return rec

    # -- internals ------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closed:
            raise RecordError(f"session {self.session_id} has ended; nothing more can be "
                              "recorded in it (add a note to a new session instead)")

    def _commit(self, write: Callable[[Connection], Any]) -> Any:
        # Core statements on one connection: the ORM unit of work costs more than the
        # fsync on the hot path (bench/bench_recorder.py).
        with self._lock:
            self._ensure_open()
            samples, self._samples = self._samples, []
            self._pending_zone_ids = {}
            try:
                with self.store.writing() as c:
                    result = write(c)
                    if samples:
                        c.execute(insert(TelemetrySample), [
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
               also: Callable[[Session], None] | None = None,
               at: datetime | None = None) -> Recorded:
        with self._lock:
            at = at or self._clock()
            wire = settings.to_wire() if settings else (None, None, None)
            row = dict(session_id=self.session_id, seq=self._seq, at=at, kind=kind.value,
                       zone=_v(zone if zone is not None else self._zone),
                       depth_um=wire[0], rate_dhz=wire[1], voltage_mv=wire[2],
                       duration_ms=duration_ms, corrects_id=corrects,
                       payload=json.dumps(payload or {}, sort_keys=True))

            def write(c: Connection) -> int:
                event_id = c.execute(insert(Event), row).inserted_primary_key[0]
                if also:
                    also(c)
                return event_id
            event_id = self._commit(write)
            self._seq += 1
            return Recorded(event_id, row["seq"], at, kind)

    def _update_zone_work(self, c: Connection, zone: Zone, **values: Any) -> None:
        """Set columns of this session's work on `zone`, creating the row on first use."""
        zid = self._zone_ids.get(zone)
        if zid is None:
            zid = c.scalar(select(ZoneWork.id).where(ZoneWork.session_id == self.session_id,
                                                     ZoneWork.zone == zone.value))
        if zid is None:
            zid = c.execute(insert(ZoneWork), {
                "session_id": self.session_id, "zone": zone.value, "profile": "",
                "reasons": "[]", "passes": 0, "notes": "", **values}).inserted_primary_key[0]
        elif values:
            c.execute(update(ZoneWork).where(ZoneWork.id == zid).values(**values))
        self._pending_zone_ids[zone] = zid

    def _write_zone_summary(self, c: Connection, zone: Zone, acc: Accumulator) -> None:
        c.execute(insert(TelemetrySummary), dict(session_id=self.session_id, zone=zone.value,
                                                 run_index=None, **acc.columns()))

    def _check_lot(self, what: str, lot: str, expiry: date) -> None:
        if not lot.strip():
            raise RecordError(f"{what}: the lot number is required (recalls depend on it)")
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


def _close(s: Session, session_id: int, outcome: Outcome, now: datetime,
           aftercare_given: bool) -> None:
    row = s.get(SessionRow, session_id)
    row.outcome, row.ended_at, row.aftercare_given = outcome.value, now, aftercare_given
    if outcome is Outcome.COMPLETED:
        client = s.get(Client, row.client_id)
        client.last_completed_at = now
        scar = s.scalar(select(func.count()).select_from(ZoneWork).where(
            ZoneWork.session_id == session_id, ZoneWork.zone == Zone.SCAR.value))
        client.scar_work = client.scar_work or bool(scar)


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
    with store.unit() as s:
        row = s.get(SessionRow, session_id)
        if row is None:
            raise RecordError(f"no session with id {session_id}")
        if row.outcome is not None:
            raise RecordError(f"session {session_id} is already closed ({row.outcome})")
        seq = (s.scalar(select(func.max(Event.seq)).where(Event.session_id == session_id))
               or 0) + 1
        ev = Event(session_id=session_id, seq=seq, at=now, kind=EventKind.SESSION_ENDED.value,
                   payload=json.dumps({"outcome": Outcome.INTERRUPTED.value,
                                       "reason": reason}, sort_keys=True))
        s.add(ev)
        _close(s, session_id, Outcome.INTERRUPTED, now, False)
    return Recorded(ev.id, seq, now, EventKind.SESSION_ENDED)


def prune_telemetry(store: Store, *, now: datetime | None = None,
                    keep: timedelta = RAW_TELEMETRY_WINDOW) -> int:
    """Delete raw telemetry older than `keep` (summaries stay). Returns rows deleted."""
    cutoff = (now or utcnow()) - keep
    with store.unit() as s:
        return s.execute(delete(TelemetrySample).where(TelemetrySample.at < cutoff)).rowcount
