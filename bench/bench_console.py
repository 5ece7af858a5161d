"""The console in a real terminal: start to first screen, and CPU when idle and at 50 Hz
telemetry.

tmux runs `smp console --port PTY` against `smp sim --pty` in another process (so the
simulator's work is not counted); the CPU of the console and of the machine service it starts
comes from /proc. Target (issue 12): idle on the client screen, machine connected, each under
2% of a core. Baselines in the same
run: a minimal Textual app (one line of text) started the same way, the floor that Python and
Textual set, for start-up and idle CPU; for CPU at 50 Hz, the same console idle on the client
screen (no session, telemetry still arriving at 50 Hz).

    .venv/bin/python bench/bench_console.py [seconds]
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMP = str(Path(sys.executable).with_name("smp"))
TICKS = os.sysconf("SC_CLK_TCK")


def tmux(sock: str, *args: str) -> str:
    return subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True,
                          check=True, timeout=10).stdout


def wait_for(sock: str, text: str, timeout: float = 20.0) -> float:
    start = time.monotonic()
    while text not in tmux(sock, "capture-pane", "-p"):
        if time.monotonic() - start > timeout:
            raise SystemExit(f"{text!r} not on screen:\n{tmux(sock, 'capture-pane', '-p')}")
        time.sleep(0.02)
    return time.monotonic() - start


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def console_pid(sock: str) -> int:
    """The console: the pane's process itself, or (through a shell) its child."""
    pane = int(tmux(sock, "display-message", "-p", "#{pane_pid}").strip())
    for pid in [pane, *map(int, subprocess.run(["pgrep", "-P", str(pane)], capture_output=True,
                                               text=True).stdout.split())]:
        if "console" in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
            return pid
    raise SystemExit("no console process in the tmux pane")


def share(pid: int, seconds: float) -> float:
    return shares([pid], seconds)[0]


def shares(pids: list[int], seconds: float) -> list[float]:
    """Each process's CPU over the same `seconds`, as a share of one core."""
    c0, t0 = [cpu_seconds(p) for p in pids], time.monotonic()
    time.sleep(seconds)
    dt = time.monotonic() - t0
    return [(cpu_seconds(p) - c) / dt for p, c in zip(pids, c0, strict=True)]


def service_pid(console: int) -> int:
    """The machine service the console started (its child `smp machine serve`)."""
    out = subprocess.run(["pgrep", "-P", str(console), "-f", "machine serve"],
                         capture_output=True, text=True).stdout
    return int(out.split()[0])


MINIMAL_APP = '''
from textual.app import App
from textual.widgets import Static

class Minimal(App):
    def compose(self):
        yield Static("minimal first screen")

Minimal().run()
'''


def minimal_app(tmp: Path, seconds: float) -> tuple[float, float]:
    """A one-line Textual app: seconds from tmux starting it to its text on screen, and its
    idle CPU share."""
    (tmp / "minimal.py").write_text(MINIMAL_APP)
    sock = str(tmp / "tmux-minimal.sock")
    started = time.monotonic()
    tmux(sock, "-f", "/dev/null", "new-session", "-d", "-x", "130", "-y", "42",
         f"env TERM=xterm-256color {sys.executable} {tmp / 'minimal.py'}")
    try:
        wait_for(sock, "minimal first screen")
        return time.monotonic() - started, share(console_pid(sock), seconds)
    finally:
        subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True)


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    tmp = Path(tempfile.mkdtemp(prefix="smp-bench-console-"))
    textual_start, textual_idle = minimal_app(tmp, seconds)
    sim = subprocess.Popen([SMP, "sim", "--pty", "--quiet", "--link", str(tmp / "tty")],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    sim.stdout.readline()
    sim.stdout.readline()
    sock = str(tmp / "tmux.sock")
    env = f"XDG_CONFIG_HOME={tmp} SMP_DB_URL=sqlite:///{tmp / 'record.sqlite3'} TERM=xterm-256color"
    started = time.monotonic()
    tmux(sock, "-f", "/dev/null", "new-session", "-d", "-x", "130", "-y", "42",
         f"env {env} {SMP} console --port {tmp / 'tty'}")
    try:
        wait_for(sock, "Client")
        first_screen = time.monotonic() - started
        pid = console_pid(sock)
        time.sleep(3)  # start-up done (the service's handshake, the console's first views)
        idle, service_idle = shares([pid, service_pid(pid)], seconds)
        for keys in (("C-n",), ("Ann Lee", "C-n"), ("C-n",), ("C-n",)):
            tmux(sock, "send-keys", *keys)
            time.sleep(1.0)
        wait_for(sock, "STOP  (space / Esc)")
        tmux(sock, "send-keys", "1")
        wait_for(sock, "Fit the")  # the hairline's cartridge, as planned
        tmux(sock, "send-keys", "Enter")
        wait_for(sock, "applied (read-back)")
        tmux(sock, "send-keys", "a")
        wait_for(sock, "ARM the machine?")
        tmux(sock, "send-keys", "y")
        wait_for(sock, "Machine: ARMED")
        sim.stdin.write("skin normal\npedal down\n")
        sim.stdin.flush()
        wait_for(sock, "Machine: RUNNING")
        profile = os.environ.get("SMP_BENCH_PROFILE")  # py-spy collapsed stacks, for digging
        spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "-f",
                                "raw", "-o", profile, "-d", str(int(seconds)), "-p", str(pid),
                                "-t"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) if profile else None
        running = share(pid, seconds)
        if spy is not None:
            spy.wait(timeout=seconds + 30)
        screen = tmux(sock, "capture-pane", "-p")
        tmux(sock, "send-keys", "Space")
        wait_for(sock, "Machine: STOPPED")
    finally:
        subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True)
        sim.terminate()
        sim.wait(timeout=10)
    rate = re.search(r"rate\s+([\d.]+) Hz", screen)
    print(f"console start to first screen: {first_screen:.2f} s  (smp console --port, tmux); "
          f"baseline, a minimal Textual app: {textual_start:.2f} s  "
          f"(x{first_screen / textual_start:.1f})")
    idle_ok = idle < 0.02 and service_idle < 0.02
    print(f"console CPU idle: client screen, telemetry arriving: {idle:6.1%} of one core, "
          f"its machine service {service_idle:.1%}; baseline, the minimal Textual app idle: "
          f"{textual_idle:.1%}   target < 2% each: {'met' if idle_ok else 'NOT met'}")
    print(f"console CPU, working screen, needle RUNNING, 50 Hz telemetry rendered and "
          f"recorded: {running:6.1%} of one core  (x{running / max(idle, 1e-9):.1f} idle)"
          f"   target < 25%: {'met' if running < 0.25 else 'NOT met'}")
    print(f"  (the screen showed rate {rate[1] if rate else '?'} Hz while measured)")
    return 0 if running < 0.25 and idle_ok else 1


if __name__ == "__main__":
    # Killed (a timeout, Ctrl+C in another terminal): exit through the `finally`s that end
    # the tmux server and the console in it, never leave them running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
