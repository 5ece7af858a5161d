"""What the console shows: plain frozen view state built by the controller.

The screen renders these and nothing else: no ORM row, no serial object, no bridge event
reaches a widget. Every value here is what the machine reported or the record committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from console.workflow import Cartridge
from firmware_bridge.codec import Fault, State
from protocols import MachineSettings, Stage, Zone
from sessions.sink import RecordStatus

REPLAY = "REPLAY"  # on every frame of a replay: what is shown is the past, not the machine


class MachineState(StrEnum):
    UNKNOWN = "UNKNOWN"  # not reported, or reported in a way this host does not understand
    DISARMED = "DISARMED"
    ARMED = "ARMED"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"  # latched by STOP only: re-arming is a deliberate act
    FAULT = "FAULT"  # any other latched fault


class Link(StrEnum):
    CONNECTED = "CONNECTED"
    STALE = "STALE"
    LOST = "LOST"
    NONE = "NOT CONNECTED"


def machine_state(state: State | None, faults: Fault) -> MachineState:
    if state is None:
        return MachineState.UNKNOWN
    if state == State.DISARMED:
        return MachineState.DISARMED
    if state == State.ARMED:
        return MachineState.ARMED
    if state == State.RUNNING:
        return MachineState.RUNNING
    return MachineState.STOPPED if faults == Fault.STOP else MachineState.FAULT


# Each latched fault: what happened, and what the technician does about it.
FAULT_HELP: dict[Fault, tuple[str, str]] = {
    Fault.STOP: ("STOP was sent", "check the client and the needle; re-arm ({arm}) to continue"),
    Fault.LINK_LOST: ("the machine heard nothing from the console and stopped the needle",
                      "check the cable; once the link is back, re-arm ({arm})"),
    Fault.STALL: ("the motor stalled", "lift the needle, check the cartridge is not jammed, "
                  "then re-arm ({arm})"),
    Fault.OVERCURRENT: ("the motor drew too much current (a short or a jam)",
                        "check the cartridge and the cable before re-arming ({arm})"),
    Fault.OVERTEMP: ("the motor is too hot", "let it cool down, then re-arm ({arm})"),
    Fault.DEPTH: ("the depth actuator stopped short of the set depth",
                  "seat the cartridge fully, then re-arm ({arm})"),
}


def fault_names(faults: Fault) -> tuple[str, ...]:
    """The latched bits' names, in the schema's order (each a named member of Fault)."""
    return tuple(f.name for f in Fault if f and f in faults and f.name is not None)


def fault_text(faults: Fault, arm: str = "a") -> tuple[str, str]:
    """(cause, what to do) for the latched faults, most specific first; `arm` is the key that
    arms, as the console's key map has it."""
    bits = [f for f in FAULT_HELP if f in faults]
    if not bits:
        return "", ""
    # STOP is usually latched alongside the real cause (the bridge stops on a fault): show
    # the cause a technician must act on first.
    bits.sort(key=lambda f: f == Fault.STOP)
    causes = "; ".join(FAULT_HELP[f][0] for f in bits)
    return causes, FAULT_HELP[bits[0]][1].format(arm=arm)


@dataclass(frozen=True)
class MachineView:
    connected: bool = False
    simulator: bool = False
    identity: str = ""  # "SIMULATOR (firmware 1.0.0)" or "SMP-R1 serial R1-0042 ..."
    url: str = ""
    state: MachineState = MachineState.UNKNOWN
    link: Link = Link.NONE
    pedal: bool = False
    motor: bool = False
    rate_hz: float | None = None
    voltage_v: float | None = None
    current_a: float | None = None
    depth_mm: float | None = None
    temperature_c: float | None = None
    faults: tuple[str, ...] = ()
    fault_cause: str = ""
    fault_action: str = ""
    rtt_ms: float | None = None
    telemetry_age_ms: float | None = None
    # When this console last heard telemetry (time.monotonic()), and whether that is too long
    # ago to believe anything it said: then every value and the state are shown as unknown.
    telemetry_at: float | None = None
    stale: bool = False
    resend_ratio: float = 0.0
    applied: MachineSettings | None = None  # the settings the machine reports holding
    # False when a command's outcome was lost: the machine's settings are then not known
    # (shown as "settings not confirmed", never as the old values) until it reports them.
    settings_known: bool = True
    envelope: str = ""
    sim_caption: str = ""  # what the simulator's playing scenario says to point out
    # Recent values for the sparklines, one point per screen update.
    rate_trend: tuple[float, ...] = ()
    voltage_trend: tuple[float, ...] = ()
    current_trend: tuple[float, ...] = ()
    depth_trend: tuple[float, ...] = ()


@dataclass(frozen=True)
class ZoneStatus:
    zone: Zone
    planned: bool
    coverage_pct: int | None  # as the technician recorded it
    run_ms: int  # needle running time in this zone
    runs: int
    settings: MachineSettings | None  # the last the machine confirmed in this zone
    passes: int = 0  # marked by the technician
    # The zone's cartridge: as planned, or as last fitted for it (None: unplanned, not yet).
    cartridge: Cartridge | None = None


@dataclass(frozen=True)
class WorkView:
    session_id: int
    client: str  # the name
    stage: Stage
    zone: Zone | None
    profile: str
    reasons: tuple[str, ...]
    advisories: tuple[str, ...]
    target_density_pct: int | None
    zones: tuple[ZoneStatus, ...]
    run_ms: int  # the needle run going on now (0 if none)
    armed_once: bool
    profiles: tuple[str, ...] = ()  # the library's profiles for this zone, default first
    client_alias: str = ""  # the client's pseudonym, shown instead in presentation mode
    fitted: Cartridge | None = None  # on the machine, as the technician confirmed it


def cartridge_refusal(m: MachineView, disarm: str) -> str:
    """Why the cartridge may not be changed now ("" if it may): not while the needle could
    move, nor while nobody knows whether it could. `disarm` is the key that disarms, as the
    console's key map has it."""
    if m.stale or m.state == MachineState.UNKNOWN:
        return (f"the machine's state is unknown: once it reports, disarm ({disarm}) before "
                "changing the cartridge")
    if m.state in (MachineState.ARMED, MachineState.RUNNING):
        return f"the machine is {m.state.value}: disarm ({disarm}) before changing the cartridge"
    return ""


@dataclass(frozen=True)
class View:
    machine: MachineView = field(default_factory=MachineView)
    work: WorkView | None = None
    log: tuple[str, ...] = ()  # recent events of the session
    record: RecordStatus = field(default_factory=RecordStatus)
    revision: int = 0
    replay: bool = False  # a recorded session played back (console/replay.py): no machine

    @property
    def banners(self) -> tuple[str, ...]:
        """The words that must be seen, whatever the colours."""
        m = self.machine
        out = [REPLAY] if self.replay else []
        if m.simulator:
            out.append("SIMULATOR")
        if not self.record.writing:
            out.append(f"RECORD NOT WRITING: {self.record.reason}")
        if m.connected and m.link == Link.LOST:
            out.append("LINK LOST")
        elif m.connected and m.stale:
            out.append("NO TELEMETRY: the machine's state is unknown")
        if m.state == MachineState.FAULT:
            out.append(f"FAULT: {m.fault_cause} - {m.fault_action}")
        elif m.state == MachineState.STOPPED:
            out.append(f"STOPPED - {m.fault_action}")
        return tuple(out)
