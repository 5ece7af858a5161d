"""Opening the record: URL choice, engine set-up, schema upgrades, and database errors.

`open_store()` is the one way in. It resolves the URL (argument, then SMP_DB_URL, then a SQLite
file in the user data directory), creates a new SQLite file with mode 0600 itself (only where
no file exists: sessions/record_file.py; an existing one is made private again), sets the SQLite
pragmas on every connection, and brings the schema to this program's head (after a backup copy
for SQLite) or refuses a database newer than the program, or one that is not an smp record. A
record that cannot be written opens read-only: reading works, and every write is refused in one
line.

Clinical data: a password never goes in `--db` (every user sees a command line in `ps`), no
message shows one, SQL errors never carry their parameters (a name, a phone number), and a
PostgreSQL server that is not on this machine is reached over verified TLS unless the URL says
otherwise (docs/privacy.md).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import sqlite3
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, exc, inspect, text
from sqlalchemy.engine import URL, CursorResult, Result, make_url
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from sessions.errors import AppendOnlyViolation, StoreError
from sessions.models import Event
from sessions.record_file import inspect_path, read_only_uri

if TYPE_CHECKING:  # Alembic is imported only when a schema is checked or upgraded (slow)
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# The newest migration in sessions/migrations/versions, known without importing Alembic (about
# 0.4 s) so that opening an up-to-date record stays quick; Alembic is loaded only to upgrade or
# to name an unknown schema. tests/sessions/test_store.py fails if this disagrees with the
# migrations' real head: update it with every new migration.
HEAD_REVISION = "0005"
VERSION_TABLE = "alembic_version"  # Alembic's default; env.py does not change it

ENV_VAR = "SMP_DB_URL"
BUSY_TIMEOUT_MS = 5000
URL_HELP = "write sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
PASSWORD_HELP = ("put the password in ~/.pgpass (or the file PGPASSFILE names), or give the "
                 f"whole URL in {ENV_VAR}")
TLS_DEFAULT = "verify-full"  # encrypted, and the server's certificate and name checked
PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700


def default_path() -> Path:
    import platformdirs

    return platformdirs.user_data_path("smp") / "smp.sqlite3"


def hide_password(raw: str) -> str:
    """A URL as typed, for a message: any password replaced by ***."""
    return re.sub(r"(://[^/:@]*:)[^/]*@", r"\1***@", raw)


def resolve_url(arg: str | None = None) -> URL:
    """The database URL: `--db` beats SMP_DB_URL beats the default SQLite file."""
    raw = arg or os.environ.get(ENV_VAR)
    if not raw:
        return URL.create("sqlite", database=str(default_path()))
    shown = hide_password(raw)
    try:
        url = make_url(raw)
    except exc.ArgumentError:
        raise StoreError(f"malformed database URL {shown!r}: {URL_HELP}") from None
    except ValueError:  # SQLAlchemy's int() of the port
        url = None
    if url is None or not 0 < (url.port or 1) < 65536:
        raise StoreError(f"database URL {shown!r}: the port must be a number from 1 to "
                         f"65535; {URL_HELP}")
    if arg and url.password is not None:
        raise StoreError(f"--db {shown!r} holds a password, which every user of this computer "
                         f"can read in the process list (ps); {PASSWORD_HELP}")
    backend = url.get_backend_name()
    if backend == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # psycopg 3 is the driver we ship
    elif backend == "sqlite" and not url.database:
        raise StoreError(f"database URL {shown!r} names no file: {URL_HELP}")
    elif backend not in ("sqlite", "postgresql"):
        raise StoreError(f"unsupported database URL {shown!r}: {URL_HELP}")
    if backend == "postgresql" and "sslmode" not in url.query and not is_local(url):
        url = url.update_query_dict({"sslmode": TLS_DEFAULT})
    return url


def is_local(url: URL) -> bool:
    """True for a server on this machine: a unix socket, localhost, 127.0.0.0/8 or ::1."""
    hosts = [url.host] if url.host else []
    query = url.query.get("host")
    for h in ([query] if isinstance(query, str) else list(query or ())):
        hosts += h.split(",")
    for host in hosts:
        host = host.strip().strip("[]")
        if not host or host.startswith("/") or host == "localhost":
            continue
        try:
            if ipaddress.ip_address(host).is_loopback:
                continue
        except ValueError:
            pass
        return False
    return True


def describe(url: URL) -> str:
    """A URL for messages: the SQLite path, or the server without its password."""
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path:
    """The file of an SQLite URL (resolve_url refuses one that names none)."""
    if not url.database:
        raise StoreError(f"database URL {describe(url)!r} names no file: {URL_HELP}")
    return Path(url.database)


def rowcount(result: Result[Any]) -> int:
    """The rows a DELETE or UPDATE touched: Session.execute returns the CursorResult that
    counts them, though its stubs say a plain Result."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def _tell(line: str) -> None:
    print(f"smp: {line}", file=sys.stderr)


