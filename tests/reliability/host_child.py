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
    python -m tests.reliability.host_child session PORT SQLITE_URL JOURNAL_DIR SEED
        the same, then a session's work at random until killed: zones, adjustments,
        coverage, arm and disarm (the test works the pedal)
    python -m tests.reliability.host_child zygote
        pays the imports once, then forks a child for each request line on its standard
        input, a JSON list [OUT, MODE, ARGS...] (the child's output goes to the file OUT),
        and prints each child's pid: a console started twenty times in a test
"""

from __future__ import annotations

import sys
import threading
import time

from firmware_bridge import Machine
from protocols import MachineSettings

_said = threading.Lock()


def say(text: str) -> None:
    """One whole line to the test: the sink's thread and the main thread both speak, and
    print() writes the text and its newline separately, so a line could come out as
    "armedevent 7 ..." and a test waiting for "armed" would wait for ever."""
    with _said:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def bridge(port: str) -> None:
    m = Machine.connect(port)
    m.apply(MachineSettings(depth_mm=1.8, rate_hz=130, voltage_v=7.5))
    m.arm()
    say("armed")
    while True:
        time.sleep(1)


def client(port: str) -> None:
    """A console's machine side: a service started for the port, applied and armed."""
    from console.machine_process import connect_machine

    m, _service = connect_machine(port)
    m.apply(MachineSettings(depth_mm=1.8, rate_hz=130, voltage_v=7.5))
    m.arm()
    say("armed")
    while True:
        time.sleep(1)


def _controller(url: str, journal: str):
    """The console's session owner, saying each event once it is in the journal."""
    from pathlib import Path

    from console.controller import SessionController
    from sessions.store import open_store

    c = SessionController(open_store(url), journal_dir=Path(journal))
    accept = c.sink._accept

    def journaled(fact):  # returns once the fact is in the journal (appended and fsynced)
        accept(fact)
        if fact["op"] == "event":
            say(f"event {fact['seq']} {fact['kind']}")

    c.sink._accept = journaled
    return c


def controller(port: str, url: str, journal: str) -> None:
    from protocols import Zone
    from tests.console.conftest import CLEAR, NEEDLE, new_client, plan

    c = _controller(url, journal)
    c.connect(port)
    c.add_client(new_client())
    say(f"session {c.start_session(plan(), CLEAR, {})}")
    c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)
    c.arm()
    say("armed")
    while True:
        time.sleep(1)


def session(port: str, url: str, journal: str, seed: str) -> None:
    import random

    from console.workflow import WorkflowError
    from protocols import Zone
    from protocols.errors import SmpError
    from tests.console.conftest import CLEAR, NEEDLE, new_client, plan

    rng = random.Random(int(seed))
    c = _controller(url, journal)
    c.connect(port)
    c.add_client(new_client(f"Client {seed}"))
    say(f"session {c.start_session(plan(), CLEAR, {})}")
    while True:
        try:
            # plan()'s zones share one cartridge: confirmed fitted with the first zone.
            c.select_zone(rng.choice([Zone.HAIRLINE, Zone.CROWN]),
                          cartridge=None if c.view.work.fitted else NEEDLE)
            c.arm()
            say("armed")
            for _ in range(rng.randrange(4)):
                c.adjust(rng.choice(["depth_mm", "rate_hz", "voltage_v"]), rng.choice([-1, 1]))
            c.bump_coverage(5)
            time.sleep(rng.random() * 0.2)
            c.disarm()
        except (WorkflowError, SmpError) as exc:  # refused (a pedal down, a limit): go on
            say(f"refused {exc}")
            time.sleep(0.05)


def zygote() -> None:
    import json
    import os
    import signal
    import traceback

    import console.controller  # noqa: F401  the imports every child would pay for
    import tests.console.conftest  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the children reap themselves
    for line in sys.stdin:
        out, mode, *args = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # it waits for its own children
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            code = 1
            try:
                MODES[mode](*args)
                code = 0
            except BaseException:
                traceback.print_exc()  # as the interpreter would
            finally:
                sys.stdout.flush()
                os._exit(code)
        print(pid, flush=True)


MODES = {"bridge": bridge, "client": client, "controller": controller, "session": session}

if __name__ == "__main__":
    {**MODES, "zygote": zygote}[sys.argv[1]](*sys.argv[2:])
