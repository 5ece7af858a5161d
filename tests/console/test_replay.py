"""The flight recorder over the real path and its replay: a scripted session on the simulator,
judged by the simulator's own log (not by what the host believed); the replay screen; and
`smp replay`'s bad input."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from datetime import timedelta

import pytest

from console import replay
from console.replay_app import ReplayApp
from console.screens.replay import ReplayScreen
from console.view import MachineState
from console.widgets.banner import Banner
from protocols import Zone
from sessions import flight
from sessions import replay as records
from sessions.models import SessionRow
from tests.console.conftest import CLEAR, NEEDLE, new_client, plan, wait_until
from tests.sessions.factory import FakeClock, client, session
from tests.sessions.test_cli import one_error, smp

MS = 1_000_000
SHOWN = {"DISARMED": {"DISARMED"}, "ARMED": {"ARMED"}, "RUNNING": {"RUNNING"},
         "FAULTED": {"STOPPED", "FAULT"}}


def _script(c) -> int:
    """A session as a technician works it: a zone applied, armed, two runs with a STOP and
    a re-arm between them, an adjustment, a second zone, ended."""
    c.add_client(new_client())
    sid = c.start_session(plan(), CLEAR, {})
    c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)
    time.sleep(0.15)
    c.arm()
    time.sleep(0.15)
    for hold in (0.4, 0.3):
        c.simulator.do("pedal down")
        assert wait_until(lambda: c.view.machine.state == MachineState.RUNNING)
        time.sleep(hold)
        c.simulator.do("pedal up")
        assert wait_until(lambda: c.view.machine.state == MachineState.ARMED)
        if hold == 0.4:
            assert c.stop()[0]
            assert wait_until(lambda: c.view.machine.state == MachineState.STOPPED)
            time.sleep(0.15)
            c.arm()
            assert wait_until(lambda: c.view.machine.state == MachineState.ARMED)
            c.adjust("depth_mm", 1)
            time.sleep(0.15)
    c.select_zone(Zone.CROWN)
    time.sleep(0.2)
    c.end_session({Zone.HAIRLINE: 40}, aftercare_given=True)
    assert c.sink.flush()
    return sid


class Oracle:
    """What the simulator's firmware logged, on its own clock (uptime since its boot)."""

    def __init__(self, firmware):
        self.boot_ns = firmware.boot_ns
        self.states = [(e.at_ns, *re.match(r"(\w+) -> (\w+)", e.detail).groups())
                       for e in firmware.log if e.what == "state"]
        self.sets = [(e.at_ns, tuple(map(int, re.findall(r"\d+", e.detail))))
                     for e in firmware.log if e.what == "SET"]

    def ns(self, uptime_ms: int) -> int:
        return self.boot_ns + uptime_ms * MS

    def ambiguous(self, uptime_ms: int) -> bool:
        """A change within the frame's own millisecond: before or after it was built?"""
        lo = self.ns(uptime_ms)
        return any(lo <= at < lo + MS for at, *_ in self.states + self.sets)

    def state(self, uptime_ms: int) -> str:
        now = "DISARMED"
        for at, _, new in self.states:
            if at < self.ns(uptime_ms):
                now = new
        return now

    def settings(self, uptime_ms: int) -> tuple[int, int, int] | None:
        found = None
        for at, values in self.sets:
            if at < self.ns(uptime_ms):
                found = values
        return found


