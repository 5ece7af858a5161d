"""History query latency on a generated clinic: 10,000 clients, 100,000 sessions and
1,000,000 zone works (cached under the temp directory between runs).

Each query runs through sessions.history (what the console and the shell use); the baseline
is a raw sqlite3 primary-key lookup of one client in the same run. Target: p95 < 20 ms each.
Run: .venv/bin/python bench/bench_history.py
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from protocols import Zone
from sessions.history import client_record, recall, settings_to_repeat, touchups_due
from sessions.store import open_store

CLIENTS, SESSIONS, ZONES_PER_SESSION = 10_000, 100_000, 10
CACHE = Path(tempfile.gettempdir()) / "smp-bench-history-v1.sqlite3"
T0 = datetime(2018, 1, 1, tzinfo=UTC)
ZONES = [z.value for z in Zone]
RUNS = 200


def generate(path: Path) -> None:
    tmp = path.with_suffix(".part")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    open_store(f"sqlite:///{tmp}").close()  # the real schema, via the migrations
    rng = random.Random(1)
    db = sqlite3.connect(tmp, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")  # generation only; queries run with the real pragmas
    db.execute("BEGIN")
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    db.executemany(
        "INSERT INTO clients (id, name, phone, email, created_at, last_completed_at, scar_work)"
        " VALUES (?, ?, '', '', ?, NULL, ?)",
        ((i, f"Client {i:05d}", T0.strftime(fmt), i % 10 == 0) for i in range(1, CLIENTS + 1)))
    last: dict[int, datetime] = {}
    sessions, zone_rows, pigments = [], [], []
    for sid in range(1, SESSIONS + 1):
        cid = rng.randrange(1, CLIENTS + 1)
        start = T0 + timedelta(minutes=rng.randrange(0, 8 * 365 * 24 * 60))
        last[cid] = max(last.get(cid, start), start)
        sessions.append((sid, cid, f"Tech {sid % 20}", start.strftime(fmt),
                         (start + timedelta(hours=3)).strftime(fmt), str(1 + sid % 3)))
        for zi, zone in enumerate(rng.sample(ZONES, ZONES_PER_SESSION)):
            zone_rows.append((sid, zone, 30 + zi, 1200 + 50 * (zi % 10), 1100 + 10 * zi,
                              6000 + 100 * zi))
        pigments.append((sid, f"LOT-{sid % 5000:04d}"))
    db.executemany(
        "INSERT INTO sessions (id, client_id, technician, started_at, ended_at, stage, "
        "simulator, machine_model, machine_serial, machine_firmware, planned_zones, outcome, "
        "aftercare_given) VALUES (?, ?, ?, ?, ?, ?, 0, 'Rotary One', 'R1', '1.0', '', "
        "'completed', 1)", sessions)
    db.executemany(
        "INSERT INTO zone_works (session_id, zone, profile, reasons, coverage_pct, passes, "
        "notes, depth_um, rate_dhz, voltage_mv) VALUES (?, ?, '', '[]', ?, 2, '', ?, ?, ?)",
        zone_rows)
    db.executemany(
        "INSERT INTO pigment_uses (session_id, zone, brand, shade, dilution_water, "
        "dilution_pigment, lot, expiry) VALUES (?, NULL, 'Carbon Co', 'Jet', 10, 1, ?, "
        "'2030-01-01')", pigments)
    db.executemany("UPDATE clients SET last_completed_at = ? WHERE id = ?",
                   ((t.strftime(fmt), c) for c, t in last.items()))
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()
    tmp.rename(path)


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


def timed(fn) -> list[float]:
    out = []
    for i in range(RUNS):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> int:
    if not CACHE.exists():
        t0 = time.perf_counter()
        generate(CACHE)
        print(f"generated {CACHE} in {time.perf_counter() - t0:.1f} s")
    store = open_store(f"sqlite:///{CACHE}")
    rng = random.Random(2)
    clients = [rng.randrange(1, CLIENTS + 1) for _ in range(RUNS)]
    raw = sqlite3.connect(CACHE)
    base = timed(lambda i: raw.execute("SELECT * FROM clients WHERE id = ?",
                                       (clients[i],)).fetchall())
    queries = {
        "client timeline": lambda i: client_record(store, clients[i]),
        "last settings for a zone": lambda i: settings_to_repeat(store, clients[i], Zone.CROWN),
        "recall by lot": lambda i: recall(store, f"LOT-{i * 7 % 5000:04d}"),
        "touch-ups due (30 days)": lambda i: touchups_due(
            store, today=date(2026, 1, 1) + timedelta(days=i), within_days=30),
    }
    b95 = p95(base)
    print(f"{CLIENTS} clients, {SESSIONS} sessions, {SESSIONS * ZONES_PER_SESSION} zone works; "
          f"{RUNS} runs each")
    print(f"{'baseline: raw sqlite3 client by id':<36} p50 {statistics.median(base):7.3f} ms  "
          f"p95 {b95:7.3f} ms")
    missed = 0
    for name, fn in queries.items():
        fn(0)  # warm the statement cache
        s = timed(fn)
        v = p95(s)
        print(f"{name:<36} p50 {statistics.median(s):7.3f} ms  p95 {v:7.3f} ms  "
              f"x{v / b95:6.0f} baseline  target < 20 ms: {'met' if v < 20 else 'NOT met'}")
        missed += v >= 20
    store.close()
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
