"""The recorder's own connection: one SQLAlchemy Core `Connection` held for the writer's life.

A recorder call is one explicit transaction (`Connection.begin()`: on SQLite the store's begin
hook makes it BEGIN IMMEDIATE, on PostgreSQL psycopg's implicit BEGIN), committed before the
call returns, so a call returns only after its event is committed. The statements are built
once, at module level by their callers, and run with `Connection.execute`, whose compiled
cache compiles each (statement, parameter keys) once per engine; holding the connection saves
the pool checkout per call. Nothing here reaches below SQLAlchemy's public API except the
driver connection, once, to set the lock wait on SQLite (a PRAGMA through `execute` would
begin a transaction, and so take the write lock, just to set how long to wait for it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, CursorResult, exc
from sqlalchemy.sql.expression import Executable

from sessions.store import Store, translated


class Tx:
    """One open transaction on the writer's connection."""

    def __init__(self, conn: Connection):
        self._conn = conn

    def execute(self, stmt: Executable, values: Mapping[str, Any]) -> CursorResult[Any]:
        return self._conn.execute(stmt, values)

    def insert(self, stmt: Executable, values: Mapping[str, Any]) -> int:
        """Run an INSERT ... RETURNING id; the new row's id."""
        new_id: int = self.execute(stmt, values).scalar_one()
        return new_id

    def first(self, stmt: Executable, values: Mapping[str, Any]) -> Sequence[Any] | None:
        """The first row (its columns by position), or None."""
        return self.execute(stmt, values).first()

    def scalar(self, stmt: Executable, values: Mapping[str, Any]) -> Any:
        return self.execute(stmt, values).scalar()

    def insert_many(self, stmt: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        self._conn.execute(stmt, list(rows))


class Writer:
    """A Core connection held from the store's pool; not thread-safe (the Recorder locks)."""

    def __init__(self, store: Store, *, wait_ms: int | None = None):
        self.store = store
        # How long a write may wait for another program's lock before it fails (None: the
        # store's default). The recorder's sink fails fast and tries again, so that a locked
        # record is known at once and the needle stopped, instead of a write hanging.
        self._wait_ms = wait_ms
        self._conn: Connection | None = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Commit when the block ends; roll back (and raise) on any error."""
        with translated(self.store.url):
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            try:
                trans = conn.begin()
                try:
                    yield Tx(conn)
                except BaseException:
                    # The block's own error is what the caller sees, even if rollback fails.
                    try:
                        trans.rollback()
                    except exc.DBAPIError:
                        self._drop(conn, invalidate=True)
                    raise
                try:
                    trans.commit()
                except exc.DBAPIError:
                    # After a failed COMMIT SQLAlchemy only forgets the transaction; the driver
                    # may still hold it open (SQLite does, e.g. for a deferred foreign key), so
                    # the connection goes.
                    self._drop(conn, invalidate=True)
                    raise
            finally:
                # SQLAlchemy invalidates a connection on an error it knows as a disconnect (at
                # BEGIN too); dropped here, not reconnected under us without our lock wait.
                if conn.invalidated:
                    self._drop(conn)

    def _connect(self) -> Connection:
        conn = self.store.engine.connect()
        if self._wait_ms is not None:
            if self.store.is_sqlite:
                sqlite = conn.connection.driver_connection
                assert sqlite is not None  # a connection just checked out of the pool
                sqlite.execute(f"PRAGMA busy_timeout={int(self._wait_ms)}")
            else:
                with conn.begin():
                    conn.exec_driver_sql(f"SET lock_timeout = {int(self._wait_ms)}")
        return conn

    def _drop(self, conn: Connection, *, invalidate: bool = False) -> None:
        # A broken connection leaves the pool; the next call opens a new one.
        if invalidate and not conn.invalidated:
            conn.invalidate()
        with contextlib.suppress(exc.DBAPIError):
            conn.close()
        if self._conn is conn:
            self._conn = None

    def close(self) -> None:
        """Give the connection back to the pool."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
