"""What the host holds of one machine, wherever its link runs: in this process (link.Machine)
or in the machine service (client.MachineClient). The same status, the same commands and the
same events, so that the console drives either the same way."""

from __future__ import annotations

import contextlib
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from firmware_bridge.codec import Fault, Ident, State, Telemetry
from firmware_bridge.commands import LinkError, Op, Result, raise_for
from firmware_bridge.core import Knowledge
from firmware_bridge.events import Event, LinkHealth, LinkState
from protocols.envelope import SafetyEnvelope
from protocols.settings import MachineSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Status:
    """What the link knows now, as one frozen value (read from any thread)."""

    ident: Ident | None
    state: State | None
    faults: Fault
    knowledge: Knowledge
    applied: MachineSettings | None
    confirmed: bool
    link_state: LinkState
    telemetry: Telemetry | None
    envelope: SafetyEnvelope
    machine_envelope: SafetyEnvelope | None
    rto: float
    queued: int  # commands waiting behind the outstanding one


class MachineHandle(ABC):
    def __init__(self) -> None:
        self._subscribers: list[Callable[[Event], None]] = []

    # --- what the machine last reported (through the link's status) -----------------------

    @property
    @abstractmethod
    def status(self) -> Status: ...

    @property
    def ident(self) -> Ident | None:
        return self.status.ident

    @property
    def state(self) -> State | None:
        return self.status.state

    @property
    def faults(self) -> Fault:
        return self.status.faults

    @property
    def applied(self) -> MachineSettings | None:
        """The settings in force as the machine reported them; None if none or not known."""
        return self.status.applied

    @property
    def knowledge(self) -> Knowledge:
        return self.status.knowledge

    @property
    def confirmed(self) -> bool:
        """A SET answered by APPLIED since the settings were last unknown."""
        return self.status.confirmed

    @property
    def link_state(self) -> LinkState:
        return self.status.link_state

    @property
    def telemetry(self) -> Telemetry | None:
        return self.status.telemetry

    @property
    def envelope(self) -> SafetyEnvelope:
        return self.status.envelope

    @property
    def machine_envelope(self) -> SafetyEnvelope | None:
        return self.status.machine_envelope

    @property
    def rto(self) -> float:
        """The link's retransmission timeout now (seconds)."""
        return self.status.rto

    @property
    @abstractmethod
    def simulated(self) -> bool: ...

    @abstractmethod
    def health(self) -> LinkHealth | None: ...

    @abstractmethod
    def check(self, settings: MachineSettings) -> list[str]:
        """Why `settings` would be refused before sending (empty if they would be sent)."""

    # --- commands (from any thread but the link's) ------------------------------------------

    @abstractmethod
    def submit(self, op: Op, arg: object, callback: Callable[[Result], None]) -> None:
        """Carry out a command without waiting; `callback(result)` runs on the link's thread
        when it ends (keep it short: hand the result to your own thread)."""

    @abstractmethod
    def stop(self, *, wait: bool = True, timeout: float = 2.0) -> bool:
        """STOP, ahead of everything; True once the machine acknowledged it."""

    @abstractmethod
    def close(self, *, disarm: bool = True) -> None: ...

    def apply(self, settings: MachineSettings, *, timeout: float = 10.0) -> MachineSettings:
        """Send the three setpoints; returns what the machine confirmed it applied."""
        result = raise_for(self._request(Op.SET, settings, timeout), settings)
        assert result.applied is not None  # raise_for raises for a SET not confirmed
        return result.applied

    def arm(self, *, timeout: float = 10.0) -> None:
        raise_for(self._request(Op.ARM, None, timeout))

    def disarm(self, *, timeout: float = 10.0) -> None:
        raise_for(self._request(Op.DISARM, None, timeout))

    def clear_fault(self, *, timeout: float = 10.0) -> None:
        """The deliberate act after a latched fault; the machine is then DISARMED."""
        raise_for(self._request(Op.CLEAR_FAULT, None, timeout))

    def set_watchdog(self, timeout_ms: int, *, timeout: float = 10.0) -> None:
        """Shorten the machine's watchdog (100 to 500 ms, never longer than in force)."""
        raise_for(self._request(Op.WATCHDOG, timeout_ms, timeout))

    def _request(self, op: Op, arg: object, timeout: float) -> Result:
        """Carry out a command and wait for how it ended."""
        done = threading.Event()
        box: list[Result] = []

        def ended(result: Result) -> None:
            box.append(result)
            done.set()

        self.submit(op, arg, ended)
        if not done.wait(timeout):
            raise LinkError(f"{op.name}: no result within {timeout:.1f} s")
        return box[0]

    # --- events -----------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback(event)` on the link's thread for every event; returns an
        unsubscribe."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)
        return unsubscribe

    def _publish(self, event: Event) -> None:
        for cb in list(self._subscribers):
            try:
                cb(event)
            except Exception:  # a subscriber's bug must not stop the link
                log.exception("subscriber %r failed on %s", cb, type(event).__name__)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
