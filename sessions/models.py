"""The record's tables (SQLAlchemy 2 typed ORM). Alembic owns the schema: change a model, add a
migration in sessions/migrations/versions, and tests/sessions/test_migrations.py checks they agree.

Settings are stored as the wire integers (µm, 0.1 Hz, mV), never floats. Times are UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import ClassVar

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from protocols import Zone

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend (SQLite has no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the record stores aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None,
                             dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # DeclarativeBase says FromClause (a class may be mapped to a join); every class here is
    # mapped to its own Table, so inserts and updates on Model.__table__ type-check.
    __table__: ClassVar[Table]


class Outcome(StrEnum):
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    ABANDONED = "abandoned"


def outcome_label(outcome: Outcome | None) -> str:
    """How every screen, the shell and the PDF name an outcome (None: the session is open)."""
    return "open" if outcome is None else outcome.value


# The stored strings as the views carry them (sessions/history.py, needle_runs.py, replay.py):
# converted here, where rows are read, so nothing past sessions/ handles the raw text.

def outcome_of(stored: str | None) -> Outcome | None:
    return None if stored is None else Outcome(stored)


def zone_of(stored: str | None) -> Zone | None:
    """A zone column; NULL is no zone (an event) or every zone (a pigment or cartridge)."""
    return None if stored is None else Zone(stored)


class EventKind(StrEnum):
    """What the machine link publishes, plus the record's own bookkeeping."""

    SESSION_STARTED = "session-started"
    SETTINGS_REQUESTED = "settings-requested"
    SETTINGS_APPLIED = "settings-applied"  # the read-back: what the machine actually applied
    SETTINGS_REFUSED = "settings-refused"
    SETTINGS_UNKNOWN = "settings-unknown"  # a SET's outcome was lost: until the machine says
    PEDAL_DOWN = "pedal-down"
    PEDAL_UP = "pedal-up"
    STOP = "stop"
    FAULT = "fault"
    LINK_LOST = "link-lost"
    LINK_RESTORED = "link-restored"
    MACHINE_REBOOTED = "machine-rebooted"
    ZONE_CHANGED = "zone-changed"
    PASS_MARKED = "pass-marked"  # the technician finished a pass over the zone
    NOTE = "note"
    CORRECTION = "correction"
    SESSION_ENDED = "session-ended"


class Client(Base):
    """Identity and contact: what a pseudonymised export replaces."""

    __tablename__ = "clients"
    # Touch-ups due: a range scan per rule, with the page's columns in the index (0005).
    __table_args__ = (Index("ix_clients_touch_up", "scar_work", "last_completed_at", "name",
                            "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    phone: Mapped[str] = mapped_column(String(50), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Maintained by the recorder when a session completes, so "touch-ups due" is an index
    # range scan rather than a scan of every session.
    last_completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scar_work: Mapped[bool] = mapped_column(Boolean, default=False)

    health: Mapped[ClientHealth | None] = relationship(back_populates="client")
    consents: Mapped[list[Consent]] = relationship(order_by="Consent.id")


class ClientHealth(Base):
    """Special-category data (GDPR): kept apart so exports and screens can leave it out."""

    __tablename__ = "client_health"

    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), primary_key=True)
    hair_colour: Mapped[str] = mapped_column(String(100), default="")
    hair_loss_stage: Mapped[str] = mapped_column(String(20), default="")  # NW1..NW7, Ludwig I..III
    hair_loss_cause: Mapped[str] = mapped_column(String(100), default="")
    fitzpatrick: Mapped[int | None] = mapped_column(Integer)
    skin_quality: Mapped[str] = mapped_column(String(100), default="")
    allergies: Mapped[str] = mapped_column(Text, default="")
    patch_test: Mapped[str] = mapped_column(String(200), default="")
    medications: Mapped[str] = mapped_column(Text, default="")

    client: Mapped[Client] = relationship(back_populates="health")


class Consent(Base):
    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    procedure: Mapped[bool] = mapped_column(Boolean)
    photos: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[str] = mapped_column(String(50))
    signed_on: Mapped[date] = mapped_column(Date)


