"""The recorder's own connection: Core statements compiled once, run on the DBAPI connection.

A recorder call is one explicit transaction (SQLite: BEGIN IMMEDIATE ... COMMIT; PostgreSQL:
psycopg's implicit BEGIN ... COMMIT), so it returns only after its event is committed. What is
saved per call is SQLAlchemy's per-execution work (cache-key generation, parameter coercion,
result set-up, pool checkout), which cost several times the fsync itself
(bench/bench_recorder.py). The statements are still SQLAlchemy Core, compiled once per dialect
with the columns' own bind processors, so the stored values are exactly what the ORM reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable

from sessions.store import Store, translated

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Prepared:
    sql: str
    binds: tuple[tuple[str, Processor], ...]  # in the statement's parameter order
    positional: bool

    @classmethod
    def compile(cls, stmt: Executable, keys: Sequence[str], dialect: Dialect) -> _Prepared:
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        names = compiled.positiontup if dialect.positional else list(compiled.binds)
        return cls(compiled.string,
                   tuple((n, compiled.binds[n].type.bind_processor(dialect)) for n in names),
                   dialect.positional)

    def params(self, values: Mapping[str, Any]) -> tuple | dict:
        converted = ((n, p(values[n]) if p else values[n]) for n, p in self.binds)
        return tuple(v for _, v in converted) if self.positional else dict(converted)


class Tx:
    """One open transaction on the writer's connection."""

    def __init__(self, writer: Writer, cursor: Any):
        self._writer = writer
        self._cursor = cursor

    def execute(self, stmt: Executable, values: Mapping[str, Any]) -> Any:
        p = self._writer.prepared(stmt, values)
        self._cursor.execute(p.sql, p.params(values))
        return self._cursor

    def insert(self, stmt: Executable, values: Mapping[str, Any]) -> int:
        """Run an INSERT ... RETURNING id; the new row's id."""
        return self.execute(stmt, values).fetchone()[0]

    def first(self, stmt: Executable, values: Mapping[str, Any]) -> tuple | None:
        return self.execute(stmt, values).fetchone()

    def scalar(self, stmt: Executable, values: Mapping[str, Any]) -> Any:
        row = self.first(stmt, values)
        return None if row is None else row[0]

    def insert_many(self, stmt: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        p = self._writer.prepared(stmt, rows[0])
        self._cursor.executemany(p.sql, [p.params(r) for r in rows])


class Writer:
    """A DBAPI connection held from the store's pool; not thread-safe (the Recorder locks)."""

    def __init__(self, store: Store, *, wait_ms: int | None = None):
        self.store = store
        # How long a write may wait for another program's lock before it fails (None: the
        # store's default). The recorder's sink fails fast and tries again, so that a locked
        # record is known at once and the needle stopped, instead of a write hanging.
        self._wait_ms = wait_ms
        self._dialect = store.engine.dialect
        self._error = self._dialect.loaded_dbapi.Error
        self._conn: Any = None  # sqlalchemy's PoolProxiedConnection
        self._cache: dict[tuple[Executable, tuple[str, ...]], _Prepared] = {}

    def prepared(self, stmt: Executable, values: Iterable[str]) -> _Prepared:
        keys = tuple(values)
        p = self._cache.get((stmt, keys))
        if p is None:
            p = self._cache[(stmt, keys)] = _Prepared.compile(stmt, keys, self._dialect)
        return p

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Commit when the block ends; roll back (and raise) on any error."""
        with translated(self.store.url):
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            cursor = conn.cursor()
            try:
                if self.store.is_sqlite:
                    # As in store._sqlite_begin: take the write lock up front so a second
                    # writer waits on busy_timeout instead of failing half-way.
                    cursor.execute("BEGIN IMMEDIATE")
                yield Tx(self, cursor)
                conn.commit()
            except self._error as err:
                self._abort(err, cursor)
                # Wrapped as SQLAlchemy would, so `translated` gives the usual one-liners.
                raise exc.DBAPIError.instance(None, None, err, self._error,
                                              dialect=self._dialect) from err
            except BaseException:
                self._abort(None, cursor)
                raise
            finally:
                with contextlib.suppress(self._error):
                    cursor.close()

    def _connect(self) -> Any:
        conn = self.store.engine.raw_connection()
        if self._wait_ms is not None:
            cursor = conn.cursor()
            if self.store.is_sqlite:
                cursor.execute(f"PRAGMA busy_timeout={int(self._wait_ms)}")
            else:
                cursor.execute(f"SET lock_timeout = {int(self._wait_ms)}")
                conn.commit()
            cursor.close()
        return conn

    def _abort(self, err: Exception | None, cursor: Any) -> None:
        conn = self._conn
        try:
            conn.rollback()
        except self._error:
            err = err or exc.DisconnectionError("rollback failed")
        if err is not None and (not isinstance(err, self._error)
                                or self._dialect.is_disconnect(err, conn.dbapi_connection,
                                                               cursor)):
            # A broken connection is dropped from the pool; the next call opens a new one.
            conn.invalidate()
            self._conn = None

    def close(self) -> None:
        """Give the connection back to the pool."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
