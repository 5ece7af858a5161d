"""The flight recorder's format, its write path (journal, crash, replay) and its retention."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from sessions import facts, flight
from sessions.flight import Frame, Health
from sessions.journal import Journal
from sessions.models import FlightChunk, TelemetrySample
from sessions.sink import RecorderSink
from tests.sessions.factory import T0, FakeClock, client, session

U8, U16, U32 = (0, 255), (0, 0xFFFF), (0, 0xFFFFFFFF)
EDGES = {8: [0, 1, 127, 128, 254, 255], 16: [0, 1, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF],
         32: [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]}


def ints(bits: int, signed: bool = False):
    lo, hi = (-(1 << bits - 1), (1 << bits - 1) - 1) if signed else (0, (1 << bits) - 1)
    edges = [lo, lo + 1, -1, 0, 1, hi - 1, hi] if signed else EDGES[bits]
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


frames_ = st.builds(
    Frame, at_us=ints(64, True), uptime_ms=ints(32), state=ints(8), flags=ints(8),
    faults=ints(16), rate_dhz=ints(16), voltage_mv=ints(16), current_ma=ints(16),
    depth_um=ints(16), temperature_dc=ints(16, True), set_depth_um=ints(16),
    set_rate_dhz=ints(16), set_voltage_mv=ints(16), runs=ints(8), needle_ms=ints(32),
    ack=ints(8))
optional_u32 = st.one_of(st.none(), st.sampled_from([0, 1, 0xFFFFFFFE]),
                         st.integers(0, 0xFFFFFFFE))
healths = st.builds(
    Health, at_us=ints(64, True), rtt_us=optional_u32, age_us=optional_u32,
    resend_ppm=ints(32), telemetry_lost=ints(32), bad_frames=ints(32), gap_max_us=ints(32))


@settings(max_examples=300, deadline=None)
@given(st.lists(frames_, max_size=40), st.lists(healths, max_size=10))
def test_a_chunk_round_trips_exactly(frames, health):
    assert flight.decode(flight.encode(frames, health)) == (frames, health)


def frame(i: int, *, uptime0: int = 0, needle0: int = 0, **kw) -> Frame:
    values = dict(at_us=flight.to_us(T0) + i * 20_000, uptime_ms=(uptime0 + i * 20) % 2**32,
                  state=2, flags=0x0F, faults=0, rate_dhz=1200 + i % 7, voltage_mv=7500,
                  current_ma=300 + i % 3, depth_um=1500, temperature_dc=-5 + i % 2,
                  set_depth_um=1500, set_rate_dhz=1200, set_voltage_mv=7500, runs=i % 256,
                  needle_ms=(needle0 + i * 20) % 2**32, ack=i % 256)
    return Frame(**{**values, **kw})


def test_uptime_and_needle_time_wrapping_mid_chunk_round_trip():
    frames = [frame(i, uptime0=2**32 - 100, needle0=2**32 - 50) for i in range(20)]
    assert frames[0].uptime_ms > frames[-1].uptime_ms  # it wrapped inside the chunk
    assert frames[3].needle_ms < frames[2].needle_ms
    assert flight.decode(flight.encode(frames))[0] == frames


@pytest.mark.parametrize(("field", "value"), [("uptime_ms", 2**32), ("state", -1),
                                              ("temperature_dc", 32768), ("runs", 256)])
def test_a_value_the_layout_cannot_hold_is_refused_not_wrapped(field, value):
    with pytest.raises(ValueError, match=field):
        flight.encode([frame(0, **{field: value})])


def test_a_damaged_or_unknown_chunk_is_refused_in_words():
    data = flight.encode([frame(0)])
    with pytest.raises(flight.FlightFormatError, match="bad magic"):
        flight.decode(b"XXXX" + data[4:])
    with pytest.raises(flight.FlightFormatError, match="version 2"):
        flight.decode(data[:4] + b"\x02" + data[5:])
    with pytest.raises(flight.FlightFormatError, match="damaged"):
        flight.decode(data[:-3])


def test_health_is_kept_in_integer_units_and_unmeasured_stays_none():
    h = flight.health_sample(T0, rtt_ms=12.3456, telemetry_age_ms=None, resend_ratio=0.0125,
                             telemetry_lost=3, bad_frames=1, heartbeat_gap_max_ms=51.2)
    assert (h.rtt_us, h.age_us, h.resend_ppm, h.gap_max_us) == (12346, None, 12500, 51200)
    assert flight.decode(flight.encode([], [h])) == ([], [h])


def test_a_still_machine_compresses_to_a_few_bytes_a_frame():
    frames = [frame(i, state=1, flags=0x0E, rate_dhz=0, current_ma=0, runs=3, ack=9,
                    temperature_dc=250) for i in range(250)]
    data = flight.encode(frames)
    assert len(data) < 250 * 2, len(data)  # 42 bytes a frame raw


# --- the write path ------------------------------------------------------------------------

def chunks(store, session_id):
    with store.reading() as s:
        return s.execute(select(FlightChunk.seq, FlightChunk.frames, FlightChunk.first_at,
                                FlightChunk.last_at).where(FlightChunk.session_id == session_id)
                         .order_by(FlightChunk.seq)).all()


def test_the_recorder_writes_full_chunks_and_the_rest_on_close(store):
    rec = session(store, client(store), FakeClock(), end=False)
    written = []

    def write(f):
        written.append(f)
        return rec._write(f)

    fr = flight.FlightRecorder(rec.session_id, write=write, chunk_frames=100)
    for i in range(250):
        fr.telemetry(frame(i))
        if i % 50 == 0:
            fr.health(flight.health_sample(frame(i).at, rtt_ms=10, telemetry_age_ms=5,
                                           resend_ratio=0, telemetry_lost=0, bad_frames=0,
                                           heartbeat_gap_max_ms=50))
    assert [f["frames"] for f in written] == [100, 100]
    fr.close()
    fr.telemetry(frame(999))  # after close: not taken
    fr.close()
    rows = chunks(store, rec.session_id)
    assert [(r.seq, r.frames) for r in rows] == [(1, 100), (2, 100), (3, 50)]
    assert rows[0].first_at == T0 and rows[2].last_at == frame(249).at
    log = flight.FlightLog(store, rec.session_id)
    assert log.all_frames() == [frame(i) for i in range(250)]
    assert log.frame_at(frame(130).at_us + 5) == frame(130)
    assert log.frame_at(flight.to_us(T0) - 1) is None


def test_a_crash_replays_each_chunk_once(store, tmp_path):
    """A console killed after journaling two chunks, the store holding only the first: every
    start replays the journal, and each chunk is written once however often that runs
    (here twice: the same journal again, as if the replay itself had been killed)."""
    sid = session(store, client(store), FakeClock(), end=False).session_id
    f1 = flight.fact(sid, 1, [frame(i) for i in range(10)], [])
    f2 = flight.fact(sid, 2, [frame(i) for i in range(10, 20)], [])
    folder = tmp_path / "journal"
    folder.mkdir()
    j = Journal.new(folder)
    j.append(f1)
    j.append(f2)
    j.close()
    w = facts.StoreWriter(store)
    w.write(f1, mark=(j.path.stem, 1))  # in the store, with its mark, when the console died
    w.close()
    left = j.path.read_bytes()
    for _ in range(2):
        j.path.write_bytes(left)
        sink = RecorderSink(store, folder)
        sink.start()
        assert sink.flush()
        assert sink.close().pending == 0
    assert [(r.seq, r.frames) for r in chunks(store, sid)] == [(1, 10), (2, 10)]
    assert flight.FlightLog(store, sid).all_frames() == [frame(i) for i in range(20)]


def test_retention_prunes_old_chunks_and_old_raw_samples_only(store):
    clock = FakeClock()
    sid = session(store, client(store), clock).session_id
    old = facts.StoreWriter(store)
    old.write(flight.fact(sid, 1, [frame(0)], []))
    old.write(flight.fact(sid, 2, [frame(i) for i in range(1, 5)], []))
    old.write({"op": "samples", "session": sid,  # a journal of an older version replays
               "rows": [[facts.iso(T0), 1200, 7500, 300, False]]})
    now = T0 + flight.RETENTION
    old.write(flight.prune_fact(sid, now=now - timedelta(seconds=1)))
    assert len(chunks(store, sid)) == 2  # both ended less than the retention ago
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(TelemetrySample)) == 0  # 30 days
    old.write(flight.prune_fact(sid, now=now + timedelta(microseconds=20_000)))
    assert [r.seq for r in chunks(store, sid)] == [2]  # chunk 1 ended at T0, chunk 2 later
    old.close()
    assert flight.prune(store, now=now + timedelta(days=1)) == (1, 0)
    assert chunks(store, sid) == []


def test_the_fact_carries_the_chunk_as_text_for_the_journal():
    f = flight.fact(7, 1, [frame(0), frame(1)], [])
    assert flight.decode(base64.b64decode(f["data"]))[0] == [frame(0), frame(1)]
    assert (f["first_at"], f["frames"]) == (T0.isoformat(), 2)
