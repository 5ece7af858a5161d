"""needle runs; the flight recorder; sessions labelled by how they were recorded

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 17:00:00

A needle run (the machine RUNNING until it left RUNNING) is recorded with the settings the
machine confirmed for it, its needle time on the machine's clock and a telemetry summary; a
zone's "settings used on skin" is derived from its runs. The flight recorder keeps a
session's telemetry and link health at full rate, compressed, for replay. Sessions from
before have no runs: `per_run` is false for them, and every view says so.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_STATS = [f"{q}_{s}_{u}" for q, u in (("rate", "dhz"), ("voltage", "mv"), ("current", "ma"),
                                       ("depth", "um")) for s in ("mean", "min", "max")]


def upgrade() -> None:
    # A plain ADD COLUMN, not a batch copy: SQLite cannot drop a table other rows refer to.
    op.add_column("sessions", sa.Column("per_run", sa.Boolean(), nullable=False,
                                        server_default=sa.false()))
    op.create_table(
        "needle_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=30), nullable=True),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=False),
        sa.Column("needle_ms", sa.Integer(), nullable=False),
        sa.Column("exact", sa.Boolean(), nullable=False),
        sa.Column("ended_by", sa.String(length=100), nullable=False),
        sa.Column("depth_um", sa.Integer(), nullable=True),
        sa.Column("rate_dhz", sa.Integer(), nullable=True),
        sa.Column("voltage_mv", sa.Integer(), nullable=True),
        sa.Column("adjustments", sa.Text(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("under_speed_ms", sa.Integer(), nullable=False),
        sa.Column("faults", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=True) for name in _STATS),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"],
                                name=op.f("fk_needle_runs_session_id_sessions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_needle_runs")),
        sa.UniqueConstraint("session_id", "seq", name=op.f("uq_needle_runs_session_id")),
    )
    with op.batch_alter_table("needle_runs", schema=None) as batch_op:
        batch_op.create_index("ix_needle_runs_session_zone", ["session_id", "zone"],
                              unique=False)
    op.create_table(
        "flight_chunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"],
                                name=op.f("fk_flight_chunks_session_id_sessions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flight_chunks")),
        sa.UniqueConstraint("session_id", "seq", name=op.f("uq_flight_chunks_session_id")),
    )
    with op.batch_alter_table("flight_chunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flight_chunks_first_at"), ["first_at"],
                              unique=False)


def downgrade() -> None:
    op.drop_table("flight_chunks")
    op.drop_table("needle_runs")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("per_run")
