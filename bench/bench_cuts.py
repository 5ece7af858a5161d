"""A cut in either direction -> needle stopped, through the machine service, from the
machine's own log.

`smp sim --pty --events` in one process, a man in the middle of the line (`python -m sim.mitm`)
in another, the machine service in a third; this process is the console. With the needle
RUNNING the line is cut one way:
- machine -> host: the machine still hears the heartbeat, so only the host can stop it (it
  sends STOP after the watchdog less 100 ms of silence);
- host -> machine: the machine's watchdog stops it 250 ms after the last frame it heard.
Measured from the moment the cut took effect (the man in the middle's CLOCK_MONOTONIC, which
the simulator's log shares) to the machine's RUNNING -> FAULTED. Target: max <= 250 ms over at
least 50 cuts each way. Baseline in the same run: the watchdog setting.

    .venv/bin/python bench/bench_cuts.py [cuts-each-way]
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_stop import Sim, cpu_times, pct, stopped_by, wait_for  # bench/ is on sys.path

from console.machine_process import connect_machine
from firmware_bridge import LinkState, State
from protocols import MachineSettings

CUTS = 50
WATCHDOG_MS = 250
TARGET_MS = 250


class Mitm:
    def __init__(self, upstream: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "sim.mitm", upstream],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.address = self.proc.stdout.readline().split()[2]

    def say(self, command: str) -> int:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline().split()[1])

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)


def main() -> int:
    cuts = int(sys.argv[1]) if len(sys.argv) > 1 else CUTS
    rng = random.Random(1)
    cpu_before = cpu_times()
    results: dict[str, list[float]] = {"m2h": [], "h2m": []}
    causes: dict[str, set[str]] = {"m2h": set(), "h2m": set()}
    with tempfile.TemporaryDirectory(prefix="smp-bench-cuts-") as tmp:
        sim = Sim(Path(tmp) / "events.jsonl")
        mitm = Mitm(sim.port)
        host, service = connect_machine(mitm.address)
        try:
            host.apply(MachineSettings(depth_mm=1.0, rate_hz=100, voltage_v=6.5))
            time.sleep(1.0)  # the depth actuator reaches its setpoint
            for i in range(2 * cuts):
                direction = "m2h" if i % 2 == 0 else "h2m"
                sim.command("pedal up")
                wait_for(lambda: host.link_state == LinkState.CONNECTED
                         and host.telemetry is not None and not host.telemetry.pedal_down)
                if host.state == State.FAULTED:
                    host.clear_fault()
                if host.applied is None or not host.confirmed:
                    host.apply(MachineSettings(depth_mm=1.0, rate_hz=100, voltage_v=6.5))
                host.arm()
                sim.command("pedal down")
                wait_for(lambda: host.state == State.RUNNING)
                time.sleep(rng.uniform(0.03, 0.09))  # at every phase of heartbeat and telemetry
                t_cut = mitm.say(f"cut {direction}")
                e = sim.wait_event(t_cut, stopped_by(""))
                mitm.say("heal")
                results[direction].append((e["mono_ns"] - t_cut) / 1e6)
                causes[direction].add(e["detail"].rsplit(": ", 1)[-1])
            sim.command("pedal up")
        finally:
            host.close()
            if service is not None:
                service.close()
            mitm.close()
            sim.close()
    spent = [b - a for a, b in zip(cpu_before, cpu_times(), strict=True)]
    print(f"cut -> needle stopped (the machine's log), through the machine service, {cuts} cuts "
          f"each way; load average {os.getloadavg()[0]:.2f}, CPU steal "
          f"{100 * spent[7] / max(1, sum(spent)):.1f}% of the run")
    met = True
    for direction, values in results.items():
        late = sum(1 for v in values if v > TARGET_MS)
        met &= late == 0
        what = ("machine -> host (the host's STOP)" if direction == "m2h"
                else "host -> machine (the machine's watchdog)")
        print(f"  {what}: p50 {pct(values, 50):7.2f}  p99 {pct(values, 99):7.2f}  max "
              f"{max(values):7.2f} ms; stopped by {', '.join(sorted(causes[direction]))}")
    print(f"  baseline: the watchdog setting, {WATCHDOG_MS} ms; target max <= {TARGET_MS} ms each "
          f"way: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
