"""Reading the record: plain frozen views for the console, the shell and the exports.

No ORM row leaves this module. Each query is a handful of indexed selects so that a clinic's
whole history stays fast (bench/bench_history.py).
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    String,
    case,
    cast,
    distinct,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from protocols import MachineSettings, Stage, Zone
from sessions.errors import RecordError
from sessions.models import (
    Client,
    ClientHealth,
    Consent,
    Event,
    GateAnswer,
    NeedleRun,
    NeedleUse,
    Outcome,
    PigmentUse,
    SessionRow,
    TelemetrySummary,
    ZoneWork,
    outcome_of,
    zone_of,
)
from sessions.needle_runs import (
    BEFORE_RUNS,
    OnSkin,
    RunView,
    describe,
    duration_text,
    grouped_runs,
    on_skin,
    on_skin_by_zone,
    on_skin_of,
    settings_of,
)
from sessions.search import client_id, fold, match_clients
from sessions.store import Store

TOUCH_UP_YEARS = 4
SCAR_TOUCH_UP_YEARS = 2


@dataclass(frozen=True)
class ClientView:
    id: int
    name: str
    phone: str
    email: str
    date_of_birth: date | None


@dataclass(frozen=True)
class HealthView:
    hair_colour: str
    hair_loss_stage: str
    hair_loss_cause: str
    fitzpatrick: int | None
    skin_quality: str
    allergies: str
    patch_test: str
    medications: str


@dataclass(frozen=True)
class ConsentView:
    procedure: bool
    photos: bool
    version: str
    signed_on: date


@dataclass(frozen=True)
class PigmentView:
    zone: Zone | None  # None: every zone of the session
    brand: str
    shade: str
    dilution: str
    lot: str
    expiry: date


@dataclass(frozen=True)
class NeedleView:
    zone: Zone | None  # None: every zone of the session
    code: str
    lot: str
    expiry: date


@dataclass(frozen=True)
class GateView:
    item: str
    present: bool
    decision: str
    detail: str
    reason: str


@dataclass(frozen=True)
class ZoneView:
    zone: Zone
    profile: str
    reasons: tuple[str, ...]
    coverage_pct: int | None
    target_density_pct: int | None
    passes: int
    notes: str
    confirmed: MachineSettings | None  # the last settings the machine confirmed in this zone
    per_run: bool = True  # False: recorded before needle runs were (no runs, no on_skin)
    runs: tuple[RunView, ...] = ()
    on_skin: OnSkin | None = None  # what the needle did here, from the runs

    def settings_text(self) -> list[str]:
        """What every view says of this zone's settings (sessions/needle_runs.py)."""
        return describe(self.per_run, self.on_skin, self.confirmed)


@dataclass(frozen=True)
class EventView:
    id: int
    seq: int
    at: datetime
    kind: str
    zone: Zone | None
    settings: MachineSettings | None
    duration_ms: int | None
    corrects_id: int | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class SummaryView:
    zone: Zone | None
    run_index: int | None
    run_ms: int
    samples: int
    mean_rate_dhz: int | None
    peak_rate_dhz: int | None
    mean_voltage_mv: int | None
    peak_voltage_mv: int | None
    mean_current_ma: int | None
    peak_current_ma: int | None
    faults: int


@dataclass(frozen=True)
class MachineView:
    model: str
    serial: str
    firmware: str
    simulator: bool

    def __str__(self) -> str:
        if self.simulator:
            return f"SIMULATOR (firmware {self.firmware})"
        return f"{self.model} serial {self.serial}, firmware {self.firmware}"


@dataclass(frozen=True)
class SessionView:
    id: int
    started_at: datetime
    ended_at: datetime | None
    technician: str
    stage: Stage
    machine: MachineView
    planned_zones: tuple[Zone, ...]
    outcome: Outcome | None  # None: open
    aftercare_given: bool
    per_run: bool
    gate: tuple[GateView, ...]
    zones: tuple[ZoneView, ...]
    pigments: tuple[PigmentView, ...]
    needles: tuple[NeedleView, ...]
    telemetry: tuple[SummaryView, ...] = ()
    events: tuple[EventView, ...] = ()


