"""`smp conformance` in virtual time: the runner against a SimulatedMachine on a FakeClock,
through a transport whose every read advances the clock. Deterministic, and a whole run of
every clause costs well under a second of real time."""

from __future__ import annotations

from firmware_bridge.transport import Transport
from sim.clock import FakeClock
from sim.machine import SimulatedMachine
from sim.scenario import command

# A read advances the clock to the machine's next deadline, at least 1 ms (so a paced frame
# arrives in a few reads, not one per byte) and at most 5 ms.
MIN_STEP_S, MAX_STEP_S = 0.001, 0.005


class VirtualLine(Transport):
    """A paced 115200-baud line to a SimulatedMachine on a FakeClock."""

    def __init__(self, machine: SimulatedMachine, clock: FakeClock):
        self.url = "virtual://"
        self.machine, self.clock = machine, clock

    def now(self) -> float:
        return self.clock.now_ns() / 1e9

    def read(self, max_bytes: int = 4096) -> bytes:
        m = self.machine
        self.clock.advance(min(max(m.next_wakeup_s(), MIN_STEP_S), MAX_STEP_S))
        m.step()
        return m.transmit()

    def write(self, data: bytes) -> None:
        self.machine.receive(data)

    def close(self) -> None:
        return


class MachineOperator:
    """The simulator's controls, called directly (as its control channel does)."""

    name = "simulator"

    def __init__(self, machine: SimulatedMachine):
        self.machine = machine
        self.done: list[str] = []

    def can(self, action: str) -> bool:
        return True

    def do(self, action: str, prompt: str | None = None, idle=None) -> None:
        self.done.append(action)
        self.machine.do(command(action))


def virtual(*, quirks=(), seed=1, **options):
    clock = FakeClock(start_ns=10**12)
    machine = SimulatedMachine(clock, seed=seed, baud=115200, quirks=quirks, **options)
    return VirtualLine(machine, clock), MachineOperator(machine)
