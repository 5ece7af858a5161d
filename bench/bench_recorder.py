"""Event ingest through the Recorder (one commit per call, synchronous=FULL, WAL) beside raw
sqlite3 doing the same writes, one commit each, with the same pragmas, in the same run.

Like with like: both databases are created the same way (the real migrations, so the same
indexes, foreign keys and append-only triggers) with the same client, session and zone, and
raw sqlite3 then writes exactly what the recorder writes per call: the event row, and for a
settings read-back also the zone work's applied settings, in one BEGIN IMMEDIATE ... COMMIT.
Rounds alternate between the two so disk noise hits both; the median round is reported.

Target: the recorder at least half the raw rate. Run: .venv/bin/python bench/bench_recorder.py
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from adult_client import adult_client

from protocols import MachineSettings, Stage, Zone
from sessions.gate import Contraindication
from sessions.recorder import Machine, Recorder
from sessions.store import BUSY_TIMEOUT_MS, open_store

N = 2000
ROUNDS = 3
SETTINGS = MachineSettings(depth_mm=Decimal("1.5"), rate_hz=Decimal("120"),
                           voltage_v=Decimal("7.0"))


def prepared(path: Path) -> tuple[Recorder, object]:
    """A database at `path` with one open session working on the crown."""
    store = open_store(f"sqlite:///{path}")
    cid = adult_client(store)
    rec = Recorder.start(store, client_id=cid, technician="bench", stage=Stage.S1,
                         machine=Machine.simulated(), planned_zones=[Zone.CROWN],
                         answers={c: False for c in Contraindication})
    rec.zone_changed(Zone.CROWN)
    return rec, store


def recorder_rate(path: Path) -> float:
    rec, store = prepared(path)
    t0 = time.perf_counter()
    for i in range(N):
        if i % 2:
            rec.settings_applied(SETTINGS)
        else:
            rec.note(f"note {i}")
    elapsed = time.perf_counter() - t0
    rec.close()
    store.close()
    return N / elapsed


def raw_rate(path: Path) -> float:
    rec, store = prepared(path)
    session_id, first_seq = rec.session_id, 3  # seq 1 session-started, 2 zone-changed
    rec.close()
    store.close()
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in (f"busy_timeout={BUSY_TIMEOUT_MS}", "foreign_keys=ON", "journal_mode=WAL",
                   "synchronous=FULL"):
        db.execute(f"PRAGMA {pragma}")
    zone_work = db.execute("SELECT id FROM zone_works WHERE session_id = ? AND zone = ?",
                           (session_id, "crown")).fetchone()[0]
    event = ("INSERT INTO events (session_id, seq, at, kind, zone, depth_um, rate_dhz, "
             "voltage_mv, duration_ms, corrects_id, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
             "RETURNING id")
    applied = "UPDATE zone_works SET depth_um=?, rate_dhz=?, voltage_mv=? WHERE id = ?"
    t0 = time.perf_counter()
    for i in range(N):
        at = datetime.now(UTC).replace(tzinfo=None).isoformat(" ", timespec="microseconds")
        db.execute("BEGIN IMMEDIATE")
        if i % 2:
            db.execute(event, (session_id, first_seq + i, at, "settings-applied", "crown", 1500,
                               1200, 7000, None, None, "{}")).fetchone()
            db.execute(applied, (1500, 1200, 7000, zone_work))
        else:
            db.execute(event, (session_id, first_seq + i, at, "note", "crown", None, None,
                               None, None, None,
                               json.dumps({"text": f"note {i}"}, sort_keys=True))).fetchone()
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return N / elapsed


def main() -> int:
    raws, recs = [], []
    with tempfile.TemporaryDirectory() as d:
        for r in range(ROUNDS):
            raws.append(raw_rate(Path(d) / f"raw{r}.sqlite3"))
            recs.append(recorder_rate(Path(d) / f"rec{r}.sqlite3"))
    raw, rec = statistics.median(raws), statistics.median(recs)
    print(f"events: {N} x {ROUNDS} rounds, one commit each, WAL + synchronous=FULL, "
          f"real schema (indexes, foreign keys, triggers), in {tempfile.gettempdir()}")
    print(f"raw sqlite3 (baseline): {raw:8.0f} events/s  (rounds: "
          f"{', '.join(f'{x:.0f}' for x in raws)})")
    print(f"Recorder:               {rec:8.0f} events/s  (rounds: "
          f"{', '.join(f'{x:.0f}' for x in recs)})")
    print(f"ratio recorder/raw:     {rec / raw:8.2f}  (target >= 0.50: "
          f"{'met' if rec / raw >= 0.5 else 'NOT met'})")
    return 0 if rec / raw >= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