@dataclass(frozen=True)
class ClientRecord:
    client: ClientView
    health: HealthView | None
    consents: tuple[ConsentView, ...]
    sessions: tuple[SessionView, ...]


@dataclass(frozen=True)
class ClientSummary:
    id: int
    name: str
    sessions: int
    last_session_at: datetime | None


@dataclass(frozen=True)
class ZoneVisit:
    session_id: int
    started_at: datetime
    stage: Stage
    simulator: bool
    work: ZoneView
    pigments: tuple[PigmentView, ...]


@dataclass(frozen=True)
class RecallHit:
    client_id: int
    client_name: str
    session_id: int
    started_at: datetime
    simulator: bool
    item: str  # "pigment" or "needle"
    product: str
    zone: Zone | None
    lot: str
    expiry: date


PAGE_SIZE = 50  # rows a page of a clinic-wide answer holds unless the caller asks otherwise

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """Rows offset + 1 to offset + len(items) of an answer `total` rows long."""

    items: tuple[T, ...]
    total: int
    offset: int
    limit: int

    @property
    def end(self) -> int:
        return self.offset + len(self.items)

    @property
    def more(self) -> bool:
        return self.end < self.total

    def showing(self) -> str:
        """"showing 1-50 of 907", the words every caller prints."""
        if not self.items:
            return f"showing 0 of {self.total}"
        return f"showing {self.offset + 1}-{self.end} of {self.total}"


@dataclass(frozen=True)
class RecallPage(Page[RecallHit]):
    """A page of a recall, with what the whole answer covers."""

    clients: int = 0
    sessions: int = 0
    simulator_sessions: int = 0


@dataclass(frozen=True)
class TouchUpDue:
    client_id: int
    client_name: str
    last_completed_at: datetime
    due_on: date
    scar: bool


@dataclass(frozen=True)
class Activity:
    technician: str
    sessions: int
    completed: int
    interrupted: int
    simulator: int
    zones: int


NO_RUNS = on_skin_of([], 0)


class UnknownClient(RecordError):
    pass


class AmbiguousClient(RecordError):
    pass


# -- finding clients --------------------------------------------------------------------------

def list_clients(store: Store) -> list[ClientSummary]:
    with store.reading() as s:
        rows = s.execute(
            select(Client.id, Client.name, func.count(SessionRow.id),
                   func.max(SessionRow.started_at))
            .outerjoin(SessionRow, SessionRow.client_id == Client.id)
            .group_by(Client.id, Client.name).order_by(Client.name, Client.id)).all()
    return [ClientSummary(*r) for r in rows]


def find_clients(store: Store, text: str = "") -> list[ClientSummary]:
    """The record's clients that `text` finds (sessions/search.py). Folding is done in Python,
    not SQL: SQLite's lower() knows only ASCII."""
    return match_clients(list_clients(store), text)


def find_client(store: Store, text: str) -> ClientView:
    """One client by id ("12" or "#12") or by name: the one whose folded name is `text`
    folded, else the only one `text` finds (sessions/search.py)."""
    key = text.strip()
    if (cid := client_id(key)) is not None:
        with store.reading() as s:
            row = s.get(Client, cid)
            if row is None:
                raise UnknownClient(f"no client with id {cid}")
            return _client(row)
    everyone = list_clients(store)
    matches = match_clients(everyone, key)
    exact = [c for c in matches if fold(c.name) == fold(key)]
    chosen = exact or matches
    if len(chosen) == 1:
        with store.reading() as s:
            return _client(s.get_one(Client, chosen[0].id))
    if chosen:
        shown = ", ".join(f"{c.name} (id {c.id})" for c in chosen[:20])
        raise AmbiguousClient(f"client {key!r} is ambiguous: {shown}; give the id instead")
    # Nothing matched even folded, so no suggestion can be the name that was typed.
    by_fold = {fold(c.name): c.name for c in everyone}
    close = difflib.get_close_matches(fold(key), by_fold, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(by_fold[c] for c in close)}?" if close else ""
    raise UnknownClient(f"no client named {key!r}{hint}")


def _client(row: Client) -> ClientView:
    return ClientView(row.id, row.name, row.phone, row.email, row.date_of_birth)


# -- a client's record ------------------------------------------------------------------------

