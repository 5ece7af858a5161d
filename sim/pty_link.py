"""A simulated machine behind a real pseudo-terminal, for integration tests and `smp sim --pty`.

    link = PtyLink()            # a Firmware on the monotonic clock
    path = link.start()         # e.g. /dev/pts/7: open it like any serial port
    ...
    link.close()

The byte path is easy to wrap: `host_to_machine` and `machine_to_host` are filters (bytes in,
bytes to pass on out), where pacing to a baud rate and fault injection can be added. Bytes the
host does not read are dropped once the pty's buffer is full, as a real UART would drop them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import tty
from collections.abc import Callable

from sim.clock import MonotonicClock
from sim.firmware import Firmware

TICK_S = 0.001

ByteFilter = Callable[[bytes], bytes]


class PtyLink:
    def __init__(self, firmware: Firmware | None = None, **firmware_options):
        self.clock = MonotonicClock()
        self.firmware = firmware or Firmware(self.clock, **firmware_options)
        self.firmware.output = self._emit
        self.host_to_machine: ByteFilter | None = None
        self.machine_to_host: ByteFilter | None = None
        self.dropped = 0  # bytes lost because the host was not reading
        self.path: str | None = None
        self._master = self._slave = -1
        self._wake_r = self._wake_w = -1
        self._running = False
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Open the pty and start the firmware thread; returns the path the host opens."""
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self._wake_r, self._wake_w = os.pipe()
        self.path = os.ttyname(self._slave)
        self._running = True
        self._thread = threading.Thread(target=self._run, name="smp-sim-pty", daemon=True)
        self._thread.start()
        return self.path

    def _emit(self, data: bytes) -> None:
        if self.machine_to_host is not None:
            data = self.machine_to_host(data)
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                self.dropped += len(view)
                return
            except OSError:
                return
            view = view[n:]

    def _run(self) -> None:
        fw = self.firmware
        while self._running:
            try:
                ready, _, _ = select.select([self._master, self._wake_r], [], [], TICK_S)
            except (OSError, ValueError):
                break
            if self._master in ready:
                try:
                    data = os.read(self._master, 4096)
                except BlockingIOError:
                    data = b""
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        break
                    data = b""
                if data and self.host_to_machine is not None:
                    data = self.host_to_machine(data)
                if data:
                    fw.feed(data)
            fw.tick()

    def close(self) -> None:
        self._running = False
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = self._wake_r = self._wake_w = -1

    def __enter__(self) -> PtyLink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve() -> None:  # pragma: no cover - interactive
    """Run a simulated machine on a pty until interrupted; prints the path to open."""
    import time

    with PtyLink() as link:
        print(link.path, flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":  # pragma: no cover
    serve()
