"""touch-ups due: one covering index on (scar_work, last_completed_at, name, id)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 17:00:00

"Touch-ups due" is two range scans, one per rule (standard and scar work), each in
last-completed order. With only an index on last_completed_at the planners OR'ed two scans
(SQLite: MULTI-INDEX OR, 9,190 index entries read to keep 907 rows at 1M sessions) and looked
every row up in the table. The new index answers both scans, their counts and the page's
columns (id, name) by itself; it replaces the index on last_completed_at alone, which nothing
else reads.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.create_index("ix_clients_touch_up",
                              ["scar_work", "last_completed_at", "name", "id"], unique=False)
        batch_op.drop_index("ix_clients_last_completed_at")


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.create_index("ix_clients_last_completed_at", ["last_completed_at"],
                              unique=False)
        batch_op.drop_index("ix_clients_touch_up")
