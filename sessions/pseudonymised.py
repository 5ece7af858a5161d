"""A client's record with its identities replaced and its free text withheld: what a screen in
presentation mode shows and what a pseudonymised export is made from.

An allow-list, not a scrubber: every view is built anew field by field, so a field added to
sessions/history.py is not carried until someone decides here how it may leave. Identities
become the database's keyed pseudonyms (sessions/pseudonyms.py): client, technicians, machine
serials, lots. Free text (notes, gate reasons and the interval answer, corrections) and health
data (the health fields, allergies, medications and the gate's answers) are withheld unless the
caller includes their category by name; included free text still has the client's and the
technicians' names, e-mails, dates and phone numbers taken out (sessions/redact.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sessions.errors import RecordError
from sessions.history import (
    ClientRecord,
    ClientView,
    ConsentView,
    EventView,
    GateView,
    HealthView,
    MachineView,
    NeedleView,
    PigmentView,
    SessionView,
    ZoneView,
)
from sessions.include import INCLUDE
from sessions.pseudonyms import Pseudonyms
from sessions.redact import redact

WITHHELD = "[withheld]"
INTERVAL = "interval"  # sessions.gate.INTERVAL: scheduling, not health
# Per event kind, the payload keys that may leave: a name alone always, (name, category) only
# when that category is included. Every other key, and every other kind's payload, is withheld.
EVENT_PAYLOAD: dict[str, tuple[str | tuple[str, str], ...]] = {
    "session-started": ("stage", "planned_zones", "machine", ("gate", "reasons")),
    "settings-applied": ("source", "adjustments"),
    "settings-refused": ("reason",),
    "pedal-up": ("ended_by",),
    "pass-marked": ("passes",),
    "stop": ("reason",),
    "fault": ("code", "message"),
    "link-lost": ("detail",),
    "machine-rebooted": ("boot_id",),
    "zone-changed": ("profile", "reasons"),
    "note": (("text", "notes"),),
    "correction": (("text", "corrections"),),
    "session-ended": ("outcome", "aftercare_given", "reason"),
}


def check_include(include: Collection[str]) -> frozenset[str]:
    unknown = sorted(set(include) - set(INCLUDE))
    if unknown:
        raise RecordError(f"cannot include {unknown[0]!r}: allowed {', '.join(INCLUDE)}")
    return frozenset(include)


def pseudonymise(record: ClientRecord, names: Pseudonyms,
                 include: Collection[str] = ()) -> ClientRecord:
    """`record` as it may be shown or exported pseudonymised (see the module's text)."""
    return _Pseudonymiser(record, names, check_include(include)).record()


class _Pseudonymiser:
    def __init__(self, record: ClientRecord, names: Pseudonyms, include: frozenset[str]):
        self.source, self.names, self.include = record, names, include
        self.alias = names.client(record.client.id)
        # Whose names are taken out of included free text: the client's and the technicians'.
        self.known = {record.client.name: self.alias,
                      **{s.technician: names.technician(s.technician)
                         for s in record.sessions if s.technician}}

    def text(self, value: str, category: str) -> str:
        if not value:
            return ""
        return redact(value, self.known) if category in self.include else WITHHELD

    def record(self) -> ClientRecord:
        r = self.source
        # The id stays for the screen's own lookups; no export writes it.
        client = ClientView(id=r.client.id, name=self.alias, phone="", email="",
                            date_of_birth=None)
        return ClientRecord(
            client=client, health=self.health(r.health),
            consents=tuple(ConsentView(procedure=c.procedure, photos=c.photos,
                                       version=WITHHELD, signed_on=c.signed_on)
                           for c in r.consents),
            sessions=tuple(self.session(s) for s in r.sessions))

    def health(self, h: HealthView | None) -> HealthView | None:
        if h is None or not self.include & {"health", "allergies", "medications"}:
            return None
        t = self.text
        fields = "health" in self.include
        return HealthView(
            hair_colour=t(h.hair_colour, "health"),
            hair_loss_stage=h.hair_loss_stage if fields else "",
            hair_loss_cause=t(h.hair_loss_cause, "health"),
            fitzpatrick=h.fitzpatrick if fields else None,
            skin_quality=t(h.skin_quality, "health"), allergies=t(h.allergies, "allergies"),
            patch_test=t(h.patch_test, "health"), medications=t(h.medications, "medications"))

    def machine(self, m: MachineView) -> MachineView:
        return MachineView(model=m.model, serial=m.serial if m.simulator
                           else self.names.serial(m.serial), firmware=m.firmware,
                           simulator=m.simulator)

    def gate(self, g: GateView) -> GateView | None:
        reasons = "reasons" in self.include
        if g.item != INTERVAL and not (reasons or "health" in self.include):
            return None  # a contraindication's answer is health data
        return GateView(item=g.item, present=g.present, decision=g.decision,
                        detail=g.detail if g.item == INTERVAL or "health" in self.include or
                        reasons else "", reason=self.text(g.reason, "reasons"))

    def session(self, s: SessionView) -> SessionView:
        return SessionView(
            id=s.id, started_at=s.started_at, ended_at=s.ended_at,
            technician=self.names.technician(s.technician), stage=s.stage,
            machine=self.machine(s.machine), planned_zones=s.planned_zones, outcome=s.outcome,
            aftercare_given=s.aftercare_given, per_run=s.per_run,
            gate=tuple(g for g in map(self.gate, s.gate) if g is not None),
            zones=tuple(ZoneView(zone=z.zone, profile=z.profile, reasons=z.reasons,
                                 coverage_pct=z.coverage_pct,
                                 target_density_pct=z.target_density_pct, passes=z.passes,
                                 notes=self.text(z.notes, "notes"), confirmed=z.confirmed,
                                 per_run=z.per_run, runs=z.runs, on_skin=z.on_skin)
                        for z in s.zones),
            pigments=tuple(PigmentView(zone=p.zone, brand=p.brand, shade=p.shade,
                                       dilution=p.dilution, lot=self.names.lot(p.lot),
                                       expiry=p.expiry) for p in s.pigments),
            needles=tuple(NeedleView(zone=n.zone, code=n.code, lot=self.names.lot(n.lot),
                                     expiry=n.expiry) for n in s.needles),
            telemetry=s.telemetry,  # numbers per run and zone only
            events=tuple(self.event(e) for e in s.events))

    def event(self, e: EventView) -> EventView:
        return EventView(id=e.id, seq=e.seq, at=e.at, kind=e.kind, zone=e.zone,
                         settings=e.settings, duration_ms=e.duration_ms,
                         corrects_id=e.corrects_id, payload=self.payload(e.kind, e.payload))

    def payload(self, kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for entry in EVENT_PAYLOAD.get(kind, ()):
            key, category = entry if isinstance(entry, tuple) else (entry, None)
            if key not in payload:
                continue
            value = payload[key]
            if category is not None and category not in self.include and \
                    isinstance(value, list):
                continue  # not even how many there were
            if key == "machine" and isinstance(value, dict):
                value = self.machine_json(value)
            elif category is not None:
                value = ([self.text(str(v), category) for v in value]
                         if isinstance(value, list) else self.text(str(value), category))
            out[key] = value
        return out

    def machine_json(self, m: Mapping[str, Any]) -> dict[str, Any]:
        sim = bool(m.get("simulator"))
        serial = str(m.get("serial", ""))
        return {"model": str(m.get("model", "")), "serial": serial if sim
                else self.names.serial(serial), "firmware": str(m.get("firmware", "")),
                "simulator": sim}
