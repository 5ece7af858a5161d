"""A replay's picture at one instant: the working screen's `View`, built from the machine's
recorded frames and the session's timeline instead of a live link (no machine, no controller).

Pure and quick: it reads only the chunks the flight log has decoded already (`needs` says
which those are; the screen has a worker load them), so the UI thread never waits on the
record. What it shows of the machine (state, pedal, measured values, the setpoints in force)
is the frame in force at that instant, as the machine sent it; the rest (zone, profile, log)
comes from the events recorded up to then.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from console.view import (
    Link,
    MachineView,
    View,
    WorkView,
    ZoneStatus,
    fault_names,
    fault_text,
    machine_state,
)
from firmware_bridge import Fault, State
from firmware_bridge.schema import (
    DC_PER_C,
    DHZ_PER_HZ,
    MA_PER_A,
    MV_PER_V,
    STALE_AFTER_MS,
    UM_PER_MM,
    Flag,
)
from protocols import MachineSettings, Zone
from sessions.flight import Frame
from sessions.replay import Mark, ReplaySession
from sessions.sink import RecordStatus

TREND_S = 12.0  # the sparklines: 60 points, one every 0.2 s, as the live screen draws them
TREND_EVERY_US = 200_000
STALE_US = STALE_AFTER_MS * 1000  # as the link judges it
LOG_LINES = 8


def needs(rs: ReplaySession, at_us: int) -> tuple[int, int]:
    """The span of frames a picture at `at_us` reads (the sparklines look back)."""
    return at_us - int(TREND_S * 1_000_000), at_us


def ready(rs: ReplaySession, at_us: int) -> bool:
    return rs.flight.has(*needs(rs, at_us))


@dataclass(frozen=True)
class Position:
    at_us: int
    marks_done: int  # how many marks are at or before `at_us`


def position(rs: ReplaySession, at_us: int) -> Position:
    return Position(at_us, bisect.bisect_right([m.at_us for m in rs.marks], at_us))


def settings_of(f: Frame) -> MachineSettings | None:
    if (f.set_depth_um, f.set_rate_dhz, f.set_voltage_mv) == (0, 0, 0):
        return None  # none since boot
    try:
        return MachineSettings.from_wire(f.set_depth_um, f.set_rate_dhz, f.set_voltage_mv)
    except ValueError:
        return None  # outside the hard limits: the live link would have said UNSAFE


def view_at(rs: ReplaySession, at_us: int, *, revision: int = 0) -> View:
    """The working screen's View at `at_us` of the session (REPLAY on it)."""
    log = rs.flight
    f = log.cached_frame_at(at_us)
    h = log.cached_health_at(at_us)
    start, end = needs(rs, at_us)
    trend = log.cached_window(start, end)
    done = position(rs, at_us).marks_done
    marks = rs.marks[:done]
    identity = str(rs.machine)
    link = Link.CONNECTED
    for m in marks:
        if m.event.kind == "link-lost":
            link = Link.LOST
        elif m.event.kind == "link-restored":
            link = Link.CONNECTED
    if f is None:
        mv = MachineView(connected=True, simulator=rs.machine.simulator, identity=identity,
                         link=Link.NONE if link != Link.LOST else link)
    else:
        faults = Fault(f.faults)
        state = State(f.state) if f.state in State._value2member_map_ else None
        cause, action = fault_text(faults)
        if link == Link.CONNECTED and at_us - f.at_us > STALE_US:
            link = Link.STALE
        known = True
        for m in marks:
            if m.event.kind == "settings-unknown":
                known = False
            elif m.event.kind == "settings-applied":
                known = True
        points = trend[::TREND_EVERY_US // 20_000]
        mv = MachineView(
            connected=True, simulator=rs.machine.simulator, identity=identity,
            state=machine_state(state, faults), link=link, pedal=bool(f.flags & Flag.PEDAL),
            motor=bool(f.flags & Flag.MOTOR), rate_hz=f.rate_dhz / DHZ_PER_HZ,
            voltage_v=f.voltage_mv / MV_PER_V, current_a=f.current_ma / MA_PER_A,
            depth_mm=f.depth_um / UM_PER_MM, temperature_c=f.temperature_dc / DC_PER_C,
            faults=fault_names(faults), fault_cause=cause,
            fault_action=action,
            rtt_ms=None if h is None or h.rtt_us is None else h.rtt_us / 1000,
            telemetry_age_ms=None if h is None or h.age_us is None else h.age_us / 1000,
            resend_ratio=0.0 if h is None else h.resend_ppm / 1_000_000,
            applied=settings_of(f), settings_known=known,
            rate_trend=tuple(p.rate_dhz / DHZ_PER_HZ for p in points),
            voltage_trend=tuple(p.voltage_mv / MV_PER_V for p in points),
            current_trend=tuple(p.current_ma / MA_PER_A for p in points),
            depth_trend=tuple(p.depth_um / UM_PER_MM for p in points))
    return View(machine=mv, work=_work(rs, marks, at_us, f), log=tuple(
        f"{m.event.at:%H:%M:%S} {m.text}" for m in marks[-LOG_LINES:]),
        record=RecordStatus(), revision=revision, replay=True)


def _work(rs: ReplaySession, marks: tuple[Mark, ...], at_us: int, f: Frame | None) -> WorkView:
    zone: Zone | None = None
    profile = ""
    reasons: tuple[str, ...] = ()
    runs: dict[Zone, list[int]] = {}
    armed_once = False
    run_from: int | None = None  # when the pedal went down, while it is down
    for m in marks:
        e = m.event
        if e.kind == "zone-changed" and e.zone:
            zone = Zone(e.zone)
            profile = str(e.payload.get("profile", ""))
            reasons = tuple(map(str, e.payload.get("reasons", ())))
        elif m.kind == "arm":
            armed_once = True
        elif e.kind == "pedal-down":
            run_from = m.at_us
        elif e.kind == "pedal-up":
            run_from = None
            if e.zone:
                runs.setdefault(Zone(e.zone), []).append(e.duration_ms or 0)
    run_ms = 0
    if f is not None and f.state == State.RUNNING and run_from is not None:
        run_ms = max(0, (at_us - run_from) // 1000)
    zones = tuple(ZoneStatus(z, False, None, sum(runs.get(z, ())), len(runs.get(z, ())),
                             settings_of(f) if f is not None and z == zone else None)
                  for z in Zone)
    return WorkView(session_id=rs.session_id, client=rs.client, stage=rs.stage, zone=zone,
                    profile=profile, reasons=reasons, advisories=(), target_density_pct=None,
                    zones=zones, run_ms=run_ms,
                    armed_once=armed_once, client_alias=rs.client)


def clock_text(rs: ReplaySession, at_us: int) -> str:
    """Where the replay is: elapsed of total, and the wall time (UTC)."""
    from sessions.flight import from_us

    def hms(us: int) -> str:
        s = max(0, us) // 1_000_000
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"

    return (f"{hms(at_us - rs.start_us)} of {hms(rs.end_us - rs.start_us)}  "
            f"({from_us(at_us):%Y-%m-%d %H:%M:%S} UTC)")
