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

    from console.controller import SessionController
    from sessions.recorder import interrupted_sessions, utcnow
    from sessions.store import open_store

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
