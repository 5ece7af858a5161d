"""`sim://`: a simulated machine in this process, behind in-memory byte pipes.

A whole SimulatedMachine (firmware, physics, link faults) runs on the real monotonic clock in
its own thread, behind two byte pipes. console/sim_transport.py makes it a bridge transport
(the simulator itself speaks only the wire: docs/architecture.md). `sim://` URLs take options
as a query string: `sim://?serial=SIM-0042&model=SMP-R1&watchdog_ms=250&boot_id=1234&seed=7`.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Unpack
from urllib.parse import parse_qs, urlsplit

from sim.clock import MonotonicClock
from sim.machine import MachineOptions, SimulatedMachine


class BytePipe:
    """One direction of an in-memory serial line."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._closed = False

    def write(self, data: bytes) -> None:
        with self._cond:
            if self._closed:
                raise EOFError("pipe closed")
            self._buf += data
            self._cond.notify_all()

    def read(self, max_bytes: int, timeout: float) -> bytes:
        with self._cond:
            if not self._buf and not self._closed:
                self._cond.wait(timeout)
            if self._buf:
                out = bytes(self._buf[:max_bytes])
                del self._buf[:max_bytes]
                return out
            if self._closed:
                raise EOFError("pipe closed")
            return b""

    def clear(self) -> None:
        with self._cond:
            self._buf.clear()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class InProcessSim:
    """A SimulatedMachine on the monotonic clock, in a thread, behind two BytePipes."""

    def __init__(self, machine: SimulatedMachine | None = None,
                 **options: Unpack[MachineOptions]):
        self.machine = machine or SimulatedMachine(MonotonicClock(), **options)
        self.firmware = self.machine.firmware
        self.to_machine = BytePipe()
        self.to_host = BytePipe()
        self._running = True
        self._thread = threading.Thread(target=self._run, name="smp-sim", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        m = self.machine
        while self._running:
            try:
                data = self.to_machine.read(4096, m.next_wakeup_s())
            except EOFError:
                break
            if data:
                m.receive(data)
            m.step()
            out = m.transmit()
            if out:
                with contextlib.suppress(EOFError):
                    self.to_host.write(out)

    def close(self) -> None:
        self._running = False
        self.to_machine.close()
        self.to_host.close()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


_INT_OPTIONS = {"watchdog_ms", "boot_id", "seed"}
_STR_OPTIONS = {"serial", "model"}


def options_from_url(url: str) -> MachineOptions:
    """The machine options a `sim://?...` URL names; ValueError, naming the option, if wrong."""
    options: MachineOptions = {}
    for key, values in parse_qs(urlsplit(url).query).items():
        if key in _INT_OPTIONS:
            try:
                number = int(values[-1], 0)
            except ValueError:
                raise ValueError(f"{key} must be a whole number") from None
            if key == "watchdog_ms":
                options["watchdog_ms"] = number
            elif key == "boot_id":
                options["boot_id"] = number
            else:
                options["seed"] = number
        elif key == "serial":
            options["serial"] = values[-1]
        elif key == "model":
            options["model"] = values[-1]
        else:
            allowed = ", ".join(sorted(_INT_OPTIONS | _STR_OPTIONS))
            raise ValueError(f"unknown option {key!r} (allowed: {allowed})")
    return options
