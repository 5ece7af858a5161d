"""Alembic environment: always run from sessions.store with a live connection in
config.attributes["connection"] (no alembic.ini; the program owns the URL)."""

from alembic import context

from sessions.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
