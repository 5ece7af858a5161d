"""`sim://`: the in-process simulated machine (sim/inprocess.py) as a bridge transport.

Here, in the package that wires the others together, because the simulator speaks only the
wire (docs/architecture.md): it never imports the bridge's transports. Importing this module
registers the scheme; the console, `smp machine serve` and `smp conformance` do.
"""

from __future__ import annotations

from firmware_bridge.transport import Transport, TransportError, register_scheme
from sim.inprocess import InProcessSim, options_from_url


class SimTransport(Transport):
    """The host's end of an InProcessSim; `simulator` gives the trainer's controls."""

    simulator: InProcessSim

    def __init__(self, sim: InProcessSim, url: str = "sim://"):
        self.url = url
        self.simulator = sim

    def read(self, max_bytes: int = 4096) -> bytes:
        try:
            return self.simulator.to_host.read(max_bytes, 0.05)
        except EOFError:
            raise TransportError(f"{self.url}: the simulator stopped") from None

    def write(self, data: bytes) -> None:
        try:
            self.simulator.to_machine.write(data)
        except EOFError:
            raise TransportError(f"{self.url}: the simulator stopped") from None

    def reset_input(self) -> None:
        self.simulator.to_host.clear()

    def close(self) -> None:
        self.simulator.close()


def open_sim(url: str) -> SimTransport:
    try:
        return SimTransport(InProcessSim(**options_from_url(url)), url)
    except ValueError as exc:
        raise TransportError(f"{url}: {exc}") from None


register_scheme("sim", open_sim)