def _create_sqlite_file(path: Path) -> None:
    default = path == default_path()
    if default:
        path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise StoreError(f"cannot create database {path}: directory {path.parent} does not exist")
    # Clinical data: only the owner may read it. SQLite gives -wal and -shm the same mode.
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE)
    except OSError as err:
        raise StoreError(f"cannot create database {path}: {err.strerror}") from None
    os.close(fd)
    _make_private(path, default)


def _make_private(path: Path, default: bool) -> None:
    """An existing record (and its -wal, -shm) readable by others is made the owner's only,
    with one line saying so; refused where that cannot be done."""
    if default and stat.S_IMODE(path.parent.stat().st_mode) & 0o077:
        old = stat.S_IMODE(path.parent.stat().st_mode)
        _chmod(path.parent, PRIVATE_DIR, old)
        _tell(f"folder {path.parent} was open to other users (mode {old:04o}); now "
              f"{PRIVATE_DIR:04o}")
    for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            old = stat.S_IMODE(f.stat().st_mode)
        except FileNotFoundError:
            continue
        if old & 0o077:
            _chmod(f, PRIVATE_FILE, old)
            note = "" if default or f != path else "; its folder, chosen by you, is left as is"
            _tell(f"{f} was readable by other users (mode {old:04o}); now "
                  f"{PRIVATE_FILE:04o}{note}")


def _chmod(path: Path, mode: int, old: int) -> None:
    try:
        os.chmod(path, mode)
    except OSError as err:
        raise StoreError(f"{path} is open to other users (mode {old:04o}) and cannot be made "
                         f"private ({err.strerror}); ask its owner to chmod {mode:o} it") from None


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    # pysqlite's own transaction handling would defer BEGIN; let SQLAlchemy emit it.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock at BEGIN so two of them wait on busy_timeout instead of
    # failing half-way through a unit of work; readers stay deferred and never block (WAL).
    read = conn.get_execution_options().get("smp_read", False)
    conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def _sqlite_read_only_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    # No journal_mode: setting it writes the header. The file's own mode (WAL) holds.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA query_only=ON")
    cur.close()


def make_engine(url: URL, *, read_only: bool = False) -> Engine:
    """An engine for `url`; with `read_only` one that cannot write (the SQLite file must exist)."""
    if url.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        # hide_parameters: an error or log line never shows a bound value (a name, a phone).
        if read_only:
            engine = create_engine(url, hide_parameters=True, creator=lambda: sqlite3.connect(
                read_only_uri(path), uri=True, check_same_thread=False))
            event.listen(engine, "connect", _sqlite_read_only_pragmas)
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
            return engine
        _create_sqlite_file(path)
        engine = create_engine(url, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    args: dict[str, object] = {"connect_timeout": 5}
    if read_only:
        args["options"] = "-c default_transaction_read_only=on"
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=args)


@contextlib.contextmanager
def translated(url: URL) -> Iterator[None]:
    """Turn driver errors a person can act on into one-line StoreErrors."""
    where = describe(url)
    try:
        yield
    except exc.DBAPIError as err:
        detail = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
        low = detail.lower()
        if "append-only" in low:
            raise AppendOnlyViolation(detail) from None
        if "locked" in low or "busy" in low or "lock timeout" in low:
            raise StoreError(f"database {where} is locked by another program; try again "
                             "when it has finished") from None
        if "not a database" in low or "malformed" in low or "corrupt" in low:
            raise StoreError(f"database {where} is corrupt ({detail}); restore it from a "
                             "backup") from None
        if isinstance(err, exc.OperationalError) and url.get_backend_name() == "postgresql":
            raise StoreError(f"cannot reach PostgreSQL at {where}: {detail}") from None
        if isinstance(err, exc.OperationalError):
            raise StoreError(f"cannot open database {where}: {detail}") from None
        raise


def _alembic_config(conn: Connection | None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "sessions:migrations")
    cfg.attributes["connection"] = conn
    return cfg


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None))


def head_revision() -> str:
    """The migrations' head as Alembic computes it (slow: imports Alembic)."""
    head = _scripts().get_current_head()
    assert head is not None  # sessions/migrations has one head
    return head


