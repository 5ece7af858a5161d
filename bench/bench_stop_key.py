"""STOP key -> STOP on the machine, with the console busy (issue 12): p50 and p99.

`smp sim --pty --events FILE` in another process; the console (`make_app`, a SQLite record)
headless under Textual's `App.run_test()`, driven by keys to a running needle. Each trial: the
needle RUNNING, Esc (a STOP key on every screen) handed to the app, and the time from then to the
machine's STOP in its own log (CLOCK_MONOTONIC, shared); then re-armed. Cases: nothing else
(baseline), the record locked by another program just before the key (the events of the run
and of the STOP wait on the lock), and the
history browser loading (F4, its first read of a record holding `clients` clients with a
session each, started just before the key). Target: p99 < 10 ms in every case.

Pilot hands keys to the app's loop directly, past the terminal driver, where STOP keys are now
acted on first (console/stop_driver.py). `--terminal` runs the console in tmux instead, on the
same record, and sends Ctrl+C (a STOP key the terminal delivers at once; a lone Esc waits for
the parser to tell it from an escape sequence) with `tmux send-keys`, timed from just before
that call (so the tmux client's start is in the figure), with the history browser opened just
before, and without it (baseline).

    .venv/bin/python bench/bench_stop_key.py [trials] [clients] [--terminal]
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_stop import Sim, cpu_times, pct  # run as a script: bench/ is on sys.path
from console_drive import keys, to_armed, until

TARGET_P99_MS = 10.0
STOP_KEY = "escape"  # STOP on every screen; space types into a text field (the history search)


def stop_after(sim: Sim, after_ns: int) -> int:
    """When the machine logged the first STOP at or after `after_ns`."""
    return sim.wait_event(after_ns, lambda e: e["what"] == "STOP", timeout=5)["mono_ns"]


def seed(db: Path, clients: int) -> None:
    """A record with `clients` clients and a completed session each (the history's reading)."""

    from adult_client import adult_client

    from protocols import Stage, Zone
    from sessions.gate import Contraindication
    from sessions.recorder import Machine, Recorder
    from sessions.store import open_store

    store = open_store(f"sqlite:///{db}")
    try:
        for i in range(clients):
            cid = adult_client(store, f"Client {i:05d}", phone="+44 20 7946 0000")
            rec = Recorder.start(store, client_id=cid, technician="Tom Reyes", stage=Stage.S1,
                                 machine=Machine.simulated(), planned_zones=[Zone.HAIRLINE],
                                 answers={c: False for c in Contraindication})
            rec.zone_changed(Zone.HAIRLINE, profile="hairline-soft")
            rec.end(aftercare_given=True)
    finally:
        store.close()


async def trials(sim: Sim, db: Path, n: int, busy: str) -> list[float]:
    from console.app import make_app
    from console.view import MachineState
    from sessions.store import open_store

    store = open_store(f"sqlite:///{db}")
    app = make_app(store, url=sim.port)
    app.controller.sink.journal_dir = db.parent / "journal"
    out: list[float] = []
    lock = None
    try:
        async with app.run_test(size=(130, 42)) as pilot:
            await to_armed(pilot)
            if busy == "locked":
                lock = sqlite3.connect(db, isolation_level=None)
            for _ in range(n):
                await until(pilot, lambda: not app.view.machine.pedal)
                for _attempt in range(3):  # a refusal (the record just back) is said, not fatal
                    if app.view.machine.state == MachineState.ARMED:
                        break
                    await keys(pilot, "a")
                    await until(pilot, lambda: type(app.screen).__name__ == "Confirm")
                    await keys(pilot, "y")
                    with contextlib.suppress(TimeoutError):
                        await until(pilot, lambda: app.view.machine.state == MachineState.ARMED,
                                    timeout=3)
                else:
                    raise TimeoutError(f"not re-armed: {list(app.view.log[-3:])}")
                sim.command("pedal down")
                await until(pilot, lambda: app.view.machine.state == MachineState.RUNNING)
                if busy == "history":
                    await keys(pilot, "f4")  # the browser starts reading the record
                    await pilot.pause(0.02)
                elif busy == "locked":  # the sink's next write now waits on the lock
                    lock.execute("BEGIN IMMEDIATE")
                    await pilot.pause(0.05)
                t0 = time.monotonic_ns()
                app.simulate_key(STOP_KEY)
                stopped = await asyncio.to_thread(stop_after, sim, t0)
                out.append((stopped - t0) / 1e6)
                sim.command("pedal up")
                await until(pilot, lambda: app.view.machine.state == MachineState.STOPPED)
                if busy == "history":
                    await keys(pilot, "f10")  # back to the working screen
                    await until(pilot, lambda: type(app.screen).__name__ == "WorkScreen")
                if busy == "locked":  # arming waits for the record: let it write again
                    lock.execute("ROLLBACK")
                    await until(pilot, lambda: app.view.record.writing
                                and not app.view.record.pending, timeout=30)
            await app.action_quit()
    finally:
        if lock is not None:
            lock.close()
        store.close()
    return out


SMP = str(Path(sys.executable).with_name("smp"))


def tmux(sock: str, *args: str) -> str:
    return subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True,
                          check=True, timeout=10).stdout


