"""The session owner's races: what two quick presses, a busy session thread or a second
chair did to the old controller (one shared lock, calls on the caller's thread)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from sqlalchemy import func, select

from console.controller import STOP_LATCH_WAIT_S, SessionController
from console.view import MachineState
from console.workflow import WorkflowError
from protocols import Zone
from sessions.models import Event, SessionRow
from tests.console.conftest import CLEAR, NEEDLE, new_client, plan, wait_until


def test_two_start_session_calls_at_once_open_one_session(controller, store):
    c = controller
    c.add_client(new_client())
    results, errors = [], []
    go = threading.Barrier(2)

    def start() -> None:
        go.wait()
        try:
            results.append(c.start_session(plan(), CLEAR, {}))
        except WorkflowError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 1 and len(errors) == 1
    assert errors[0] == f"session {results[0]} is already open: end it first"
    assert c.sink.flush()
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(SessionRow)) == 1


def test_every_stop_is_recorded_ours_twice_then_the_links(controller, store):
    """After STOP was pressed twice, a STOP the link sent by itself went unrecorded."""
    c = controller
    c.add_client(new_client())
    session = c.start_session(plan(), CLEAR, {})
    c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)
    c.arm()
    assert c.stop()[0] and c.stop()[0]
    assert wait_until(lambda: c.view.machine.state == MachineState.STOPPED)
    c.arm()  # clears the latch, re-arms
    assert wait_until(lambda: c.view.machine.state == MachineState.ARMED)
    c.simulator.do("fault silent 0.4")  # the machine goes quiet: the link stops it itself
    assert wait_until(lambda: any("STOP sent by the link" in line for line in c.view.log),
                      timeout=5)
    assert c.sink.flush()
    with store.reading() as s:
        stops = s.scalars(select(Event.payload).where(Event.session_id == session,
                                                      Event.kind == "stop")).all()
    whose = [("technician" in p, "the link" in p) for p in stops]
    assert whose.count((True, False)) >= 1 and whose.count((False, True)) == 1


def _stops(store, session: int) -> list[str]:
    with store.reading() as s:
        return [json.loads(p)["reason"] for p in s.scalars(select(Event.payload).where(
            Event.session_id == session, Event.kind == "stop"))]


def _armed(store, tmp_path) -> tuple[SessionController, int]:
    """A controller of its own (the test closes it), a session open, the machine armed."""
    c = SessionController(store, journal_dir=tmp_path / "journal")
    c.connect("sim://?seed=3")
    c.add_client(new_client())
    session = c.start_session(plan(), CLEAR, {})
    c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)
    c.arm()
    return c, session


def test_a_stop_straight_before_closing_is_recorded(store, tmp_path):
    """A hung-up terminal sends STOP mid-run and closes the console at once: the machine
    latched the STOP and ended the run, and the old controller closed before its telemetry
    said so, losing both entries."""
    c, session = _armed(store, tmp_path)
    c.simulator.do("pedal down")
    assert wait_until(lambda: c.view.machine.state == MachineState.RUNNING)
    assert c.stop(by="the test")[0]
    c.close()
    assert _stops(store, session) == ["STOP sent by the test"]
    with store.reading() as s:
        kinds = s.scalars(select(Event.kind).where(Event.session_id == session)).all()
    assert kinds.count("pedal-down") == kinds.count("pedal-up") == 1


def test_closing_after_a_second_stop_does_not_wait_for_a_latch_already_seen(store, tmp_path):
    c, session = _armed(store, tmp_path)
    assert c.stop()[0]
    assert wait_until(lambda: any("STOP sent by the technician" in line for line in c.view.log))
    assert c.stop()[0]  # acknowledged; the machine was already stopped: no new latch comes
    began = time.monotonic()
    c.close()
    assert time.monotonic() - began < STOP_LATCH_WAIT_S
    assert _stops(store, session) == ["STOP sent by the technician"]


def test_stop_and_the_screen_never_wait_for_a_busy_session(controller):
    """The old F3 took the controller's lock on the UI thread, behind a database commit, and
    STOP waited there too. Now the screen only reads frozen views, and STOP goes straight to
    the machine service while a command holds the session thread."""
    c = controller
    c.add_client(new_client())
    c.start_session(plan(), CLEAR, {})
    c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)
    c.arm()
    release = threading.Event()

    def slow_read():  # a command waiting on a slow read of the record
        release.wait(5)
        return []

    from console import controller as module

    blocked = threading.Thread(target=lambda: c._call(lambda: (yield module._Query(slow_read))))
    blocked.start()
    try:
        t0 = time.monotonic()
        assert c.view.work is not None and c.simulator is not None  # plain reads, no waiting
        assert c.profiles_for(Zone.HAIRLINE)
        assert time.monotonic() - t0 < 0.05
        acked, _ = c.stop()
        assert acked and time.monotonic() - t0 < 1.0
        assert wait_until(lambda: c.machine.state.name == "FAULTED")
    finally:
        release.set()
        blocked.join(5)


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request, tmp_path):
    """One record two chairs write to: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    return request.getfixturevalue("pg_url")


