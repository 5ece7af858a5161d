"""Decoder throughput: frames per second from a byte stream to typed messages, beside
pymavlink decoding MAVLink 2 SCALED_IMU (24-byte payload, 35-byte frame) and a hand-written
pure-Python COBS + CRC loop (the floor: framing and CRC, no objects) in the same run.
Ours decodes TELEMETRY (24-byte payload, 33-byte frame), the frame the link carries most.

Rounds interleave the four decoders, so that all see the same load on a shared machine; the
verdict is the median over rounds of each round's smp / pymavlink ratio (target >= x2).

    .venv/bin/pip install pymavlink        # (the `bench` extra)
    .venv/bin/python bench/bench_decoder.py [rounds]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import zlib

from firmware_bridge.codec import CRC_EXTRA, Decoder, MsgType, Telemetry, encode

N_FRAMES = 20_000
CHUNK = 4096
ROUNDS = 15
TARGET = 2.0


def chunks(stream: bytes) -> list[bytes]:
    return [stream[i:i + CHUNK] for i in range(0, len(stream), CHUNK)]


def ours_stream(rng: random.Random) -> bytes:
    return b"".join(
        encode(Telemetry(2, 0x0F, 0, rng.randrange(500, 1500), 7500, rng.randrange(100, 900),
                         rng.randrange(200, 2500), rng.randrange(200, 400), i * 20, 1800, 1300,
                         7500, (i // 100) & 0xFF, i * 20), seq=i & 0xFF, ack=(i // 256) & 0xFF)
        for i in range(N_FRAMES))


def run_ours(parts: list[bytes]) -> float:
    """Bytes to typed TELEMETRY messages, as the link's reader does."""
    d = Decoder()
    t0 = time.perf_counter()
    n = 0
    for part in parts:
        for frame in d.feed(part):
            frame.message()
            n += 1
    dt = time.perf_counter() - t0
    assert n == N_FRAMES, n
    return n / dt


def run_ours_framing_only(parts: list[bytes]) -> float:
    d = Decoder()
    t0 = time.perf_counter()
    n = sum(len(d.feed(part)) for part in parts)
    dt = time.perf_counter() - t0
    assert n == N_FRAMES, n
    return n / dt


def run_floor(parts: list[bytes]) -> float:
    """The least a pure-Python decoder can do: split at 0x00, undo COBS, check the CRC."""
    extra = bytes([CRC_EXTRA[MsgType.TELEMETRY]])
    crc32 = zlib.crc32
    t0 = time.perf_counter()
    n, buf = 0, b""
    for part in parts:
        runs = (buf + part).split(b"\x00")
        buf = runs.pop()
        for run in runs:
            body = bytearray(run)
            i, size = 0, len(body)
            while i < size:
                code = body[i]
                body[i] = 0
                i += code
            body = bytes(body[1:])
            if crc32(extra, crc32(body[:-4])) == int.from_bytes(body[-4:], "little"):
                n += 1
    dt = time.perf_counter() - t0
    assert n == N_FRAMES, n
    return n / dt


def mavlink_setup(rng: random.Random):
    os.environ.setdefault("MAVLINK20", "1")
    try:
        from pymavlink.dialects.v20 import common as mavlink2
    except ImportError:
        return None
    tx = mavlink2.MAVLink(None, srcSystem=1, srcComponent=1)
    stream = b"".join(
        mavlink2.MAVLink_scaled_imu_message(i * 20, *(rng.randrange(-2000, 2000)
                                                      for _ in range(9)), 2500).pack(tx)
        for i in range(N_FRAMES))
    crc = "fastcrc (C)" if getattr(mavlink2, "fastcrc", None) else "pure-Python CRC"
    return mavlink2, chunks(stream), crc


def run_mavlink(mavlink2, parts: list[bytes]) -> float:
    rx = mavlink2.MAVLink(None)
    t0 = time.perf_counter()
    n = 0
    for part in parts:
        msgs = rx.parse_buffer(part)
        if msgs:
            n += len(msgs)
    dt = time.perf_counter() - t0
    assert n == N_FRAMES, n
    return n / dt


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    rng = random.Random(1)
    parts = chunks(ours_stream(rng))
    mav = mavlink_setup(rng)
    if not mav:
        print("pymavlink not installed: .venv/bin/pip install pymavlink (the bench extra)")
        return 1  # no baseline, no verdict
    ours, framing, floor, theirs = [], [], [], []
    for _ in range(rounds):
        ours.append(run_ours(parts))
        framing.append(run_ours_framing_only(parts))
        floor.append(run_floor(parts))
        theirs.append(run_mavlink(mav[0], mav[1]))
    med = statistics.median
    print(f"decoder throughput, {N_FRAMES} frames in {CHUNK}-byte reads, medians of {rounds} "
          "interleaved rounds (frames/s)")
    print(f"  smp TELEMETRY -> typed message   {med(ours):>9,.0f}")
    print(f"  smp framing + CRC only           {med(framing):>9,.0f}")
    print(f"  floor: hand-written COBS + CRC   {med(floor):>9,.0f}   (x{med(floor) / med(ours):.2f}"
          " smp's message path)")
    print(f"  pymavlink SCALED_IMU -> message  {med(theirs):>9,.0f}   (baseline, {mav[2]})")
    ratio = med([a / b for a, b in zip(ours, theirs, strict=True)])
    print(f"  smp / pymavlink, median of the per-round ratios: x{ratio:.2f} (rounds x"
          f"{min(a / b for a, b in zip(ours, theirs, strict=True)):.2f} to x"
          f"{max(a / b for a, b in zip(ours, theirs, strict=True)):.2f})   target >= "
          f"x{TARGET:.1f}: {'met' if ratio >= TARGET else 'NOT met'}")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
