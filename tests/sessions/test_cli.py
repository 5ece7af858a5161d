"""`smp history`, `smp export` and `smp db` as a person runs them: real processes (forked from
one that has imported the program: tests/smp_process.py; the password case starts the
interpreter afresh), one-line errors, non-zero exits, no tracebacks, nothing written half-way."""

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from protocols import Zone
from sessions.recorder import Machine
from sessions.store import open_store
from tests.sessions.factory import FakeClock, client, session
from tests.smp_process import run_smp

ROOT = Path(__file__).resolve().parents[2]


def pdf_text(data: bytes) -> str:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(data)
    try:
        return "".join(p.get_textpage().get_text_range() for p in doc)
    finally:
        doc.close()


def smp(*args, cwd=None, env=None):
    args = [str(a) for a in args]
    if "--db" in args and re.search(r"://[^/@:]*:[^/@]*@", db := args[args.index("--db") + 1]):
        # --db refuses a password (ps shows it): a server's test URL goes in SMP_DB_URL.
        i = args.index("--db")
        del args[i:i + 2]
        env = {**(env or {}), "SMP_DB_URL": db}
    out = run_smp(args, cwd=cwd, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                      "HOME": "/nonexistent", **(env or {})})
    assert "Traceback" not in out.stderr, out.stderr
    return out


def one_error(out) -> str:
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smp: error: "), out.stderr
    return lines[0]


def _clinic(url):
    store = open_store(url)
    clock = FakeClock()
    ann, bo = client(store, "Ann Lee"), client(store, "Bo Chen")
    client(store, "Ann Lewis")
    session(store, ann, clock, lot="PG-1")
    clock.advance(days=14)
    session(store, ann, clock, lot="PG-2", depth="1.80", coverage=70)
    session(store, bo, clock, zones=(Zone.SCAR,), lot="PG-2", machine=Machine.simulated())
    store.close()
    return url, {"ann": ann, "bo": bo}


@pytest.fixture
def clinic(sqlite_url):
    """Most command-line behaviour is backend-neutral: one SQLite file keeps these quick."""
    return _clinic(sqlite_url)


@pytest.fixture
def clinic_any(db_url):
    return _clinic(db_url)


def test_recall_from_the_command_line_finds_every_session(clinic_any):
    url, ids = clinic_any
    out = smp("history", "recall", "PG-2", "--db", url)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()[1:] if line.strip()]
    hits = {(r[0], r[3]) for r in rows if r and r[0].isdigit()}
    assert {c for c, _ in hits} == {str(ids["ann"]), str(ids["bo"])}
    assert "lot PG-2: 2 client(s), 2 session(s)" in out.stdout
    assert "SIMULATOR" in out.stdout


def test_history_of_a_client_and_the_client_list(clinic):
    url, ids = clinic
    out = smp("history", "client", "Ann", "Lee", "--db", url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"Ann Lee (id {ids['ann']}): 2 session(s)")
    assert "crown          coverage 70%   passes 2  profile crown-standard\n" \
           "                 1.80 mm / 110 Hz / 6.5 V for 1 min 30 s\n" in out.stdout
    assert "pigment   Carbon Co Jet 1 20:1 lot PG-2 exp 2028-06-30 (crown)" in out.stdout
    listing = smp("history", "--db", url)
    assert [line.split()[1] for line in listing.stdout.splitlines()[1:]] == ["Ann", "Ann", "Bo"]
    assert smp("history", "clients", "--db", url).stdout == listing.stdout
    some = smp("history", "--db", url, "clients", "ann")  # --db before or after the sub-command
    assert [line.split()[1:3] for line in some.stdout.splitlines()[1:]] == [
        ["Ann", "Lee"], ["Ann", "Lewis"]]


def _rows(out) -> list[list[str]]:
    return [line.split() for line in out.stdout.splitlines()[1:] if line[:1].isdigit()]


