"""Opening the record: file mode, pragmas, URLs, schema upgrades and refusals."""

import os
import stat

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from sessions.errors import StoreError
from sessions.store import _alembic_config, default_path, head_revision, open_store, resolve_url
from tests.sessions.factory import client


def test_new_sqlite_file_is_private_and_durable(tmp_path):
    path = tmp_path / "r.sqlite3"
    store = open_store(f"sqlite:///{path}")
    client(store)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(f"{path}-wal").st_mode) == 0o600
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    store.close()


def test_url_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("SMP_DB_URL", raising=False)
    assert resolve_url(None).database == str(default_path())
    assert str(default_path()).endswith("smp/smp.sqlite3")
    monkeypatch.setenv("SMP_DB_URL", f"sqlite:///{tmp_path}/env.db")
    assert resolve_url(None).database == f"{tmp_path}/env.db"
    assert resolve_url(f"sqlite:///{tmp_path}/arg.db").database == f"{tmp_path}/arg.db"
    assert resolve_url("postgresql://u@h/db").drivername == "postgresql+psycopg"


@pytest.mark.parametrize(("url", "fragment"), [
    ("not a url", "malformed database URL 'not a url'"),
    ("mysql://u@h/db", "unsupported database URL"),
    ("sqlite://", "names no file"),
])
def test_bad_urls_are_one_line(url, fragment):
    with pytest.raises(StoreError, match=fragment) as err:
        resolve_url(url)
    assert "\n" not in str(err.value)


def test_empty_database_upgrades_to_head(store):
    state = store.schema()
    assert state.current == state.head == head_revision()
    with store.engine.connect() as c:
        tables = {"clients", "client_health", "sessions", "events", "zone_works",
                  "pigment_uses", "needle_uses", "gate_answers", "telemetry_summaries",
                  "telemetry_samples", "consents", "meta"}
        for t in tables:
            c.execute(text(f"SELECT count(*) FROM {t}"))


def test_models_and_migrations_agree(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from sessions.models import Base

    with store.engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}),
                                Base.metadata)
    assert diff == []


def _at_revision(url, revision):
    engine = create_engine(url)
    with engine.begin() as c:
        command.upgrade(_alembic_config(c), revision)
    engine.dispose()


def test_older_database_is_backed_up_then_upgraded(db_url):
    _at_revision(db_url, "0001")
    with create_engine(db_url).begin() as c:
        c.execute(text("INSERT INTO clients (name, phone, email, created_at, scar_work) "
                       "VALUES ('Old Client', '', '', '2020-01-01 00:00:00', false)"))
    store = open_store(db_url)
    assert store.schema().status == "current"
    with store.engine.connect() as c:
        assert c.execute(text("SELECT name FROM clients")).scalar() == "Old Client"
    if store.is_sqlite:
        path = store.url.database
        backups = [p for p in os.listdir(os.path.dirname(path)) if p.endswith(".bak")]
        assert len(backups) == 1 and ".0001." in backups[0]
        old = create_engine(f"sqlite:///{os.path.dirname(path)}/{backups[0]}")
        with old.connect() as c:
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
            assert c.execute(text("SELECT name FROM clients")).scalar() == "Old Client"
        old.dispose()
    store.close()


def test_a_record_at_0004_gains_the_touch_up_index_and_keeps_its_clients(db_url):
    from datetime import date

    from sqlalchemy import inspect

    from sessions.history import touchups_due

    _at_revision(db_url, "0004")
    with create_engine(db_url).begin() as c:
        c.execute(text("INSERT INTO clients (name, phone, email, created_at, last_completed_at, "
                       "scar_work) VALUES ('Scar', '', '', '2020-01-01 00:00:00', "
                       "'2024-02-29 10:00:00', true), ('Plain', '', '', '2020-01-01 00:00:00', "
                       "'2021-06-01 10:00:00', false)"))
    store = open_store(db_url)
    assert store.schema().status == "current"
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(store.engine).get_indexes(
        "clients")}
    assert indexes["ix_clients_touch_up"] == ["scar_work", "last_completed_at", "name", "id"]
    assert "ix_clients_last_completed_at" not in indexes
    page = touchups_due(store, today=date(2026, 2, 28))
    assert [(d.client_name, d.due_on) for d in page.items] == [
        ("Plain", date(2025, 6, 1)), ("Scar", date(2026, 2, 28))]
    assert page.total == 2
    store.close()


