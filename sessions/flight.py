"""The flight recorder: every telemetry frame of a session at full rate (50 Hz), as the
machine sent it, and every link-health sample, kept compressed in `flight_chunks`.

    fr = FlightRecorder(session_id, write=sink.submit)   # the console, per session
    fr.telemetry(Frame(...)); fr.health(Health(...))     # on the session thread
    fr.close()                                           # session end: the last chunk
    log = FlightLog(store, session_id)                   # replay: the index, then chunks
    log.frame_at(at_us)

Chunk layout, version 1 (all integers little-endian):

    b"SMPF" | version u8 (1) | zlib( n_frames u32 | n_health u32 | columns )

Frame columns, n_frames values each, in this order and width: at_us (wall time, µs since the
Unix epoch, signed 64), uptime_ms u32, state u8, flags u8, faults u16, rate_dhz u16,
voltage_mv u16, current_ma u16, depth_um u16, temperature_dc i16, set_depth_um u16,
set_rate_dhz u16, set_voltage_mv u16, runs u8, needle_ms u32, ack u8 (TELEMETRY's header
`ack`: the last command the machine had acted on). Health columns, n_health values each:
at_us i64, rtt_us u32, age_us u32 (0xFFFFFFFF: not measured), resend_ppm u32,
telemetry_lost u32, bad_frames u32, gap_max_us u32.

Each column is delta-coded within its chunk (the first value against 0): value[i] -
value[i-1] modulo 2^width, so uptime_ms and needle_ms wrapping at 2^32 round-trip exactly
and a still machine's columns are runs of zeros that zlib shrinks to almost nothing. Every
chunk stands alone: a seek decodes one chunk, never the ones before it.

A chunk goes out every CHUNK_FRAMES telemetry frames (5 s at 50 Hz) and when the session
ends, as a "flight" fact through the recorder's write path (journal first, then the store:
a replay after a crash writes each chunk once). A crash loses at most the chunk being
filled; nothing in the timeline depends on it.
"""

from __future__ import annotations

import base64
import bisect
import struct
import sys
import threading
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from sqlalchemy import bindparam, delete, select

from sessions.models import FlightChunk, TelemetrySample
from sessions.store import Store, rowcount

MAGIC = b"SMPF"
VERSION = 1
CHUNK_FRAMES = 250  # 5 s at 50 Hz
LEVEL = 6  # zlib: level 9 or lzma save about 2% more, for 10-25% more CPU (bench_flight.py)
NONE_U32 = 0xFFFFFFFF  # a health figure not measured yet
RETENTION = timedelta(days=730)  # the default of console.toml's flight_retention_days
RAW_SAMPLES_WINDOW = timedelta(days=30)  # telemetry_samples of older records
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEAD = struct.Struct("<4sB")
_COUNTS = struct.Struct("<II")
_CODES = {8: "B", 16: "H", 32: "I", 64: "Q"}
for _bits, _code in _CODES.items():
    assert array(_code).itemsize * 8 == _bits, "array widths differ on this platform"


class FlightFormatError(ValueError):
    """A chunk that is not a flight chunk this program can read."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One TELEMETRY frame as the machine sent it, and when (the session's wall time of its
    uptime: console/controller.py maps uptime to wall time once per boot)."""

    at_us: int
    uptime_ms: int
    state: int
    flags: int
    faults: int
    rate_dhz: int
    voltage_mv: int
    current_ma: int
    depth_um: int
    temperature_dc: int
    set_depth_um: int
    set_rate_dhz: int
    set_voltage_mv: int
    runs: int
    needle_ms: int
    ack: int = 0

    @property
    def at(self) -> datetime:
        return from_us(self.at_us)


@dataclass(frozen=True, slots=True)
class Health:
    """One link-health sample, in integer units (µs, parts per million); None: not measured."""

    at_us: int
    rtt_us: int | None
    age_us: int | None
    resend_ppm: int
    telemetry_lost: int
    bad_frames: int
    gap_max_us: int

    @property
    def at(self) -> datetime:
        return from_us(self.at_us)


# (width in bits, signed) per field, in the order of the dataclass and of the layout above.
FRAME_COLUMNS = (64, True), (32, False), (8, False), (8, False), (16, False), (16, False), \
    (16, False), (16, False), (16, False), (16, True), (16, False), (16, False), (16, False), \
    (8, False), (32, False), (8, False)
HEALTH_COLUMNS = (64, True), (32, False), (32, False), (32, False), (32, False), (32, False), \
    (32, False)
