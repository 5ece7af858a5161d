"""Bytes on the wire at 50 Hz telemetry + 20 Hz heartbeat, as a share of 115200 baud; and the
heartbeat's timing while the caller's thread is busy (the thread-versus-process question).

The machine runs in a separate process behind a pty (`smp sim --pty`), so its
timing is not disturbed by this process's load.

    .venv/bin/python bench/bench_link_load.py [seconds]
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from decimal import Decimal

from firmware_bridge import Machine, State
from firmware_bridge.codec import Heartbeat, Telemetry, encode
from firmware_bridge.core import HEARTBEAT_S
from firmware_bridge.schema import TELEMETRY_PERIOD_MS, WATCHDOG_DEFAULT_MS
from protocols import MachineSettings

BAUD = 115200
BYTES_PER_S = BAUD / 10  # 8N1: ten bit times per byte


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def start_machine() -> tuple[subprocess.Popen, str]:
    # `smp sim --pty` in its own process, paced to the baud rate like a real line.
    proc = subprocess.Popen([sys.executable, "-m", "console", "sim", "--pty", "--quiet",
                             "--baud", str(BAUD)], stdout=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    return proc, proc.stdout.readline().split()[3]  # "SIMULATOR listening on PATH ..."


def wire_load(m: Machine, seconds: float) -> bool:
    sent = [0]
    write = m.transport.write

    def counting(data: bytes) -> None:
        sent[0] += len(data)
        write(data)
    m.transport.write = counting
    rx0, t0 = m._core._decoder.stats.bytes, time.monotonic()
    time.sleep(seconds)
    dt = time.monotonic() - t0
    rx = (m._core._decoder.stats.bytes - rx0) / dt
    tx = sent[0] / dt
    m.transport.write = write
    tel = len(encode(Telemetry(*[0] * len(Telemetry.SCHEMA.names))))
    hb = len(encode(Heartbeat()))
    hz = 1000 / TELEMETRY_PERIOD_MS
    expect_rx, expect_tx = tel * hz, hb * (1 / HEARTBEAT_S)
    setpoints = 3 * 2 * hz  # TELEMETRY's set_depth_um, set_rate_dhz, set_voltage_mv
    print(f"wire load over {dt:.1f} s (idle link: telemetry {hz:.0f} Hz, heartbeat "
          f"{1 / HEARTBEAT_S:.0f} Hz)")
    print(f"  machine -> host {rx:7.0f} B/s  ({tel} B x {hz:.0f} Hz = {expect_rx:.0f} B/s "
          f"expected)  {rx / BYTES_PER_S:6.1%} of 115200 baud")
    print(f"    of which the setpoints in TELEMETRY: {setpoints:.0f} B/s = "
          f"{setpoints / BYTES_PER_S:.1%} of 115200 baud")
    print(f"  host -> machine {tx:7.0f} B/s  ({hb} B x {1 / HEARTBEAT_S:.0f} Hz = "
          f"{expect_tx:.0f} B/s expected)  {tx / BYTES_PER_S:6.1%} of 115200 baud")
    both = (rx + tx) / BYTES_PER_S
    print(f"  both directions on one 115200 baud budget: {both:.1%}   target < 20%: "
          f"{'met' if both < 0.20 else 'NOT met'}")
    return both < 0.20


def gaps_while(m: Machine, label: str, seconds: float, load) -> list[float]:
    stop = threading.Event()
    threads = [threading.Thread(target=load, args=(stop,), daemon=True) for _ in range(
        load.threads)] if load else []
    m.heartbeat_gaps.clear()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    gaps = [g * 1000 for g in m.heartbeat_gaps]
    print(f"  {label:<38} n={len(gaps):4d}  p50 {pct(gaps, 50):6.2f}  p99 {pct(gaps, 99):6.2f}"
          f"  max {max(gaps):7.2f} ms")
    return gaps


def busy_python(stop: threading.Event) -> None:
    x = 0
    while not stop.is_set():
        for i in range(1000):
            x += i * i % 7


busy_python.threads = 1


def busy_python_4(stop: threading.Event) -> None:
    busy_python(stop)


busy_python_4.threads = 4


def gil_hog(stop: threading.Event) -> None:
    data = [random.random() for _ in range(1_500_000)]
    while not stop.is_set():
        sorted(data)  # one C call that holds the GIL for its whole duration


gil_hog.threads = 1


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    proc, path = start_machine()
    try:
        with Machine.connect(path) as m:
            met = wire_load(m, seconds)
            print(f"heartbeat gaps (nominal {HEARTBEAT_S * 1000:.0f} ms; the machine stops at "
                  f"{WATCHDOG_DEFAULT_MS} ms), heartbeat on its own thread")
            gaps_while(m, "idle caller (baseline)", seconds, None)
            gaps_while(m, "1 busy pure-Python caller thread", seconds, busy_python)
            gaps_while(m, "4 busy pure-Python caller threads", seconds, busy_python_4)
            m.apply(MachineSettings(depth_mm=Decimal("1.8"), rate_hz=Decimal("130"),
                                    voltage_v=Decimal("7.5")))
            m.arm()
            t0 = time.monotonic()
            while m.state != State.ARMED and time.monotonic() - t0 < 1:
                time.sleep(0.01)
            gaps_while(m, "a C call holding the GIL ~1 s (armed)", seconds, gil_hog)
            time.sleep(0.2)
            print(f"  machine after the GIL hog: {m.state.name if m.state is not None else '?'}"
                  f" faults={m.faults!r} (a stalled host makes the needle stop, never run on)")
    finally:
        proc.terminate()
        proc.wait()
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