def client_record(store: Store, client_id: int, *, events: bool = False,
                  runs: bool | None = None) -> ClientRecord:
    """Everything about a client, sessions oldest first; with `events`, each timeline too;
    with `runs` (by default as `events`), each zone's needle runs one by one (a zone's
    settings used on skin are there either way)."""
    with store.reading() as s:
        row = s.get(Client, client_id)
        if row is None:
            raise UnknownClient(f"no client with id {client_id}")
        health = s.get(ClientHealth, client_id)
        consents = s.scalars(select(Consent).where(Consent.client_id == client_id)
                             .order_by(Consent.id)).all()
        rows = s.scalars(select(SessionRow).where(SessionRow.client_id == client_id)
                         .order_by(SessionRow.started_at, SessionRow.id)).all()
        sessions = _sessions(s, rows, events=events, runs=events if runs is None else runs)
        return ClientRecord(
            _client(row),
            None if health is None else HealthView(
                health.hair_colour, health.hair_loss_stage, health.hair_loss_cause,
                health.fitzpatrick, health.skin_quality, health.allergies, health.patch_test,
                health.medications),
            tuple(ConsentView(c.procedure, c.photos, c.version, c.signed_on) for c in consents),
            tuple(sessions))


# The tables a session's rows are read from, a query each (the checker follows each one).
PerSession = TypeVar("PerSession", ZoneWork, PigmentUse, NeedleUse, GateAnswer,
                     TelemetrySummary, Event)


def _grouped(s: Session, model: type[PerSession], ids: list[int],
             order: list[InstrumentedAttribute[int]]) -> dict[int, list[PerSession]]:
    out: dict[int, list[PerSession]] = defaultdict(list)
    if ids:
        for r in s.scalars(select(model).where(model.session_id.in_(ids)).order_by(*order)):
            out[r.session_id].append(r)
    return out


def _sessions(s: Session, rows: Iterable[SessionRow], *, events: bool,
              runs: bool) -> list[SessionView]:
    rows = list(rows)
    ids = [r.id for r in rows]
    zones = _grouped(s, ZoneWork, ids, [ZoneWork.id])
    pigments = _grouped(s, PigmentUse, ids, [PigmentUse.id])
    needles = _grouped(s, NeedleUse, ids, [NeedleUse.id])
    gates = _grouped(s, GateAnswer, ids, [GateAnswer.id])
    each = grouped_runs(s.scalars(select(NeedleRun).where(NeedleRun.session_id.in_(ids))
                                  .order_by(NeedleRun.session_id, NeedleRun.seq))) \
        if ids and runs else {}
    skin = on_skin_by_zone(s, ids)
    summaries = _grouped(s, TelemetrySummary, ids, [TelemetrySummary.id]) if events else {}
    timeline = _grouped(s, Event, ids, [Event.seq]) if events else {}
    return [SessionView(
        id=r.id, started_at=r.started_at, ended_at=r.ended_at, technician=r.technician,
        stage=Stage(r.stage), machine=MachineView(r.machine_model, r.machine_serial,
                                                  r.machine_firmware, r.simulator),
        planned_zones=tuple(Zone(z) for z in r.planned_zones.split(",") if z),
        outcome=outcome_of(r.outcome),
        aftercare_given=r.aftercare_given, per_run=r.per_run,
        gate=tuple(GateView(g.item, g.present, g.decision, g.detail, g.reason)
                   for g in gates[r.id]),
        zones=tuple(_zone(z, r.per_run, each.get((r.id, z.zone), ()),
                          skin.get((r.id, z.zone), NO_RUNS)) for z in zones[r.id]),
        pigments=tuple(_pigment(p) for p in pigments[r.id]),
        needles=tuple(NeedleView(zone_of(n.zone), n.code, n.lot, n.expiry)
                      for n in needles[r.id]),
        telemetry=tuple(SummaryView(zone_of(t.zone), t.run_index, t.run_ms, t.samples,
                                    t.mean_rate_dhz, t.peak_rate_dhz, t.mean_voltage_mv,
                                    t.peak_voltage_mv, t.mean_current_ma, t.peak_current_ma,
                                    t.faults)
                        for t in summaries.get(r.id, ())),
        events=tuple(_event(e) for e in timeline.get(r.id, ())),
    ) for r in rows]


