"""What the link tells its subscribers: plain frozen dataclasses (the console and the recorder
consume them; nothing here refers to a thread, a port or a UI).

`at` is wall-clock time (time.time()) when the bridge learned of the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from firmware_bridge.codec import Fault, State, Telemetry
from protocols.settings import MachineSettings


class LinkState(StrEnum):
    CONNECTED = "connected"  # machine frames arriving (telemetry younger than 100 ms)
    STALE = "stale"  # nothing from the machine for 100 ms: late, maybe a glitch
    LOST = "lost"  # nothing for the default watchdog time (250 ms), or the port went away


@dataclass(frozen=True)
class TelemetryReceived:
    at: float
    telemetry: Telemetry

    @property
    def state(self) -> State:
        return State(self.telemetry.state)

    @property
    def faults(self) -> Fault:
        return Fault(self.telemetry.faults)


@dataclass(frozen=True)
class SettingsApplied:
    """The machine confirmed these settings; `applied` is its read-back, the only truth."""

    at: float
    requested: MachineSettings
    applied: MachineSettings
    seq: int


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
    new: State
    faults: Fault


@dataclass(frozen=True)
class FaultLatched:
    """New fault bits latched in the machine; clearing them is a person's deliberate act."""

    at: float
    new: Fault
    faults: Fault

    def __str__(self) -> str:
        return ", ".join(f.name for f in Fault if f and f in self.new)


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


Event = (TelemetryReceived | SettingsApplied | SettingsRefused | StateChanged | FaultLatched
         | LinkHealth | LinkStateChanged | MachineRebooted | CommandFailed)