assert len(FRAME_COLUMNS) == len(fields(Frame)) and len(HEALTH_COLUMNS) == len(fields(Health))
_OPTIONAL = {1, 2}  # rtt_us, age_us: the Health columns where None is stored as NONE_U32


def _measured(stored: int) -> int | None:
    return None if stored == NONE_U32 else stored


def to_us(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: the record stores aware UTC times")
    return (at - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def health_sample(at: datetime, *, rtt_ms: float | None, telemetry_age_ms: float | None,
                  resend_ratio: float, telemetry_lost: int, bad_frames: int,
                  heartbeat_gap_max_ms: float) -> Health:
    """A link-health report in the recorder's units (µs, ppm), clamped to what they hold."""
    def us(ms: float | None) -> int | None:
        return None if ms is None else min(NONE_U32 - 1, max(0, round(ms * 1000)))

    def cap(v: float) -> int:
        return min(NONE_U32, max(0, int(v)))

    return Health(to_us(at), us(rtt_ms), us(telemetry_age_ms),
                  cap(round(resend_ratio * 1_000_000)), cap(telemetry_lost), cap(bad_frames),
                  us(heartbeat_gap_max_ms) or 0)


# --- the codec ---------------------------------------------------------------------------------

def _column(values: Sequence[int], bits: int, signed: bool, name: str) -> bytes:
    mod = 1 << bits
    lo, hi = (-(mod >> 1), (mod >> 1) - 1) if signed else (0, mod - 1)
    out, prev = array(_CODES[bits]), 0
    for v in values:
        if not lo <= v <= hi:
            raise ValueError(f"{name} {v} does not fit the flight format ({lo} to {hi})")
        out.append((v - prev) % mod)
        prev = v
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()


def _decolumn(raw: memoryview, n: int, bits: int, signed: bool) -> list[int]:
    col = array(_CODES[bits])
    col.frombytes(raw[:n * bits // 8])
    if sys.byteorder == "big":
        col.byteswap()
    mod, mask = 1 << bits, (1 << bits) - 1
    values = [v & mask for v in accumulate(col)]
    if signed:
        half = mod >> 1
        values = [v - mod if v >= half else v for v in values]
    return values


def encode(frames: Sequence[Frame], health: Sequence[Health] = (), *,
           level: int = LEVEL) -> bytes:
    """One chunk, in the layout above. Raises ValueError for a value that does not fit."""
    body = [_COUNTS.pack(len(frames), len(health))]
    rows = [astuple(f) for f in frames]
    for i, ((bits, signed), f) in enumerate(zip(FRAME_COLUMNS, fields(Frame), strict=True)):
        body.append(_column([r[i] for r in rows], bits, signed, f.name))
    rows = [astuple(h) for h in health]
    for i, ((bits, signed), f) in enumerate(zip(HEALTH_COLUMNS, fields(Health), strict=True)):
        col = [r[i] for r in rows]
        if i in _OPTIONAL:
            if any(v == NONE_U32 for v in col):
                raise ValueError(f"{f.name} {NONE_U32} is reserved for 'not measured'")
            col = [NONE_U32 if v is None else v for v in col]
        body.append(_column(col, bits, signed, f.name))
    return _HEAD.pack(MAGIC, VERSION) + zlib.compress(b"".join(body), level)


def decode(data: bytes) -> tuple[list[Frame], list[Health]]:
    """The frames and health samples of one chunk, exactly as encoded."""
    if len(data) < _HEAD.size:
        raise FlightFormatError("flight chunk: too short")
    magic, version = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise FlightFormatError("flight chunk: not a flight chunk (bad magic)")
    if version != VERSION:
        raise FlightFormatError(f"flight chunk: version {version}; this program reads "
                                f"version {VERSION}")
    try:
        body = memoryview(zlib.decompress(data[_HEAD.size:]))
    except zlib.error:
        raise FlightFormatError("flight chunk: damaged (does not decompress)") from None
    n, m = _COUNTS.unpack_from(body)
    pos, cols = _COUNTS.size, []
    for count, layout in ((n, FRAME_COLUMNS), (m, HEALTH_COLUMNS)):
        for bits, signed in layout:
            size = count * bits // 8
            if pos + size > len(body):
                raise FlightFormatError("flight chunk: truncated")
            cols.append(_decolumn(body[pos:], count, bits, signed))
            pos += size
    if pos != len(body):
        raise FlightFormatError("flight chunk: trailing bytes")
    k = len(FRAME_COLUMNS)
    frames = [Frame(*row) for row in zip(*cols[:k], strict=True)] if n else []
    health = []
    for at, rtt, age, resend, lost, bad, gap in zip(*cols[k:], strict=True) if m else ():
        health.append(Health(at, _measured(rtt), _measured(age), resend, lost, bad, gap))
    return frames, health


def fact(session_id: int, seq: int, frames: Sequence[Frame], health: Sequence[Health],
         *, level: int = LEVEL) -> dict[str, Any]:
    """The "flight" fact of one chunk (sessions/facts.py writes it into flight_chunks)."""
    times = [f.at_us for f in frames] + [h.at_us for h in health]
    return {"op": "flight", "session": session_id, "seq": seq,
            "first_at": from_us(min(times)).isoformat(),
            "last_at": from_us(max(times)).isoformat(), "frames": len(frames),
            "data": base64.b64encode(encode(frames, health, level=level)).decode("ascii")}


# --- recording ---------------------------------------------------------------------------------

class FlightRecorder:
    """Collects one session's frames and health samples and hands each full chunk to `write`
    as a fact. Fed and flushed on the session thread (the lock only guards close() from
    another thread)."""

    def __init__(self, session_id: int, *, write: Callable[[dict[str, Any]], object],
                 chunk_frames: int = CHUNK_FRAMES, level: int = LEVEL):
        self.session_id = session_id
        self._write = write
        self._chunk_frames = chunk_frames
        self._level = level
        self._frames: list[Frame] = []
        self._health: list[Health] = []
        self._seq = 0
        self._closed = False
        self._lock = threading.Lock()

    @property
    def chunks(self) -> int:
        """Chunks handed to `write` so far."""
        return self._seq

    def telemetry(self, frame: Frame) -> None:
        with self._lock:
            if self._closed:
                return
            self._frames.append(frame)
            if len(self._frames) >= self._chunk_frames:
                self._flush()

    def health(self, sample: Health) -> None:
        with self._lock:
            if not self._closed:
                self._health.append(sample)

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def close(self) -> None:
        """The last chunk out; nothing more is taken (the session ended or the console
        closed)."""
        with self._lock:
            if not self._closed:
                self._flush()
                self._closed = True

    def _flush(self) -> None:
        if not self._frames and not self._health:
            return
        frames, self._frames = self._frames, []
        health, self._health = self._health, []
        self._seq += 1
        self._write(fact(self.session_id, self._seq, frames, health, level=self._level))


# --- reading -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ChunkInfo:
    seq: int
    first_us: int
    last_us: int
    frames: int


@dataclass(frozen=True)
class Chunk:
    frames: list[Frame]
    health: list[Health]
    times: list[int]  # the frames' at_us, for bisect
    health_times: list[int]


class FlightLog:
    """A session's flight record for replay: the chunk index is read at once (no data);
    chunks are read and decoded on demand and the last few kept. `load`, `frame_at` and
    `window` read the store: call them off the UI thread. `cached_*` never do."""

    def __init__(self, store: Store, session_id: int, *, keep: int = 16):
        self.store = store
        self.session_id = session_id
        self._keep = keep
        self._cache: OrderedDict[int, Chunk] = OrderedDict()
        self._lock = threading.Lock()
        t = FlightChunk.__table__
        with store.reading() as s:
            rows = s.execute(select(t.c.seq, t.c.first_at, t.c.last_at, t.c.frames)
                             .where(t.c.session_id == session_id).order_by(t.c.seq)).all()
        self.index = [ChunkInfo(seq, to_us(_aware(a)), to_us(_aware(b)), n)
                      for seq, a, b, n in rows]
        self._starts = [c.first_us for c in self.index]

    @property
    def frames(self) -> int:
        return sum(c.frames for c in self.index)

    @property
    def first_us(self) -> int | None:
        return self.index[0].first_us if self.index else None

    @property
    def last_us(self) -> int | None:
        return max(c.last_us for c in self.index) if self.index else None

    def chunk_of(self, at_us: int) -> int:
        """The position in `index` of the chunk holding the frame in force at `at_us`."""
        return max(0, bisect.bisect_right(self._starts, at_us) - 1)

    def chunks_for(self, start_us: int, end_us: int) -> range:
        if not self.index:
            return range(0)
        return range(self.chunk_of(start_us), self.chunk_of(end_us) + 1)

    def load(self, positions: Iterable[int]) -> None:
        """Read and decode these chunks (positions in `index`) into the cache."""
        t = FlightChunk.__table__
        wanted = [i for i in positions if self.cached(i) is None]
        if not wanted:
            return
        seqs = {self.index[i].seq: i for i in wanted}
        with self.store.reading() as s:
            rows = s.execute(select(t.c.seq, t.c.data).where(
                t.c.session_id == self.session_id, t.c.seq.in_(list(seqs)))).all()
        for seq, data in rows:
            frames, health = decode(bytes(data))
            chunk = Chunk(frames, health, [f.at_us for f in frames],
                          [h.at_us for h in health])
            with self._lock:
                self._cache[seqs[seq]] = chunk
                while len(self._cache) > max(self._keep, len(wanted)):
                    self._cache.popitem(last=False)

    def cached(self, position: int) -> Chunk | None:
        with self._lock:
            chunk = self._cache.get(position)
            if chunk is not None:
                self._cache.move_to_end(position)
            return chunk

    def has(self, start_us: int, end_us: int) -> bool:
        """Whether every chunk of [start_us, end_us] is decoded in memory."""
        return all(self.cached(i) is not None for i in self.chunks_for(start_us, end_us))

    def cached_frame_at(self, at_us: int) -> Frame | None:
        """The last frame at or before `at_us` (the one in force), if its chunk is cached."""
        if not self.index:
            return None
        i = self.chunk_of(at_us)
        while i >= 0:
            chunk = self.cached(i)
            if chunk is None:
                return None
            k = bisect.bisect_right(chunk.times, at_us)
            if k:
                return chunk.frames[k - 1]
            i -= 1  # before this chunk's first frame (its first entry was a health sample)
        return None

    def cached_health_at(self, at_us: int) -> Health | None:
        if not self.index:
            return None
        for i in range(self.chunk_of(at_us), -1, -1):
            chunk = self.cached(i)
            if chunk is None:
                return None
            k = bisect.bisect_right(chunk.health_times, at_us)
            if k:
                return chunk.health[k - 1]
        return None

    def cached_window(self, start_us: int, end_us: int) -> list[Frame]:
        out: list[Frame] = []
        for i in self.chunks_for(start_us, end_us):
            chunk = self.cached(i)
            if chunk is None:
                continue
            a = bisect.bisect_left(chunk.times, start_us)
            b = bisect.bisect_right(chunk.times, end_us)
            out.extend(chunk.frames[a:b])
        return out

    def frame_at(self, at_us: int) -> Frame | None:
        """As cached_frame_at, reading what it needs (and the chunk before, for a frame that
        sits at a chunk's edge)."""
        i = self.chunk_of(at_us)
        self.load(range(max(0, i - 1), i + 1) if self.index else ())
        return self.cached_frame_at(at_us)

    def window(self, start_us: int, end_us: int) -> list[Frame]:
        self.load(self.chunks_for(start_us, end_us))
        return self.cached_window(start_us, end_us)

    def all_frames(self) -> list[Frame]:
        """Every frame, in order (tests and checks: a long session is many megabytes)."""
        out: list[Frame] = []
        for i in range(len(self.index)):
            self.load([i])
            chunk = self.cached(i)
            assert chunk is not None
            out.extend(chunk.frames)
        return out


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


# --- retention ---------------------------------------------------------------------------------

# Module-level statements: built once, and compiled once by SQLAlchemy's cache (sessions/writer.py).
PRUNE_FLIGHT = delete(FlightChunk.__table__).where(
    FlightChunk.__table__.c.last_at < bindparam("before"))
PRUNE_SAMPLES = delete(TelemetrySample.__table__).where(
    TelemetrySample.__table__.c.at < bindparam("before"))


def prune_fact(session_id: int, *, now: datetime, keep: timedelta = RETENTION,
               samples_keep: timedelta = RAW_SAMPLES_WINDOW) -> dict[str, Any]:
    """Pruning as a fact: the console's sink does it in its turn with the other writes, never
    a second writer holding the record's lock. Flight chunks that ended more than `keep`
    ago go, and raw telemetry samples (records before the flight recorder) past their
    window; events, needle runs and summaries stay."""
    return {"op": "prune", "session": session_id,
            "flight_before": (now - keep).astimezone(UTC).isoformat(),
            "samples_before": (now - samples_keep).astimezone(UTC).isoformat()}


def prune(store: Store, *, now: datetime, keep: timedelta = RETENTION,
          samples_keep: timedelta = RAW_SAMPLES_WINDOW) -> tuple[int, int]:
    """prune_fact's deletion at once, for tools and tests: (chunks, samples) deleted."""
    f = prune_fact(0, now=now, keep=keep, samples_keep=samples_keep)
    with store.unit() as s:
        flight = rowcount(s.execute(PRUNE_FLIGHT, {"before": datetime.fromisoformat(
            f["flight_before"])}))
        samples = rowcount(s.execute(PRUNE_SAMPLES, {"before": datetime.fromisoformat(
            f["samples_before"])}))
    return flight, samples