def _settings(depth: int | None, rate: int | None, volt: int | None) -> MachineSettings | None:
    """The settings columns of a row: all three, or none (not confirmed)."""
    if depth is None or rate is None or volt is None:
        return None
    return settings_of(depth, rate, volt)


def _zone(z: ZoneWork, per_run: bool, runs: Iterable[RunView],
          skin: OnSkin | None = None) -> ZoneView:
    runs = tuple(runs)
    if skin is None:
        skin = on_skin(runs)
    return ZoneView(Zone(z.zone), z.profile, tuple(json.loads(z.reasons)), z.coverage_pct,
                    z.target_density_pct, z.passes, z.notes,
                    _settings(z.depth_um, z.rate_dhz, z.voltage_mv), per_run, runs,
                    skin if per_run else None)


def _pigment(p: PigmentUse) -> PigmentView:
    return PigmentView(zone_of(p.zone), p.brand, p.shade,
                       f"{p.dilution_water}:{p.dilution_pigment}", p.lot, p.expiry)


def _event(e: Event) -> EventView:
    return EventView(e.id, e.seq, e.at, e.kind, zone_of(e.zone),
                     _settings(e.depth_um, e.rate_dhz, e.voltage_mv), e.duration_ms,
                     e.corrects_id, json.loads(e.payload))


def timeline(store: Store, session_id: int) -> list[EventView]:
    with store.reading() as s:
        rows = s.scalars(select(Event).where(Event.session_id == session_id)
                         .order_by(Event.seq)).all()
        return [_event(e) for e in rows]


# -- per zone -----------------------------------------------------------------------------

def zone_history(store: Store, client_id: int, zone: Zone, *, limit: int | None = None,
                 worked: bool = False, excluding: int | None = None) -> list[ZoneVisit]:
    """Every visit to `zone` for the client, newest first: settings, pigment, coverage. With
    `worked`, only visits where the needle ran there at settings the machine confirmed (or,
    recorded before runs were, where settings were confirmed)."""
    zone = Zone(zone)
    q = (select(ZoneWork, SessionRow.started_at, SessionRow.stage, SessionRow.simulator,
                SessionRow.per_run)
         .join(SessionRow, SessionRow.id == ZoneWork.session_id)
         .where(SessionRow.client_id == client_id, ZoneWork.zone == zone.value)
         .order_by(SessionRow.started_at.desc(), SessionRow.id.desc()))
    if worked:
        ran = (select(NeedleRun.id)
               .where(NeedleRun.session_id == ZoneWork.session_id,
                      NeedleRun.zone == ZoneWork.zone, NeedleRun.depth_um.is_not(None),
                      NeedleRun.needle_ms > 0).exists())
        q = q.where(or_(ran, SessionRow.per_run.is_(False) & ZoneWork.depth_um.is_not(None)))
    if excluding is not None:
        q = q.where(SessionRow.id != excluding)
    if limit:
        q = q.limit(limit)
    with store.reading() as s:
        rows = s.execute(q).all()
        ids = [r[0].session_id for r in rows]
        pigments: dict[int, list[PigmentView]] = defaultdict(list)
        runs: dict[tuple[int, str | None], list[RunView]] = {}
        if ids:
            for p in s.scalars(select(PigmentUse).where(PigmentUse.session_id.in_(ids),
                                                        or_(PigmentUse.zone == zone.value,
                                                            PigmentUse.zone.is_(None)))):
                pigments[p.session_id].append(_pigment(p))
            runs = grouped_runs(s.scalars(
                select(NeedleRun).where(NeedleRun.session_id.in_(ids),
                                        NeedleRun.zone == zone.value)
                .order_by(NeedleRun.session_id, NeedleRun.seq)))
        return [ZoneVisit(zw.session_id, started, Stage(stage), sim,
                          _zone(zw, per_run, runs.get((zw.session_id, zw.zone), ())),
                          tuple(pigments[zw.session_id]))
                for zw, started, stage, sim, per_run in rows]