def test_newer_database_is_refused(store, db_url):
    with store.engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.close()
    with pytest.raises(StoreError, match=r"schema 9999, newer than this program \(which knows "
                       rf"up to {head_revision()}\)"):
        open_store(db_url)


def test_head_revision_constant_matches_the_migrations():
    from sessions.store import HEAD_REVISION

    # Opening a record trusts this constant to skip Alembic: a new migration must update it.
    assert head_revision() == HEAD_REVISION


def test_opening_a_current_record_does_not_import_alembic(tmp_path):
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    open_store(url).close()  # created and upgraded here, with Alembic
    probe = ("import sys; from sessions.store import open_store; s = open_store(sys.argv[1]); "
             "print(s.schema().status, 'alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe, url], capture_output=True, text=True,
                         check=True, timeout=60, cwd=os.path.dirname(os.path.dirname(
                             os.path.dirname(os.path.abspath(__file__))))).stdout.split()
    assert out == ["current", "False"]


def test_several_version_rows_are_refused_in_one_line(store, db_url):
    with store.engine.begin() as c:
        c.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0001')"))
    store.close()
    from sessions.store import HEAD_REVISION

    with pytest.raises(StoreError,
                       match=rf"records several schema versions \(0001, {HEAD_REVISION}\)"):
        open_store(db_url)


def test_check_without_upgrade_reports_older(db_url):
    _at_revision(db_url, "0001")
    store = open_store(db_url, upgrade=False)
    assert store.schema().status == "older"
    store.close()


def test_unreachable_postgres_is_one_line():
    with pytest.raises(StoreError, match="cannot reach PostgreSQL at") as err:
        open_store("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert "\n" not in str(err.value)


def test_a_file_that_is_not_sqlite_is_one_line(tmp_path):
    path = tmp_path / "bad.sqlite3"
    path.write_bytes(b"this is not a database, it is a shopping list " * 100)
    with pytest.raises(StoreError, match="is not an SQLite database, so not an smp record"):
        open_store(f"sqlite:///{path}")
    assert path.read_bytes().startswith(b"this is not a database")


# -- privacy: passwords, TLS, file modes ---------------------------------------------------

SECRET = "s3cr3t-pw"


def test_a_password_on_the_command_line_is_refused_without_showing_it(monkeypatch):
    monkeypatch.delenv("SMP_DB_URL", raising=False)
    with pytest.raises(StoreError) as err:
        resolve_url(f"postgresql://ann:{SECRET}@db.example/clinic")
    message = str(err.value)
    assert SECRET not in message and "***" in message
    assert "process list (ps)" in message and "~/.pgpass" in message and "PGPASSFILE" in message
    assert "SMP_DB_URL" in message
    # The same URL from the environment (not visible in ps) is accepted.
    monkeypatch.setenv("SMP_DB_URL", f"postgresql://ann:{SECRET}@db.example/clinic")
    assert resolve_url(None).password == SECRET


@pytest.mark.parametrize(("url", "fragment"), [
    (f"mysql://ann:{SECRET}@h/db", "unsupported database URL 'mysql://ann:***@h/db'"),
    (f"postgresql://ann:{SECRET}@h:abc/db", "'postgresql://ann:***@h:abc/db': the port must "
     "be a number"),
    (f"postgresql://ann:{SECRET}@h:99999999999/db", "the port must be a number"),
])
def test_bad_urls_never_show_the_password(monkeypatch, url, fragment):
    monkeypatch.setenv("SMP_DB_URL", url)
    with pytest.raises(StoreError) as err:
        resolve_url(None)
    assert fragment in str(err.value) and SECRET not in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("url", "sslmode"), [
    ("postgresql://ann@db.example/clinic", "verify-full"),
    ("postgresql://ann@10.1.2.3:5433/clinic", "verify-full"),
    ("postgresql://ann@/clinic?host=db.example", "verify-full"),
    ("postgresql://ann@db.example/clinic?sslmode=require", "require"),
    ("postgresql://ann@db.example/clinic?sslmode=disable", "disable"),
    ("postgresql://ann@localhost/clinic", None),
    ("postgresql://ann@127.0.0.2/clinic", None),
    ("postgresql://ann@[::1]/clinic", None),
    ("postgresql://ann@/clinic", None),
    ("postgresql://ann@/clinic?host=/var/run/postgresql", None),
])
def test_tls_is_required_for_a_server_elsewhere(url, sslmode):
    assert resolve_url(url).query.get("sslmode") == sslmode