def test_touch_ups_due(clinic):
    url, _ = clinic
    out = smp("history", "due", "--within", "3650", "--db", url)
    assert out.returncode == 0, out.stderr
    assert [r[1] for r in _rows(out)] == ["Bo", "Ann"]
    assert out.stdout.splitlines()[-1] == "showing 1-2 of 2"


@pytest.fixture
def overdue(sqlite_url):
    """Five clients overdue for years, completed a day apart: Due 1 is the soonest."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from sessions.models import Client

    store = open_store(sqlite_url)
    at = datetime(2010, 1, 1, tzinfo=UTC)
    with store.engine.begin() as c:
        c.execute(insert(Client), [
            {"name": f"Due {i}", "phone": "", "email": "", "created_at": at,
             "last_completed_at": at + timedelta(days=i), "scar_work": False}
            for i in range(1, 6)])
    store.close()
    return sqlite_url


def test_touch_ups_due_a_page_at_a_time(overdue):
    pages = [smp("history", "due", "--limit", "2", "--page", str(n), "--db", overdue)
             for n in (1, 2, 3)]
    assert [p.returncode for p in pages] == [0, 0, 0], [p.stderr for p in pages]
    assert [[" ".join(r[1:3]) for r in _rows(p)] for p in pages] == [
        ["Due 1", "Due 2"], ["Due 3", "Due 4"], ["Due 5"]]
    assert [p.stdout.splitlines()[-1] for p in pages] == [
        "showing 1-2 of 5; next: --page 2", "showing 3-4 of 5; next: --page 3",
        "showing 5-5 of 5"]
    out = smp("history", "due", "--db", overdue)  # the default page holds them all
    assert len(_rows(out)) == 5 and out.stdout.splitlines()[-1] == "showing 1-5 of 5"


@pytest.mark.parametrize(("args", "expected"), [
    (("--limit", "0"), "smp: error: --limit '0': a whole number, 1 to 1000"),
    (("--limit", "1001"), "smp: error: --limit '1001': a whole number, 1 to 1000"),
    (("--limit", "-3"), "smp: error: --limit '-3': a whole number, 1 to 1000"),
    (("--page", "0"), "smp: error: --page '0': a whole number, 1 or more"),
    (("--page", "two"), "smp: error: --page 'two': a whole number, 1 or more"),
    (("--limit", "2", "--page", "4"),
     "smp: error: --page 4: past the end; 5 touch-ups due make pages 1 to 3 of 2"),
])
def test_bad_page_values_are_one_line_exit_2(overdue, args, expected):
    for action in (("due",), ("recall", "PG-1")):
        out = smp("history", *action, *args, "--db", overdue)
        if "past the end" in expected and action[0] == "recall":
            continue  # the record has no lot: nothing to be past the end of
        assert out.returncode == 2 and one_error(out) == expected, (action, out.stderr)
        assert out.stdout == ""


def test_recall_a_page_at_a_time(clinic):
    url, ids = clinic
    out = smp("history", "recall", "PG-2", "--limit", "2", "--page", "2", "--db", url)
    assert out.returncode == 0, out.stderr
    assert [r[0] for r in _rows(out)] == [str(ids["bo"])]
    assert out.stdout.splitlines()[-2:] == ["lot PG-2: 2 client(s), 2 session(s)",
                                            "showing 3-3 of 3"]
    first = smp("history", "recall", "PG-2", "--limit", "2", "--db", url)
    assert [r[0] for r in _rows(first)] == [str(ids["ann"])] * 2
    assert first.stdout.splitlines()[-1] == "showing 1-2 of 3; next: --page 2"
    assert one_error(smp("history", "recall", "PG-2", "--limit", "2", "--page", "3",
                         "--db", url)) == (
        "smp: error: --page 3: past the end; 3 uses make pages 1 to 2 of 2")


@pytest.mark.parametrize(("args", "expected"), [
    (("history", "client", "Ann"), r"client 'Ann' is ambiguous: Ann Lee \(id \d+\), Ann Lewis "
     r"\(id \d+\); give the id instead"),
    (("history", "client", "Bo", "Chan"), "no client named 'Bo Chan'; did you mean Bo Chen?"),
    (("export", "Zed", "--format", "json"), "no client named 'Zed'"),
])
def test_client_errors_are_one_line(clinic, args, expected):
    url, _ = clinic
    import re
    assert re.search(expected, one_error(smp(*args, "--db", url)))


@pytest.mark.parametrize(("args", "expected"), [
    (("history", "recall"), "smp history recall: error: the following arguments are required: LOT"),
    (("history", "Ann"), "smp history: error: argument ACTION: invalid choice: 'Ann'"),
    (("history", "clients", "--within", "3"), "smp: error: unrecognized arguments: --within"),
])
def test_history_usage_errors_exit_2(clinic, args, expected):
    url, _ = clinic
    out = smp(*args, "--db", url)
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith(expected)


ZOE = "Zoë Łukasz 王"


def test_history_finds_zoe_lukasz_wang_typed_nfc_or_nfd_in_any_case(sqlite_url):
    import unicodedata

    store = open_store(sqlite_url)
    zoe = client(store, unicodedata.normalize("NFC", ZOE))
    client(store, "Bo Chen")
    store.close()
    # Every form and case: tests/sessions/test_history.py; here, the command line's own path.
    for typed in (ZOE, unicodedata.normalize("NFD", ZOE), "ŁUKASZ", "zoe lukasz"):
        out = smp("history", "client", typed, "--db", sqlite_url)
        assert out.returncode == 0, (typed, out.stderr)
        assert out.stdout.startswith(f"{ZOE} (id {zoe}): "), typed
    listed = smp("history", "clients", "ŁUKASZ", "--db", sqlite_url)
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == [str(zoe)]
    # A near miss is suggested, and the suggestion is never what was typed.
    err = one_error(smp("history", "client", "Zoe Lukaz", "--db", sqlite_url))
    assert err == f"smp: error: no client named 'Zoe Lukaz'; did you mean {ZOE}?"


def test_clients_named_recall_or_due_can_be_looked_up(sqlite_url):
    store = open_store(sqlite_url)
    ids = {name: client(store, name) for name in ("recall", "due")}
    store.close()
    for name, cid in ids.items():
        out = smp("history", "client", name, "--db", sqlite_url)
        assert out.returncode == 0 and out.stdout.startswith(f"{name} (id {cid}): "), out.stderr


def test_export_json_is_complete_and_csv_has_a_row_per_zone(clinic, tmp_path):
    url, ids = clinic
    out = smp("export", ids["ann"], "--format", "json", "-o", tmp_path / "a.json", "--db", url)
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "a.json").read_text())
    assert (doc["format"], doc["version"], doc["client"]["name"]) == (
        "smp.client-record", 1, "Ann Lee")
    assert doc["health"]["allergies"] == "nickel"
    assert len(doc["sessions"]) == 2 and doc["sessions"][0]["events"][0]["kind"] == \
        "session-started"
    crown = doc["sessions"][1]["zones"][1]
    assert crown["confirmed"]["wire"]["depth_um"] == 1800 and crown["per_run"] is True
    assert [(u["settings"]["depth_mm"], u["needle_ms"]) for u in crown["on_skin"]["used"]] == [
        ("1.80", 90_000)]
    assert crown["runs"][0]["settings"]["wire"]["depth_um"] == 1800
    assert smp("export", "Bo Chen", "--format", "csv", "-o", tmp_path / "b.csv",
               "--db", url).returncode == 0
    rows = (tmp_path / "b.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[0].startswith("client_id,client,session_id")
    assert ",SIMULATOR (firmware sim),yes,completed,scar," in rows[1]


def test_pseudonymised_export_hides_identity_and_health(clinic, tmp_path):
    url, ids = clinic
    for name in ("p1.json", "p2.json"):
        out = smp("export", ids["ann"], "--format", "json", "--pseudonymise",
                  "-o", tmp_path / name, "--db", url)
        assert out.returncode == 0, out.stderr
    text1, text2 = ((tmp_path / n).read_text() for n in ("p1.json", "p2.json"))
    for secret in ("Ann", "Lee", "nickel", "example.org", "1980-05-17", "Tom Reyes", "+44"):
        assert secret not in text1
    doc = json.loads(text1)
    assert doc["pseudonymised"] and doc["health"] is None
    assert doc["client"] == {"pseudonym": doc["client"]["pseudonym"]}
    assert doc["client"]["pseudonym"].startswith("Client-")
    assert doc["client"] == json.loads(text2)["client"]  # stable


def test_existing_output_is_refused_unless_forced(clinic, tmp_path):
    url, ids = clinic
    target = tmp_path / "out.json"
    target.write_text("precious")
    err = one_error(smp("export", ids["ann"], "--format", "json", "-o", target, "--db", url))
    assert err == f"smp: error: {target} already exists; choose another file or add --force"
    assert target.read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["out.json"] or "record.sqlite3" in os.listdir(
        tmp_path)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]
    out = smp("export", ids["ann"], "--format", "json", "-o", target, "--force", "--db", url)
    assert out.returncode == 0 and json.loads(target.read_text())["client"]["id"] == ids["ann"]


def test_db_check_and_upgrade(db_url):
    out = smp("db", "check", "--db", db_url)
    if db_url.startswith("sqlite"):  # the check creates nothing: there is no record yet
        assert one_error(out).endswith("(nothing was created); smp db upgrade creates one")
        assert not os.path.exists(db_url.removeprefix("sqlite:///"))
    else:  # an empty PostgreSQL database
        assert out.returncode == 1 and "run 'smp db upgrade'" in out.stdout
    out = smp("db", "upgrade", "--db", db_url)
    assert out.returncode == 0, out.stderr
    assert "schema empty -> " in out.stdout
    out = smp("db", "check", "--db", db_url)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "integrity  ok" in out.stdout and "(current)" in out.stdout


def test_db_check_lists_sessions_left_open(sqlite_url):
    store = open_store(sqlite_url)
    session(store, client(store), FakeClock(), end=False)
    store.close()
    out = smp("db", "check", "--db", sqlite_url)
    assert out.returncode == 0 and "left open by a crash" in out.stdout


def test_newer_database_is_refused_by_every_command(sqlite_url):
    store = open_store(sqlite_url)
    with store.engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    store.close()
    for args in (("history",), ("db", "upgrade"), ("db", "check")):
        err = one_error(smp(*args, "--db", sqlite_url))
        assert "has schema ffff, newer than this program" in err


@pytest.mark.parametrize(("url", "expected"), [
    ("nonsense", "malformed database URL 'nonsense'"),
    ("postgresql://nobody@127.0.0.1:1/x", "cannot reach PostgreSQL at"),
    ("sqlite:////nonexistent/dir/x.sqlite3", "directory /nonexistent/dir does not exist"),
    ("postgresql://ann@db:port/x", "the port must be a number"),
])
def test_bad_database_urls(url, expected):
    assert expected in one_error(smp("history", "--db", url))


def test_a_password_is_never_printed(tmp_path):
    secret = "s3cr3t-pw"
    out = subprocess.run(
        [sys.executable, "-m", "console", "history", "--db",
         f"postgresql://ann:{secret}@127.0.0.1:1/x"], capture_output=True, text=True,
        timeout=60, cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert "holds a password" in one_error(out) and secret not in out.stderr + out.stdout
    for args in (("history",), ("db", "check"), ("export", "1", "--format", "json")):
        out = smp(*args, env={"SMP_DB_URL": f"postgresql://ann:{secret}@127.0.0.1:1/x"})
        assert "cannot reach PostgreSQL at postgresql+psycopg://ann:***@127.0.0.1:1/x" in \
            one_error(out)
        assert secret not in out.stderr + out.stdout


def test_env_var_selects_the_database(clinic):
    url, _ = clinic
    out = smp("history", env={"SMP_DB_URL": url})
    assert out.returncode == 0 and "Bo Chen" in out.stdout


def test_corrupt_sqlite_file(tmp_path):
    path = tmp_path / "bad.sqlite3"
    path.write_bytes(b"\x00garbage" * 1000)
    os.chmod(path, 0o600)  # a record's mode: this test is about the content
    assert "is not an SQLite database" in one_error(smp("db", "check", "--db",
                                                        f"sqlite:///{path}"))
    assert path.read_bytes() == b"\x00garbage" * 1000
    good = tmp_path / "good.sqlite3"
    open_store(f"sqlite:///{good}").close()
    damaged = bytearray(good.read_bytes())
    damaged[100:4096] = b"\xff" * (4096 - 100)  # the header survives, the schema page does not
    good.write_bytes(bytes(damaged))
    assert "is corrupt" in one_error(smp("db", "check", "--db", f"sqlite:///{good}"))


def test_locked_sqlite_file(tmp_path):
    path = tmp_path / "locked.sqlite3"
    open_store(f"sqlite:///{path}").close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("CREATE TABLE hold (x)")
    try:
        err = one_error(smp("history", "--db", f"sqlite:///{path}"))
    finally:
        holder.close()
    assert "is locked by another program" in err


HOSTILE = "\x1b]0;owned\x07\x1b[2J\x07\u202e\x9b"


def _hostile_record(url) -> dict:
    """Text with terminal escapes stored by another version or raw SQL (this one refuses it
    on input): a client's name, technician, machine serial, lot, zone notes and a note."""
    store = open_store(url)
    cid = client(store, "Ann Lee")
    session(store, cid, FakeClock(), lot="PG-1", end=False)
    store.close()
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE clients SET name = ?", (f"Ann {HOSTILE}Lee",))
        db.execute("UPDATE sessions SET technician = ?, machine_serial = ?",
                   (f"Tom{HOSTILE}", f"R1{HOSTILE}"))
        db.execute("UPDATE pigment_uses SET lot = ?", (f"PG{HOSTILE}",))
        db.execute("UPDATE zone_works SET notes = ?", (f"ok{HOSTILE}",))
        db.execute("INSERT INTO events (session_id, seq, at, kind, payload) VALUES "
                   "(1, 99, '2026-03-02 10:00:00', 'note', ?)",
                   (json.dumps({"text": f"note{HOSTILE}"}, ensure_ascii=False),))
    return {"id": cid, "lot": f"PG{HOSTILE}"}