def _stored_revision(conn: Connection, where: str) -> str | None:
    """The schema revision recorded in the database, read with a plain query."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(rows) > 1:
        raise StoreError(f"database {where} records several schema versions "
                         f"({', '.join(sorted(rows))}); this program expects one")
    return rows[0] if rows else None


def _guard_events(session: Session, flush_context: object, instances: object) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, Event) and (obj in session.deleted or session.is_modified(obj)):
            raise AppendOnlyViolation(
                f"timeline event {obj.id} cannot be changed or deleted: events are "
                "append-only, record a correction event instead")


def _guard_bulk(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(
            m.class_ is Event for m in state.all_mappers):
        raise AppendOnlyViolation(
            "timeline events cannot be updated or deleted: events are append-only, record a "
            "correction event instead")


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def status(self) -> str:
        if self.current == self.head:
            return "current"
        return "empty" if self.current is None else "older"


class ReadOnlyRecord(StoreError):
    """A write to a record opened read-only."""


class Store:
    """An open record: the engine, a session factory, and the schema version. `read_only`
    says why the record cannot be written (None when it can)."""

    def __init__(self, url: URL, engine: Engine, read_only: str | None = None):
        self.url = url
        self.engine = engine
        self.read_only = read_only
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._readers = sessionmaker(engine.execution_options(smp_read=True),
                                     expire_on_commit=False)
        for factory in (self.sessions, self._readers):
            event.listen(factory, "before_flush", _guard_events)
            event.listen(factory, "do_orm_execute", _guard_bulk)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    def require_writable(self, doing: str = "this command") -> None:
        if self.read_only:
            raise ReadOnlyRecord(
                f"database {describe(self.url)} is read-only ({self.read_only}): {doing} needs "
                "to write to it, so nothing was done; smp history and smp export can read it")

    @contextlib.contextmanager
    def unit(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any error."""
        self.require_writable()
        with translated(self.url), self.sessions.begin() as session:
            yield session

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only transaction that never waits for writers."""
        with translated(self.url), self._readers.begin() as session:
            yield session

    def schema(self) -> SchemaState:
        with translated(self.url), self.engine.connect() as conn:
            current = _stored_revision(conn, describe(self.url))
        if current == HEAD_REVISION:  # the common case, without importing Alembic
            return SchemaState(current, HEAD_REVISION)
        scripts = _scripts()
        head = scripts.get_current_head()
        assert head is not None  # sessions/migrations has one head
        known = {s.revision for s in scripts.walk_revisions()}
        if current is not None and current not in known:
            raise StoreError(
                f"database {describe(self.url)} has schema {current}, newer than this program "
                f"(which knows up to {head}); install a newer smp to open it")
        return SchemaState(current, head)

    def upgrade(self) -> tuple[SchemaState, Path | None]:
        """Bring the schema to head; back up an older SQLite file first. Returns the state
        before and the backup path (None if nothing needed copying)."""
        before = self.schema()
        if before.status == "current":
            return before, None
        self.require_writable(f"bringing its schema {before.current or 'empty'} to "
                              f"{before.head}")
        # "older": a stored revision behind head (None is "empty", with nothing to copy).
        backup = self._backup(before.current) \
            if before.current is not None and before.status == "older" and self.is_sqlite \
            else None
        from alembic import command

        with translated(self.url), self.engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "head")
        return before, backup

    def _backup(self, revision: str) -> Path:
        src = sqlite_path(self.url)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        dest = src.with_name(f"{src.name}.{revision}.{stamp}.bak")
        fd = os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        # The backup API copies a consistent snapshot even with the WAL in use.
        with contextlib.closing(sqlite3.connect(src)) as s, \
                contextlib.closing(sqlite3.connect(dest)) as d:
            s.backup(d)
        return dest

    def integrity(self) -> str:
        """"ok", or the backend's first complaint (SQLite's integrity_check)."""
        if not self.is_sqlite:
            with translated(self.url), self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return "ok"
        with translated(self.url), self.engine.connect() as conn:
            return str(conn.exec_driver_sql("PRAGMA integrity_check").scalar())

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str | URL | None = None, *, upgrade: bool = True,
               read_only: bool = False) -> Store:
    """Open the record at `url` (or SMP_DB_URL, or the default file). With `upgrade`, an
    empty or older schema is brought to head; a newer one is always refused, and so is a
    database that holds something other than an smp record.

    A record that cannot be written is opened read-only (Store.read_only says why); with
    `read_only` nothing is ever written, nor created: the record must exist."""
    resolved = url if isinstance(url, URL) else resolve_url(url)
    reason, new = ("opened read-only" if read_only else None), False
    if resolved.get_backend_name() == "sqlite":
        found = inspect_path(sqlite_path(resolved))
        new = not found.exists
        if new and read_only:
            raise StoreError(f"no record at {found.path} (nothing was created); smp db upgrade "
                             "creates one")
        reason = reason or found.read_only
        if found.exists and reason is None:
            # Look before writing: a writer's first connection switches the file to WAL.
            probe = Store(resolved, make_engine(resolved, read_only=True), "probe")
            try:
                _refuse_foreign(probe, probe.schema(), new=False)
            finally:
                probe.close()
    store = Store(resolved, make_engine(resolved, read_only=reason is not None), reason)
    try:
        state = store.schema()
        _refuse_foreign(store, state, new)
        if upgrade:
            store.upgrade()
    except BaseException:
        store.close()
        raise
    return store


def _refuse_foreign(store: Store, state: SchemaState, new: bool) -> None:
    """A database without an smp schema version is initialised only if it is empty and
    (SQLite) this call created it: never someone else's tables, never a stray file."""
    if state.current is not None:
        return
    with translated(store.url), store.engine.connect() as conn:
        tables = sorted(inspect(conn).get_table_names())
    if tables or (store.is_sqlite and not new):
        held = f" (it holds {', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''})" \
            if tables else " (it has no tables)"
        new_one = ("a new record is created only where no file exists" if store.is_sqlite
                   else "an empty database becomes a new record")
        raise StoreError(f"database {describe(store.url)} is not an smp record{held}; choose "
                         f"another ({new_one})")
