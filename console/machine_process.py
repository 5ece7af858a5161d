"""The console's two children: the machine service that owns the port, and (with --sim) the
simulated machine on a pty, each a process of its own (docs/architecture.md).

    sim = start_simulator()                       # `smp sim --pty` on a pty of its own
    client, service = connect_machine(sim.port, who=..., hold=sim.lifeline)

A service already running for the port (`smp machine serve`) is joined instead of started.
The children are in sessions of their own, so a Ctrl+C or a closed terminal reaches only the
console; when the console goes, the service sees its channel close, sends STOP and ends, and
the simulator ends with the service (it holds the simulator's lifeline).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from console.paths import log_dir, runtime_dir
from firmware_bridge.client import MachineClient
from firmware_bridge.commands import LinkError, NotAllowed
from protocols.errors import SmpError

START_TIMEOUT_S = 10.0
BUSY_WAIT_S = 2.0


def who() -> str:
    """How this console names itself to the service (and to a second console refused)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"smp console pid {os.getpid()} ({user} on {socket.gethostname()})"


def port_key(url: str) -> str:
    """One name per port: a device path resolved through its symlinks, else the URL."""
    if "://" in url:
        return url
    with contextlib.suppress(OSError):
        return os.path.realpath(url)
    return url


# --- the registry of running services ---------------------------------------------------------

@dataclass(frozen=True)
class Registered:
    pid: int
    url: str
    key: str
    socket: str
    started: float
    path: Path  # the registry entry itself


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def register(url: str, sock_path: Path) -> Path:
    entry = runtime_dir() / f"machine-{os.getpid()}.json"
    tmp = entry.with_suffix(".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "url": url, "key": port_key(url),
                   "socket": str(sock_path), "started": time.time()}, f)
    os.replace(tmp, entry)
    return entry


def services() -> list[Registered]:
    """The machine services running for this user; stale entries (a crashed service's) are
    removed, never trusted."""
    out = []
    for path in sorted(runtime_dir().glob("machine-*.json")):
        try:
            d = json.loads(path.read_text())
            entry = Registered(int(d["pid"]), str(d["url"]), str(d["key"]), str(d["socket"]),
                               float(d["started"]), path)
        except (OSError, ValueError, KeyError, TypeError):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        if not _alive(entry.pid) or not Path(entry.socket).exists():
            for stale in (path, Path(entry.socket)):
                with contextlib.suppress(OSError):
                    stale.unlink()
            continue
        out.append(entry)
    return out


def find_service(url: str) -> Registered | None:
    key = port_key(url)
    return next((s for s in services() if s.key == key), None)


# --- starting children --------------------------------------------------------------------------

@dataclass
class Simulator:
    """`smp sim --pty` in a process of its own."""

    process: subprocess.Popen[str]  # its lines: the pty it opened
    port: str
    control: str  # its control socket ("" if it did not say)
    lifeline: int  # the write end of its lifeline: whoever holds it keeps it alive

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.lifeline)
        try:
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=3)


def _smp(*args: str) -> list[str]:
    return [sys.executable, "-m", "console", *args]


def start_simulator() -> Simulator:
    """A simulated machine on a pty, for `--sim` and `make run`: the path a real one takes."""
    life_r, life_w = os.pipe()
    try:
        proc = subprocess.Popen(
            _smp("sim", "--pty", "--quiet", "--lifeline-fd", str(life_r)), pass_fds=(life_r,),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True, text=True)
    finally:
        os.close(life_r)
    port = control = ""
    deadline = time.monotonic() + START_TIMEOUT_S
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("SIMULATOR listening on "):
            port = line.split()[3]
        elif line.startswith("control: "):  # its last start-up line
            control = line.split(" ", 1)[1].strip()
            control = "" if control == "none" else control
            break
    if not port:
        os.close(life_w)
        proc.kill()
        proc.wait(timeout=3)
        raise SmpError("the simulator did not start (smp sim --pty)")
    proc.stdout.close()
    return Simulator(proc, port, control, life_w)


@dataclass
class Service:
    """A machine service this console started (None when it joined a running one)."""

    process: subprocess.Popen[bytes]

    def close(self) -> None:
        try:
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=3)


def start_service(url: str, *, hold: int | None = None) -> tuple[MachineClient, Service]:
    """A machine service for `url` that lives as long as this console controls it."""
    ours, theirs = socket.socketpair()
    fds = [theirs.fileno()] + ([hold] if hold is not None else [])
    args = ["machine", "serve", "--port", url, "--channel-fd", str(theirs.fileno()),
            "--exit-with-controller", "--log", str(log_dir() / "machine-service.log")]
    if hold is not None:
        args += ["--hold-fd", str(hold)]
    try:
        proc = subprocess.Popen(_smp(*args), pass_fds=fds, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    finally:
        theirs.close()
    try:
        client = MachineClient(ours, role="control", who=who())
    except SmpError:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=3)
        raise
    client.url = url
    return client, Service(proc)


def connect_machine(url: str, *, hold: int | None = None
                    ) -> tuple[MachineClient, Service | None]:
    """Control the machine on `url`: through its running service, or one started for it.

    A service that is just ending (its console gone) may hold the port a moment longer: a
    port found busy is tried again for up to BUSY_WAIT_S before that is the answer."""
    deadline = time.monotonic() + BUSY_WAIT_S
    while True:
        running = find_service(url)
        if running is not None:
            try:
                client = MachineClient.connect(running.socket, role="control", who=who())
            except NotAllowed as exc:
                if "is ending" not in str(exc):
                    raise  # another console holds it: that is the answer
            except LinkError:
                pass  # it ended between the look and the call: start our own
            else:
                client.url = url
                return client, None
        try:
            return start_service(url, hold=hold)
        except LinkError as exc:
            if "is busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