def on_screen(sock: str, text: str, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while text not in tmux(sock, "capture-pane", "-p"):
        if time.monotonic() > end:
            raise TimeoutError(f"{text!r} not on screen:\n{tmux(sock, 'capture-pane', '-p')}")
        time.sleep(0.02)


def terminal(tmp: Path, n: int, clients: int) -> list[str]:
    db = tmp / "record.sqlite3"
    seed(db, clients)
    sim = Sim(tmp / "machine-terminal.jsonl")
    sock = str(tmp / "tmux.sock")
    env = (f"XDG_CONFIG_HOME={tmp} XDG_DATA_HOME={tmp} SMP_DB_URL=sqlite:///{db} "
           "TERM=xterm-256color")
    tmux(sock, "-f", "/dev/null", "new-session", "-d", "-x", "130", "-y", "42",
         f"env {env} {SMP} console --port {sim.port}")
    rows = []
    try:
        on_screen(sock, "Client")
        tmux(sock, "send-keys", "C-n")
        time.sleep(1.0)
        tmux(sock, "send-keys", "Bench Client", "C-n")
        for _ in range(2):
            time.sleep(1.0)
            tmux(sock, "send-keys", "C-n")
        on_screen(sock, "STOP  (space / Esc)")
        tmux(sock, "send-keys", "1")
        on_screen(sock, "Fit the")  # the hairline's cartridge, as planned
        tmux(sock, "send-keys", "Enter")
        on_screen(sock, "applied (read-back)")
        for busy in ("none", "history"):
            ms = []
            for _ in range(n):
                tmux(sock, "send-keys", "a")
                on_screen(sock, "Arm (y)")  # to arm, or to clear a STOP and re-arm
                tmux(sock, "send-keys", "y")
                on_screen(sock, "Machine: ARMED")
                t_run = time.monotonic_ns()
                sim.command("pedal down")
                sim.wait_event(t_run, lambda e: e["what"] == "state"
                               and e["detail"].split(": ")[0].endswith("-> RUNNING"))
                if busy == "history":
                    tmux(sock, "send-keys", "F4")
                    time.sleep(0.02)
                t0 = time.monotonic_ns()
                tmux(sock, "send-keys", "C-c")
                ms.append((stop_after(sim, t0) - t0) / 1e6)
                sim.command("pedal up")
                if busy == "history":
                    on_screen(sock, "Recall by lot")
                    tmux(sock, "send-keys", "F10")
                on_screen(sock, "Machine: STOPPED")
            label = {"none": "nothing else (baseline)",
                     "history": f"history browser loading ({clients} clients)"}[busy]
            rows.append(f"| terminal: {label} | {len(ms)} | {pct(ms, 50):.2f} ms | "
                        f"{pct(ms, 99):.2f} ms | {max(ms):.2f} ms |")
    finally:
        subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True)
        sim.close()
    return rows


def main() -> int:
    if "--terminal" in sys.argv:
        sys.argv.remove("--terminal")
        args = [int(a) for a in sys.argv[1:]]
        rows = terminal(Path(tempfile.mkdtemp(prefix="bench-stop-key-")),
                        args[0] if args else 20, args[1] if len(args) > 1 else 2000)
        print("| console busy with | trials | p50 | p99 | max |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(r)
        return 0
    args = [int(a) for a in sys.argv[1:]]
    n = args[0] if args else 30
    clients = args[1] if len(args) > 1 else 2000
    tmp = Path(tempfile.mkdtemp(prefix="bench-stop-key-"))
    cpu0 = cpu_times()
    rows, missed = [], []
    for k, busy in enumerate(("none", "locked", "history")):
        where = tmp / f"case-{k}"
        where.mkdir()
        db = where / "record.sqlite3"
        if busy == "history":
            seed(db, clients)
        sim = Sim(tmp / f"machine-{k}.jsonl")
        try:
            ms = asyncio.run(trials(sim, db, n, busy))
        finally:
            sim.close()
        p99 = pct(ms, 99)
        label = {"none": "nothing else (baseline)", "locked": "record locked by another program",
                 "history": f"history browser loading ({clients} clients)"}[busy]
        rows.append(f"| {label} | {len(ms)} | {pct(ms, 50):.2f} ms | {p99:.2f} ms | "
                    f"{max(ms):.2f} ms |")
        if p99 >= TARGET_P99_MS:
            missed.append(label)
    cpu1 = cpu_times()
    total = sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) or 1
    steal = (cpu1[7] - cpu0[7]) / total * 100
    print(f"STOP key -> STOP in the machine's log; CPU steal {steal:.1f}%")
    print("| console busy with | trials | p50 | p99 | max |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(r)
    print(f"target p99 < {TARGET_P99_MS:.0f} ms: " + ("met" if not missed else
                                                      f"NOT met ({', '.join(missed)})"))
    return 1 if missed else 0


if __name__ == "__main__":
    # Killed (a timeout, Ctrl+C in another terminal): exit through the `finally`s that end
    # the tmux server and the console in it, never leave them running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
