"""The journal and the recorder's sink: nothing the session produced is lost when the store
cannot write (locked, unreachable) or the program is killed, and nothing is written twice."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import select

from protocols import Stage, Zone
from sessions import facts
from sessions.journal import Journal, JournalError, read
from sessions.models import Event, SessionRow
from sessions.recorder import Machine, Recorder, request
from sessions.sink import RecorderSink
from tests.sessions.factory import CLEAR, REAL, FakeClock, client


def wait_until(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


# --- the journal ---------------------------------------------------------------------------------

def test_the_journal_keeps_whole_entries_and_cuts_a_torn_tail(tmp_path):
    j = Journal.new(tmp_path)
    for i in range(3):
        j.append({"i": i})
    j.close()
    with open(j.path, "ab") as f:
        f.write(b'{"n":4,"fact":{"i":3}}\t0000')  # a crash in the middle of a line
    entries, _ = read(j.path)
    assert [e.fact["i"] for e in entries] == [0, 1, 2]
    again = Journal(j.path)  # reopened: the torn line is cut, the next entry is number 4
    assert again.append({"i": "next"}).n == 4
    assert [e.fact["i"] for e in again.entries()] == [0, 1, 2, "next"]
    assert oct(os.stat(j.path).st_mode & 0o777) == "0o600"


def test_an_entry_whose_crc_fails_ends_the_journal(tmp_path):
    j = Journal.new(tmp_path)
    for i in range(3):
        j.append({"i": i})
    j.close()
    lines = j.path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"i":1', b'"i":7')  # a flipped byte on disk
    j.path.write_bytes(b"".join(lines))
    assert [e.fact["i"] for e in read(j.path)[0]] == [0]


def test_a_full_disk_refuses_the_entry_and_leaves_no_partial_line(tmp_path, monkeypatch):
    j = Journal.new(tmp_path)
    j.append({"i": 0})
    real_write = os.write

    def half_then_full(fd, data):
        if fd == j._fd and len(data) > 4:
            real_write(fd, bytes(data[:4]))
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(JournalError, match="No space left on device"):
        j.append({"i": 1})
    monkeypatch.setattr(os, "write", real_write)
    assert j.append({"i": 2}).n == 2
    assert [e.fact["i"] for e in j.entries()] == [0, 2]


# --- the sink ------------------------------------------------------------------------------------

class Session:
    """A recorder writing through a sink, as the console does."""

    def __init__(self, store, journal_dir, cid, clock=None, **sink_kw):
        self.statuses = []
        self.sink = RecorderSink(store, journal_dir, owner="test chair",
                                 on_status=self.statuses.append, **sink_kw)
        self.sink.start()
        clock = clock or FakeClock()
        done = threading.Event()
        box = []
        self.sink.open_session(request(
            client_id=cid, technician="Tom", stage=Stage.S1, machine=REAL,
            planned_zones=[Zone.CROWN], answers=CLEAR, overrides=None, at=clock()),
            lambda r: (box.append(r), done.set()))
        assert done.wait(10)
        assert isinstance(box[0], facts.Opened), box[0]
        self.id = box[0].session_id
        self.rec = Recorder(self.id, write=self.submit, next_seq=2, clock=clock)

    def submit(self, fact):
        self.sink.submit(fact)
        return None


def notes(store, session_id):
    with store.reading() as s:
        rows = s.execute(select(Event.seq, Event.payload).where(
            Event.session_id == session_id, Event.kind == "note").order_by(Event.seq)).all()
    return [json.loads(p)["text"] for _, p in rows]


def test_facts_reach_the_store_through_the_journal(store, tmp_path):
    s = Session(store, tmp_path / "journal", client(store))
    for i in range(5):
        s.rec.note(f"n{i}")
    assert wait_until(lambda: notes(store, s.id) == [f"n{i}" for i in range(5)])
    status = s.sink.close()
    assert status.writing and status.pending == 0
    assert not list((tmp_path / "journal").glob("*.jsonl"))  # all written: journal removed
    with store.reading() as q:
        row = q.get(SessionRow, s.id)
    assert row.owner == "test chair" and row.lease_until is not None


def test_a_sink_with_no_session_open_sleeps_until_told(store, tmp_path):
    """With no lease to renew, the old sink woke every millisecond (about 2% of a core in a
    console on its client screen); it now waits on its queue, and still answers at once."""
    sink = RecorderSink(store, tmp_path / "journal", owner="test chair", on_status=lambda s: None)
    gets = []
    real_get = sink._inbox.get

    def counted(*args, **kwargs):
        gets.append(time.monotonic())
        return real_get(*args, **kwargs)

    sink._inbox.get = counted
    sink.start()
    try:
        time.sleep(0.5)
        assert len(gets) < 10, f"{len(gets)} wake-ups in 0.5 s with nothing to do"
        assert sink.flush()  # still answers
    finally:
        sink.close()


def _lock(store):
    """Another program holds the record's write lock until the returned function is called."""
    if store.is_sqlite:
        other = sqlite3.connect(store.url.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        return lambda: (other.execute("ROLLBACK"), other.close())
    import psycopg

    url = store.url.set(drivername="postgresql").render_as_string(hide_password=False)
    other = psycopg.connect(url)
    other.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    return other.close


def test_a_locked_record_keeps_the_facts_in_the_journal_and_writes_them_once_after(store,
                                                                                   tmp_path):
    s = Session(store, tmp_path / "journal", client(store))
    s.rec.note("before")
    assert wait_until(lambda: notes(store, s.id) == ["before"])
    release = _lock(store)
    try:
        started = time.monotonic()
        s.rec.note("during 1")
        assert wait_until(lambda: s.statuses and not s.statuses[-1].writing, timeout=5)
        assert time.monotonic() - started < 2.0  # known at once, not after a busy timeout
        assert "locked" in s.statuses[-1].reason
        s.rec.note("during 2")
        assert wait_until(lambda: s.sink.status.pending == 2)
        assert s.sink.status.journaled
    finally:
        release()
    assert wait_until(lambda: s.sink.status.writing and s.sink.status.pending == 0)
    assert notes(store, s.id) == ["before", "during 1", "during 2"]
    s.sink.close()


def test_a_journal_a_killed_console_left_is_replayed_exactly_once(store, tmp_path, db_url):
    cid = client(store)
    journal = tmp_path / "journal"
    child = subprocess.Popen([sys.executable, "-m", "tests.sessions.sink_child", db_url,
                              str(journal), str(cid)], stdout=subprocess.PIPE, text=True)
    try:
        session_id = int(child.stdout.readline().split()[1])
        journaled = []
        while len(journaled) < 40:
            journaled.append(child.stdout.readline().strip())
    finally:
        child.kill()
        child.wait(timeout=10)
        child.stdout.close()
    # Everything the child had reported journaled is durable; part of it may be in the store.
    first = RecorderSink(store, journal)
    first.start()
    assert first.close().pending == 0
    kept = notes(store, session_id)
    assert kept[:40] == journaled and len(kept) == len(set(kept))
    again = RecorderSink(store, journal)  # nothing left to replay, nothing written twice
    again.start()
    again.close()
    assert notes(store, session_id) == kept


def test_a_journal_of_a_deleted_record_is_never_replayed_into_a_new_one_at_its_path(tmp_path,
                                                                                   caplog):
    """A console killed mid-session leaves a journal; the record file is then deleted and a
    new record made at the same path. The old journal went into the new record (its session 1
    is another client's, or missing: a foreign-key error, and the record never wrote again).
    Now it is set aside, named in one line, and the new record writes."""
    from sessions.store import open_store

    path = tmp_path / "record.sqlite3"
    url, journal = f"sqlite:///{path}", tmp_path / "journal"
    old = open_store(url)
    cid = client(old, "Ann Lee")
    first = RecorderSink(old, journal)
    first.start()
    first.close()  # the folder now knows which record it serves
    old.close()
    child = subprocess.Popen([sys.executable, "-m", "tests.sessions.sink_child", url,
                              str(journal), str(cid)], stdout=subprocess.PIPE, text=True)
    try:
        child.stdout.readline()
        for _ in range(5):
            child.stdout.readline()
    finally:
        child.kill()
        child.wait(timeout=10)
        child.stdout.close()
    (left,) = journal.glob("*.jsonl")
    for stale in tmp_path.glob("record.sqlite3*"):
        stale.unlink()
    new = open_store(url)
    try:
        s = Session(new, journal, client(new, "Bo Chen"))
        s.rec.note("the new record's own")
        assert wait_until(lambda: notes(new, s.id) == ["the new record's own"])
        assert s.sink.status.writing and s.sink.status.replayed == 0
        s.sink.close()
        with new.reading() as q:
            assert [r.id for r in q.scalars(select(SessionRow))] == [s.id]
    finally:
        new.close()
    (aside,) = journal.glob("other-record-*")
    assert [p.name for p in aside.iterdir()] == [left.name]
    said = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert said == [f"1 journal(s) written for another record at this place were set aside "
                    f"in {aside}, not replayed into this one"], said


def test_machine_json_is_what_the_record_keeps(store):
    m = Machine.simulated("2.0.0").as_json()
    assert m == {"model": "SIMULATOR", "serial": "SIMULATOR", "firmware": "2.0.0",
                 "simulator": True}
