"""Serving a simulated machine in real time: behind a pty (a serial port any program can open)
or a TCP socket on loopback.

    with PtyServer(SimulatedMachine(MonotonicClock(), baud=115200)) as server:
        print(server.address)        # e.g. /dev/pts/7
        ...

One thread owns the endpoint: it reads what the host wrote, steps the machine and writes what
has crossed the (paced, faulty) line back. Bytes the host does not read are dropped once the
kernel buffer is full, as a real UART drops them.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import select
import socket
import threading
import tty
from pathlib import Path
from typing import Self, Unpack

from protocols.errors import SmpError
from sim.clock import MonotonicClock
from sim.machine import MachineOptions, SimulatedMachine


class ServeError(SmpError):
    pass


class _Server:
    address: str

    def __init__(self, machine: SimulatedMachine):
        self.machine = machine
        self.firmware = machine.firmware
        self.dropped = 0  # bytes the host did not read in time
        self._running = False
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()

    # an endpoint supplies these
    def _fds(self) -> list[int]:
        raise NotImplementedError

    def _on_readable(self, fd: int) -> None: ...
    def _write(self, data: bytes) -> None: ...
    def _close_endpoint(self) -> None: ...

    def start(self) -> str:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="smp-sim", daemon=True)
        self._thread.start()
        return self.address

    def _run(self) -> None:
        m = self.machine
        while self._running:
            try:
                ready, _, _ = select.select([*self._fds(), self._wake_r], [], [],
                                            m.next_wakeup_s())
            except (OSError, ValueError):
                break
            for fd in ready:
                if fd != self._wake_r:
                    self._on_readable(fd)
            m.step()
            out = m.transmit()
            if out:
                self._write(out)

    def close(self) -> None:
        self._running = False
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._close_endpoint()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PtyServer(_Server):
    """The machine behind a pseudo-terminal in raw mode; `address` is the device path."""

    @classmethod
    def simulate(cls, *, link: Path | None = None,
                 **options: Unpack[MachineOptions]) -> PtyServer:
        """A new simulated machine on the real clock (options as for SimulatedMachine)."""
        fw = options.get("firmware")
        clock = fw.clock if fw is not None else MonotonicClock()
        return cls(SimulatedMachine(clock, **options), link=link)

    def __init__(self, machine: SimulatedMachine, *, link: Path | None = None):
        super().__init__(machine)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        # Holding the slave open keeps the master readable after the host closes its side.
        self.address = os.ttyname(self._slave)
        self.link = link
        if link is not None:
            if link.is_symlink() or not link.exists():
                link.unlink(missing_ok=True)
                link.symlink_to(self.address)
            else:
                self._close_endpoint()
                raise ServeError(f"{link} exists and is not a symlink; choose another --link path")

    def _fds(self) -> list[int]:
        return [self._master]

    def _on_readable(self, fd: int) -> None:
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            return
        if data:
            self.machine.receive(data)

    def _write(self, data: bytes) -> None:
        try:
            n = os.write(self._master, data)
        except BlockingIOError:
            n = 0
        except OSError:
            return
        self.dropped += len(data) - n

    def _close_endpoint(self) -> None:
        if self.link is not None and self.link.is_symlink():
            self.link.unlink(missing_ok=True)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ServeError(f"bad address {text!r}: write HOST:PORT, e.g. 127.0.0.1:5555")
    return host.strip("[]") or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TcpServer(_Server):
    """The machine on a TCP port, one host at a time (a serial line has two ends).

    Loopback only unless `allow_remote`: a simulator reachable from the clinic network could be
    mistaken for a machine. A host that disconnects is a pulled cable: the machine's watchdog
    acts, and the next host to connect finds it latched.
    """

    def __init__(self, machine: SimulatedMachine, host: str, port: int, *,
                 allow_remote: bool = False):
        super().__init__(machine)
        if not is_loopback(host) and not allow_remote:
            raise ServeError(f"refusing to listen on {host}: the simulator listens on loopback "
                             "only (127.0.0.1, ::1); add --allow-remote to override")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind((host, port))
        except OSError as exc:
            self._listener.close()
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self._listener.listen(1)
        self._listener.setblocking(False)
        self._client: socket.socket | None = None
        bound = self._listener.getsockname()
        self.address = f"socket://{host if ':' not in host else f'[{host}]'}:{bound[1]}"

    def _fds(self) -> list[int]:
        return [self._listener.fileno()] + ([self._client.fileno()] if self._client else [])

    def _on_readable(self, fd: int) -> None:
        if fd == self._listener.fileno():
            conn, _ = self._listener.accept()
            if self._client is not None:  # the line is taken
                conn.close()
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._client = conn
            return
        assert self._client is not None  # fds() lists only the listener and the client
        try:
            data = self._client.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._client.close()
            self._client = None
            return
        self.machine.receive(data)

    def _write(self, data: bytes) -> None:
        if self._client is None:
            return  # nobody on the line: bytes go nowhere, as on an unplugged cable
        try:
            n = self._client.send(data)
        except BlockingIOError:
            n = 0
        except OSError:
            return
        self.dropped += len(data) - n

    def _close_endpoint(self) -> None:
        if self._client is not None:
            self._client.close()
        self._listener.close()
