"""What the link tells its subscribers: plain frozen dataclasses (the console and the recorder
consume them; nothing here refers to a thread, a port or a UI).

`at` is the link's monotonic clock (seconds, time.monotonic() in the process that runs the link)
when it learned of the event: for ordering and intervals, not a wall-clock date.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from firmware_bridge.codec import Fault, State, Telemetry
from protocols.settings import MachineSettings


class LinkState(StrEnum):
    CONNECTED = "connected"  # machine frames arriving (telemetry younger than 100 ms)
    STALE = "stale"  # nothing from the machine for 100 ms: late, maybe a glitch
    LOST = "lost"  # nothing for the watchdog time, or the port went away


@dataclass(frozen=True)
class TelemetryReceived:
    at: float
    telemetry: Telemetry
    ack: int = 0  # the seq of the last command the machine had acted on when it sent this

    @property
    def state(self) -> State:
        return State(self.telemetry.state)

    @property
    def faults(self) -> Fault:
        return Fault(self.telemetry.faults)


@dataclass(frozen=True)
class SettingsApplied:
    """The machine holds these settings: `applied` is what it reported, the only truth.

    `source` is "read-back" (its APPLIED answer to our SET `seq`) or "telemetry" (the
    setpoints its telemetry names, after an outcome was lost or when they changed without a
    SET answered; `requested` is then None and `seq` the command it had last acted on).
    """

    at: float
    requested: MachineSettings | None
    applied: MachineSettings
    seq: int
    source: str = "read-back"


@dataclass(frozen=True)
class SettingsUnknown:
    """A SET's outcome was lost: until the machine reports its setpoints they are unknown."""

    at: float
    requested: MachineSettings | None
    seq: int
    reason: str


@dataclass(frozen=True)
class UnsafeReport:
    """The machine sent what a conforming machine cannot (an unknown state, impossible
    values): the link has sent STOP. `what` says in one line what arrived."""

    at: float
    what: str


@dataclass(frozen=True)
class SettingsRefused:
    at: float
    requested: MachineSettings
    reason: str
    by: str  # "machine" (a NACK) or "bridge" (outside the adopted envelope, never sent)


@dataclass(frozen=True)
class StateChanged:
    at: float
    old: State | None
    new: State | None  # None: the machine reported a state this host does not know
    faults: Fault


@dataclass(frozen=True)
class FaultLatched:
    """New fault bits latched in the machine; clearing them is a person's deliberate act."""

    at: float
    new: Fault
    faults: Fault

    def __str__(self) -> str:
        return ", ".join(f.name for f in Fault if f and f in self.new and f.name is not None)


@dataclass(frozen=True)
class LinkHealth:
    at: float
    rtt_ms: float | None  # smoothed command round trip (None until measured)
    rto_ms: float  # retransmission timeout in force
    resend_ratio: float  # retransmitted command frames / command frames sent
    telemetry_age_ms: float | None  # since the last telemetry frame
    telemetry_lost: int  # gaps in the telemetry sequence numbers
    bad_frames: int  # frames dropped by the decoder (corrupt, CRC)
    heartbeat_gap_max_ms: float  # longest gap between heartbeats since the last report


@dataclass(frozen=True)
class LinkStateChanged:
    at: float
    old: LinkState
    new: LinkState
    reason: str


@dataclass(frozen=True)
class MachineRebooted:
    """The machine restarted (new boot id): it is disarmed and has forgotten its settings."""

    at: float
    old_boot_id: int
    new_boot_id: int


@dataclass(frozen=True)
class CommandFailed:
    at: float
    command: str
    reason: str


Event = (TelemetryReceived | SettingsApplied | SettingsUnknown | SettingsRefused | StateChanged
         | FaultLatched | LinkHealth | LinkStateChanged | MachineRebooted | CommandFailed
         | UnsafeReport)
