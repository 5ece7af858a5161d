"""The flight recorder (sessions/flight.py): ingest at 50 Hz during a session, and replay of a
4-hour session.

1. Ingest: frames fed in real time at 50 Hz (and link health at 4 Hz, as the link reports it)
   to a FlightRecorder writing through the console's own path (RecorderSink: journal with
   fsync, then SQLite with synchronous=FULL). Its CPU is this process's CPU while feeding
   less the same paced loop feeding nothing, measured alternately in the same run, as a share
   of one core. Beside it, the console's idle CPU in the same run: `smp console --port PTY`
   in tmux on the client screen against `smp sim --pty` (as bench/bench_console.py measures
   it). Bytes per hour: the chunks' bytes, and the SQLite file's growth, for one hour of frames
   written through the same writer. Targets: under 3% of a core, under 20 MB per hour.
2. Replay: a generated 4-hour session (720,000 frames), then the replay reader as the screen
   uses it: session, timeline and chunk index loaded and the first picture built
   (sessions.replay.load + console.replay.view_at): target under 0.5 s; a seek to a random
   instant (read and decode its chunks, build the picture): target under 100 ms (p99 of
   200 seeks). Also the screen itself (Textual Pilot): mount to first picture.

Frames are synthetic but shaped like a session: armed pauses and needle runs, settings changed
now and then, and sensor noise on every measured value (rate sd 0.3 Hz, voltage sd 10 mV,
current sd 15 mA, depth sd 5 µm, temperature sd 0.1 °C): noise is what costs bytes; the
simulator's physics has none and would flatter the figure.

Run: .venv/bin/python bench/bench_flight.py [INGEST_SECONDS]   (default 30)
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.adult_client import adult_client
from bench.bench_console import SMP, console_pid, share, tmux, wait_for
from protocols import Stage, Zone
from sessions import facts, flight
from sessions.gate import Contraindication
from sessions.recorder import Machine, Recorder
from sessions.sink import RecorderSink
from sessions.store import open_store

HZ = 50
HEALTH_EVERY = 12  # frames: 4 Hz
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def session_frames(seconds: float, *, seed: int = 1, start: datetime = T0):
    """(frames, health) of a session `seconds` long, in order."""
    rng = random.Random(seed)
    n = int(seconds * HZ)
    at0, uptime, needle, runs, ack = flight.to_us(start), 1_234_567, 0, 0, 3
    settings = (1500, 1100, 6500)
    temp = 280.0
    running, left = False, rng.randint(5, 20) * HZ
    frames, health = [], []
    g = rng.gauss
    for i in range(n):
        left -= 1
        if left <= 0:
            running = not running
            left = rng.randint(20, 60) * HZ if running else rng.randint(5, 30) * HZ
            if running:
                runs = (runs + 1) & 0xFF
            elif rng.random() < 0.2:  # an adjustment between runs
                ack = (ack + 1) & 0xFF
                settings = (settings[0] + rng.choice((-50, 50)), settings[1] + rng.choice(
                    (-10, 10)), settings[2])
        temp += (0.002 if running else -0.001)
        if running:
            needle += 20
        rate = round(g(settings[1], 3)) if running else 0
        volt = round(g(settings[2], 10)) if running else 0
        cur = max(0, round(g(420, 15))) if running else 0
        frames.append(flight.Frame(
            at_us=at0 + i * 20_000, uptime_ms=(uptime + i * 20) & 0xFFFFFFFF,
            state=2 if running else 1, flags=0x0F if running else 0x0C, faults=0,
            rate_dhz=max(0, rate), voltage_mv=max(0, volt), current_ma=cur,
            depth_um=max(0, round(g(settings[0], 5))), temperature_dc=round(g(temp, 1)),
            set_depth_um=settings[0], set_rate_dhz=settings[1], set_voltage_mv=settings[2],
            runs=runs, needle_ms=needle & 0xFFFFFFFF, ack=ack))
        if i % HEALTH_EVERY == 0:
            health.append(flight.Health(at0 + i * 20_000 + 5_000, max(0, round(g(2500, 300))),
                                        max(0, round(g(9000, 4000))), 0, 0, 0,
                                        max(0, round(g(50_500, 800)))))
    return frames, health


def opened(path: Path) -> tuple[object, int]:
    store = open_store(f"sqlite:///{path}")
    cid = adult_client(store)
    rec = Recorder.start(store, client_id=cid, technician="bench", stage=Stage.S1,
                         machine=Machine.simulated(), planned_zones=[Zone.CROWN],
                         answers={c: False for c in Contraindication},
                         clock=lambda: T0)
    sid = rec.session_id
    rec.close()
    return store, sid


# --- 1. ingest -------------------------------------------------------------------------------

def paced(seconds: float, feed) -> tuple[float, float]:
    """Call feed(i) at 50 Hz for `seconds` (sleeping between, as a session thread waits for
    the next frame); (process CPU seconds, wall seconds)."""
    c0, t0 = time.process_time(), time.monotonic()
    for i in range(int(seconds * HZ)):
        feed(i)
        delay = t0 + (i + 1) / HZ - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return time.process_time() - c0, time.monotonic() - t0


def ingest(tmp: Path, seconds: float) -> tuple[float, list[float], list[float]]:
    store, sid = opened(tmp / "ingest.sqlite3")
    sink = RecorderSink(store, tmp / "journal")
    sink.start()
    frames, health = session_frames(seconds * 3 + 10)
    fr = flight.FlightRecorder(sid, write=sink.submit)
    cursor = {"i": 0}

    def feed(_: int) -> None:
        i = cursor["i"]
        cursor["i"] += 1
        fr.telemetry(frames[i])
        if i % HEALTH_EVERY == 0:
            fr.health(health[i // HEALTH_EVERY])

    with_, without = [], []
    part = seconds / 3
    for _ in range(3):  # alternate, so that load on the machine hits both alike
        cpu, wall = paced(part, lambda i: None)
        without.append(cpu / wall)
        cpu, wall = paced(part, feed)
        assert sink.flush(30)
        with_.append(cpu / wall)
    fr.close()
    assert sink.flush(30)
    sink.close()
    store.close()
    share_ = statistics.median(w - b for w, b in zip(with_, without, strict=True))
    return share_, with_, without


def bytes_per_hour(tmp: Path) -> tuple[int, int, int]:
    """(chunk bytes, SQLite file growth, frames) for one hour written through the writer."""
    path = tmp / "hour.sqlite3"
    store, sid = opened(path)
    frames, health = session_frames(3600, seed=2)
    w = facts.StoreWriter(store)
    size0 = _db_bytes(path)
    data, hi = 0, 0
    for seq, k in enumerate(range(0, len(frames), flight.CHUNK_FRAMES), start=1):
        chunk = frames[k:k + flight.CHUNK_FRAMES]
        lo, hi = hi, hi + sum(1 for h in health[hi:] if h.at_us <= chunk[-1].at_us)
        f = flight.fact(sid, seq, chunk, health[lo:hi])
        data += len(f["data"]) * 3 // 4
        w.write(f)
    w.close()
    grown = _db_bytes(path) - size0
    store.close()
    return data, grown, len(frames)


def compression_choices() -> list[tuple[str, float, float]]:
    """(choice, MB per hour, ms per chunk to encode) for one hour of frames: what the format
    uses (delta columns, zlib 6) beside the alternatives."""
    import lzma
    import struct
    import zlib
    from dataclasses import astuple

    frames, _ = session_frames(3600, seed=2)  # frames only: health is a small part
    chunks = [frames[k:k + flight.CHUNK_FRAMES]
              for k in range(0, len(frames), flight.CHUNK_FRAMES)]
    row = struct.Struct("<qIBBHHHHHhHHHBIB")

    def undelta(c):  # the same fields, row after row, no delta: the baseline
        return zlib.compress(b"".join(row.pack(*astuple(f)) for f in c), 6)

    def delta_then(pack):
        def enc(c):
            raw = flight.encode(c, level=0)  # zlib level 0: the delta columns, stored
            return pack(zlib.decompress(raw[5:]))
        return enc

    out = []
    for name, enc in (("delta columns + zlib 6 (the format)", lambda c: flight.encode(c)),
                      ("delta columns + zlib 9", lambda c: flight.encode(c, level=9)),
                      ("delta columns + lzma", delta_then(lzma.compress)),
                      ("rows, no delta + zlib 6", undelta)):
        t0 = time.perf_counter()
        size = sum(len(enc(c)) for c in chunks)
        out.append((name, size / 1e6, (time.perf_counter() - t0) * 1000 / len(chunks)))
    return out


def _db_bytes(path: Path) -> int:
    import sqlite3

    with sqlite3.connect(path) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = c.execute("PRAGMA page_count").fetchone()[0]
        free = c.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * c.execute("PRAGMA page_size").fetchone()[0]


def console_idle(tmp: Path, seconds: float) -> float:
    """`smp console` idle on the client screen, machine connected (bench_console's way)."""
    sim = subprocess.Popen([SMP, "sim", "--pty", "--quiet", "--link", str(tmp / "tty")],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    sim.stdout.readline()
    sim.stdout.readline()
    sock = str(tmp / "tmux.sock")
    env = (f"XDG_CONFIG_HOME={tmp} SMP_DB_URL=sqlite:///{tmp / 'console.sqlite3'} "
           "TERM=xterm-256color")
    tmux(sock, "-f", "/dev/null", "new-session", "-d", "-x", "130", "-y", "42",
         f"env {env} {SMP} console --port {tmp / 'tty'}")
    try:
        wait_for(sock, "Client")
        time.sleep(3)
        return share(console_pid(sock), seconds)
    finally:
        subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True)
        sim.terminate()
        sim.wait(timeout=10)


# --- 2. replay -------------------------------------------------------------------------------

def four_hours(tmp: Path) -> tuple[object, int, int]:
    path = tmp / "four-hours.sqlite3"
    store, sid = opened(path)
    w = facts.StoreWriter(store)
    hour, hour_health = session_frames(3600, seed=3)
    seq = 0
    rec = Recorder(sid, write=w.write, next_seq=2, clock=lambda: T0)
    for h in range(4):
        shift = h * 3600 * 1_000_000
        frames = [replace(f, at_us=f.at_us + shift) for f in hour]
        health = [replace(x, at_us=x.at_us + shift) for x in hour_health]
        j = 0
        for k in range(0, len(frames), flight.CHUNK_FRAMES):
            chunk = frames[k:k + flight.CHUNK_FRAMES]
            j0 = j
            while j < len(health) and health[j].at_us <= chunk[-1].at_us:
                j += 1
            seq += 1
            w.write(flight.fact(sid, seq, chunk, health[j0:j]))
        for m in range(0, 60, 2):  # the timeline: a zone, applies, arms, runs, notes
            at = T0 + timedelta(hours=h, minutes=m)
            rec._clock = lambda at=at: at
            rec.note("armed")
            rec.pedal_down(at=at + timedelta(seconds=5))
            rec.pedal_up(30_000, at=at + timedelta(seconds=35))
    rec._clock = lambda: T0 + timedelta(hours=4)
    rec.end(aftercare_given=True)
    w.close()
    size = path.stat().st_size
    return store, sid, size


def replay_figures(store, sid: int) -> tuple[float, list[float], int]:
    from console import replay
    from sessions import replay as records

    t0 = time.perf_counter()
    rs = records.load(store, sid)
    view = replay.view_at(rs, rs.start_us)
    first = time.perf_counter() - t0
    assert view.replay
    rng = random.Random(4)
    seeks = []
    for _ in range(200):
        at = rng.randint(rs.start_us, rs.end_us)
        t0 = time.perf_counter()
        rs.flight.load(rs.flight.chunks_for(*replay.needs(rs, at)))
        v = replay.view_at(rs, at)
        seeks.append((time.perf_counter() - t0) * 1000)
        assert v.machine.state is not None
    return first, seeks, rs.flight.frames


def screen_first_frame(store, sid: int, *, preload: bool) -> list[float]:
    """Seconds to the screen's first picture, 5 runs. preload: as `smp replay` does it (the
    session read before the app starts, counted here); else as the history browser does
    (read in a worker once the screen is up)."""
    from console.replay_app import ReplayApp
    from sessions import replay as records

    async def run() -> float:
        t0 = time.perf_counter()
        loaded = records.load(store, sid) if preload else None
        before = time.perf_counter() - t0
        app = ReplayApp(store, sid, play=False, loaded=loaded)
        async with app.run_test(size=(130, 42)) as pilot:
            end = time.monotonic() + 20
            while getattr(app.screen, "first_frame_s", None) is None:
                assert time.monotonic() < end
                await pilot.pause(0.01)
            return before + app.screen.first_frame_s

    return [asyncio.run(run()) for _ in range(5)]


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    tmp = Path(tempfile.mkdtemp(prefix="smp-bench-flight-"))
    try:
        print(f"load average {os.getloadavg()[0]:.1f}")
        idle = console_idle(tmp, min(seconds, 10.0))
        cpu, with_, without = ingest(tmp, seconds)
        data, grown, n = bytes_per_hour(tmp)
        print(f"flight recorder ingest at 50 Hz (+ health at 4 Hz), journal + SQLite: "
              f"{cpu:6.2%} of one core  (feeding {', '.join(f'{x:.2%}' for x in with_)}; "
              f"the same loop idle {', '.join(f'{x:.2%}' for x in without)})   "
              f"target < 3%: {'met' if cpu < 0.03 else 'NOT met'}")
        print(f"  beside, same run: smp console idle on the client screen, machine "
              f"connected: {idle:6.1%} of one core")
        mb = grown / 1e6
        print(f"bytes per hour: {data / 1e6:.2f} MB of chunks, SQLite file +{mb:.2f} MB "
              f"({n} frames, {grown / n:.1f} B/frame; raw layout 42 B/frame = "
              f"{42 * n / 1e6:.1f} MB)   target < 20 MB/h: {'met' if mb < 20 else 'NOT met'}")
        for name, mb_h, ms in compression_choices():
            print(f"  {name:<36} {mb_h:5.2f} MB/h, {ms:5.2f} ms to encode a 5 s chunk")
        store, sid, size = four_hours(tmp)
        print(f"4-hour session: SQLite file {size / 1e6:.1f} MB in all")
        first, seeks, frames = replay_figures(store, sid)
        p50, p99 = statistics.median(seeks), sorted(seeks)[int(len(seeks) * 0.99) - 1]
        print(f"replay of the 4-hour session ({frames} frames): load to first picture "
              f"{first * 1000:.1f} ms   target < 500 ms: {'met' if first < 0.5 else 'NOT met'}")
        print(f"  seek to a random instant (200): p50 {p50:.1f} ms, p99 {p99:.1f} ms, max "
              f"{max(seeks):.1f} ms   target < 100 ms: {'met' if p99 < 100 else 'NOT met'}")
        for preload, how in ((True, "read before the app starts, as smp replay does"),
                             (False, "read in a worker, as from the history browser")):
            runs = screen_first_frame(store, sid, preload=preload)
            print(f"  the replay screen (Pilot, headless), {how}: to first picture median "
                  f"{statistics.median(runs) * 1000:.0f} ms (runs "
                  f"{', '.join(f'{x * 1000:.0f}' for x in runs)} ms)")
        store.close()
        ok = cpu < 0.03 and mb < 20 and first < 0.5 and p99 < 100
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
