"""Building records for tests through the public Python API."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from protocols import Dilution, MachineSettings, NeedleSpec, Stage, Zone
from sessions.clients import ConsentForm, Health, NewClient, add_client
from sessions.gate import Contraindication
from sessions.recorder import Machine, Recorder

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CLEAR = {c: False for c in Contraindication}
REAL = Machine("Rotary One", "R1-0042", "1.4.2")


class FakeClock:
    def __init__(self, start: datetime = T0):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


def settings(depth="1.50", rate="110", volt="6.5") -> MachineSettings:
    return MachineSettings(depth_mm=Decimal(depth), rate_hz=Decimal(rate),
                           voltage_v=Decimal(volt))


def client(store, name="Ann Lee", **health) -> int:
    return add_client(store, NewClient(
        name=name, phone="+44 20 7946 0000", email=f"{name.split()[0].lower()}@example.org",
        date_of_birth=date(1980, 5, 17),
        health=Health(hair_loss_stage="NW4", hair_loss_cause="androgenetic", fitzpatrick=3,
                      allergies="nickel", medications="none", **health),
        consent=ConsentForm(procedure=True, photos=False, version="v3",
                            signed_on=date(2026, 3, 1))))


def session(store, client_id, clock, *, zones=(Zone.HAIRLINE, Zone.CROWN), stage=Stage.S1,
            machine=REAL, lot="PG-2026-001", needle_lot="NL-77", depth="1.50",
            technician="Tom Reyes", overrides=None, coverage=30, end=True,
            answers=CLEAR) -> Recorder:
    """A typical session: zones worked with settings, pigment and needle, then completed."""
    rec = Recorder.start(store, client_id=client_id, technician=technician, stage=stage,
                         machine=machine, planned_zones=list(zones), answers=answers,
                         overrides=overrides, clock=clock)
    rec.use_needle(needle=NeedleSpec.parse("0601RL"), lot=needle_lot, expiry=date(2029, 1, 1))
    for zone in zones:
        clock.advance(minutes=1)
        rec.zone_changed(zone, profile=f"{zone.value}-standard", reasons=[f"{zone.value} base"],
                         target_density_pct=30)
        rec.settings_requested(settings(depth))
        rec.settings_applied(settings(depth))
        rec.use_pigment(brand="Carbon Co", shade="Jet 1", dilution=Dilution.parse("20:1"),
                        lot=lot, expiry=date(2028, 6, 30), zone=zone)
        rec.pedal_down()
        clock.advance(seconds=90)
        rec.pedal_up()
        rec.record_coverage(zone, coverage_pct=coverage, passes=2, notes=f"{zone.value} ok")
    if end:
        clock.advance(minutes=5)
        rec.end(aftercare_given=True)
    return rec