def test_two_chairs_on_one_record_cannot_close_each_others_sessions(shared_url, tmp_path):
    """Chair B starting on the record chair A writes to: A's running session is not
    interrupted, cannot be closed by B, and both records are complete."""
    from sessions.recorder import close_interrupted, interrupted_sessions, open_sessions
    from sessions.store import open_store

    store = open_store(shared_url)
    db_url = shared_url
    a = SessionController(store, journal_dir=tmp_path / "a", owner="chair A")
    other = open_store(db_url)
    b = SessionController(other, journal_dir=tmp_path / "b", owner="chair B")
    try:
        a.connect("sim://?seed=1")
        b.connect("sim://?seed=2")
        a.add_client(new_client("Ann Lee"))
        sa = a.start_session(plan(), CLEAR, {})
        b.add_client(new_client("Bo Chan"))
        assert a.sink.flush()
        # B starts: A's session is open, held by A's lease: not interrupted, not closable.
        assert [s.id for s in open_sessions(other)] == [sa]
        assert interrupted_sessions(other) == []
        with pytest.raises(Exception, match=r"is held by chair A until .* running there"):
            close_interrupted(other, sa)
        sb = b.start_session(plan(), CLEAR, {})
        for c in (a, b):
            c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)
            c.adjust("depth_mm", 1)
            c.end_session({Zone.HAIRLINE: 30}, aftercare_given=True)
        assert a.sink.flush() and b.sink.flush()
        with store.reading() as s:
            outcomes = dict(s.execute(select(SessionRow.id, SessionRow.outcome)).all())
            kinds = {sid: [k for (k,) in s.execute(select(Event.kind).where(
                Event.session_id == sid).order_by(Event.seq))] for sid in (sa, sb)}
        assert outcomes == {sa: "completed", sb: "completed"}
        for sid in (sa, sb):
            assert kinds[sid][0] == "session-started" and kinds[sid][-1] == "session-ended"
            assert kinds[sid].count("settings-applied") == 2
    finally:
        a.close()
        b.close()
        other.close()
        store.close()


def test_stop_now_stops_without_waiting_and_is_recorded_as_the_technicians(store, tmp_path):
    """The terminal's input thread sends STOP this way (console/stop_driver.py)."""
    c, session = _armed(store, tmp_path)
    try:
        began = time.monotonic()
        c.stop_now()
        assert time.monotonic() - began < 0.05  # it does not wait for the answer
        assert wait_until(lambda: c.view.machine.state == MachineState.STOPPED)
        assert wait_until(lambda: any("STOP sent by the technician" in line
                                      for line in c.view.log))
    finally:
        c.close()
    assert _stops(store, session) == ["STOP sent by the technician"]


def test_a_read_that_fails_with_a_bug_ends_its_command_and_the_next_ones_run(controller):
    """A read on the query worker that raised anything but SmpError killed the worker
    without resuming its command: the session's one command slot stayed taken, and every
    later command waited its 30 s and failed."""
    c = controller
    c.add_client(new_client())
    from console import controller as module

    def broken_read():
        raise KeyError("a bug in a query")

    t0 = time.monotonic()
    with pytest.raises(module.WorkflowError, match="internal error"):
        c._call(lambda: (yield from c._query(broken_read)))
    assert time.monotonic() - t0 < 5
    c.start_session(plan(), CLEAR, {})  # the next command runs at once
    assert c.view.work is not None
