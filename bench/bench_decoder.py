"""Decoder throughput: frames per second from a byte stream to typed messages, beside
pymavlink decoding MAVLink 2 SCALED_IMU (24-byte payload, 35-byte frame) in the same run.
Ours decodes TELEMETRY (18-byte payload, 27-byte frame), the frame the link carries most.

    .venv/bin/pip install pymavlink        # (the `bench` extra)
    .venv/bin/python bench/bench_decoder.py
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time

from firmware_bridge.codec import Decoder, Telemetry, encode

N_FRAMES = 20_000
CHUNK = 4096
ROUNDS = 7  # ours and pymavlink alternate, so both see the same load on a shared machine


def chunks(stream: bytes) -> list[bytes]:
    return [stream[i:i + CHUNK] for i in range(0, len(stream), CHUNK)]


def ours_stream(rng: random.Random) -> bytes:
    return b"".join(
        encode(Telemetry(2, 0x0F, 0, rng.randrange(500, 1500), 7500, rng.randrange(100, 900),
                         rng.randrange(200, 2500), rng.randrange(200, 400), i * 20),
               seq=i & 0xFF, ack=(i // 256) & 0xFF)
        for i in range(N_FRAMES))


def run_ours(parts: list[bytes]) -> float:
    d = Decoder()
    from_payload = Telemetry.from_payload
    t0 = time.perf_counter()
    n = 0
    for part in parts:
        for frame in d.feed(part):
            from_payload(frame.payload)
            n += 1
    dt = time.perf_counter() - t0
    assert n == N_FRAMES, n
    return n / dt


def run_ours_framing_only(parts: list[bytes]) -> float:
    d = Decoder()
    t0 = time.perf_counter()
    n = sum(len(d.feed(part)) for part in parts)
    return n / (time.perf_counter() - t0)


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
    rng = random.Random(1)
    parts = chunks(ours_stream(rng))
    mav = mavlink_setup(rng)
    ours, framing, theirs = [], [], []
    for _ in range(ROUNDS):
        ours.append(run_ours(parts))
        framing.append(run_ours_framing_only(parts))
        if mav:
            theirs.append(run_mavlink(mav[0], mav[1]))
    print(f"decoder throughput, {N_FRAMES} frames in {CHUNK}-byte reads, best and median of "
          f"{ROUNDS} alternating rounds")
    med = statistics.median
    print(f"  smp TELEMETRY -> message        best {max(ours):>9,.0f}  median {med(ours):>9,.0f}"
          " frames/s")
    print(f"  smp framing + CRC only          best {max(framing):>9,.0f}  median "
          f"{med(framing):>9,.0f} frames/s")
    if not mav:
        print("  pymavlink not installed: .venv/bin/pip install pymavlink (the bench extra)")
        return 1  # no baseline, no verdict
    print(f"  pymavlink SCALED_IMU -> message best {max(theirs):>9,.0f}  median "
          f"{med(theirs):>9,.0f} frames/s   (baseline, {mav[2]})")
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    ratio = max(ours) / max(theirs)
    print(f"  ratio smp / pymavlink           best/best x{ratio:.2f}  per-round median "
          f"x{med(ratios):.2f}   target >= x1.5: {'met' if ratio >= 1.5 else 'NOT met'}")
    return 0 if ratio >= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