class SessionRow(Base):
    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_client_started", "client_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    technician: Mapped[str] = mapped_column(String(200), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stage: Mapped[str] = mapped_column(String(20))
    simulator: Mapped[bool] = mapped_column(Boolean)
    machine_model: Mapped[str] = mapped_column(String(100))
    machine_serial: Mapped[str] = mapped_column(String(100))
    machine_firmware: Mapped[str] = mapped_column(String(100))
    planned_zones: Mapped[str] = mapped_column(String(500))  # comma-separated Zone values
    outcome: Mapped[str | None] = mapped_column(String(20), index=True)  # None while open
    aftercare_given: Mapped[bool] = mapped_column(Boolean, default=False)
    # Who holds an open session, and until when: the chair renews the lease while the session
    # runs; only a session whose lease has run out is "interrupted" (docs/record.md).
    owner: Mapped[str] = mapped_column(String(200), default="")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Sessions recorded before needle runs were (schema 0004) have none: their zones carry
    # only the last settings confirmed there, and every view labels them so.
    per_run: Mapped[bool] = mapped_column(Boolean, default=True)


class GateAnswer(Base):
    """One contraindication (or the interval rule) as asked at session start, and the verdict."""

    __tablename__ = "gate_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    item: Mapped[str] = mapped_column(String(50))
    present: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(String(200), default="")
    decision: Mapped[str] = mapped_column(String(20))  # clear, warned, refused, overridden...
    reason: Mapped[str] = mapped_column(Text, default="")


class PigmentUse(Base):
    __tablename__ = "pigment_uses"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    zone: Mapped[str | None] = mapped_column(String(30))
    brand: Mapped[str] = mapped_column(String(100))
    shade: Mapped[str] = mapped_column(String(100))
    dilution_water: Mapped[int] = mapped_column(Integer)
    dilution_pigment: Mapped[int] = mapped_column(Integer)
    lot: Mapped[str] = mapped_column(String(100), index=True)
    expiry: Mapped[date] = mapped_column(Date)


class NeedleUse(Base):
    __tablename__ = "needle_uses"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    zone: Mapped[str | None] = mapped_column(String(30))
    code: Mapped[str] = mapped_column(String(30))
    lot: Mapped[str] = mapped_column(String(100), index=True)
    expiry: Mapped[date] = mapped_column(Date)


class ZoneWork(Base):
    """One zone worked in one session. Its settings columns are the last the machine confirmed
    there; what was used on skin is derived from the zone's needle runs."""

    __tablename__ = "zone_works"
    __table_args__ = (UniqueConstraint("session_id", "zone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    zone: Mapped[str] = mapped_column(String(30))
    profile: Mapped[str] = mapped_column(String(64), default="")
    reasons: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of resolution reasons
    coverage_pct: Mapped[int | None] = mapped_column(Integer)
    target_density_pct: Mapped[int | None] = mapped_column(Integer)
    passes: Mapped[int] = mapped_column(Integer, default=0)
    notes: Mapped[str] = mapped_column(Text, default="")
    depth_um: Mapped[int | None] = mapped_column(Integer)
    rate_dhz: Mapped[int | None] = mapped_column(Integer)
    voltage_mv: Mapped[int | None] = mapped_column(Integer)


class Event(Base):
    """The append-only timeline. Never updated or deleted (guarded in code and by triggers)."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(30))
    zone: Mapped[str | None] = mapped_column(String(30))
    depth_um: Mapped[int | None] = mapped_column(Integer)
    rate_dhz: Mapped[int | None] = mapped_column(Integer)
    voltage_mv: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), index=True)
    payload: Mapped[str] = mapped_column(Text, default="{}")  # JSON object


class NeedleRun(Base):
    """One needle run, the clinical unit: the machine RUNNING until it left RUNNING, at one set
    of settings the machine confirmed (a change mid-run splits the run). Times are the
    machine's own (TELEMETRY needle_ms); settings NULL means the machine had not confirmed
    what it held. `adjustments` is a JSON list of the technician's steps in effect."""

    __tablename__ = "needle_runs"
    __table_args__ = (UniqueConstraint("session_id", "seq"),
                      Index("ix_needle_runs_session_zone", "session_id", "zone"))

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within the session
    zone: Mapped[str | None] = mapped_column(String(30))
    profile: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    needle_ms: Mapped[int] = mapped_column(Integer)
    exact: Mapped[bool] = mapped_column(Boolean, default=True)
    ended_by: Mapped[str] = mapped_column(String(100), default="")
    depth_um: Mapped[int | None] = mapped_column(Integer)
    rate_dhz: Mapped[int | None] = mapped_column(Integer)
    voltage_mv: Mapped[int | None] = mapped_column(Integer)
    adjustments: Mapped[str] = mapped_column(Text, default="[]")
    samples: Mapped[int] = mapped_column(Integer, default=0)
    under_speed_ms: Mapped[int] = mapped_column(Integer, default=0)
    faults: Mapped[int] = mapped_column(Integer, default=0)
    rate_mean_dhz: Mapped[int | None] = mapped_column(Integer)
    rate_min_dhz: Mapped[int | None] = mapped_column(Integer)
    rate_max_dhz: Mapped[int | None] = mapped_column(Integer)
    voltage_mean_mv: Mapped[int | None] = mapped_column(Integer)
    voltage_min_mv: Mapped[int | None] = mapped_column(Integer)
    voltage_max_mv: Mapped[int | None] = mapped_column(Integer)
    current_mean_ma: Mapped[int | None] = mapped_column(Integer)
    current_min_ma: Mapped[int | None] = mapped_column(Integer)
    current_max_ma: Mapped[int | None] = mapped_column(Integer)
    depth_mean_um: Mapped[int | None] = mapped_column(Integer)
    depth_min_um: Mapped[int | None] = mapped_column(Integer)
    depth_max_um: Mapped[int | None] = mapped_column(Integer)


class FlightChunk(Base):
    """The flight recorder: a session's telemetry at full rate and its link health, in
    compressed chunks of consecutive frames (sessions/flight.py holds the format). Outside
    the append-only rule: pruned after the retention the clinic sets."""

    __tablename__ = "flight_chunks"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    seq: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    frames: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class TelemetrySummary(Base):
    """Sessions before schema 0004: per pedal run (run_index set) or per zone (run_index
    NULL). Kept for good and read as they were; newer sessions have needle runs instead."""

    __tablename__ = "telemetry_summaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    zone: Mapped[str | None] = mapped_column(String(30))
    run_index: Mapped[int | None] = mapped_column(Integer)
    run_ms: Mapped[int] = mapped_column(Integer)
    samples: Mapped[int] = mapped_column(Integer)
    mean_rate_dhz: Mapped[int | None] = mapped_column(Integer)
    peak_rate_dhz: Mapped[int | None] = mapped_column(Integer)
    mean_voltage_mv: Mapped[int | None] = mapped_column(Integer)
    peak_voltage_mv: Mapped[int | None] = mapped_column(Integer)
    mean_current_ma: Mapped[int | None] = mapped_column(Integer)
    peak_current_ma: Mapped[int | None] = mapped_column(Integer)
    faults: Mapped[int] = mapped_column(Integer, default=0)


class TelemetrySample(Base):
    """Raw 50 Hz telemetry: outside the append-only rule, pruned after a bounded window."""

    __tablename__ = "telemetry_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    rate_dhz: Mapped[int] = mapped_column(Integer)
    voltage_mv: Mapped[int] = mapped_column(Integer)
    current_ma: Mapped[int] = mapped_column(Integer)
    fault: Mapped[bool] = mapped_column(Boolean, default=False)


class JournalMark(Base):
    """The last entry of a console's journal the record holds (sessions/journal.py), written in
    the same transaction as that entry's rows: a replay then writes every entry once."""

    __tablename__ = "journal_marks"

    journal: Mapped[str] = mapped_column(String(64), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class Meta(Base):
    """Small per-database facts (the pseudonym key)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
