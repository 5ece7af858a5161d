"""Setpoint round trip over a real, unpaced pty: apply() -> read-back received, p50 and p99,
beside a raw pty echo of the same bytes measured in the same run (the floor any protocol pays
on that pty). At 115200 baud the serialisation of SET and APPLIED alone would take 2.60 ms.

    .venv/bin/python bench/bench_link_roundtrip.py [N]
"""

from __future__ import annotations

import os
import select
import sys
import threading
import time
import tty
from decimal import Decimal

import serial

from firmware_bridge import Machine
from firmware_bridge.codec import Set, encode
from protocols import MachineSettings
from sim.pacing import BITS_PER_BYTE
from sim.serve import PtyServer


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def raw_echo(n: int, size: int) -> list[float]:
    """Bytes written to a pty slave, echoed back by a thread on the master, read back."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    running = True

    def echo() -> None:
        while running:
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                os.write(master, os.read(master, 4096))
    t = threading.Thread(target=echo, daemon=True)
    t.start()
    ser = serial.serial_for_url(path, timeout=1, exclusive=True, do_not_open=True)
    ser.open()
    payload = encode(Set(1800, 1300, 7500), seq=1)[:size]
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        ser.write(payload)
        got = b""
        while len(got) < len(payload):
            got += ser.read(len(payload) - len(got))
        out.append(time.perf_counter() - t0)
    running = False
    t.join()
    ser.close()
    os.close(master)
    os.close(slave)
    return out


def setpoint_round_trip(n: int) -> tuple[list[float], float]:
    link = PtyServer.simulate()
    path = link.start()
    a = MachineSettings(depth_mm=Decimal("1.8"), rate_hz=Decimal("130"), voltage_v=Decimal("7.5"))
    b = MachineSettings(depth_mm=Decimal("1.5"), rate_hz=Decimal("110"), voltage_v=Decimal("6.5"))
    out = []
    with Machine.connect(path) as m:
        for i in range(50):  # warm up
            m.apply(a if i % 2 else b)
        for i in range(n):
            s = a if i % 2 else b
            t0 = time.perf_counter()
            confirmed = m.apply(s)
            out.append(time.perf_counter() - t0)
            assert confirmed == s
        resend = m.health().resend_ratio
    link.close()
    return out, resend


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    frame_len = len(encode(Set(1800, 1300, 7500), seq=1))
    echo = raw_echo(n, frame_len)
    rt, resend = setpoint_round_trip(n)
    e50, e99 = pct(echo, 50) * 1e3, pct(echo, 99) * 1e3
    r50, r99 = pct(rt, 50) * 1e3, pct(rt, 99) * 1e3
    print(f"setpoint round trip over a pty, {n} applies (SET {frame_len} B -> APPLIED read-back)")
    print(f"  raw pty echo ({frame_len} B) p50 {e50:.3f} ms  p99 {e99:.3f} ms   (baseline)")
    print(f"  apply -> read-back       p50 {r50:.3f} ms  p99 {r99:.3f} ms   "
          f"max {max(rt) * 1e3:.3f} ms  resend ratio {resend:.4f}")
    print(f"  ratio to raw echo        p50 x{r50 / e50:.2f}  p99 x{r99 / e99:.2f}")
    floor = 2 * frame_len * BITS_PER_BYTE / 115200 * 1e3
    print(f"  (unpaced pty; paced at 115200 baud the two frames alone take 2 x {frame_len} B x "
          f"{BITS_PER_BYTE / 115200 * 1e6:.1f} us = {floor:.2f} ms)")
    verdict = "met" if r99 < 2.0 else "NOT met"
    print(f"  target p99 < 2 ms: {verdict}")
    return 0 if r99 < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
