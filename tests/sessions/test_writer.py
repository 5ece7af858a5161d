"""The recorder's connection (sessions/writer.py): the write lock from BEGIN, a connection lost
or left mid-transaction replaced by a new one with the same lock wait, errors as before."""

import sqlite3
from datetime import date

import pytest
from sqlalchemy import exc, insert, select, text

from sessions.errors import StoreError
from sessions.models import JournalMark, NeedleUse
from sessions.writer import Writer

WAIT_MS = 50
_MARK = insert(JournalMark.__table__)
_MARKS = select(JournalMark.__table__.c.journal)


def marks(store) -> list[str]:
    with store.reading() as s:
        return list(s.scalars(_MARKS))


def lock_wait_ms(w: Writer, store) -> int:
    with w.transaction() as tx:
        if store.is_sqlite:
            return int(tx.scalar(text("PRAGMA busy_timeout"), {}))
        shown = tx.scalar(text("SHOW lock_timeout"), {})
        assert shown.endswith("ms"), shown
        return int(shown[:-2])


def test_a_call_holds_the_sqlite_write_lock_from_its_start(sqlite_url, tmp_path):
    from sessions.store import open_store

    store = open_store(sqlite_url)
    w = Writer(store)
    other = sqlite3.connect(tmp_path / "record.sqlite3", timeout=0, isolation_level=None)
    try:
        # Nothing written yet: a deferred BEGIN would leave the lock free until the first
        # write, and a second writer could then fail half-way through a call.
        with w.transaction(), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once the call has committed
        other.execute("ROLLBACK")
    finally:
        other.close()
        w.close()
        store.close()


def test_a_lost_connection_fails_one_call_and_the_next_reconnects_with_the_same_lock_wait(
        store):
    w = Writer(store, wait_ms=WAIT_MS)
    try:
        assert lock_wait_ms(w, store) == WAIT_MS
        if store.is_sqlite:
            w._conn.connection.driver_connection.close()  # as if the handle were lost
            lost: type[Exception] = exc.ProgrammingError
            said = "closed database"
        else:
            with w.transaction() as tx:
                pid = tx.scalar(text("SELECT pg_backend_pid()"), {})
            with store.engine.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                admin.commit()
            lost, said = StoreError, "cannot reach PostgreSQL"
        with pytest.raises(lost, match=said), w.transaction() as tx:
            tx.execute(_MARK, {"journal": "lost", "last": 1})
        with w.transaction() as tx:
            tx.execute(_MARK, {"journal": "after", "last": 1})
        assert marks(store) == ["after"]
        assert lock_wait_ms(w, store) == WAIT_MS  # the new connection fails fast too
    finally:
        w.close()


def test_a_failed_commit_leaves_nothing_and_the_next_call_writes(sqlite_url):
    from sessions.store import open_store

    store = open_store(sqlite_url)
    w = Writer(store)
    try:
        # A deferred foreign key fails at COMMIT, after which SQLite keeps the transaction
        # open: a writer that kept its connection would fail every call after it ("cannot
        # start a transaction within a transaction").
        with pytest.raises(exc.IntegrityError, match="FOREIGN KEY"), w.transaction() as tx:
            tx.execute(text("PRAGMA defer_foreign_keys=ON"), {})
            tx.execute(_MARK, {"journal": "orphaned", "last": 1})
            tx.execute(insert(NeedleUse.__table__), {
                "session_id": 999, "zone": None, "code": "1RL", "lot": "L1",
                "expiry": date(2030, 1, 1)})
        with w.transaction() as tx:
            tx.execute(_MARK, {"journal": "next", "last": 1})
        assert marks(store) == ["next"]
    finally:
        w.close()
        store.close()


def test_the_blocks_own_error_is_raised_and_the_connection_kept(store):
    w = Writer(store, wait_ms=WAIT_MS)
    try:
        with w.transaction() as tx:
            tx.execute(_MARK, {"journal": "first", "last": 1})
        held = w._conn
        # The same journal twice: its primary key refuses the second.
        with pytest.raises(exc.IntegrityError), w.transaction() as tx:
            tx.execute(_MARK, {"journal": "second", "last": 1})
            tx.execute(_MARK, {"journal": "first", "last": 2})
        with pytest.raises(KeyError), w.transaction() as tx:
            tx.execute(_MARK, {"journal": "third", "last": 1})
            raise KeyError("the caller's own")
        assert w._conn is held
        assert marks(store) == ["first"]
    finally:
        w.close()
