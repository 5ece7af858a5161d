"""Bit errors at 1e-2 for minutes, settings changed every few seconds and pedal runs: how many
needle runs were at settings the host did not show (issue 12). Counted from the simulator's
own log, not the host's belief.

`smp sim --pty --events FILE` flips each bit on its line with probability 1e-2 (both ways),
from the moment the host is connected; the host is the console's: a machine service started
for the port (connect_machine). Each
cycle: new settings (apply; a failure is not retried), then, if and only if the host shows
settings as confirmed (what the console would show; it refuses to arm otherwise), arm, pedal
down 0.6 s, pedal up. For every RUNNING on the machine's log: the settings it ran at are the
last SET it executed before it; the host's are what it showed during that cycle. Target: 0 runs
at settings the host did not show. Baseline in the same run: the same cycles without bit
errors (every cycle runs, every run at the shown settings).

    .venv/bin/python bench/bench_ber.py [seconds] [baseline-seconds]
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bench_stop import Sim, cpu_times  # run as a script: bench/ is on sys.path

from console.machine_process import connect_machine
from firmware_bridge import State
from protocols import MachineSettings
from protocols.errors import SmpError


def wire(s: MachineSettings) -> str:
    w = s.to_wire()
    return f"{w.depth_um} um {w.rate_dhz} dHz {w.voltage_mv} mV"  # as the machine logs a SET


def cycles(sim: Sim, ber: float, seconds: float, rng: random.Random
           ) -> tuple[list[tuple], dict]:
    """Runs the cycles; returns (start ns, end ns, shown settings) for each armed cycle."""
    client, service = connect_machine(sim.port)
    if ber:  # once connected: at 1e-2 a handshake seldom gets through (the console says so)
        sim.command(f"fault bit-errors {ber}")
    windows, counts = [], {"cycles": 0, "set failed": 0, "not shown": 0, "arm failed": 0}
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            counts["cycles"] += 1
            wanted = MachineSettings(depth_mm=Decimal(rng.randrange(120, 201, 5)) / 100,
                                     rate_hz=rng.randrange(100, 131),
                                     voltage_v=Decimal(rng.randrange(60, 81)) / 10)
            try:
                client.apply(wanted, timeout=5)
            except SmpError:
                counts["set failed"] += 1
            time.sleep(rng.uniform(1.0, 3.0))  # "every few seconds"
            shown = client.applied if client.confirmed else None
            if shown is None:
                counts["not shown"] += 1  # the console shows UNKNOWN and refuses arming
                continue
            t0 = time.monotonic_ns()
            try:
                if client.state == State.FAULTED:
                    client.clear_fault(timeout=5)
                client.arm(timeout=5)
                sim.command("pedal down")
                time.sleep(0.6)
            except SmpError:
                counts["arm failed"] += 1
            finally:
                sim.command("pedal up")
                time.sleep(0.3)
            windows.append((t0, time.monotonic_ns(), wire(shown)))
            with contextlib.suppress(SmpError):
                client.disarm(timeout=5)
    finally:
        client.close()
        if service is not None:
            service.close()
    return windows, counts


def judge(events: Path, windows: list[tuple]) -> tuple[int, int, int]:
    """(runs, runs at the shown settings, runs at other settings or outside any cycle)."""
    held, runs, good, bad = None, 0, 0, 0
    for line in events.read_text().splitlines():
        e = json.loads(line)
        if e["what"] == "boot":
            held = None
        elif e["what"] == "SET":
            held = e["detail"]
        elif e["what"] == "state" and e["detail"].split(" -> ")[1].startswith("RUNNING"):
            runs += 1
            shown = next((w[2] for w in windows if w[0] <= e["mono_ns"] <= w[1]), None)
            if shown is not None and shown == held:
                good += 1
            else:
                bad += 1
    return runs, good, bad


def run_case(tmp: Path, name: str, ber: float, seconds: float) -> tuple[str, int]:
    sim = Sim(tmp / f"{name}.jsonl")
    try:
        windows, counts = cycles(sim, ber, seconds, random.Random(7))
    finally:
        sim.close()
    runs, good, bad = judge(tmp / f"{name}.jsonl", windows)
    return (f"| {name} | {seconds:.0f} s | {counts['cycles']} | {counts['set failed']} | "
            f"{counts['not shown']} | {counts['arm failed']} | {runs} | {good} | **{bad}** |"), bad


def main() -> int:
    args = [float(a) for a in sys.argv[1:]]
    seconds = args[0] if args else 600.0
    base_s = args[1] if len(args) > 1 else 60.0
    tmp = Path(tempfile.mkdtemp(prefix="bench-ber-"))
    cpu0 = cpu_times()
    base, _ = run_case(tmp, "no bit errors (baseline)", 0.0, base_s)
    row, bad = run_case(tmp, "BER 1e-2", 1e-2, seconds)
    cpu1 = cpu_times()
    total = sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) or 1
    print(f"CPU steal {(cpu1[7] - cpu0[7]) / total * 100:.1f}%")
    print("| case | time | cycles | SET failed | settings not shown (arming refused) | "
          "arm failed | runs on the machine | at shown settings | at settings not shown |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(base)
    print(row)
    print(f"target: 0 runs at settings the host did not show: {'met' if not bad else 'NOT met'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
