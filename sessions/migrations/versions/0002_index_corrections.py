"""index corrections by the event they correct

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 01:40:00

A timeline shows each event with its corrections; without this index that is a scan.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_corrects_id"), ["corrects_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_corrects_id"))
