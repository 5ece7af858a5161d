"""History query latency on a generated clinic, at 100,000 sessions (10,000 clients, 1,000,000
zone works) or, with --sessions 1000000, at 1,000,000 (100,000 clients, 10,000,000 zone works).
Each zone work that has needle runs has 20 (needle_runs filled with realistic columns): every
one at 100k; at 1M, those of the newest RUN_SHARE_1M of sessions (the runs a clinic records
since schema 0004) and of every session of the clients the queries read (see docs/benchmarks.md).
The record is cached under the temp directory, keyed by size and schema revision.

Each query runs through sessions.history (what the console and the shell use), except the
needle runs of a client's sessions, which is the select the zone views' "settings used on
skin" makes (needle_runs by session ids). Baseline: a raw sqlite3 primary-key lookup of one
client in the same run. Target: p95 < 20 ms each.
Run: .venv/bin/python bench/bench_history.py [--sessions 100000|1000000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import event, func, select

from protocols import Zone
from sessions.history import client_record, recall, settings_to_repeat, touchups_due
from sessions.models import NeedleRun, SessionRow
from sessions.store import HEAD_REVISION, open_store

GENERATOR = 2  # bump when what generate() writes changes: the cache is keyed by it
SIZES = (100_000, 1_000_000)
SESSIONS_PER_CLIENT, ZONES_PER_SESSION, RUNS_PER_ZONE = 10, 10, 20
RUN_SHARE_1M = 0.10  # at 1M sessions, the newest tenth has runs (200M rows would not fit here)
T0 = datetime(2018, 1, 1, tzinfo=UTC)
ZONES = [z.value for z in Zone]
RUNS = 200
FMT = "%Y-%m-%d %H:%M:%S.%f"


def cache_path(sessions: int) -> Path:
    return (Path(tempfile.gettempdir())
            / f"smp-bench-history-{sessions}-r{HEAD_REVISION}-g{GENERATOR}.sqlite3")


def queried_clients(clients: int) -> list[int]:
    rng = random.Random(2)
    return [rng.randrange(1, clients + 1) for _ in range(RUNS)]


def _runs(sid: int, start: datetime, zones: list[str], rng: random.Random):
    """20 runs per zone: 1 to 6 s each with pauses, at the zone's settings (a step or two of
    adjustment now and then), and the telemetry summary the recorder writes."""
    seq, at = 0, start + timedelta(minutes=5)
    for zi, zone in enumerate(zones):
        depth, rate, volt = 1200 + 50 * (zi % 10), 1100 + 10 * zi, 6000 + 100 * zi
        for _ in range(RUNS_PER_ZONE):
            seq += 1
            ms = rng.randrange(1000, 6000)
            end = at + timedelta(milliseconds=ms)
            adjusted = seq % 7 == 0
            d = depth + (50 if adjusted else 0)
            yield (sid, seq, zone, f"{zone}-standard", at.strftime(FMT), end.strftime(FMT), ms,
                   1, "pedal-up", d, rate, volt,
                   '[{"depth_um": 50}]' if adjusted else "[]", ms // 20, 0, 0,
                   rate - 5, rate - 40, rate + 20, volt - 30, volt - 200, volt + 50,
                   420, 380, 610, d, d - 10, d + 10)
            at = end + timedelta(seconds=rng.randrange(5, 40))


def generate(path: Path, sessions: int) -> str:
    clients = sessions // SESSIONS_PER_CLIENT
    share = 1.0 if sessions <= SIZES[0] else RUN_SHARE_1M
    tmp = path.with_suffix(".part")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    open_store(f"sqlite:///{tmp}").close()  # the real schema, via the migrations
    rng = random.Random(1)
    db = sqlite3.connect(tmp, isolation_level=None)
    # Generation only (queries run with the real pragmas): no fsync, and no WAL, which would
    # hold a second copy of every page written in the one transaction.
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA cache_size=-1000000")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO clients (id, name, phone, email, created_at, last_completed_at, scar_work)"
        " VALUES (?, ?, '', '', ?, NULL, ?)",
        ((i, f"Client {i:06d}", T0.strftime(FMT), i % 10 == 0) for i in range(1, clients + 1)))
    # Sessions in time order (ids follow start times, as a clinic's do), so that "the newest
    # share" is a range of ids and the runs are written in session order.
    starts = sorted(T0 + timedelta(minutes=rng.randrange(0, 8 * 365 * 24 * 60))
                    for _ in range(sessions))
    owners = [rng.randrange(1, clients + 1) for _ in range(sessions)]
    first_with_runs = int(sessions * (1 - share)) + 1
    queried = set(queried_clients(clients))
    last: dict[int, datetime] = {}
    run_count = 0
    insert_runs = (
        "INSERT INTO needle_runs (session_id, seq, zone, profile, started_at, ended_at, "
        "needle_ms, exact, ended_by, depth_um, rate_dhz, voltage_mv, adjustments, samples, "
        "under_speed_ms, faults, rate_mean_dhz, rate_min_dhz, rate_max_dhz, voltage_mean_mv, "
        "voltage_min_mv, voltage_max_mv, current_mean_ma, current_min_ma, current_max_ma, "
        "depth_mean_um, depth_min_um, depth_max_um) VALUES "
        "(" + ", ".join("?" * 28) + ")")
    statements = {
        "sessions": "INSERT INTO sessions (id, client_id, technician, started_at, ended_at, "
        "stage, simulator, machine_model, machine_serial, machine_firmware, planned_zones, "
        "outcome, aftercare_given, owner, per_run) VALUES (?, ?, ?, ?, ?, ?, 0, 'Rotary One', "
        "'R1', '1.0', '', 'completed', 1, '', ?)",
        "zones": "INSERT INTO zone_works (session_id, zone, profile, reasons, coverage_pct, "
        "passes, notes, depth_um, rate_dhz, voltage_mv) VALUES (?, ?, '', '[]', ?, 2, '', ?, "
        "?, ?)",
        "pigments": "INSERT INTO pigment_uses (session_id, zone, brand, shade, dilution_water, "
        "dilution_pigment, lot, expiry) VALUES (?, NULL, 'Carbon Co', 'Jet', 10, 1, ?, "
        "'2030-01-01')",
        "needles": "INSERT INTO needle_uses (session_id, zone, code, lot, expiry) "
        "VALUES (?, NULL, '0601RL', ?, '2029-01-01')",
        "runs": insert_runs,
    }
    rows: dict[str, list[tuple]] = {name: [] for name in statements}

    def flush() -> None:
        nonlocal run_count
        run_count += len(rows["runs"])
        for name, statement in statements.items():
            db.executemany(statement, rows[name])
            rows[name].clear()

    for sid in range(1, sessions + 1):
        cid, start = owners[sid - 1], starts[sid - 1]
        last[cid] = max(last.get(cid, start), start)
        zones = rng.sample(ZONES, ZONES_PER_SESSION)
        has_runs = sid >= first_with_runs or cid in queried
        rows["sessions"].append((sid, cid, f"Tech {sid % 20}", start.strftime(FMT),
                                 (start + timedelta(hours=3)).strftime(FMT), str(1 + sid % 3),
                                 has_runs))
        rows["zones"].extend((sid, zone, 30 + zi, 1200 + 50 * (zi % 10), 1100 + 10 * zi,
                              6000 + 100 * zi) for zi, zone in enumerate(zones))
        rows["pigments"].append((sid, f"LOT-{sid % 5000:04d}"))
        rows["needles"].append((sid, f"NL-{sid % 3000:04d}"))
        if has_runs:
            rows["runs"].extend(_runs(sid, start, zones, rng))
        if sid % 1000 == 0:
            flush()
    flush()
    db.executemany("UPDATE clients SET last_completed_at = ? WHERE id = ?",
                   ((t.strftime(FMT), c) for c, t in last.items()))
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    tmp.rename(path)
    with_runs = sessions - first_with_runs + 1
    return (f"needle runs: {run_count:,} ({RUNS_PER_ZONE} per zone work) for the sessions "
            f"{first_with_runs:,} to {sessions:,} ({with_runs:,}) and every session of the "
            f"{len(queried)} queried clients")


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


def timed(fn) -> list[float]:
    out = []
    for i in range(RUNS):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def plans(store, path: Path, calls) -> None:
    """EXPLAIN QUERY PLAN of every statement the calls make, as SQLite runs it."""
    seen: list[tuple[str, tuple]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", grab)
    try:
        for name, call in calls:
            seen.clear()
            call()
            print(f"plan: {name}")
            raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            for statement, parameters in seen:
                for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters):
                    print(f"    {row[3]}")
            raw.close()
    finally:
        event.remove(store.engine, "before_cursor_execute", grab)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, choices=SIZES, default=SIZES[0])
    args = ap.parse_args()
    path = cache_path(args.sessions)
    clients = args.sessions // SESSIONS_PER_CLIENT
    if not path.exists():
        t0 = time.perf_counter()
        what = generate(path, args.sessions)
        print(f"generated {path} in {time.perf_counter() - t0:.1f} s; {what}")
        path.with_suffix(".txt").write_text(what + "\n")
    else:
        print(f"cached {path}; {path.with_suffix('.txt').read_text().strip()}")
    print(f"file {path.stat().st_size / 2**30:.1f} GiB")
    store = open_store(f"sqlite:///{path}")
    who = queried_clients(clients)
    with store.reading() as s:
        their_sessions = [list(s.scalars(select(SessionRow.id)
                                         .where(SessionRow.client_id == c))) for c in who]
    runs = NeedleRun.__table__

    def runs_of(i: int) -> int:
        # The zone views' "settings used on skin": one select of needle_runs by session ids.
        with store.reading() as s:
            return len(s.execute(select(runs).where(runs.c.session_id.in_(their_sessions[i]))
                                 .order_by(runs.c.session_id, runs.c.seq)).all())

    def skin_of(i: int) -> int:
        # The same question summed in the database: one row per session, zone and settings.
        with store.reading() as s:
            return len(s.execute(
                select(runs.c.session_id, runs.c.zone, runs.c.depth_um, runs.c.rate_dhz,
                       runs.c.voltage_mv, func.count(), func.sum(runs.c.needle_ms))
                .where(runs.c.session_id.in_(their_sessions[i]))
                .group_by(runs.c.session_id, runs.c.zone, runs.c.depth_um, runs.c.rate_dhz,
                          runs.c.voltage_mv)).all())

    raw = sqlite3.connect(path)
    base = timed(lambda i: raw.execute("SELECT * FROM clients WHERE id = ?",
                                       (who[i],)).fetchall())

    def raw_runs(i: int) -> int:
        ids = their_sessions[i]
        return len(raw.execute(f"SELECT * FROM needle_runs WHERE session_id IN "
                               f"({', '.join('?' * len(ids))}) ORDER BY session_id, seq",
                               ids).fetchall())

    today = date(2026, 1, 1)
    due_total = touchups_due(store, today=today, within_days=30).total
    queries = {
        "client timeline": lambda i: client_record(store, who[i]),
        "last settings for a zone": lambda i: settings_to_repeat(store, who[i], Zone.CROWN),
        "needle runs of a client's sessions": runs_of,
        "the same, summed per zone and settings": skin_of,
        "recall by lot, first page": lambda i: recall(store, f"LOT-{i * 7 % 5000:04d}"),
        "touch-ups due (30 days), first page": lambda i: touchups_due(
            store, today=today + timedelta(days=i), within_days=30),
        "touch-ups due (30 days), last page": lambda i: touchups_due(
            store, today=today, within_days=30, offset=max(0, (due_total - 1) // 50 * 50)),
    }
    plans(store, path, [
        ("touch-ups due, first page", lambda: touchups_due(store, today=today, within_days=30)),
        ("recall by lot, first page", lambda: recall(store, "LOT-0007")),
        ("needle runs of a client's sessions", lambda: runs_of(0)),
        ("the same, summed per zone and settings", lambda: skin_of(0)),
    ])
    n_runs = sum(runs_of(i) for i in range(RUNS)) / RUNS
    recall_page = recall(store, "LOT-0007")
    print(f"{clients:,} clients, {args.sessions:,} sessions, "
          f"{args.sessions * ZONES_PER_SESSION:,} zone works; {RUNS} runs each; "
          f"touch-ups due by {today} + 30 days: {due_total:,}; recall LOT-0007: "
          f"{recall_page.total:,} uses; needle runs per queried client: {n_runs:,.0f}")
    b95 = p95(base)
    print(f"{'baseline: raw sqlite3 client by id':<40} p50 {statistics.median(base):7.3f} ms  "
          f"p95 {b95:7.3f} ms")
    r = timed(raw_runs)
    print(f"{'(raw sqlite3: the same needle runs)':<40} p50 {statistics.median(r):7.3f} ms  "
          f"p95 {p95(r):7.3f} ms")
    missed = 0
    for name, fn in queries.items():
        fn(0)  # warm the statement cache
        s = timed(fn)
        v = p95(s)
        print(f"{name:<40} p50 {statistics.median(s):7.3f} ms  p95 {v:7.3f} ms  "
              f"x{v / b95:6.0f} baseline  target < 20 ms: {'met' if v < 20 else 'NOT met'}")
        missed += v >= 20
    store.close()
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
