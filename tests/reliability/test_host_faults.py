"""The host's own failures, with the host in its own process where it can be frozen or
killed: the machine's log must show the needle stopped within the watchdog time, and the
record must hold every event the console had reported recorded."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from console.controller import SessionController
from sessions.store import open_store
from tests.reliability.conftest import STOP_WITHIN_MS, WATCHDOG_MS, wait_for


class Child:
    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.reliability.host_child",
                                      *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []

    def expect(self, prefix: str) -> str:
        """Read lines until one starts with `prefix` (within the child's own pace)."""
        while True:
            line = self.proc.stdout.readline()
            assert line, f"the host exited: {self.proc.stderr.read()}"
            self.lines.append(line.strip())
            if line.startswith(prefix):
                return line.strip()

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def close(self) -> list[str]:
        if self.proc.stdout.closed:
            return self.lines
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.lines += [x.strip() for x in self.proc.stdout.read().splitlines()]
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.lines


@pytest.fixture
def children():
    made: list[Child] = []

    def make(*args: str) -> Child:
        made.append(Child(*args))
        return made[-1]

    yield make
    for c in made:
        c.close()


def test_a_frozen_bridge_process_is_stopped_by_the_watchdog_and_stays_latched(sim, children):
    host = children("bridge", sim.address)
    host.expect("armed")
    sim.say("pedal down")
    assert sim.log.wait_state("RUNNING")
    time.sleep(0.3)  # heartbeats alone keep it running
    assert sim.log.state() == "RUNNING"
    t0 = time.monotonic_ns()
    host.signal(signal.SIGSTOP)
    try:
        assert sim.log.wait_entry("watchdog", after_ns=t0, timeout=3) is not None
        stop = sim.log.stopped_after(t0)
        time.sleep(0.3)
    finally:
        host.signal(signal.SIGCONT)
    assert sim.log.wait_entry("link", after_ns=t0, timeout=3) is not None  # heartbeats again
    time.sleep(0.5)  # the pedal is still down and the host is back: still stopped
    ms = (stop.mono_ns - t0) / 1e6
    print(f"\nSIGSTOP: needle stopped {ms:.0f} ms after the host froze "
          f"(watchdog {WATCHDOG_MS} ms)")
    # A heartbeat sent up to 50 ms before the freeze can still be counted: at least 200 ms.
    assert WATCHDOG_MS - 60 <= ms < STOP_WITHIN_MS
    assert stop.transition == ("RUNNING", "FAULTED", "watchdog")
    assert sim.log.state() == "FAULTED"
    assert not [e for e, _, new, _ in sim.log.transitions()
                if new == "RUNNING" and e.mono_ns > t0]
    sim.log.assert_needle_safe()


def recorded_seqs(path, session: int) -> set[int]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT seq FROM events WHERE session_id = ?",
                                             (session,))}


def test_a_console_killed_mid_pass_loses_no_reported_event(sim, children, tmp_path):
    """kill -9 of the console mid-run: its machine service stops the needle at once; every
    event it had reported recorded (journaled) is in the record after the next start, and the
    session is offered as interrupted once its lease runs out."""
    from datetime import timedelta

    from sessions.recorder import interrupted_sessions, utcnow

    path, journal = tmp_path / "record.sqlite3", tmp_path / "journal"
    console = children("controller", sim.address, f"sqlite:///{path}", str(journal))
    session = int(console.expect("session ").split()[1])
    console.expect("armed")
    sim.say("pedal down")
    console.expect("event ")  # at least the run's start, reported as recorded
    assert sim.log.wait_state("RUNNING")
    t0 = time.monotonic_ns()
    console.signal(signal.SIGKILL)
    assert wait_for(lambda: sim.log.stopped_after(t0) is not None, timeout=3)
    stopped = sim.log.stopped_after(t0)
    ms = (stopped.mono_ns - t0) / 1e6
    lines = console.close()
    reported = {int(x.split()[1]) for x in lines if x.startswith("event ")}
    print(f"\nSIGKILL: needle stopped {ms:.0f} ms after the console died "
          f"({stopped.transition[2]}); {len(reported)} events reported recorded")
    assert stopped.transition[2] == "STOP" and ms < STOP_WITHIN_MS
    store = open_store(f"sqlite:///{path}")
    try:
        SessionController(store, journal_dir=journal).close()  # the next start replays
        assert reported <= recorded_seqs(path, session)
        later = utcnow() + timedelta(minutes=5)
        assert session in [s.id for s in interrupted_sessions(store, now=later)]
    finally:
        store.close()
    sim.log.assert_needle_safe()


def machine_runs_ms(sim, after_ns: int = 0) -> list[float]:
    """Each run's length by the machine's own log: entering RUNNING to leaving it."""
    runs, began = [], None
    for e, old, new, _ in sim.log.transitions():
        if e.mono_ns < after_ns:
            continue
        if new == "RUNNING":
            began = e.mono_ns
        elif old == "RUNNING" and began is not None:
            runs.append((e.mono_ns - began) / 1e6)
            began = None
    return runs


def recorded_runs_ms(path, session: int) -> list[int]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute(
            "SELECT duration_ms FROM events WHERE session_id = ? AND kind = 'pedal-up' "
            "ORDER BY seq", (session,))]


def test_a_console_paused_1_s_mid_run_records_the_machines_run_time(sim, children, tmp_path):
    """The old console timed a run by its own clock: paused 1 s (SIGSTOP), it recorded runs
    of 1.73 to 1.81 s against 1.01 to 1.04 s of needle time. The run is the machine's: its
    service keeps the link alive meanwhile, and the recorded length is the machine's."""
    path, journal = tmp_path / "record.sqlite3", tmp_path / "journal"
    console = children("controller", sim.address, f"sqlite:///{path}", str(journal))
    session = int(console.expect("session ").split()[1])
    console.expect("armed")
    t0 = time.monotonic_ns()
    sim.say("pedal down")
    assert sim.log.wait_state("RUNNING")
    time.sleep(0.2)
    console.signal(signal.SIGSTOP)
    try:
        time.sleep(0.6)
        sim.say("pedal up")  # the run ends while the console is frozen
        time.sleep(0.4)
    finally:
        console.signal(signal.SIGCONT)
    while "pedal-up" not in console.expect("event "):
        pass
    console.close()
    store = open_store(f"sqlite:///{path}")
    try:
        SessionController(store, journal_dir=journal).close()  # the next start replays
    finally:
        store.close()
    machine, recorded = machine_runs_ms(sim, t0), recorded_runs_ms(path, session)
    print(f"\nSIGSTOP 1 s mid-run: machine {machine} ms, record {recorded} ms")
    assert len(machine) == len(recorded) == 1
    assert abs(machine[0] - recorded[0]) <= 20
    assert not [e for e in sim.log.entries() if e.what == "watchdog" and e.mono_ns > t0]
