"""What a replay of a session reads: the session's header, its timeline (events) and its
flight record (sessions/flight.py), as plain objects. Reads only; call it off the UI thread.

    rs = load(store, session_id)            # RecordError: no such session / no flight record
    rs.marks                                # applies, arms, runs, stops, faults, notes...
    rs.flight.frame_at(rs.start_us)         # the machine's own frames
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from protocols import Stage
from sessions import flight
from sessions.errors import RecordError
from sessions.history import EventView, MachineView, timeline
from sessions.models import Client, Outcome, SessionRow, outcome_of
from sessions.pseudonyms import Pseudonyms
from sessions.store import Store

# Notes the console writes itself (console/controller.py): no free text of a person's.
CONSOLE_NOTES = ("armed", "disarmed", "latched fault cleared by the technician")


@dataclass(frozen=True)
class Mark:
    """An entry of the replay's timeline, to jump to."""

    at_us: int
    kind: str  # apply, arm, disarm, run, run-end, stop, fault, note, zone, link, ...
    text: str  # what the timeline says (presentation mode: no free text)
    event: EventView


@dataclass(frozen=True)
class ReplaySession:
    session_id: int
    client: str  # the name, or in presentation mode the pseudonym
    technician: str  # likewise
    stage: Stage
    machine: MachineView  # the serial pseudonymised in presentation mode
    started_at: datetime
    ended_at: datetime | None
    outcome: Outcome | None  # None: open
    events: tuple[EventView, ...]
    marks: tuple[Mark, ...]
    flight: flight.FlightLog
    presentation: bool

    @property
    def start_us(self) -> int:
        """The session's start (or its first frame, were that earlier)."""
        started = flight.to_us(self.started_at)
        first = self.flight.first_us
        return started if first is None else min(started, first)

    @property
    def end_us(self) -> int:
        return max(self.flight.last_us or 0, self.marks[-1].at_us if self.marks else 0,
                   self.start_us)


_NO_FLIGHT = ("session {} has no flight record (recorded before the flight recorder, or "
              "pruned after its retention): its timeline is in the history")


def load(store: Store, session_id: int, *, presentation: bool = False,
         first_chunks: int = 2) -> ReplaySession:
    """The session, its timeline, and its flight index with the first chunks decoded."""
    with store.reading() as s:
        row = s.execute(select(SessionRow, Client.name).join(
            Client, Client.id == SessionRow.client_id).where(SessionRow.id == session_id)
        ).first()
        if row is None:
            raise RecordError(f"no session with id {session_id} in the record")
        sr, name = row
        header = (sr.client_id, name, sr.technician, Stage(sr.stage), sr.started_at,
                  sr.ended_at, outcome_of(sr.outcome),
                  MachineView(sr.machine_model, sr.machine_serial, sr.machine_firmware,
                              sr.simulator))
    client_id, name, technician, stage, started, ended, outcome, machine = header
    log = flight.FlightLog(store, session_id)
    if not log.index:
        raise RecordError(_NO_FLIGHT.format(session_id))
    if presentation:
        names = Pseudonyms(store)
        name, technician = names.client(client_id), names.technician(technician)
        if not machine.simulator:
            machine = MachineView(machine.model, names.serial(machine.serial),
                                  machine.firmware, False)
    events = tuple(timeline(store, session_id))
    log.load(range(min(first_chunks, len(log.index))))
    return ReplaySession(session_id, name, technician, stage, machine, started, ended, outcome,
                         events, tuple(marks(events, presentation=presentation)), log,
                         presentation)


def marks(events: tuple[EventView, ...], *, presentation: bool = False) -> list[Mark]:
    out = []
    for e in events:
        kind, text = describe(e, presentation=presentation)
        out.append(Mark(flight.to_us(e.at), kind, text, e))
    return out


def describe(e: EventView, *, presentation: bool = False) -> tuple[str, str]:
    """(kind, one line) for an event; presentation mode leaves out what a person wrote."""
    p = e.payload
    if e.kind == "settings-applied":
        source = " (from its telemetry)" if p.get("source") == "telemetry" else ""
        return "apply", f"applied {e.settings}{source}"
    if e.kind == "note":
        text = str(p.get("text", ""))
        if text in ("armed", "disarmed"):
            return text.removesuffix("ed"), text
        if presentation and text not in CONSOLE_NOTES:
            return "note", "note (text hidden: presentation mode)"
        return "note", f"note: {text}"
    if e.kind == "correction":
        return "note", ("correction (text hidden: presentation mode)" if presentation else
                        f"correction of event {e.corrects_id}: {p.get('text', '')}")
    if e.kind == "pedal-down":
        return "run", "needle running"
    if e.kind == "pedal-up":
        ran = "" if e.duration_ms is None else f": {e.duration_ms / 1000:.1f} s"
        return "run-end", f"needle stopped{ran}"
    if e.kind == "stop":
        return "stop", f"STOP: {p.get('reason', '')}".rstrip(": ")
    if e.kind == "fault":
        return "fault", f"FAULT {p.get('code', '')}: {p.get('message', '')}".rstrip(": ")
    if e.kind == "zone-changed":
        return "zone", f"zone {e.zone}" + (f", profile {p['profile']}" if p.get("profile")
                                           else "")
    if e.kind in ("link-lost", "link-restored"):
        return "link", e.kind.replace("-", " ") + (f": {p['detail']}" if p.get("detail")
                                                   else "")
    if e.kind in ("settings-refused", "settings-unknown"):
        return "settings", f"{e.kind.replace('-', ' ')}: {p.get('reason', '')}"
    if e.kind == "settings-requested":
        return "request", f"requested {e.settings}"
    return e.kind, e.kind.replace("-", " ")
