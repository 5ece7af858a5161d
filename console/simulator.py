"""The trainer's controls of a simulated machine, wherever it runs: commands in the scenario
language ("pedal down", "skin thick", "fault stall", "clear stall", "play hairline-pass").

The console's simulator runs in a process of its own and is driven through its control socket
(sim.control); the in-process one (`sim://`, for unit tests) directly. Calls may wait on a
socket: the screens make them from a worker, never on the UI thread.
"""

from __future__ import annotations

from typing import Protocol

from sim.machine import SimulatedMachine
from sim.scenario import act


class Controls(Protocol):
    def do(self, line: str) -> str:
        """Carry out one command now; raises an SmpError with the simulator's reason."""
        ...

    def caption(self) -> str:
        """What the playing scenario asks the trainer to point out ("" if nothing)."""
        ...

    def close(self) -> None: ...


class InProcess:
    """A SimulatedMachine in this process (sim://)."""

    def __init__(self, machine: SimulatedMachine) -> None:
        self.machine = machine

    def do(self, line: str) -> str:
        act(self.machine, line)
        return "ok"

    def caption(self) -> str:
        return self.machine.caption

    def close(self) -> None:
        return  # the transport closes the machine


class Remote:
    """A simulator in another process, through its control socket."""

    def __init__(self, socket_path: str) -> None:
        from sim.control import SimControl

        self._control = SimControl(socket_path)

    def do(self, line: str) -> str:
        return self._control.do(line)

    def caption(self) -> str:
        return str(self._control.status().get("caption", ""))

    def close(self) -> None:
        self._control.close()
