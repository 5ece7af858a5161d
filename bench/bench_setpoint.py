"""Setpoint round trip the console's way: `apply()` through the machine service to `smp sim
--pty` paced at 115200 baud (the line a real machine has) -> the machine's read-back received.

The floor is the serialisation of SET and APPLIED both ways: 2 x 15 bytes x 86.8 us = 2.60 ms.
Targets (issue 12): p50 <= 1.2 x the floor, p99 <= the floor + one telemetry frame on the
line (27 bytes: 2.34 ms, which a SET can queue behind) + 1 ms. Beside it, in the same run: the
same through the service at 4,000,000 baud (the simulator's fastest pacing: the line's share
almost gone), and a link in this process without the service at 115200 (the service's own
cost is the difference).

    .venv/bin/python bench/bench_setpoint.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bench_stop import Sim, cpu_times, pct  # run as a script: bench/ is on sys.path

from console.machine_process import connect_machine
from firmware_bridge import Machine
from protocols import MachineSettings

BYTE_US = 10 / 115200 * 1e6  # 8N1: ten bits a byte
FLOOR_MS = 2 * 15 * BYTE_US / 1000
TELEMETRY_MS = 27 * BYTE_US / 1000
SETTINGS = [MachineSettings(depth_mm=Decimal("1.50"), rate_hz=110, voltage_v=Decimal("6.5")),
            MachineSettings(depth_mm=Decimal("1.55"), rate_hz=111, voltage_v=Decimal("6.6"))]


def trips(machine, n: int) -> list[float]:
    for s in SETTINGS:  # warm: both settings once
        machine.apply(s)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        machine.apply(SETTINGS[i % 2])
        out.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.003)  # not back to back: a technician's key presses are far apart
    return out


def through_service(tmp: Path, baud: int, n: int) -> list[float]:
    sim = Sim(tmp / f"machine-{baud}.jsonl", "--baud", str(baud))
    try:
        client, service = connect_machine(sim.port)
        try:
            return trips(client, n)
        finally:
            client.close()
            if service is not None:
                service.close()
    finally:
        sim.close()


def in_process(tmp: Path, n: int) -> list[float]:
    sim = Sim(tmp / "machine-direct.jsonl", "--baud", "115200")
    try:
        with Machine.connect(sim.port) as m:
            return trips(m, n)
    finally:
        sim.close()


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    tmp = Path(tempfile.mkdtemp(prefix="bench-setpoint-"))
    cpu0 = cpu_times()
    paced = through_service(tmp, 115200, n)
    fast = through_service(tmp, 4_000_000, n)
    direct = in_process(tmp, n)
    cpu1 = cpu_times()
    total = sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) or 1
    steal = (cpu1[7] - cpu0[7]) / total * 100
    p50, p99 = pct(paced, 50), pct(paced, 99)
    print(f"setpoint round trip, {n} trips each; floor {FLOOR_MS:.2f} ms; CPU steal {steal:.1f}%")
    print("| path | p50 | p99 | max | p50 vs floor |")
    print("|---|---|---|---|---|")
    for label, xs in (("service, paced 115200", paced), ("service, 4,000,000 baud", fast),
                      ("in-process link, paced 115200", direct)):
        print(f"| {label} | {pct(xs, 50):.2f} ms | {pct(xs, 99):.2f} ms | {max(xs):.2f} ms | "
              f"x{pct(xs, 50) / FLOOR_MS:.2f} |")
    p50_ok = p50 <= 1.2 * FLOOR_MS
    p99_ok = p99 <= FLOOR_MS + TELEMETRY_MS + 1
    print(f"targets: p50 <= {1.2 * FLOOR_MS:.2f} ms: {'met' if p50_ok else 'NOT met'}; "
          f"p99 <= {FLOOR_MS + TELEMETRY_MS + 1:.2f} ms: {'met' if p99_ok else 'NOT met'}")
    return 0 if p50_ok and p99_ok else 1


if __name__ == "__main__":
    sys.exit(main())
