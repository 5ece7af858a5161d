"""Control characters and bidirectional overrides are refused by every writer of the record
(whoever calls it: console, command line, tests), in one line naming the field; device strings
are stored as printable ASCII."""

from datetime import date

import pytest
from pydantic import ValidationError

from protocols import Dilution, NeedleSpec, Stage, Zone
from protocols.text import UnsafeText
from sessions.clients import ConsentForm, Health, NewClient, add_client
from sessions.errors import GateRefused
from sessions.gate import Contraindication
from sessions.history import client_record
from sessions.recorder import Machine, Recorder
from sessions.store import open_store
from tests.sessions.factory import CLEAR, FakeClock, client

ESCAPES = ["\x1b]0;owned\x07", "\x1b[2J", "\x07", "\u202e"]


@pytest.fixture
def store(sqlite_url):
    s = open_store(sqlite_url)
    yield s
    s.close()


def _field_error(exc: ValidationError) -> str:
    (err,) = exc.errors()
    return err["msg"]


@pytest.mark.parametrize("bad", ESCAPES)
@pytest.mark.parametrize("field", ["name", "phone", "email"])
def test_client_identity_fields(field, bad):
    values = {"name": "Ann Lee", field: f"x{bad}y"}
    with pytest.raises(ValidationError) as err:
        NewClient(**values)
    assert _field_error(err.value).startswith(f"Value error, {field}: ")
    assert "is not allowed" in _field_error(err.value)
    assert bad not in str(err.value) and "x" + bad not in repr(err.value)  # input hidden


@pytest.mark.parametrize("field", ["hair_colour", "hair_loss_cause", "skin_quality",
                                   "allergies", "patch_test", "medications"])
def test_health_fields(field):
    with pytest.raises(ValidationError) as err:
        Health(**{field: "nickel\x1b[2J"})
    assert "nickel" not in str(err.value)  # never the health datum in an error
    assert f"{field.replace('_', ' ')}: control character U+001B (ESC)" in str(err.value)


def test_multi_line_health_notes_keep_their_lines_and_the_consent_version_is_checked():
    assert Health(allergies="nickel\nlatex").allergies == "nickel\nlatex"
    with pytest.raises(ValidationError, match="hair colour: control character U\\+000A"):
        Health(hair_colour="dark\nbrown")
    with pytest.raises(ValidationError, match="version: U\\+202E"):
        ConsentForm(procedure=True, photos=False, version="v3\u202e", signed_on=date.today())


def test_nothing_is_written_when_a_client_is_refused(store):
    with pytest.raises(ValidationError):
        add_client(store, NewClient(name="Ann \x1b[2JLee"))
    from sessions.history import list_clients

    assert list_clients(store) == []


def _recorder(store, clock=None) -> Recorder:
    return Recorder.start(store, client_id=client(store), technician="Tom Reyes",
                          stage=Stage.S1, machine=Machine("Rotary One", "R1-0042", "1.4.2"),
                          planned_zones=[Zone.CROWN], answers=CLEAR, clock=clock or FakeClock())


@pytest.mark.parametrize("bad", ESCAPES)
def test_every_recorder_text(store, bad):
    rec = _recorder(store)
    calls = {
        "note": lambda: rec.note(f"ok {bad}"),
        "correction": lambda: rec.correct(1, f"wrong {bad}"),
        "zone notes": lambda: rec.record_coverage(Zone.CROWN, coverage_pct=10,
                                                  notes=f"ok {bad}"),
        "pigment brand": lambda: rec.use_pigment(
            brand=f"Carbon{bad}", shade="Jet", dilution=Dilution.parse("20:1"), lot="PG-1",
            expiry=date(2030, 1, 1)),
        "pigment lot": lambda: rec.use_pigment(
            brand="Carbon", shade="Jet", dilution=Dilution.parse("20:1"), lot=f"PG{bad}1",
            expiry=date(2030, 1, 1)),
        "needle cartridge lot": lambda: rec.use_needle(
            needle=NeedleSpec.parse("0601RL"), lot=f"NL{bad}", expiry=date(2030, 1, 1)),
    }
    for field, call in calls.items():
        with pytest.raises(UnsafeText, match=f"^{field}: "):
            call()
    record = client_record(store, 1, events=True)
    (s,) = record.sessions
    assert [e.kind for e in s.events] == ["session-started"]  # nothing of it was written
    assert not s.pigments and not s.needles and all(not z.notes for z in s.zones)


def test_multi_line_notes_are_kept(store):
    rec = _recorder(store)
    rec.note("line one\nline two")
    assert client_record(store, 1, events=True).sessions[0].events[-1].payload["text"] == \
        "line one\nline two"


@pytest.mark.parametrize("bad", ESCAPES)
def test_technician_and_gate_reasons(store, bad):
    cid = client(store)
    common = dict(client_id=cid, stage=Stage.S1, machine=Machine.simulated(),
                  planned_zones=[Zone.CROWN], clock=FakeClock())
    with pytest.raises(UnsafeText, match=r"^technician: "):
        Recorder.start(store, technician=f"Tom{bad}", answers=CLEAR, **common)
    answers = {**CLEAR, Contraindication.PREGNANCY: True}
    with pytest.raises(UnsafeText, match=r"^reason for pregnancy: "):
        Recorder.start(store, technician="Tom", answers=answers,
                       overrides={"pregnancy": f"12 weeks{bad}"}, **common)
    with pytest.raises(GateRefused):  # still refused without a reason, as before
        Recorder.start(store, technician="Tom", answers=answers, **common)
    assert client_record(store, cid).sessions == ()


def test_device_strings_are_stored_as_printable_ascii(store):
    machine = Machine("R1\x1b]0;x\x07", "SN\x1b[2J42\u202e", "1.0\x9b")
    rec = Recorder.start(store, client_id=client(store), technician="Tom", stage=Stage.S1,
                         machine=machine, planned_zones=[Zone.CROWN], answers=CLEAR,
                         clock=FakeClock())
    rec.fault("STALL\x1b[2J", "the motor\x07 stalled")
    (s,) = client_record(store, 1, events=True).sessions
    assert (s.machine.model, s.machine.serial, s.machine.firmware) == (
        "R1?]0;x?", "SN?[2J42?", "1.0?")
    assert s.events[0].payload["machine"]["serial"] == "SN?[2J42?"
    assert s.events[-1].payload == {"code": "STALL\\x1b[2J", "message": "the motor\\x07 stalled"}