def test_stored_escapes_never_reach_the_terminal(sqlite_url, tmp_path):
    ids = _hostile_record(sqlite_url)
    runs = [smp("history", "--db", sqlite_url),
            smp("history", "client", ids["id"], "--db", sqlite_url),
            smp("history", "recall", ids["lot"], "--db", sqlite_url),
            smp("history", "clients", "Ann", "--db", sqlite_url),
            smp("db", "check", "--db", sqlite_url)]
    for fmt in ("json", "csv", "pdf"):
        runs.append(smp("export", ids["id"], "--format", fmt, "-o", tmp_path / f"x.{fmt}",
                        "--db", sqlite_url))
        data = (tmp_path / f"x.{fmt}").read_bytes()
        if fmt == "pdf":  # its text as a reader extracts it (the file itself is binary)
            data = pdf_text(data).encode()
            assert "Ann \\x1b]0;owned\\x07" in data.decode()
        assert not {"\x1b", "\x07", "\u202e", "\x9b"} & set(data.decode()), fmt
    doc = json.loads((tmp_path / "x.json").read_text())
    assert doc["client"]["name"] == f"Ann {HOSTILE}Lee"  # escaped in the file, exact parsed
    for out in runs:
        assert out.returncode == 0, out.stderr
        for stream in (out.stdout, out.stderr):
            assert not {"\x1b", "\x07", "\u202e", "\x9b"} & set(stream), stream
    assert "Ann \\x1b]0;owned\\x07\\x1b[2J\\x07\\u202e\\x9bLee" in runs[0].stdout
    assert "by Tom\\x1b]0;owned" in runs[1].stdout and "lot PG\\x1b]0;owned" in runs[1].stdout
    assert "lot PG\\x1b]0;owned\\x07\\x1b[2J\\x07\\u202e\\x9b: 1 client(s)" in runs[2].stdout


