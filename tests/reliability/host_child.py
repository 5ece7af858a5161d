"""Hosts for the reliability suite to run in their own processes, so that they can be frozen
(SIGSTOP) or killed (SIGKILL) like a real console:

    python -m tests.reliability.host_child bridge PORT
        connect, apply, arm, print "armed", then keep heartbeating until killed
    python -m tests.reliability.host_child client PORT
        the same through a machine service started for PORT (the console's way)
    python -m tests.reliability.host_child controller PORT SQLITE_URL
        the console's SessionController on a SQLite record: a client, a session, a zone, arm;
        prints "session N", then "event ID KIND" for every event the recorder committed, as it
        commits it (what the screen would show as recorded)
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


def controller(port: str, url: str) -> None:
    from console.controller import SessionController
    from protocols import Zone
    from sessions import recorder
    from sessions.store import open_store
    from tests.console.conftest import CLEAR, new_client, plan

    committed = recorder.Recorder._event

    def report(self, kind, **kw):
        done = committed(self, kind, **kw)  # returns only once committed
        print(f"event {done.id} {done.kind}", flush=True)
        return done

    recorder.Recorder._event = report
    c = SessionController(open_store(url))
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
