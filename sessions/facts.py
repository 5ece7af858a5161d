"""Facts: what the record is told, as plain JSON-able dicts, and how each is written.

The recorder (sessions/recorder.py) turns what happens in a session into facts; a writer puts
each fact into the store in one transaction. Facts carry every value they need (the event's
sequence number and time, the telemetry summary, the zone's columns), so writing one needs no
memory of earlier ones: the same fact is written the same way now, or from the journal after a
crash. Kinds:

    {"op": "event", "session": 7, "seq": 3, "at": "2026-...Z", "kind": "settings-applied",
     "zone": "crown", "settings": [1800, 1300, 7500], "duration_ms": null, "corrects": null,
     "payload": {...}, "zone_work": {"zone": "crown", "values": {...}},
     "run": {...needle_runs columns...} | null,
     "close": {"outcome": "completed", "aftercare_given": true}}
    {"op": "zone_work", "session": 7, "zone": "crown", "values": {"coverage_pct": 40}}
    {"op": "pigment" | "needle", "session": 7, "row": {...}}
    {"op": "flight", "session": 7, "seq": 3, "first_at": "2026-...Z", "last_at": "...",
     "frames": 250, "data": "<base64 of one chunk: sessions/flight.py>"}
    {"op": "prune", "session": 7, "flight_before": "2026-...Z", "samples_before": "..."}
    {"op": "samples", "session": 7, "rows": [["2026-...Z", 1300, 7500, 410, false], ...]}

"samples" (raw telemetry rows) is no longer made: the flight recorder replaced it. It is
still written, so that a journal left by an older version replays.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from protocols import Stage, Zone
from protocols.errors import SmpError
from sessions import flight
from sessions.errors import GateRefused, RecordError, StoreError
from sessions.gate import ClientFacts, Contraindication, Verdict, evaluate
from sessions.models import (
    Client,
    Consent,
    Event,
    EventKind,
    FlightChunk,
    GateAnswer,
    JournalMark,
    NeedleRun,
    NeedleUse,
    Outcome,
    PigmentUse,
    SessionRow,
    TelemetrySample,
    TelemetrySummary,
    ZoneWork,
)
from sessions.store import Store
from sessions.writer import Tx, Writer

Fact = dict[str, Any]

_events, _zone_works, _sessions = Event.__table__, ZoneWork.__table__, SessionRow.__table__
_marks = JournalMark.__table__
_INSERT_EVENT = insert(_events).returning(_events.c.id)
_FIND_ZONE_WORK = select(_zone_works.c.id).where(_zone_works.c.session_id == bindparam("sid"),
                                                 _zone_works.c.zone == bindparam("zone"))
_INSERT_ZONE_WORK = insert(_zone_works).returning(_zone_works.c.id)
_UPDATE_ZONE_WORK = update(_zone_works).where(_zone_works.c.id == bindparam("zid"))
_INSERT_SUMMARY = insert(TelemetrySummary.__table__)  # journals written before schema 0004
_INSERT_RUN = insert(NeedleRun.__table__)
_INSERT_SAMPLE = insert(TelemetrySample.__table__)
_INSERT_FLIGHT = insert(FlightChunk.__table__)
_INSERT_PIGMENT = insert(PigmentUse.__table__)
_INSERT_NEEDLE = insert(NeedleUse.__table__)
_SESSION = select(_sessions.c.client_id, _sessions.c.outcome).where(
    _sessions.c.id == bindparam("sid"))
_CLOSE_SESSION = update(_sessions).where(_sessions.c.id == bindparam("sid"))
_COUNT_ZONE = select(func.count()).select_from(_zone_works).where(
    _zone_works.c.session_id == bindparam("sid"), _zone_works.c.zone == bindparam("zone"))
_UPDATE_CLIENT = update(Client.__table__).where(Client.__table__.c.id == bindparam("cid"))
_RENEW = update(_sessions).where(_sessions.c.id == bindparam("sid"),
                                 _sessions.c.outcome.is_(None))
_MARK = select(_marks.c.last).where(_marks.c.journal == bindparam("j"))
_INSERT_MARK = insert(_marks)
_UPDATE_MARK = update(_marks).where(_marks.c.journal == bindparam("j"))


class Rejected(RecordError):
    """The store refuses this fact for good (not a passing fault): e.g. its session was
    closed by another chair. It is kept in the journal and logged, never silently dropped."""


def iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: the record stores aware UTC times")
    return at.astimezone(UTC).isoformat()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- facts --------------------------------------------------------------------------------------

def event(session_id: int, seq: int, at: datetime, kind: EventKind, *, zone: str | None = None,
          settings: Sequence[int] | None = None, duration_ms: int | None = None,
          corrects: int | None = None, payload: Mapping[str, Any] | None = None,
          zone_work: Mapping[str, Any] | None = None, run: Mapping[str, Any] | None = None,
          close: Mapping[str, Any] | None = None) -> Fact:
    return {"op": "event", "session": session_id, "seq": seq, "at": iso(at),
            "kind": EventKind(kind).value, "zone": zone,
            "settings": None if settings is None else list(settings),
            "duration_ms": duration_ms, "corrects": corrects, "payload": dict(payload or {}),
            "zone_work": None if zone_work is None else dict(zone_work),
            "run": None if run is None else dict(run),
            "close": None if close is None else dict(close)}


def zone_work(session_id: int, zone: str, values: Mapping[str, Any]) -> Fact:
    return {"op": "zone_work", "session": session_id, "zone": zone, "values": dict(values)}


def use(session_id: int, what: str, row: Mapping[str, Any]) -> Fact:
    assert what in ("pigment", "needle")
    out = dict(row)
    if isinstance(out.get("expiry"), date):
        out["expiry"] = out["expiry"].isoformat()
    return {"op": what, "session": session_id, "row": out}


@dataclass(frozen=True)
class SessionRequest:
    """What opening a session needs; the gate runs again when it is written."""

    client_id: int
    technician: str
    stage: Stage
    machine: Mapping[str, Any]  # model, serial, firmware, simulator
    planned_zones: tuple[Zone, ...]
    answers: Mapping[Contraindication, bool]
    overrides: Mapping[str, str]
    at: datetime


@dataclass(frozen=True)
class Opened:
    session_id: int
    verdicts: tuple[Verdict, ...]
    warnings: tuple[str, ...]
    at: datetime


def warning_text(v: Verdict) -> str:
    text = f"{v.item}: {v.decision}"
    if v.detail:
        text += f" ({v.detail})"
    return text + (f": {v.reason}" if v.reason else "")


def why_not_writing(exc: BaseException) -> str:
    """A few words for every screen: why the record is not writing now."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return "locked by another program"
    if "disk" in text or "full" in text or "no space" in text:
        return "disk full"
    if "postgresql" in text or "connect" in text or "server" in text:
        return "database unreachable"
    if "read-only" in text or "readonly" in text:
        return "read-only"
    return "not writing"


