"""A crash prints one line and writes the traceback, without local variables, to a private
file: never the client's phone, e-mail, date of birth, allergies or medications.

The record has a zone value this version does not know, as another version writes it on a
shared database: the command line that reads it fails in one line; the console's history
browser, which reads it in a worker, says so in one line and stays up. A bug on the console's
UI thread crashes it, in one line."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from sessions.clients import ConsentForm, Health, NewClient, add_client
from sessions.store import open_store
from tests.sessions.factory import FakeClock, session

ROOT = Path(__file__).resolve().parents[2]
PHONE, EMAIL, DOB = "+44 20 7946 0123", "jane.doe@example.org", "1980-05-17"
ALLERGIES, MEDICATIONS = "latex and nickel", "methotrexate weekly"
SECRETS = (PHONE, EMAIL, DOB, "17 May 1980", ALLERGIES, MEDICATIONS, "7946")


@pytest.fixture
def broken_record(tmp_path):
    url = f"sqlite:///{tmp_path / 'record.sqlite3'}"
    store = open_store(url)
    from datetime import date

    cid = add_client(store, NewClient(
        name="Jane Doe", phone=PHONE, email=EMAIL, date_of_birth=date.fromisoformat(DOB),
        health=Health(allergies=ALLERGIES, medications=MEDICATIONS),
        consent=ConsentForm(procedure=True, photos=False, version="v1",
                            signed_on=date(2026, 1, 5))))
    session(store, cid, FakeClock())
    with store.engine.begin() as c:  # written by a newer version: a zone this one lacks
        c.execute(text("UPDATE zone_works SET zone = 'occiput-v2' WHERE zone = 'crown'"))
    store.close()
    return url, cid


def run(args, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path),
           "XDG_DATA_HOME": str(tmp_path / "data"), "TERM": "xterm-256color"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env=env)


def crash_file(out, tmp_path) -> str:
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    prefix = "smp: internal error; details in "
    assert lines[0].startswith(prefix), lines[0]
    path = Path(lines[0].removeprefix(prefix))
    assert path.parent == tmp_path / "data" / "smp"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    return path.read_text()


def test_the_console_crash_is_one_line_and_a_private_file(broken_record, tmp_path):
    url, _ = broken_record
    out = run([str(ROOT / "tests" / "console" / "crash_child.py"), url, "bug"], tmp_path)
    assert out.returncode == 1
    details = crash_file(out, tmp_path)
    assert "ValueError: 'occiput-v2' is not a valid Zone" in details and "Traceback" in details
    for secret in SECRETS:
        assert secret not in out.stdout + out.stderr + details, secret


def test_a_record_the_history_cannot_read_is_one_line_on_screen_and_a_private_file(
        broken_record, tmp_path):
    url, _ = broken_record
    out = run([str(ROOT / "tests" / "console" / "crash_child.py"), url, "record"], tmp_path)
    assert out.returncode == 0 and not out.stderr  # the console stayed up, and quit
    shown = out.stdout.strip().splitlines()
    assert len(shown) == 1, out.stdout
    assert shown[0].startswith("ERROR: unexpected internal error (ValueError); details in ")
    path = Path(shown[0].rsplit(" ", 1)[1])
    assert path.parent == tmp_path / "data" / "smp"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    details = path.read_text()
    assert "ValueError: 'occiput-v2' is not a valid Zone" in details
    for secret in SECRETS:
        assert secret not in out.stdout + details, secret


def test_the_command_line_crash_is_one_line_and_a_private_file(broken_record, tmp_path):
    url, cid = broken_record
    out = run(["-m", "console", "export", str(cid), "--format", "pdf", "-o",
               str(tmp_path / "x.pdf"), "--db", url], tmp_path)
    assert out.returncode == 70 and "Traceback" not in out.stderr
    details = crash_file(out, tmp_path)
    assert "ValueError: 'occiput-v2' is not a valid Zone" in details
    for secret in SECRETS:
        assert secret not in out.stdout + out.stderr + details, secret
    assert not (tmp_path / "x.pdf").exists()