def test_a_replay_shows_what_the_simulators_log_says_the_machine_did(controller, store):
    c = controller
    sid = _script(c)
    oracle = Oracle(c.machine.transport.simulator.machine.firmware)
    rs = records.load(store, sid)
    frames = rs.flight.all_frames()
    with store.reading() as s:
        row = s.get(SessionRow, sid)
        started, ended = row.started_at, row.ended_at

    # Every frame the machine sent during the session, on its 20 ms grid, none lost, and
    # timed by one mapping of its uptime to wall time. A slot missing is one the machine
    # itself says it skipped (its thread starved on a loaded computer), never one lost.
    k = [round(f.uptime_ms / 20) for f in frames]
    assert all(abs(f.uptime_ms - 20 * n) <= 5 for f, n in zip(frames, k, strict=True))
    skipped = set(c.machine.transport.simulator.machine.firmware.skipped_slots)
    missing = {n for a, b in itertools.pairwise(k) for n in range(a + 1, b)}
    assert missing <= skipped, sorted(missing - skipped)
    assert all(f.at_us - frames[0].at_us == (f.uptime_ms - frames[0].uptime_ms) * 1000
               for f in frames)
    assert rs.flight.frames == len(frames) == k[-1] - k[0] + 1 - len(missing)
    span = (ended - started).total_seconds()
    assert abs((k[-1] - k[0] + 1) * 0.020 - span) < 0.2, (len(frames), span)
    assert started <= frames[0].at and frames[-1].at <= ended + timedelta(milliseconds=50)

    # Every frame holds the state and setpoints the firmware's log says the machine had
    # when the frame was built...
    checked = 0
    for f in frames:
        if not oracle.ambiguous(f.uptime_ms):
            checked += 1
            assert flight_state(f) == oracle.state(f.uptime_ms), f
            assert setpoints(f) == oracle.settings(f.uptime_ms), f
    assert checked >= len(frames) - 12
    # ... and every state the log has that lasted two frame periods shows within one.
    window = [(at, new) for at, _, new in oracle.states
              if oracle.ns(frames[0].uptime_ms) < at < oracle.ns(frames[-1].uptime_ms)]
    lasting = [(at, new) for (at, new), (nxt, _) in itertools.pairwise(
        [*window, (oracle.ns(frames[-1].uptime_ms), "")]) if nxt - at >= 40 * MS]
    assert [new for _, new in lasting].count("RUNNING") == 2
    for at, new in lasting:
        assert any(at < oracle.ns(f.uptime_ms) + MS and oracle.ns(f.uptime_ms) <= at + 25 * MS
                   and flight_state(f) == new for f in frames), (at, new)

    # At the replay time of each apply, arm, run, stop (and just after it), the replay shows
    # the state and settings the firmware's log says the machine had at that frame.
    rs.flight.load(range(len(rs.flight.index)))
    wanted = {"apply", "arm", "run", "run-end", "stop"}
    compared = 0
    for m in (m for m in rs.marks if m.kind in wanted):
        for at_us in (m.at_us, m.at_us + 30_000):
            view = replay.view_at(rs, at_us)
            f = rs.flight.cached_frame_at(at_us)
            assert "REPLAY" in view.banners and view.machine.simulator
            if f is None:  # before the session's first frame (an apply can be): nothing
                assert view.machine.state == MachineState.UNKNOWN  # shown but "no frame"
                continue
            if oracle.ambiguous(f.uptime_ms):
                continue
            compared += 1
            assert view.machine.state.value in SHOWN[oracle.state(f.uptime_ms)], m.text
            applied = view.machine.applied
            assert (applied.to_wire() if applied else None) == oracle.settings(f.uptime_ms)
    assert compared >= 14
    # Each apply's read-back is what the replay shows next to it (the frames' wall times are
    # the session's one mapping of uptime, events' the time the host heard: a loaded machine
    # puts tens of ms between the two).
    for m in (m for m in rs.marks if m.kind == "apply"):
        assert any(replay.view_at(rs, m.at_us + d).machine.applied == m.event.settings
                   for d in range(0, 300_000, 20_000)), m.text
    assert [m.kind for m in rs.marks].count("arm") == 2


def setpoints(f: flight.Frame) -> tuple[int, int, int] | None:
    values = (f.set_depth_um, f.set_rate_dhz, f.set_voltage_mv)
    return None if values == (0, 0, 0) else values


def flight_state(f: flight.Frame) -> str:
    return {0: "DISARMED", 1: "ARMED", 2: "RUNNING", 3: "FAULTED"}[f.state]


# --- the screen ------------------------------------------------------------------------------

def flown(store, *, seconds: int = 30) -> int:
    """A completed session with a synthetic flight record: armed, one run from 10 s to 20 s
    at the applied settings."""
    clock = FakeClock()
    rec = session(store, client(store), clock, end=False)
    base = flight.to_us(rec._clock()) - seconds * 1_000_000
    fr = flight.FlightRecorder(rec.session_id, write=rec._write)
    for i in range(seconds * 50):
        t = i * 20
        state = 2 if 10_000 <= t < 20_000 else 1
        fr.telemetry(flight.Frame(
            at_us=base + t * 1000, uptime_ms=5000 + t, state=state, flags=0x0C | (
                0x03 if state == 2 else 0), faults=0, rate_dhz=1100 if state == 2 else 0,
            voltage_mv=6500 if state == 2 else 0, current_ma=400 if state == 2 else 0,
            depth_um=1500, temperature_dc=300, set_depth_um=1500, set_rate_dhz=1100,
            set_voltage_mv=6500, runs=1 if t >= 10_000 else 0,
            needle_ms=max(0, min(t, 20_000) - 10_000), ack=4))
    fr.close()
    rec.end(aftercare_given=True)
    return rec.session_id