@dataclass(frozen=True)
class Repeat:
    """What "repeat last" offers for a zone, and where it comes from."""

    settings: MachineSettings
    session_id: int
    started_at: datetime
    needle_ms: int | None  # None: a session recorded before per-run settings

    def text(self) -> str:
        used = (f"used {duration_text(self.needle_ms)}" if self.needle_ms is not None
                else f"last confirmed ({BEFORE_RUNS})")
        return f"repeat: {self.settings.short()}, {used} on {self.started_at:%d %b %Y}"


def settings_to_repeat(store: Store, client_id: int, zone: Zone, *,
                       excluding: int | None = None) -> Repeat | None:
    """The settings used on skin in `zone` at the client's last session that ran the needle
    there: of that session's runs, the settings the needle ran longest at (the work itself,
    not a test touch at the end; docs/record.md). A session recorded before runs were gives
    its last confirmed settings, labelled so."""
    visits = zone_history(store, client_id, zone, limit=1, worked=True, excluding=excluding)
    if not visits:
        return None
    v = visits[0]
    if not v.work.per_run:
        assert v.work.confirmed is not None
        return Repeat(v.work.confirmed, v.session_id, v.started_at, None)
    longest = v.work.on_skin.longest if v.work.on_skin else None
    assert longest is not None and longest.settings is not None
    return Repeat(longest.settings, v.session_id, v.started_at, longest.needle_ms)


# -- clinic-wide --------------------------------------------------------------------------

