"""Byte transports under the link: pyserial for real ports, a scheme registry for the rest.

Every URL that pyserial's `serial_for_url` opens works (a device path, COM3, socket://,
rfc2217://, spy://, loop://). The port is opened exclusively and DTR/RTS are set before
`open()` so that a board that resets on DTR (Arduino-style) is not reset by connecting
(Klipper's klippy/serialhdl.py does the same). Other schemes (`sim://`) are registered by the
packages that provide them: firmware_bridge never imports the simulator.

A transport has one reader (the link's reader thread); writes may come from several threads
and are serialised by a lock.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import serial
import serial.serialposix

from firmware_bridge import ports
from protocols.errors import SmpError

READ_TIMEOUT_S = 0.05


class TransportError(SmpError):
    """The port could not be opened, or went away."""


class Transport(ABC):
    """A byte stream to a machine."""

    url: str = ""
    simulator: Any = None  # the in-process simulator behind this transport, if any

    @abstractmethod
    def read(self, max_bytes: int = 4096) -> bytes:
        """Bytes received; b"" after a short timeout; raises TransportError once gone."""

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    def fileno(self) -> int | None:
        """A descriptor that polls readable when bytes arrive, or None (then a reader thread
        calls `read`)."""
        return None

    def read_available(self) -> bytes:
        """What has arrived, without waiting (only for a transport with a `fileno`)."""
        raise NotImplementedError  # pragma: no cover: never called when fileno() is None

    def reset_input(self) -> None:
        """Discard bytes received but not yet read."""
        return  # optional: a transport without an input buffer has nothing to discard

    def cancel_read(self) -> None:
        """Make a blocked read() return at once."""
        return  # optional: a transport whose reads time out by themselves needs nothing

    @abstractmethod
    def close(self) -> None: ...


TransportFactory = Callable[[str], Transport]
_SCHEMES: dict[str, TransportFactory] = {}


def register_scheme(scheme: str, factory: TransportFactory) -> None:
    """Make `scheme://...` URLs open with `factory(url)`."""
    _SCHEMES[scheme.lower()] = factory


def registered_schemes() -> list[str]:
    return sorted(_SCHEMES)


def open_transport(url: str, *, baudrate: int = 115200, dtr: bool = False,
                   rts: bool = False) -> Transport:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in _SCHEMES:
        return _SCHEMES[scheme](url)
    if scheme == "sim":
        raise TransportError("sim:// is not available: the simulator is not loaded "
                             "(import console.sim_transport to register it)")
    return SerialTransport(url, baudrate=baudrate, dtr=dtr, rts=rts)


def _group_hint(path: str) -> str:
    try:
        group = grp.getgrgid(os.stat(path).st_gid).gr_name
    except (OSError, KeyError):
        group = "dialout"
    return (f"join the group '{group}' that owns it (dialout on Debian/Ubuntu, uucp on Arch): "
            f"sudo usermod -aG {group} $USER, then log in again")


def explain_open_error(url: str, exc: BaseException) -> str:
    """One line a person can act on, for a failure to open `url`."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code == errno.ENOENT or "No such file or directory" in text:
        return f"no such port {url}; {ports.found_text()}"
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return f"permission denied on {url}: {_group_hint(url)}"
    if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY) or "exclusively lock" in text:
        return f"port {url} is busy: another program has it open"
    return f"cannot open {url}: {text}"


class SerialTransport(Transport):
    def __init__(self, url: str, *, baudrate: int = 115200, dtr: bool = False,
                 rts: bool = False):
        self.url = url
        try:
            ser = serial.serial_for_url(url, baudrate=baudrate, timeout=READ_TIMEOUT_S,
                                        write_timeout=2.0, exclusive=True, do_not_open=True)
            # Before open(): an Arduino-style board resets when DTR goes high on connect.
            ser.dtr = dtr
            ser.rts = rts
            ser.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(explain_open_error(url, exc)) from exc
        self._ser = ser
        self._write_lock = threading.Lock()
        self._closed = False

    def read(self, max_bytes: int = 4096) -> bytes:
        try:
            waiting = self._ser.in_waiting
            return self._ser.read(min(max(waiting, 1), max_bytes))
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            # TypeError/AttributeError: pyserial's read after a concurrent close.
            raise TransportError(f"{self.url}: {self._gone(exc)}") from exc

    def fileno(self) -> int | None:
        # A local serial device (or pty) polls; socket://, rfc2217:// and loop:// are read by
        # a thread, as pyserial's read() on them waits for whole requests.
        if isinstance(self._ser, serial.serialposix.Serial):
            return self._ser.fileno()
        return None

    def read_available(self) -> bytes:
        try:
            waiting = self._ser.in_waiting
            # Readable with nothing waiting is a hang-up: pyserial's read raises for it.
            return self._ser.read(waiting or 1)
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            raise TransportError(f"{self.url}: {self._gone(exc)}") from exc

    def _gone(self, exc: BaseException) -> str:
        return "port closed" if self._closed else f"the port went away ({exc})"

    def write(self, data: bytes) -> None:
        with self._write_lock:
            try:
                self._ser.write(data)
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                raise TransportError(f"{self.url}: {self._gone(exc)}") from exc

    def reset_input(self) -> None:
        with contextlib.suppress(serial.SerialException, OSError):
            self._ser.reset_input_buffer()

    def cancel_read(self) -> None:
        cancel = getattr(self._ser, "cancel_read", None)
        if cancel is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                cancel()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.cancel_read()
        with self._write_lock, contextlib.suppress(serial.SerialException, OSError):
            self._ser.close()
