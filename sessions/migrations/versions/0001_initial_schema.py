"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 01:12:34.027570

The timeline (events) is append-only: triggers refuse UPDATE and DELETE on both backends, so
even raw SQL from another tool cannot rewrite clinical history.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=50), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_completed_at", sa.DateTime(), nullable=True),
        sa.Column("scar_work", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
    )
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_clients_last_completed_at"), ["last_completed_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_clients_name"), ["name"], unique=False)

    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_meta")),
    )
    op.create_table(
        "client_health",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("hair_colour", sa.String(length=100), nullable=False),
        sa.Column("hair_loss_stage", sa.String(length=20), nullable=False),
        sa.Column("hair_loss_cause", sa.String(length=100), nullable=False),
        sa.Column("fitzpatrick", sa.Integer(), nullable=True),
        sa.Column("skin_quality", sa.String(length=100), nullable=False),
        sa.Column("allergies", sa.Text(), nullable=False),
        sa.Column("patch_test", sa.String(length=200), nullable=False),
        sa.Column("medications", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_client_health_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_client_health")),
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("procedure", sa.Boolean(), nullable=False),
        sa.Column("photos", sa.Boolean(), nullable=False),
        sa.Column("version", sa.String(length=50), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_consents_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consents_client_id"), ["client_id"], unique=False)

    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("technician", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("simulator", sa.Boolean(), nullable=False),
        sa.Column("machine_model", sa.String(length=100), nullable=False),
        sa.Column("machine_serial", sa.String(length=100), nullable=False),
        sa.Column("machine_firmware", sa.String(length=100), nullable=False),
        sa.Column("planned_zones", sa.String(length=500), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("aftercare_given", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_sessions_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sessions_client_started", ["client_id", "started_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sessions_outcome"), ["outcome"], unique=False)
        batch_op.create_index(batch_op.f("ix_sessions_technician"), ["technician"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("zone", sa.String(length=30), nullable=True),
        sa.Column("depth_um", sa.Integer(), nullable=True),
        sa.Column("rate_dhz", sa.Integer(), nullable=True),
        sa.Column("voltage_mv", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("corrects_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["corrects_id"], ["events.id"], name=op.f("fk_events_corrects_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_events_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("session_id", "seq", name=op.f("uq_events_session_id")),
    )
    op.create_table(
        "gate_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(length=50), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_gate_answers_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_answers")),
    )
    with op.batch_alter_table("gate_answers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gate_answers_session_id"), ["session_id"], unique=False
        )

    op.create_table(
        "needle_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=30), nullable=True),
        sa.Column("code", sa.String(length=30), nullable=False),
        sa.Column("lot", sa.String(length=100), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_needle_uses_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_needle_uses")),
    )
    with op.batch_alter_table("needle_uses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_needle_uses_lot"), ["lot"], unique=False)
        batch_op.create_index(batch_op.f("ix_needle_uses_session_id"), ["session_id"], unique=False)

    op.create_table(
        "pigment_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=30), nullable=True),
        sa.Column("brand", sa.String(length=100), nullable=False),
        sa.Column("shade", sa.String(length=100), nullable=False),
        sa.Column("dilution_water", sa.Integer(), nullable=False),
        sa.Column("dilution_pigment", sa.Integer(), nullable=False),
        sa.Column("lot", sa.String(length=100), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_pigment_uses_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pigment_uses")),
    )
    with op.batch_alter_table("pigment_uses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pigment_uses_lot"), ["lot"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_pigment_uses_session_id"), ["session_id"], unique=False
        )

    op.create_table(
        "telemetry_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("rate_dhz", sa.Integer(), nullable=False),
        sa.Column("voltage_mv", sa.Integer(), nullable=False),
        sa.Column("current_ma", sa.Integer(), nullable=False),
        sa.Column("fault", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_telemetry_samples_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_samples")),
    )
    with op.batch_alter_table("telemetry_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_telemetry_samples_at"), ["at"], unique=False)

    op.create_table(
        "telemetry_summaries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=30), nullable=True),
        sa.Column("run_index", sa.Integer(), nullable=True),
        sa.Column("run_ms", sa.Integer(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("mean_rate_dhz", sa.Integer(), nullable=True),
        sa.Column("peak_rate_dhz", sa.Integer(), nullable=True),
        sa.Column("mean_voltage_mv", sa.Integer(), nullable=True),
        sa.Column("peak_voltage_mv", sa.Integer(), nullable=True),
        sa.Column("mean_current_ma", sa.Integer(), nullable=True),
        sa.Column("peak_current_ma", sa.Integer(), nullable=True),
        sa.Column("faults", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_telemetry_summaries_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_summaries")),
    )
    with op.batch_alter_table("telemetry_summaries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_telemetry_summaries_session_id"), ["session_id"], unique=False
        )

    op.create_table(
        "zone_works",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=30), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("coverage_pct", sa.Integer(), nullable=True),
        sa.Column("target_density_pct", sa.Integer(), nullable=True),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("depth_um", sa.Integer(), nullable=True),
        sa.Column("rate_dhz", sa.Integer(), nullable=True),
        sa.Column("voltage_mv", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_zone_works_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zone_works")),
        sa.UniqueConstraint("session_id", "zone", name=op.f("uq_zone_works_session_id")),
    )

    create_append_only_triggers()


APPEND_ONLY = "events are append-only: record a correction event instead"


def create_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
            "FOR EACH ROW EXECUTE FUNCTION events_append_only()"
        )
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER events_no_{action.lower()} BEFORE {action} ON events "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER events_append_only ON events")
        op.execute("DROP FUNCTION events_append_only()")
    else:
        op.execute("DROP TRIGGER events_no_update")
        op.execute("DROP TRIGGER events_no_delete")
    op.drop_table("zone_works")
    with op.batch_alter_table("telemetry_summaries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telemetry_summaries_session_id"))

    op.drop_table("telemetry_summaries")
    with op.batch_alter_table("telemetry_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telemetry_samples_at"))

    op.drop_table("telemetry_samples")
    with op.batch_alter_table("pigment_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pigment_uses_session_id"))
        batch_op.drop_index(batch_op.f("ix_pigment_uses_lot"))

    op.drop_table("pigment_uses")
    with op.batch_alter_table("needle_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_needle_uses_session_id"))
        batch_op.drop_index(batch_op.f("ix_needle_uses_lot"))

    op.drop_table("needle_uses")
    with op.batch_alter_table("gate_answers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gate_answers_session_id"))

    op.drop_table("gate_answers")
    op.drop_table("events")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_technician"))
        batch_op.drop_index(batch_op.f("ix_sessions_outcome"))
        batch_op.drop_index("ix_sessions_client_started")

    op.drop_table("sessions")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consents_client_id"))

    op.drop_table("consents")
    op.drop_table("client_health")
    op.drop_table("meta")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clients_name"))
        batch_op.drop_index(batch_op.f("ix_clients_last_completed_at"))

    op.drop_table("clients")