def test_export_file_names_never_hold_the_name_and_include_needs_pseudonymise(clinic, tmp_path):
    url, ids = clinic
    data = {"XDG_DATA_HOME": str(tmp_path / "data")}
    folder = tmp_path / "data" / "smp" / "exports"
    out = smp("export", "Ann", "Lee", "--format", "csv", "--db", url, cwd=tmp_path, env=data)
    assert out.returncode == 0, out.stderr
    (written,) = [p.name for p in folder.iterdir() if p.suffix == ".csv"]
    assert re.fullmatch(rf"client-{ids['ann']}-\d{{8}}\.csv", written)
    out = smp("export", "Ann", "Lee", "--format", "json", "--pseudonymise", "--include",
              "notes,reasons", "--db", url, cwd=tmp_path, env=data)
    assert out.returncode == 0, out.stderr
    (doc,) = [json.loads(p.read_text()) for p in folder.iterdir() if p.suffix == ".json"]
    alias = doc["client"]["pseudonym"]
    assert (folder / f"{alias}.json").exists() and doc["included"] == ["notes", "reasons"]
    assert f"pseudonymised as {alias}; included: notes, reasons" in out.stdout
    assert not any("ann" in p.name.lower() for p in folder.iterdir())
    out = smp("export", "Ann", "Lee", "--format", "json", "--include", "notes", "--db", url)
    assert out.returncode == 2 and "--include goes with --pseudonymise" in out.stderr
    out = smp("export", "Ann", "Lee", "--format", "json", "--pseudonymise", "--include",
              "phone", "--db", url)
    assert out.returncode == 2 and "'phone': allowed notes, reasons" in out.stderr


