"""Hosts for the reliability suite to run in their own processes, so that they can be frozen
(SIGSTOP) or killed (SIGKILL) like a real console:

    python -m tests.reliability.host_child bridge PORT
        connect, apply, arm, print "armed", then keep heartbeating until killed
    python -m tests.reliability.host_child client PORT
        the same through a machine service started for PORT (the console's way)
    python -m tests.reliability.host_child controller PORT SQLITE_URL JOURNAL_DIR
        the console's SessionController on a SQLite record: a client, a session, a zone, arm;
        prints "session N", "armed", and "event SEQ KIND" for every event once it is in the
        journal (durable: what the screen would show as recorded)
"""

from __future__ import annotations

import sys
import time

from firmware_bridge import Machine
from protocols import MachineSettings


def bridge(port: str) -> None:
    m = Machine.connect(port)
    m.apply(MachineSettings(depth_mm=1.8, rate_hz=130, voltage_v=7.5))
    m.arm()
    print("armed", flush=True)
    while True:
        time.sleep(1)


def client(port: str) -> None:
    """A console's machine side: a service started for the port, applied and armed."""
    from console.machine_process import connect_machine

    m, _service = connect_machine(port)
    m.apply(MachineSettings(depth_mm=1.8, rate_hz=130, voltage_v=7.5))
    m.arm()
    print("armed", flush=True)
    while True:
        time.sleep(1)


def controller(port: str, url: str, journal: str) -> None:
    from pathlib import Path

    from console.controller import SessionController
    from protocols import Zone
    from sessions.store import open_store
    from tests.console.conftest import CLEAR, new_client, plan

    c = SessionController(open_store(url), journal_dir=Path(journal))
    accept = c.sink._accept

    def journaled(fact):  # returns once the fact is in the journal (appended and fsynced)
        accept(fact)
        if fact["op"] == "event":
            print(f"event {fact['seq']} {fact['kind']}", flush=True)

    c.sink._accept = journaled
    c.connect(port)
    c.add_client(new_client())
    print(f"session {c.start_session(plan(), CLEAR, {})}", flush=True)
    c.select_zone(Zone.HAIRLINE)
    c.arm()
    print("armed", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    {"bridge": bridge, "client": client, "controller": controller}[sys.argv[1]](*sys.argv[2:])
