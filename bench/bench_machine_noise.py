"""How often this machine stops running a process at all, and whether the hypervisor did it.

A thread that does nothing but sleep 10 ms at a time is the floor under every real-time figure
in docs/benchmarks.md: when it wakes late, the heartbeat, the simulator's watchdog and the
console would all have been late too, whatever their code. Each wake-up reads the CPU time the
hypervisor took from this VM ("steal", /proc/stat); a stall is a wake-up over 50 ms late, and it
is put down to steal if steal was counted in it or in the 250 ms before it.

    .venv/bin/python bench/bench_machine_noise.py [seconds]
"""

from __future__ import annotations

import os
import sys
import time

from bench_stop import cpu_times, pct  # run as a script: bench/ is on sys.path

SLEEP_S = 0.010
STALL_S = 0.050
WINDOW_S = 0.250


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    start = cpu_times()
    prev, prev_t = start, time.monotonic()
    end = prev_t + seconds
    late_ms: list[float] = []
    steal_at: list[float] = []  # when steal was counted
    stalls: list[tuple[float, float]] = []  # (when, how late in ms)
    while prev_t < end:
        time.sleep(SLEEP_S)
        now, cpu = time.monotonic(), cpu_times()
        late = now - prev_t - SLEEP_S
        late_ms.append(late * 1000)
        if cpu[7] > prev[7]:
            steal_at.append(now)
        if late > STALL_S:
            stalls.append((now, late * 1000))
        prev, prev_t = cpu, now
    spent = [b - a for a, b in zip(start, prev, strict=True)]
    stolen = sum(1 for t, _ in stalls
                 if any(t - WINDOW_S - STALL_S <= s <= t for s in steal_at))
    print(f"a thread sleeping {SLEEP_S * 1000:.0f} ms at a time for {seconds:.0f} s, load average "
          f"{os.getloadavg()[0]:.2f}, CPU steal {100 * spent[7] / max(1, sum(spent)):.1f}% of "
          "the run")
    print(f"  woke late by  p50 {pct(late_ms, 50):6.2f}  p99 {pct(late_ms, 99):6.2f}  "
          f"p99.9 {pct(late_ms, 99.9):6.2f}  max {max(late_ms):7.2f} ms")
    print(f"  stalls over {STALL_S * 1000:.0f} ms: {len(stalls)}, of which {stolen} with "
          f"hypervisor steal counted within {WINDOW_S * 1000:.0f} ms"
          + (f"; longest {max(ms for _, ms in stalls):.0f} ms" if stalls else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