def test_export_takes_its_format_from_the_file_name_and_refuses_a_contradiction(clinic,
                                                                                 tmp_path):
    url, ids = clinic
    out = smp("export", ids["ann"], "-o", tmp_path / "x.pdf", "--db", url)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "x.pdf").read_bytes().startswith(b"%PDF")
    clash = one_error(smp("export", ids["ann"], "--format", "csv", "-o", tmp_path / "y.pdf",
                          "--db", url))
    assert "--format csv but y.pdf ends in .pdf; make them agree" in clash
    neither = one_error(smp("export", ids["ann"], "-o", tmp_path / "z.txt", "--db", url))
    assert "give --format (json, csv, pdf) or an output FILE ending in .json" in neither
    assert not (tmp_path / "y.pdf").exists() and not (tmp_path / "z.txt").exists()


def test_exports_default_to_a_private_folder_not_the_current_directory(clinic, tmp_path):
    """An export holds health data: without -o it goes to the private exports folder (0700,
    the file 0600), never into whatever directory the command was started in."""
    url, _ = clinic
    here = tmp_path / "here"
    here.mkdir()
    out = smp("export", "Ann", "Lee", "--format", "pdf", "--db", url, cwd=here,
              env={"XDG_DATA_HOME": str(tmp_path / "data")})
    assert out.returncode == 0, out.stderr
    assert list(here.iterdir()) == []
    folder = tmp_path / "data" / "smp" / "exports"
    (written,) = folder.iterdir()
    assert out.stdout.startswith(f"wrote {written} ("), out.stdout
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
