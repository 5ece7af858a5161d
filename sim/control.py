"""The simulator's control channel: the trainer's controls (pedal, faults, skin, scenarios)
over a Unix socket, for programs that only know the machine's port (`smp conformance`, the
console).

`smp sim` serves one socket per simulated machine, mode 0600, in a private runtime directory
chosen by the caller (console/paths.py), and writes a registry entry beside it: a JSON file
with the simulator's pid, the device's addresses (the pty path, its --link symlink and their
real paths, or the socket:// URL) and the socket's path. `find_control(directory, port)` finds
the entry for a port; entries of processes that have gone are removed, never trusted.

The protocol on the socket is one JSON object per line each way:
    {"do": "pedal down"}  ->  {"ok": true, "reply": "ok: pedal down"}
    {"status": true}      ->  {"ok": true, "status": {...}}
    anything refused      ->  {"ok": false, "error": "one line"}
Connections from another user are refused (SO_PEERCRED), whatever the file modes say.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import struct
import threading
from pathlib import Path
from typing import Any

from protocols.errors import SmpError
from sim.machine import SimulatedMachine
from sim.scenario import BadScenario, act

MAX_LINE = 4096
_COUNTER = itertools.count(1)


class ControlError(SmpError):
    """The simulator refused a control command, or cannot be reached."""


def _peer_uid(conn: socket.socket) -> int | None:
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    uid: int = struct.unpack("3i", creds)[1]
    return uid


def _addresses(devices: list[str]) -> list[str]:
    out: list[str] = []
    for d in devices:
        for a in (d, os.path.realpath(d) if "://" not in d else d):
            if a not in out:
                out.append(a)
    return out


class ControlServer:
    """Serves a SimulatedMachine's controls on a 0600 Unix socket in `directory`."""

    def __init__(self, machine: SimulatedMachine, directory: Path, devices: list[str]):
        self.machine = machine
        name = f"sim-{os.getpid()}-{next(_COUNTER)}"
        self.path = directory / f"{name}.sock"
        self.entry = directory / f"{name}.json"
        self.devices = _addresses(devices)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._running = False
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        self.path.unlink(missing_ok=True)
        old = os.umask(0o177)  # the socket is created 0600, not chmod-ed after a window
        try:
            self._sock.bind(str(self.path))
        finally:
            os.umask(old)
        self._sock.listen(4)
        self._sock.settimeout(0.2)
        tmp = self.entry.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "devices": self.devices, "control": str(self.path)},
                      f)
        os.replace(tmp, self.entry)
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="smp-sim-control", daemon=True)
        self._thread.start()
        return str(self.path)

    def _serve(self) -> None:
        while self._running:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if _peer_uid(conn) not in (None, os.getuid()):
                conn.close()
                continue
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb", buffering=0) as stream:
            for raw in stream:
                if len(raw) > MAX_LINE:
                    return
                reply = self.handle(raw)
                try:
                    stream.write(json.dumps(reply).encode() + b"\n")
                except OSError:
                    return

    def handle(self, raw: bytes) -> dict[str, Any]:
        try:
            request = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return {"ok": False, "error": "not a JSON object: write {\"do\": \"pedal down\"}"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "not a JSON object: write {\"do\": \"pedal down\"}"}
        if request.get("status"):
            return {"ok": True, "status": self.machine.status()}
        line = request.get("do")
        if not isinstance(line, str):
            return {"ok": False, "error": "say {\"do\": LINE} or {\"status\": true}"}
        try:
            act(self.machine, line)
        except (BadScenario, ValueError) as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "reply": f"ok: {line.strip()}"}

    def close(self) -> None:
        self._running = False
        with contextlib.suppress(OSError):
            self._sock.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        for p in (self.entry, self.path):
            p.unlink(missing_ok=True)

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, but not ours to use
    return True


def find_control(registry_dir: Path | str, port: str) -> str | None:
    """The control socket of the simulator serving `port`, or None. Entries whose process has
    gone are removed with their socket."""
    directory = Path(registry_dir)
    wanted = {port} if "://" in port else {port, os.path.realpath(port)}
    found = None
    for entry in sorted(directory.glob("sim-*.json")):
        try:
            data = json.loads(entry.read_text())
            pid, devices, path = int(data["pid"]), list(data["devices"]), str(data["control"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _alive(pid):
            entry.unlink(missing_ok=True)
            Path(path).unlink(missing_ok=True)
            continue
        if found is None and wanted & set(devices) and Path(path).exists():
            found = path
    return found


class SimControl:
    """A client of a simulator's control socket."""

    def __init__(self, socket_path: str, timeout: float = 5.0):
        self.path = socket_path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(socket_path)
        except OSError as exc:
            self._sock.close()
            raise ControlError(f"cannot reach the simulator's control socket {socket_path}: "
                               f"{exc.strerror or exc}") from None
        self._stream = self._sock.makefile("rwb", buffering=0)
        self._lock = threading.Lock()  # one question and its answer at a time

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._ask_now(request)

    def _ask_now(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            self._stream.write(json.dumps(request).encode() + b"\n")
            raw = self._stream.readline(MAX_LINE + 1)
        except OSError as exc:
            raise ControlError(f"the simulator's control socket {self.path}: "
                               f"{exc.strerror or exc}") from None
        if not raw:
            raise ControlError(f"the simulator closed its control socket {self.path}")
        reply: dict[str, Any] = json.loads(raw)
        if not reply.get("ok"):
            raise ControlError(str(reply.get("error", "refused")))
        return reply

    def do(self, line: str) -> str:
        """A command in the scenario language ("pedal down", "fault stall", ...)."""
        return str(self._ask({"do": line})["reply"])

    def status(self) -> dict[str, Any]:
        return dict(self._ask({"status": True})["status"])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stream.close()
            self._sock.close()

    def __enter__(self) -> SimControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