def test_an_unreachable_server_message_has_no_password(monkeypatch):
    monkeypatch.setenv("SMP_DB_URL", f"postgresql://nobody:{SECRET}@127.0.0.1:1/none")
    with pytest.raises(StoreError, match="cannot reach PostgreSQL at") as err:
        open_store()
    assert SECRET not in str(err.value) and "***" in str(err.value)


def test_sql_errors_never_carry_the_values_they_bound(tmp_path):
    from sqlalchemy import exc

    store = open_store(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    with pytest.raises(exc.StatementError) as err, store.engine.begin() as c:
        c.execute(text("INSERT INTO nowhere (x) VALUES (:phone)"), {"phone": "+44 20 7946 0123"})
    store.close()
    assert "7946" not in str(err.value) and "parameters hidden" in str(err.value)


def _modes(path):
    return {p.name: stat.S_IMODE(os.stat(p).st_mode)
            for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))}


def _opened_at(path, mode):
    """A record with a WAL, left readable by others (as an old version or a copy left it)."""
    store = open_store(f"sqlite:///{path}")
    client(store)
    holder = store.engine.connect()  # keeps -wal and -shm in place
    for p in _modes(path):
        os.chmod(path.parent / p, mode)
    return store, holder


def test_a_record_readable_by_others_is_made_private_with_one_line(tmp_path, capfd):
    path = tmp_path / "r.sqlite3"
    store, holder = _opened_at(path, 0o644)
    capfd.readouterr()
    open_store(f"sqlite:///{path}").close()
    modes = _modes(path)
    holder.close()
    store.close()
    assert set(modes.values()) == {0o600}
    lines = capfd.readouterr().err.splitlines()
    assert lines[0] == (f"smp: {path} was readable by other users (mode 0644); now 0600; its "
                        "folder, chosen by you, is left as is")
    assert len(lines) == 3 and lines[1].endswith("-wal was readable by other users (mode 0644); "
                                                 "now 0600")


def test_the_default_folder_is_made_private_too(tmp_path, monkeypatch, capfd):
    folder = tmp_path / "smp"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    monkeypatch.setattr("sessions.store.default_path", lambda: folder / "smp.sqlite3")
    monkeypatch.delenv("SMP_DB_URL", raising=False)
    open_store().close()
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert capfd.readouterr().err.splitlines()[0] == (
        f"smp: folder {folder} was open to other users (mode 0755); now 0700")


def test_a_record_that_cannot_be_made_private_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "r.sqlite3"
    open_store(f"sqlite:///{path}").close()
    os.chmod(path, 0o640)

    def not_owner(*_):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("sessions.store.os.chmod", not_owner)
    with pytest.raises(StoreError) as err:
        open_store(f"sqlite:///{path}")
    assert str(err.value) == (f"{path} is open to other users (mode 0640) and cannot be made "
                              "private (Operation not permitted); ask its owner to chmod 600 it")


def test_a_private_record_opens_silently(tmp_path, capfd):
    path = tmp_path / "r.sqlite3"
    open_store(f"sqlite:///{path}").close()
    open_store(f"sqlite:///{path}").close()
    assert capfd.readouterr().err == ""