async def _until(pilot, predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        await pilot.pause(0.05)


@pytest.mark.parametrize("presentation", [False, True])
def test_the_replay_screen_says_replay_and_seeks(store, presentation):
    asyncio.run(_says_replay_and_seeks(store, presentation))


async def _says_replay_and_seeks(store, presentation):
    sid = flown(store)
    app = ReplayApp(store, sid, play=False, presentation=presentation)
    async with app.run_test(size=(130, 42)) as pilot:
        await _until(pilot, lambda: isinstance(app.screen, ReplayScreen) and app.screen.shown)
        screen = app.screen
        assert "REPLAY" in str(screen.query_one(Banner).render())
        assert screen.shown.machine.state == MachineState.UNKNOWN  # no frame before the first
        head = str(screen.query_one("#session").render())
        if presentation:  # the client, the technician and the machine's serial hidden
            assert "Ann Lee" not in head and "Tom Reyes" not in head and "R1-0042" not in head
        else:
            assert "Ann Lee" in head and "Tom Reyes" in head and "R1-0042" in head
        # Seek to the run's middle: the machine's frame at that instant, REPLAY still on.
        rs = screen.rs
        screen.seek(rs.flight.first_us + 15_000_000)
        await _until(pilot, lambda: screen.shown.revision and screen.shown.machine.state ==
                     MachineState.RUNNING)
        assert screen.shown.machine.rate_hz == 110.0
        assert "REPLAY" in screen.shown.banners
        # Jump to a timeline entry from its row, and to the next one with a key.
        apply = next(i for i, m in enumerate(rs.marks) if m.kind == "apply")
        screen.jump(apply)
        await _until(pilot, lambda: screen.at_us == rs.marks[apply].at_us)
        later = next(m for m in rs.marks if m.at_us > rs.marks[apply].at_us)
        await pilot.press("n")
        await _until(pilot, lambda: screen.at_us == later.at_us)
        await pilot.press("b")
        await _until(pilot, lambda: screen.at_us == rs.marks[apply].at_us)  # same instant
        # Playing moves time on at the speed asked, each picture with REPLAY on it.
        screen.seek(rs.flight.first_us)
        await _until(pilot, lambda: screen.shown.machine.state == MachineState.ARMED)
        await pilot.press("plus", "plus", "p")  # x4
        began = screen.at_us
        for _ in range(5):
            await pilot.pause(0.1)
            assert "REPLAY" in str(screen.query_one(Banner).render())
        assert screen.playing and screen.at_us - began > 1_000_000
        await pilot.press("p")
        assert not screen.playing


def test_a_session_without_a_flight_record_says_so_on_screen(store):
    asyncio.run(_without_a_flight_record(store))


async def _without_a_flight_record(store):
    rec = session(store, client(store), FakeClock())
    app = ReplayApp(store, rec.session_id, play=False)
    async with app.run_test(size=(130, 42)) as pilot:
        await _until(pilot, lambda: isinstance(app.screen, ReplayScreen) and "ERROR" in str(
            app.screen.query_one("#session").render()))
        assert "has no flight record" in str(app.screen.query_one("#session").render())


def test_a_four_hour_index_loads_without_its_data(store):
    """The first frame must not wait for the whole session: load reads the index and the
    first chunks only."""
    sid = flown(store, seconds=30)
    rs = records.load(store, sid, first_chunks=1)
    assert len(rs.flight.index) == 6 and rs.flight.cached(0) is not None
    assert rs.flight.cached(5) is None and replay.ready(rs, rs.start_us)


# --- smp replay ------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "expected"), [
    (("0",), "session '0': a session id is a whole number from 1"),
    (("abc",), "session 'abc': a session id is a whole number from 1"),
    (("1", "--speed", "0"), "--speed '0': a number from 0.1 to 64"),
    (("1", "--speed", "fast"), "--speed 'fast': a number from 0.1 to 64"),
    (("1", "--speed", "nan"), "--speed 'nan': a number from 0.1 to 64"),
    (("999",), "no session with id 999 in the record"),
])
def test_smp_replay_refuses_bad_input_in_one_line(db_url, args, expected):
    from sessions.store import open_store

    s = open_store(db_url)
    s.close()
    out = smp("replay", *args, "--db", db_url)
    assert expected in one_error(out)


def test_smp_replay_of_a_session_recorded_before_the_flight_recorder(db_url):
    from sessions.store import open_store

    s = open_store(db_url)
    sid = session(s, client(s), FakeClock()).session_id
    s.close()
    out = smp("replay", str(sid), "--db", db_url)
    assert f"session {sid} has no flight record" in one_error(out)
    assert out.returncode == 1


def test_the_history_browsers_replay_key_plays_the_selected_session(db_url, store):
    asyncio.run(_history_replay(db_url, store))


async def _history_replay(db_url, store):
    from console.screens.history import HistoryScreen
    from tests.console.browser_pilot import Host, settle

    sid = flown(store)
    app = Host(HistoryScreen(db_url))
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press(*"ann")
        await settle(pilot)
        await pilot.press("f9")
        await _until(pilot, lambda: isinstance(app.screen, ReplayScreen) and app.screen.shown)
        assert app.screen.session_id == sid and app.screen.rs.flight.frames == 1500
        assert "REPLAY" in str(app.screen.query_one(Banner).render())
        await pilot.press("f10")
        await _until(pilot, lambda: isinstance(app.screen, HistoryScreen))
