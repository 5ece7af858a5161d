"""Event ingest through the Recorder (one commit per call, synchronous=FULL, WAL) beside raw
sqlite3 inserting the same rows, one commit each, with the same pragmas, in the same run.

Target: the recorder at least half the raw rate. Run: .venv/bin/python bench/bench_recorder.py
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from protocols import MachineSettings, Stage, Zone
from sessions.clients import NewClient, add_client
from sessions.gate import Contraindication
from sessions.recorder import Machine, Recorder
from sessions.store import BUSY_TIMEOUT_MS, open_store

N = 2000
SETTINGS = MachineSettings(depth_mm=Decimal("1.5"), rate_hz=Decimal("120"),
                           voltage_v=Decimal("7.0"))


def recorder_rate(path: Path) -> float:
    store = open_store(f"sqlite:///{path}")
    cid = add_client(store, NewClient(name="Bench Client"))
    rec = Recorder.start(store, client_id=cid, technician="bench", stage=Stage.S1,
                         machine=Machine.simulated(), planned_zones=[Zone.CROWN],
                         answers={c: False for c in Contraindication})
    rec.zone_changed(Zone.CROWN)
    t0 = time.perf_counter()
    for i in range(N):
        if i % 2:
            rec.settings_applied(SETTINGS)
        else:
            rec.note(f"note {i}")
    elapsed = time.perf_counter() - t0
    store.close()
    return N / elapsed


def raw_rate(path: Path) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in (f"busy_timeout={BUSY_TIMEOUT_MS}", "foreign_keys=ON", "journal_mode=WAL",
                   "synchronous=FULL"):
        db.execute(f"PRAGMA {pragma}")
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL, "
               "seq INTEGER NOT NULL, at DATETIME NOT NULL, kind VARCHAR(30) NOT NULL, "
               "zone VARCHAR(30), depth_um INTEGER, rate_dhz INTEGER, voltage_mv INTEGER, "
               "duration_ms INTEGER, corrects_id INTEGER, payload TEXT NOT NULL, "
               "UNIQUE (session_id, seq))")
    sql = ("INSERT INTO events (session_id, seq, at, kind, zone, depth_um, rate_dhz, "
           "voltage_mv, duration_ms, corrects_id, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
    t0 = time.perf_counter()
    for i in range(N):
        at = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
        if i % 2:
            row = (1, i + 3, at, "settings-applied", "crown", 1500, 1200, 7000, None, None, "{}")
        else:
            row = (1, i + 3, at, "note", "crown", None, None, None, None, None,
                   json.dumps({"text": f"note {i}"}))
        db.execute("BEGIN IMMEDIATE")
        db.execute(sql, row)
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return N / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        raw = raw_rate(Path(d) / "raw.sqlite3")
        rec = recorder_rate(Path(d) / "rec.sqlite3")
    print(f"events: {N}, one commit each, WAL + synchronous=FULL, in {tempfile.gettempdir()}")
    print(f"raw sqlite3 (baseline): {raw:8.0f} events/s")
    print(f"Recorder:               {rec:8.0f} events/s")
    print(f"ratio recorder/raw:     {rec / raw:8.2f}  (target >= 0.50: "
          f"{'met' if rec / raw >= 0.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
