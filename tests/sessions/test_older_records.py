"""A record from before needle runs (schema 0003) opens, upgrades and reads as it did, with
every view saying that its settings are the last confirmed, not settings used on skin."""

import csv
import io
import json

import pypdfium2 as pdfium
from sqlalchemy import create_engine, text

from protocols import Zone
from sessions.export import render
from sessions.history import client_record, settings_to_repeat
from sessions.store import open_store
from tests.sessions.test_store import _at_revision

OLD = "recorded before per-run settings"
# What the console of schema 0003 wrote for one session: a hairline run at 1.50 / 110 / 6.5,
# then the hairline-defined settings applied after it (1.50 / 120 / 7.0), never run.
ROWS = [
    "INSERT INTO clients (id, name, phone, email, created_at, scar_work) "
    "VALUES (1, 'Old Client', '', '', '2025-11-12 09:00:00', false)",
    "INSERT INTO sessions (id, client_id, technician, started_at, ended_at, stage, simulator, "
    "machine_model, machine_serial, machine_firmware, planned_zones, outcome, aftercare_given, "
    "owner) VALUES (1, 1, 'Tom', '2025-11-12 09:00:00', '2025-11-12 10:00:00', '1', false, "
    "'Rotary One', 'R1', '1.4', 'hairline', 'completed', true, '')",
    "INSERT INTO zone_works (session_id, zone, profile, reasons, coverage_pct, passes, notes, "
    "depth_um, rate_dhz, voltage_mv) VALUES (1, 'hairline', 'hairline-defined', '[]', 40, 0, "
    "'', 1500, 1200, 7000)",
    "INSERT INTO events (session_id, seq, at, kind, zone, payload) VALUES "
    "(1, 1, '2025-11-12 09:00:00', 'session-started', NULL, '{}')",
    "INSERT INTO events (session_id, seq, at, kind, zone, depth_um, rate_dhz, voltage_mv, "
    "payload) VALUES (1, 2, '2025-11-12 09:01:00', 'settings-applied', 'hairline', 1500, 1100, "
    "6500, '{}')",
    "INSERT INTO events (session_id, seq, at, kind, zone, duration_ms, payload) VALUES "
    "(1, 3, '2025-11-12 09:02:00', 'pedal-up', 'hairline', 60000, '{}')",
    "INSERT INTO telemetry_summaries (session_id, zone, run_index, run_ms, samples, faults) "
    "VALUES (1, 'hairline', 1, 60000, 3000, 0)",
]


def test_an_older_record_upgrades_and_reads_as_before_labelled(db_url):
    _at_revision(db_url, "0003")
    engine = create_engine(db_url)
    with engine.begin() as c:
        for row in ROWS:
            c.execute(text(row))
    engine.dispose()

    store = open_store(db_url)  # upgrades to the head
    try:
        assert store.schema().status == "current"
        record = client_record(store, 1, events=True)
        (s,) = record.sessions
        (z,) = s.zones
        assert not s.per_run and not z.per_run and z.runs == () and z.on_skin is None
        assert z.coverage_pct == 40 and z.profile == "hairline-defined"
        assert z.settings_text() == [f"{OLD}: last confirmed 1.50 mm / 120 Hz / 7.0 V"]
        assert [t.run_ms for t in s.telemetry] == [60000]  # its summaries, as they were
        assert [e.kind for e in s.events] == ["session-started", "settings-applied", "pedal-up"]

        rows = list(csv.DictReader(io.StringIO(render(store, record, "csv").decode())))
        assert [(r["on_skin"], r["depth_mm"], r["rate_hz"], r["needle_s"]) for r in rows] == [
            (f"{OLD}: last confirmed 1.50 mm / 120 Hz / 7.0 V", "1.50", "120.0", "")]
        doc = pdfium.PdfDocument(render(store, record, "pdf"))
        try:
            pdf = " ".join(" ".join(p.get_textpage().get_text_range().split()) for p in doc)
        finally:
            doc.close()
        assert f"{OLD}: last confirmed 1.50 mm / 120 Hz / 7.0 V" in pdf
        zone = json.loads(render(store, record, "json"))["sessions"][0]["zones"][0]
        assert zone["per_run"] is False and zone["runs"] == [] and zone["on_skin"] is None

        again = settings_to_repeat(store, 1, Zone.HAIRLINE)
        assert again.needle_ms is None
        assert again.text() == ("repeat: 1.50 mm / 120 Hz / 7.0 V, last confirmed "
                                f"({OLD}) on 12 Nov 2025")
    finally:
        store.close()
