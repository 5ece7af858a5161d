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

from tests.reliability.conftest import STOP_WITHIN_MS, WATCHDOG_MS


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


def recorded_ids(path) -> set[int]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT id FROM events")}


def test_a_console_killed_mid_pass_loses_no_reported_event(sim, children, tmp_path):
    from sessions.recorder import open_sessions
    from sessions.store import open_store

    path = tmp_path / "record.sqlite3"
    console = children("controller", sim.address, f"sqlite:///{path}")
    session = int(console.expect("session ").split()[1])
    console.expect("armed")
    sim.say("pedal down")
    console.expect("event ")  # at least the pedal-down, reported as recorded
    assert sim.log.state() == "RUNNING"
    t0 = time.monotonic_ns()
    console.signal(signal.SIGKILL)
    assert sim.log.wait_entry("watchdog", after_ns=t0, timeout=3) is not None
    ms = (sim.log.stopped_after(t0).mono_ns - t0) / 1e6
    lines = console.close()
    reported = {int(x.split()[1]) for x in lines if x.startswith("event ")}
    print(f"\nSIGKILL: needle stopped {ms:.0f} ms after the console died; "
          f"{len(reported)} events reported recorded")
    assert ms < STOP_WITHIN_MS
    assert any(x.endswith("pedal_down") or "pedal" in x for x in lines if x.startswith("event"))
    assert reported and reported <= recorded_ids(path)
    store = open_store(f"sqlite:///{path}")
    try:
        assert session in [s.id for s in open_sessions(store)]  # found interrupted
    finally:
        store.close()
    sim.log.assert_needle_safe()
