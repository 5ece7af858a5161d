"""What is at the record's path: only nothing is created; a read-only record is browsed
read-only; a stray file is refused in one line; `smp db check` changes nothing.

The commands run in this process (console.cli.main) so that a read-only folder can be had
when the tests run as root, whom permission bits do not stop: `os.access` is then made to
read the bits, as it does for anyone else. A read-only filesystem is `os.statvfs` saying so.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from console.cli import main
from sessions.errors import StoreError
from sessions.history import find_clients
from sessions.store import open_store
from tests.sessions.factory import FakeClock, client, session


def smp(capsys, *args) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smp: error: "), err
    return lines[0].removeprefix("smp: error: ")


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of the folder with its bytes and mtime: what 'changes nothing' compares."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.fixture
def record(tmp_path) -> Path:
    folder = tmp_path / "records"
    folder.mkdir()
    path = folder / "r.sqlite3"
    store = open_store(f"sqlite:///{path}")
    ann = client(store, "Ann Lee")
    session(store, ann, FakeClock(), lot="PG-1")
    store.close()
    assert sorted(os.listdir(folder)) == ["r.sqlite3"]  # a clean close leaves no -wal
    return path


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def _honour_permission_bits(monkeypatch) -> None:
    if os.geteuid() != 0:
        return  # the bits already stop this user
    real = os.access

    def access(path, mode, *args, **kw):
        if mode & os.W_OK and not os.stat(path).st_mode & stat.S_IWUSR:
            return False
        return real(path, mode, *args, **kw)

    monkeypatch.setattr(os, "access", access)


def _read_only_filesystem(monkeypatch, folder: Path) -> None:
    real = os.statvfs

    class ReadOnly:
        def __init__(self, result):
            self._result = result

        def __getattr__(self, name):
            value = getattr(self._result, name)
            return value | os.ST_RDONLY if name == "f_flag" else value

    def statvfs(path):
        result = real(path)
        return ReadOnly(result) if Path(path).resolve().is_relative_to(folder) else result

    monkeypatch.setattr(os, "statvfs", statvfs)


@pytest.fixture(params=["file and folder not writable", "read-only filesystem"])
def read_only_record(request, record, monkeypatch):
    folder = record.parent
    if request.param == "read-only filesystem":
        _read_only_filesystem(monkeypatch, folder)
    else:
        _honour_permission_bits(monkeypatch)
        record.chmod(0o444)
        folder.chmod(0o555)
    yield record
    folder.chmod(0o755)
    record.chmod(0o600)


def test_history_on_a_read_only_record_browses_it_read_only(read_only_record, capsys, tmp_path):
    before = snapshot(read_only_record.parent)
    code, out, err = smp(capsys, "history", "--db", url(read_only_record))
    assert code == 0, err
    assert "Ann Lee" in out
    code, out, err = smp(capsys, "history", "client", "ann lee", "--db", url(read_only_record))
    assert code == 0 and out.startswith("Ann Lee (id "), err
    code, out, err = smp(capsys, "history", "recall", "PG-1", "--db", url(read_only_record))
    assert code == 0 and "lot PG-1: 1 client(s), 1 session(s)" in out, err
    target = tmp_path / "ann.json"
    code, out, err = smp(capsys, "export", "Ann Lee", "--format", "json", "-o", target,
                         "--db", url(read_only_record))
    assert code == 0 and target.exists(), err
    assert snapshot(read_only_record.parent) == before  # not a byte, not an -shm


def test_writing_to_a_read_only_record_is_one_line_saying_so(read_only_record, capsys,
                                                             tmp_path):
    before = snapshot(read_only_record.parent)
    store = open_store(url(read_only_record))
    try:
        assert store.read_only in ("the file is not writable", "it is on a read-only filesystem")
        with pytest.raises(StoreError) as err:
            client(store, "Bo Chen")
        assert str(err.value) == (
            f"database {read_only_record} is read-only ({store.read_only}): this command needs "
            "to write to it, so nothing was done; smp history and smp export can read it")
    finally:
        store.close()
    # A pseudonymised export needs a key the record does not hold yet: it must write one.
    code, _, err = smp(capsys, "export", "Ann Lee", "--format", "json", "--pseudonymise",
                       "-o", tmp_path / "p.json", "--db", url(read_only_record))
    assert code == 1 and " is read-only (" in one_line(err)
    code, _, err = smp(capsys, "console", "--sim", "--db", url(read_only_record))
    assert code == 1
    assert one_line(err).startswith(f"database {read_only_record} is read-only (")
    assert "the console, which records every session, needs to write to it" in err
    assert snapshot(read_only_record.parent) == before


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "is an empty file (0 bytes), not an smp record; smp creates a record only where no "
     "file exists: remove it or choose another path"),
    (b"name,phone\nAnn,0\n", "is not an SQLite database, so not an smp record; restore the "
     "record from a backup or choose another path"),
])
@pytest.mark.parametrize("command", [("history",), ("db", "check"), ("db", "upgrade"),
                                     ("console", "--sim")])
def test_a_zero_length_or_non_sqlite_file_is_refused_never_initialised(
        tmp_path, capsys, content, expected, command):
    path = tmp_path / "r.sqlite3"
    path.write_bytes(content)
    code, _, err = smp(capsys, *command, "--db", url(path))
    assert code == 1 and one_line(err) == f"database {path} {expected}"
    assert sorted(os.listdir(tmp_path)) == ["r.sqlite3"] and path.read_bytes() == content


@pytest.mark.parametrize("tables", [["recipes"], []])
def test_an_sqlite_file_that_is_not_an_smp_record_is_refused(tmp_path, capsys, tables):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 7")  # an SQLite file even with no tables
        for name in tables:
            db.execute(f"CREATE TABLE {name} (x)")
    before = snapshot(tmp_path)
    code, _, err = smp(capsys, "history", "--db", url(path))
    held = "it holds recipes" if tables else "it has no tables"
    assert code == 1 and one_line(err) == (
        f"database {path} is not an smp record ({held}); choose another (a new record is "
        "created only where no file exists)")
    assert snapshot(tmp_path) == before


def test_db_check_changes_nothing(record, capsys):
    before = snapshot(record.parent)
    code, out, err = smp(capsys, "db", "check", "--db", url(record))
    assert code == 0 and "integrity  ok" in out, err
    assert snapshot(record.parent) == before


def test_db_check_of_an_older_schema_upgrades_nothing(tmp_path, capsys):
    from alembic import command
    from sqlalchemy import create_engine

    from sessions.store import _alembic_config

    path = tmp_path / "old.sqlite3"
    engine = create_engine(url(path))
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0001")
    engine.dispose()
    before = snapshot(tmp_path)
    code, out, _ = smp(capsys, "db", "check", "--db", url(path))
    assert code == 1 and "schema     0001, this program needs" in out
    assert snapshot(tmp_path) == before  # not upgraded, not switched to WAL, no -shm


def test_db_check_of_a_missing_record_creates_nothing(tmp_path, capsys):
    code, _, err = smp(capsys, "db", "check", "--db", url(tmp_path / "none.sqlite3"))
    assert code == 1 and one_line(err) == (
        f"no record at {tmp_path / 'none.sqlite3'} (nothing was created); smp db upgrade "
        "creates one")
    assert os.listdir(tmp_path) == []


def test_a_read_only_open_reads_what_a_running_console_has_only_in_its_wal(record):
    writer = open_store(url(record))
    try:
        bo = client(writer, "Bo Chen")  # committed into the -wal, not yet in the main file
        assert Path(f"{record}-wal").exists()
        reader = open_store(url(record), read_only=True)
        try:
            assert [c.id for c in find_clients(reader, "bo chen")] == [bo]
            with pytest.raises(StoreError, match="is read-only"):
                client(reader, "Cy Dee")
        finally:
            reader.close()
    finally:
        writer.close()