# --- writing ------------------------------------------------------------------------------------

def client_facts(s: Session, client: Client) -> ClientFacts:
    """What the gate needs of the client, as the record has it."""
    consented = s.execute(select(func.count()).select_from(Consent).where(
        Consent.client_id == client.id, Consent.procedure.is_(True))).scalar_one() > 0
    return ClientFacts(client.date_of_birth, consented)


class StoreWriter:
    """Writes facts to the store on the writer's own connection, each in one transaction."""

    def __init__(self, store: Store, *, owner: str = "", wait_ms: int | None = None):
        self.store = store
        self.owner = owner
        self._writer = Writer(store, wait_ms=wait_ms)
        self._zone_ids: dict[tuple[int, str], int] = {}

    def close(self) -> None:
        self._writer.close()

    def write(self, fact: Fact, *, mark: tuple[str, int] | None = None) -> int | None:
        """Write one fact (and its journal mark) in one transaction; an event's id."""
        pending: dict[tuple[int, str], int] = {}
        with self._writer.transaction() as tx:
            result = self._apply(tx, fact, pending)
            if mark is not None:
                self._set_mark(tx, *mark)
        # Remembered only once committed: a rolled-back insert must not leave a stale id.
        self._zone_ids.update(pending)
        return result

    def open_session(self, r: SessionRequest, *, lease_until: datetime | None = None) -> Opened:
        """Run the gate and the interval rule against the store, then open the session.
        Raises GateRefused (nothing is written) if an item is unresolved."""
        if not r.technician.strip():
            raise RecordError("technician: a name is required to start a session")
        with self.store.unit() as s:
            who = s.get(Client, r.client_id)
            if who is None:
                raise RecordError(f"no client with id {r.client_id}")
            last = s.scalar(select(func.max(SessionRow.started_at))
                            .where(SessionRow.client_id == r.client_id))
            days = None if last is None else (r.at - last).total_seconds() / 86400
            verdicts = evaluate(r.answers, r.overrides, days,
                                client=client_facts(s, who), day=r.at.date())
            m = r.machine
            row = SessionRow(
                client_id=r.client_id, technician=r.technician.strip(), started_at=r.at,
                stage=Stage(r.stage).value, simulator=bool(m["simulator"]),
                machine_model=m["model"], machine_serial=m["serial"],
                machine_firmware=m["firmware"],
                planned_zones=",".join(Zone(z).value for z in r.planned_zones),
                aftercare_given=False, owner=self.owner, lease_until=lease_until)
            s.add(row)
            s.flush()
            s.add_all(GateAnswer(session_id=row.id, item=v.item, present=v.present,
                                 detail=v.detail, decision=v.decision, reason=v.reason)
                      for v in verdicts)
            warnings = tuple(warning_text(v) for v in verdicts if v.decision != "clear")
            payload = {"machine": dict(m), "stage": row.stage,
                       "planned_zones": row.planned_zones.split(",") if row.planned_zones
                       else [], "gate": list(warnings)}
            s.add(Event(session_id=row.id, seq=1, at=r.at, kind=EventKind.SESSION_STARTED,
                        payload=json.dumps(payload)))
        return Opened(row.id, tuple(verdicts), warnings, r.at)

    def renew(self, session_ids: Iterable[int], until: datetime) -> None:
        with self._writer.transaction() as tx:
            for sid in session_ids:
                tx.execute(_RENEW, {"sid": sid, "lease_until": until})

    def mark(self, journal: str) -> int:
        """The last entry of `journal` the store holds (0 for none)."""
        with self._writer.transaction() as tx:
            return tx.scalar(_MARK, {"j": journal}) or 0

    def set_mark(self, journal: str, n: int) -> None:
        with self._writer.transaction() as tx:
            self._set_mark(tx, journal, n)

    @staticmethod
    def _set_mark(tx: Tx, journal: str, n: int) -> None:
        if tx.scalar(_MARK, {"j": journal}) is None:
            tx.execute(_INSERT_MARK, {"journal": journal, "last": n})
        else:
            tx.execute(_UPDATE_MARK, {"j": journal, "last": n})

    # --- one fact ---------------------------------------------------------------------------

    def _apply(self, tx: Tx, f: Fact, pending: dict[tuple[int, str], int]) -> int | None:
        op, sid = f["op"], f["session"]
        if op == "event":
            state = tx.first(_SESSION, {"sid": sid})
            if state is None:
                raise Rejected(f"no session with id {sid}")
            if state[1] is not None:
                raise Rejected(f"session {sid} is already closed ({state[1]})")
            settings = f["settings"] or (None, None, None)
            event_id = tx.insert(_INSERT_EVENT, dict(
                session_id=sid, seq=f["seq"], at=when(f["at"]), kind=f["kind"], zone=f["zone"],
                depth_um=settings[0], rate_dhz=settings[1], voltage_mv=settings[2],
                duration_ms=f["duration_ms"], corrects_id=f["corrects"],
                payload=json.dumps(f["payload"], sort_keys=True)))
            if f["zone_work"] is not None:
                self._zone_work(tx, sid, f["zone_work"]["zone"], f["zone_work"]["values"],
                                pending)
            for summary in f.get("summaries", ()):
                tx.execute(_INSERT_SUMMARY, {"session_id": sid, **summary})
            if f.get("run") is not None:
                r = f["run"]
                tx.execute(_INSERT_RUN, {**r, "session_id": sid,
                                         "started_at": when(r["started_at"]),
                                         "ended_at": when(r["ended_at"])})
            if f["close"] is not None:
                self._close(tx, sid, state[0], Outcome(f["close"]["outcome"]),
                            when(f["at"]), bool(f["close"]["aftercare_given"]))
            return event_id
        if op == "zone_work":
            self._zone_work(tx, sid, f["zone"], f["values"], pending)
        elif op in ("pigment", "needle"):
            row = {**f["row"], "session_id": sid,
                   "expiry": date.fromisoformat(f["row"]["expiry"])}
            tx.execute(_INSERT_PIGMENT if op == "pigment" else _INSERT_NEEDLE, row)
        elif op == "flight":
            tx.execute(_INSERT_FLIGHT, dict(
                session_id=sid, seq=f["seq"], first_at=when(f["first_at"]),
                last_at=when(f["last_at"]), frames=f["frames"],
                data=base64.b64decode(f["data"])))
        elif op == "prune":
            tx.execute(flight.PRUNE_FLIGHT, {"before": when(f["flight_before"])})
            tx.execute(flight.PRUNE_SAMPLES, {"before": when(f["samples_before"])})
        elif op == "samples":  # journals of versions before the flight recorder
            if f["rows"]:
                tx.insert_many(_INSERT_SAMPLE, [
                    dict(session_id=sid, at=when(r[0]), rate_dhz=r[1], voltage_mv=r[2],
                         current_ma=r[3], fault=bool(r[4])) for r in f["rows"]])
        else:
            raise Rejected(f"unknown fact {op!r}")
        return None

    def _zone_work(self, tx: Tx, sid: int, zone: str, values: Mapping[str, Any],
                   pending: dict[tuple[int, str], int]) -> None:
        """Set columns of a session's work on `zone`, creating the row on first use."""
        zid = self._zone_ids.get((sid, zone))
        if zid is None:
            zid = tx.scalar(_FIND_ZONE_WORK, {"sid": sid, "zone": zone})
        if zid is None:
            zid = tx.insert(_INSERT_ZONE_WORK, {
                "session_id": sid, "zone": zone, "profile": "", "reasons": "[]", "passes": 0,
                "notes": "", **values})
        elif values:
            tx.execute(_UPDATE_ZONE_WORK, {**values, "zid": zid})
        pending[(sid, zone)] = zid

    @staticmethod
    def _close(tx: Tx, sid: int, client_id: int, outcome: Outcome, now: datetime,
               aftercare_given: bool) -> None:
        tx.execute(_CLOSE_SESSION, {"sid": sid, "outcome": outcome.value, "ended_at": now,
                                    "aftercare_given": aftercare_given, "lease_until": None})
        if outcome is Outcome.COMPLETED:
            client: dict[str, Any] = {"cid": client_id, "last_completed_at": now}
            if tx.scalar(_COUNT_ZONE, {"sid": sid, "zone": Zone.SCAR.value}):
                client["scar_work"] = True  # once a scar client, always on the shorter cycle
            tx.execute(_UPDATE_CLIENT, client)


__all__ = [
    "Fact",
    "GateRefused",
    "Opened",
    "Rejected",
    "SessionRequest",
    "SmpError",
    "StoreError",
    "StoreWriter",
]
