"""Fixtures for console tests: a record in tmp_path, a controller on the in-process simulator."""

from __future__ import annotations

import time
from datetime import date

import pytest

from console.controller import SessionController
from console.workflow import Cartridge, Pigment, Plan
from protocols import Dilution, NeedleSpec, Stage, Zone
from sessions.clients import ConsentForm, Health, NewClient
from sessions.gate import Contraindication

CLEAR = {c: False for c in Contraindication}
FAR = date(2030, 1, 1)
# The cartridge every zone of plan() has unless told otherwise: fitted with the first zone
# (select_zone(..., cartridge=NEEDLE), as the technician confirms it), no zone change after
# it asks for another.
NEEDLE = Cartridge(NeedleSpec.parse("0601RL"), "NL-77", FAR)


def wait_until(predicate, timeout=3.0, step=0.01):
    """Poll `predicate` until true; returns its last value (falsy on timeout)."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > end:
            return value
        time.sleep(step)


def new_client(name="Ann Lee") -> NewClient:
    return NewClient(name=name, phone="+44 20 7946 0000", date_of_birth=date(1980, 5, 17),
                     health=Health(hair_loss_stage="NW4", fitzpatrick=3, allergies="nickel"),
                     consent=ConsentForm(procedure=True, photos=False, version="v3",
                                         signed_on=date(2026, 1, 5)))


def plan(zones=(Zone.HAIRLINE, Zone.CROWN), stage=Stage.S1, conditions=(),
         cartridges=None) -> Plan:
    return Plan(technician="Tom Reyes", stage=stage, zones=tuple(zones),
                conditions=tuple(conditions),
                pigment=Pigment("Carbon Co", "Jet 1", Dilution.parse("20:1"), "PG-2026-001",
                                FAR),
                cartridges={z: NEEDLE for z in zones} | dict(cartridges or {}))


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'record.sqlite3'}"


@pytest.fixture
def store(db_url):
    from sessions.store import open_store

    s = open_store(db_url)
    yield s
    s.close()


@pytest.fixture
def controller(store, tmp_path):
    views = []
    c = SessionController(store, on_view=views.append, journal_dir=tmp_path / "journal")
    c.views = views
    c.connect("sim://?seed=3")
    yield c
    c.close()


@pytest.fixture(autouse=True)
def crash_files_in_tmp(tmp_path, monkeypatch):
    """An internal error in a test writes its crash file here, not in the user's data dir."""
    monkeypatch.setattr("console.crash.crash_dir", lambda: tmp_path / "crashes")
