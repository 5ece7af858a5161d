"""session owners and leases; journal marks

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:40:00

Two chairs on one database: a session records which console holds it and until when (a lease
renewed while it runs), so that only a session whose lease has run out can be closed as
interrupted. The journal marks make the replay of a console's journal exactly once.
Sessions from before have no owner and no lease: they count as expired.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=200), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
    op.create_table(
        "journal_marks",
        sa.Column("journal", sa.String(length=64), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("journal", name=op.f("pk_journal_marks")),
    )


def downgrade() -> None:
    op.drop_table("journal_marks")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("owner")