def add_years(d: date, years: int) -> date:
    """`years` after `d`, the same day of the year; 29 February falls on the 28th in a year
    without one (the one date rule for touch-ups: the console's "next session" and the
    clinic's list of touch-ups due must agree)."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _due_bound(horizon: date, years: int) -> datetime:
    """The exclusive upper bound on last_completed_at for a touch-up `years` later falling due
    by `horizon`. add_years never decreases, so the dates due are exactly those up to the
    latest one due; that can be a day past `horizon - years` (29 February of a leap year is
    due on 28 February of a year without one), hence the step forward."""
    last = add_years(horizon, -years)
    while add_years(last + timedelta(days=1), years) <= horizon:
        last += timedelta(days=1)
    return datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)


def _check_page(limit: int, offset: int) -> None:
    if limit < 1 or offset < 0:
        raise ValueError(f"a page needs limit >= 1 and offset >= 0, not {limit} and {offset}")


def touchups_due(store: Store, *, today: date, within_days: int = 0,
                 years: int = TOUCH_UP_YEARS, scar_years: int = SCAR_TOUCH_UP_YEARS,
                 limit: int = PAGE_SIZE, offset: int = 0) -> Page[TouchUpDue]:
    """Clients whose touch-up falls due by `today + within_days`: `years` after the last
    completed session (`scar_years` for clients with scar work), soonest first, then by name;
    the page [offset, offset + limit) and the total.

    Each rule is one range scan of ix_clients_touch_up in last-completed order (no OR: the
    planners turned one into a scan of both ranges' index entries plus a table lookup per
    row). The due date only grows with the last completed date, so a rule's first n clients
    by (due, name) are among those due no later than its n-th client in index order: that
    prefix, plus the clients due the same day, is all that is read and merged here."""
    _check_page(limit, offset)
    horizon = today + timedelta(days=within_days)
    rules = ((False, years), (True, scar_years))
    n = offset + limit

    def rule(scar: bool, bound: datetime) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
        return Client.scar_work == scar, Client.last_completed_at < bound

    bounds = [_due_bound(horizon, y) for _, y in rules]
    with store.reading() as s:
        counted = s.execute(select(
            *(select(func.count()).select_from(Client).where(*rule(scar, bound))
              .scalar_subquery() for (scar, _), bound in zip(rules, bounds, strict=True)),
            *(select(Client.last_completed_at).where(*rule(scar, bound))
              .order_by(Client.last_completed_at).offset(n - 1).limit(1).scalar_subquery()
              for (scar, _), bound in zip(rules, bounds, strict=True)))).one()
        totals, nth = counted[:2], counted[2:]
        ranges = []
        for (scar, y), bound, total, last in zip(rules, bounds, totals, nth, strict=True):
            if total:
                if last is not None:  # more than n due: stop after the n-th one's due day
                    bound = min(bound, _due_bound(add_years(last.date(), y), y))
                ranges.append(select(Client.id, Client.name, Client.last_completed_at,
                                     Client.scar_work).where(*rule(scar, bound)))
        rows = s.execute(union_all(*ranges)).all() if ranges else []
    due = []
    for cid, name, last, scar in rows:
        assert last is not None  # each rule's range is last_completed_at < bound: never NULL
        due.append(TouchUpDue(cid, name, last,
                              add_years(last.date(), scar_years if scar else years), bool(scar)))
    due.sort(key=lambda d: (d.due_on, d.client_name, d.client_id))
    return Page(tuple(due[offset:n]), sum(totals), offset, limit)


def recall(store: Store, lot: str, *, limit: int = PAGE_SIZE, offset: int = 0) -> RecallPage:
    """Every client and session that used pigment or needle lot `lot` (exact match), by
    session start: the page [offset, offset + limit), the total and how many clients and
    sessions (and simulator sessions) the whole answer holds."""
    _check_page(limit, offset)
    lot = lot.strip()
    uses = union_all(
        select(PigmentUse.id.label("use_id"), PigmentUse.session_id,
               literal("pigment").label("item"),
               (PigmentUse.brand + " " + PigmentUse.shade + " "
                + cast(PigmentUse.dilution_water, String) + ":"
                + cast(PigmentUse.dilution_pigment, String)).label("product"),
               PigmentUse.zone, PigmentUse.lot, PigmentUse.expiry)
        .where(PigmentUse.lot == lot),
        select(NeedleUse.id, NeedleUse.session_id, literal("needle"), NeedleUse.code,
               NeedleUse.zone, NeedleUse.lot, NeedleUse.expiry)
        .where(NeedleUse.lot == lot)).subquery()
    joined = (select(SessionRow.client_id).select_from(uses)
              .join(SessionRow, SessionRow.id == uses.c.session_id))
    with store.reading() as s:
        total, clients, sessions, simulated = s.execute(joined.with_only_columns(
            func.count(), func.count(distinct(SessionRow.client_id)),
            func.count(distinct(uses.c.session_id)),
            func.count(distinct(case((SessionRow.simulator.is_(True), uses.c.session_id)))),
        )).one()
        rows = s.execute(
            joined.with_only_columns(
                Client.id, Client.name, uses.c.session_id, SessionRow.started_at,
                SessionRow.simulator, uses.c.item, uses.c.product, uses.c.zone, uses.c.lot,
                uses.c.expiry)
            .join(Client, Client.id == SessionRow.client_id)
            .order_by(SessionRow.started_at, uses.c.session_id, uses.c.item,
                      func.coalesce(uses.c.zone, ""), uses.c.use_id)
            .offset(offset).limit(limit)).all() if total > offset else []
    hits = tuple(RecallHit(cid, name, sid, started, sim, item, product, zone_of(zone), lot_,
                           expiry)
                 for cid, name, sid, started, sim, item, product, zone, lot_, expiry in rows)
    return RecallPage(hits, total, offset, limit,
                      clients=clients, sessions=sessions, simulator_sessions=simulated)


def technician_activity(store: Store, *, since: datetime | None = None,
                        until: datetime | None = None) -> list[Activity]:
    """Sessions per technician in [since, until): outcomes, simulator practice, zones."""
    zones = (select(ZoneWork.session_id, func.count().label("n"))
             .group_by(ZoneWork.session_id).subquery())
    ended = SessionRow.outcome
    q = (select(SessionRow.technician, func.count(SessionRow.id),
                func.count(SessionRow.id).filter(ended == Outcome.COMPLETED.value),
                func.count(SessionRow.id).filter(ended == Outcome.INTERRUPTED.value),
                func.count(SessionRow.id).filter(SessionRow.simulator.is_(True)),
                func.coalesce(func.sum(zones.c.n), 0))
         .outerjoin(zones, zones.c.session_id == SessionRow.id)
         .group_by(SessionRow.technician).order_by(SessionRow.technician))
    if since:
        q = q.where(SessionRow.started_at >= since)
    if until:
        q = q.where(SessionRow.started_at < until)
    with store.reading() as s:
        return [Activity(*r) for r in s.execute(q).all()]
