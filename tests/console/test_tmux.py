"""End to end in a real terminal: tmux runs `smp console --port PTY` against `smp sim --pty` in
another process; keys go in with send-keys and the screen is read with capture-pane."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console.controller import SessionController
from sessions import history
from tests.sim.test_sim_process import SimProcess

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (apt-get install tmux)")
SMP = str(Path(sys.executable).with_name("smp"))


class Tmux:
    def __init__(self, tmp: Path, command: str, size: tuple[int, int] = (130, 42)):
        self.socket = str(tmp / "tmux.sock")
        env = {**os.environ, "XDG_CONFIG_HOME": str(tmp / "config"), "TERM": "xterm-256color"}
        env.pop("SMP_CONFIG", None)
        # pytest-xdist workers export the size of their own (absent) terminal: the console in
        # tmux must take tmux's.
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        self.env = env
        self.run("-f", "/dev/null", "new-session", "-d", "-x", str(size[0]), "-y", str(size[1]),
                 command)
        self.run("set-option", "-g", "escape-time", "0")

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], env=self.env, check=True,
                              capture_output=True, text=True, timeout=10).stdout

    def keys(self, *keys: str) -> None:
        self.run("send-keys", *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p")

    def wait_for(self, text: str, timeout: float = 10.0, step: float = 0.02) -> float:
        """Seconds until `text` is on screen; fails with the screen if it never is."""
        start = time.monotonic()
        while True:
            screen = self.screen()
            if text in screen:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise AssertionError(f"{text!r} not on screen after {timeout} s:\n{screen}")
            time.sleep(step)

    def wait_exit(self, timeout: float = 10.0) -> None:
        """Until the program in the window has ended (its session closes with it): a console
        closed by a hang-up before it has finished writing proves nothing about quitting."""
        end = time.monotonic() + timeout
        while subprocess.run(["tmux", "-S", self.socket, "has-session"], env=self.env,
                             capture_output=True).returncode == 0:
            if time.monotonic() > end:
                raise AssertionError(f"still running after {timeout} s:\n{self.screen()}")
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


def to_a_run(term: Tmux, sim: SimProcess, stop: str = "STOP  (space / Esc)") -> None:
    """A new client, the gate, the plan, the hairline, armed, and the needle running."""
    term.wait_for("Client")
    assert "SIMULATOR" in term.screen()  # smp sim says it is simulated: invariant 5
    term.keys("C-n")
    term.wait_for("New client")
    # The name, the date of birth (adults only), the signed consent ticked (Enter on it).
    for keys in (["Ann Lee"], ["Tab"], ["1980-05-17"], ["Tab"], ["Tab"], ["Enter"]):
        term.keys(*keys)  # one at a time: focus moves on a Tab after the keys already sent
        time.sleep(0.2)
    term.wait_for("[x] signed consent to the procedure")
    term.keys("C-n")
    term.wait_for("Consultation")
    term.keys("C-n")
    term.wait_for("Session plan")
    term.keys("C-n")
    term.wait_for(stop)
    term.keys("1")
    term.wait_for("Fit the 1RL 0.18mm cartridge")  # the hairline's, as the plan has it
    term.keys("Enter")
    term.wait_for("applied (read-back)")
    term.keys("a")
    term.wait_for("ARM the machine?")
    term.keys("y")
    term.wait_for("Machine: ARMED")
    sim.say("pedal down")
    term.wait_for("Machine: RUNNING")


@pytest.mark.slow(10)
@pytest.mark.timeout(120)
def test_console_in_tmux_against_smp_sim_stop_link_lost_and_back(tmp_path, store, db_url):
    link = tmp_path / "ttySIM"
    machine_log = tmp_path / "machine.jsonl"
    sim = SimProcess("--pty", "--link", str(link), "--seed", "1", "--events", str(machine_log))
    term = Tmux(tmp_path, f"{SMP} console --port {link} --db {db_url}")
    try:
        to_a_run(term, sim)

        pressed = time.time()
        term.keys("Space")
        stopped = term.wait_for("Machine: STOPPED", timeout=2)
        sim.say("pedal up")

        sim.proc.kill()  # the link is unplugged
        lost = term.wait_for("LINK LOST", timeout=3, step=0.01)

        # The machine comes back (a new process: it has restarted); the console reconnects,
        # and the technician re-arms.
        machine_log2 = tmp_path / "machine2.jsonl"
        sim2 = SimProcess("--pty", "--link", str(link), "--seed", "2", "--events",
                          str(machine_log2))
        try:
            term.wait_for("link restored", timeout=10)
            term.keys("a")
            term.wait_for("ARM the machine?")
            term.keys("y")
            term.wait_for("Machine: ARMED", timeout=5)
            quitting = time.time()
            term.keys("C-q")  # armed: STOP first, then the question
            term.wait_for("STOP sent", timeout=5)
            term.wait_for("quit without ending it?")
            term.keys("y")
            term.wait_exit()
        finally:
            sim2.close()
    finally:
        term.close()
        sim.close()
    # The machine's own log says when the STOP reached it (its wall clock, same host).
    entries = [json.loads(line) for line in machine_log.read_text().splitlines()]
    at_machine = next(e["t"] for e in entries if e["what"] == "STOP" and e["t"] >= pressed)
    print(f"\nSTOP key to machine latched {(at_machine - pressed) * 1000:.0f} ms (tmux, pty); "
          f"STOP shown {stopped * 1000:.0f} ms, LINK LOST shown {lost * 1000:.0f} ms after the "
          "event (including capture-pane polling)")
    assert at_machine - pressed < 0.5  # generous real-time bounds; the figures are printed
    # Quitting while armed stopped the needle before it asked: the second machine says so.
    second = [json.loads(line) for line in machine_log2.read_text().splitlines()]
    assert any(e["what"] == "STOP" and e["t"] >= quitting for e in second), second[-5:]
    assert lost < 1.0  # the bridge sees the port go at once
    SessionController(store).close()  # as the next start does: the journal reaches the record
    (client,) = history.list_clients(store)
    (s,) = history.client_record(store, client.id, events=True).sessions
    kinds = [e.kind for e in s.events]
    for kind in ("stop", "link-lost", "link-restored", "machine-rebooted"):
        assert kind in kinds, (kind, kinds)
    stop = next(e for e in s.events if e.kind == "stop")
    assert stop.payload["reason"] == "STOP sent by the technician"  # who, as the machine latched it
    assert s.machine.simulator


# As `make run` does: a parent that outlives the hang-up (make catches SIGHUP and waits for
# its child), so the console is never sent SIGHUP and only its terminal says it is gone.
KEEPS_SIGHUP = ("import signal, subprocess, sys; signal.signal(signal.SIGHUP, lambda *_: None); "
                "code = subprocess.call(sys.argv[2:]); open(sys.argv[1], 'w').write(str(code))")


@pytest.mark.slow(8)
@pytest.mark.timeout(120)
def test_a_terminal_closed_mid_run_stops_the_needle_and_the_console_ends(tmp_path, store,
                                                                         db_url):
    """The old console, its tmux window gone, spun at 70% CPU for 20 minutes, the machine's
    link kept alive by its service and the needle left to run."""
    link = tmp_path / "ttySIM"
    machine_log = tmp_path / "machine.jsonl"
    ended = tmp_path / "console-exit-code"
    sim = SimProcess("--pty", "--link", str(link), "--seed", "1", "--events", str(machine_log))
    term = Tmux(tmp_path, f"{sys.executable} -c {shlex.quote(KEEPS_SIGHUP)} {ended} "
                          f"{SMP} console --port {link} --db {db_url}")
    try:
        to_a_run(term, sim)
        closed = time.time()
        term.close()  # the window closes, the pedal still down
        deadline = time.monotonic() + 10
        while not ended.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ended.exists(), "the console did not end when its terminal closed"
        assert ended.read_text() == "129"
        sim.say("pedal up")
    finally:
        term.close()
        sim.close()
    entries = [json.loads(line) for line in machine_log.read_text().splitlines()]
    stop = next((e["t"] for e in entries if e["what"] == "STOP" and e["t"] >= closed), None)
    assert stop is not None, "the needle was not stopped"
    print(f"\nterminal closed -> machine latched STOP {(stop - closed) * 1000:.0f} ms")
    assert stop - closed < 2.0  # a generous bound: the figure is printed
    SessionController(store).close()  # as the next start does: the journal reaches the record
    (client,) = history.list_clients(store)
    (s,) = history.client_record(store, client.id, events=True).sessions
    assert s.ended_at is None  # left open, for the next start to offer to close
    reasons = [e.payload.get("reason") for e in s.events if e.kind == "stop"]
    assert "STOP sent by the console: its terminal closed" in reasons, reasons
    assert [e.kind for e in s.events].count("pedal-up") == 1  # the run is recorded


@pytest.mark.timeout(60)
def test_the_sim_status_line_never_runs_into_the_commands_typed(tmp_path):
    """`smp sim` in a terminal: a trainer types commands while the status line redraws five
    times a second. The status line keeps the last row; what is being typed stays as typed
    (the redraw used to wipe the line being typed, and the command ran into the status)."""
    link = tmp_path / "ttySIM"
    term = Tmux(tmp_path, f"{SMP} sim --pty --link {link} --seed 1")
    try:
        term.wait_for("connect with:")
        term.keys("skin thi")  # not yet Enter
        time.sleep(1.2)  # six redraws of the status line
        rows = term.screen().rstrip("\n").split("\n")
        assert any(row.rstrip() == "skin thi" for row in rows), "\n".join(rows)
        assert "DISARMED" in rows[-1]  # the status line, on the last row
        term.keys("ck", "Enter")
        term.wait_for("ok: skin thick")
        time.sleep(0.4)
        assert "skin thick" in term.screen().rstrip("\n").split("\n")[-1]  # the machine's
        term.keys("C-c")
        term.wait_exit()
    finally:
        term.close()


@pytest.mark.slow(9)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_readme_tour_in_tmux_with_a_link_loss_mid_run_and_the_session_ended(tmp_path, store,
                                                                            db_url, size):
    """README's tour at the two sizes a clinic has, the screen checked at each step: the
    client, the gate, the plan, the hairline confirmed, armed, running; the machine unplugged
    mid-run (LINK LOST, the state UNKNOWN, no old figures); the session ended all the same."""
    link = tmp_path / "ttySIM"
    machine_log = tmp_path / "machine.jsonl"
    sim = SimProcess("--pty", "--link", str(link), "--seed", "1", "--events", str(machine_log))
    term = Tmux(tmp_path, f"{SMP} console --port {link} --db {db_url}", size=size)
    try:
        to_a_run(term, sim, stop="STOP  (space")  # the button's label fits at 80 columns
        screen = term.screen()
        for shown in ("SIMULATOR", "Hairline", "depth   1.50 mm", "rate    110.0 Hz",
                      "voltage 6.5 V", "Machine: RUNNING"):
            assert shown in screen, f"{shown!r} not on screen:\n{screen}"
        sim.proc.kill()  # the machine unplugged mid-run
        term.wait_for("LINK LOST", timeout=3)
        term.wait_for("UNKNOWN", timeout=3)
        assert "Machine: RUNNING" not in term.screen()
        term.keys("e")
        term.wait_for("End of session")
        for keys in (["Tab"], ["Tab"], ["Tab"], ["Tab"], ["Enter"]):  # 3 zones, notes, the tick
            term.keys(*keys)  # below the fold at 80x24: Tab scrolls to it
            time.sleep(0.2)
        term.wait_for("[x] aftercare sheet given")
        term.keys("C-n")
        term.wait_for("recorded and closed", timeout=10)
        term.wait_for("Next session")  # on screen, not below the fold
        term.keys("C-q")  # the machine last said RUNNING and is silent: the console asks
        term.wait_for("not answering (last reported RUNNING)")
        term.keys("y")
        term.wait_exit()
    finally:
        term.close()
        sim.close()
    SessionController(store).close()
    (client,) = history.list_clients(store)
    (s,) = history.client_record(store, client.id, events=True).sessions
    assert s.ended_at is not None
    kinds = [e.kind for e in s.events]
    assert "link-lost" in kinds and "settings-applied" in kinds, kinds
    assert any("machine unreachable at end" in str(e.payload) for e in s.events), kinds
    # The oracle: the machine's own log. It applied the hairline's settings the screen showed
    # and ran the needle; the record's read-back is those same settings.
    machine = [json.loads(line) for line in machine_log.read_text().splitlines()]
    sets = [e["detail"] for e in machine if e["what"] == "SET"]
    assert sets and sets[-1] == "1500 um 1100 dHz 6500 mV", sets
    assert "ARMED -> RUNNING: pedal down" in [e["detail"] for e in machine if e["what"] == "state"]
    (applied,) = [e.settings for e in s.events if e.kind == "settings-applied"]
    assert applied is not None and tuple(applied.to_wire()) == (1500, 1100, 6500), applied
