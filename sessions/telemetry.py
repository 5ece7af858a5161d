"""Telemetry as the record keeps it for good: a summary of each needle run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# A run is under speed while the measured rate is below this share of the rate the machine
# confirmed: the needle strikes less often than the settings say (docs/simulator.md: too little
# voltage for the asked rate under skin drag).
UNDER_SPEED = 0.9
MAX_GAP_MS = 100  # a gap in the frames counts at most this much (lost frames are not time)
QUANTITIES = (("rate", "dhz"), ("voltage", "mv"), ("current", "ma"), ("depth", "um"))


@dataclass(frozen=True)
class Reading:
    """One telemetry sample as the link reports it, in wire integers."""

    at: datetime
    rate_dhz: int
    voltage_mv: int
    current_ma: int
    fault: bool = False
    depth_um: int | None = None


@dataclass
class RunStats:
    """Mean, min and max of each quantity over one run, and its time under speed, without
    keeping the samples."""

    samples: int = 0
    faults: int = 0
    under_speed_ms: int = 0
    _counts: list[int] = field(default_factory=lambda: [0] * 4)
    _sums: list[int] = field(default_factory=lambda: [0] * 4)
    _mins: list[int | None] = field(default_factory=lambda: [None] * 4)
    _maxs: list[int | None] = field(default_factory=lambda: [None] * 4)
    _last: datetime | None = None

    def add(self, r: Reading, set_rate_dhz: int | None) -> None:
        if self._last is not None and set_rate_dhz and r.rate_dhz < UNDER_SPEED * set_rate_dhz:
            gap = (r.at - self._last).total_seconds() * 1000
            self.under_speed_ms += round(min(max(gap, 0), MAX_GAP_MS))
        self._last = r.at
        self.samples += 1
        self.faults += r.fault
        for i, v in enumerate((r.rate_dhz, r.voltage_mv, r.current_ma, r.depth_um)):
            if v is None:
                continue
            self._counts[i] += 1
            self._sums[i] += v
            lo, hi = self._mins[i], self._maxs[i]
            self._mins[i] = v if lo is None else min(lo, v)
            self._maxs[i] = v if hi is None else max(hi, v)

    def columns(self) -> dict[str, int | None]:
        """The needle_runs columns this summary fills."""
        out: dict[str, int | None] = {"samples": self.samples, "faults": self.faults,
                                      "under_speed_ms": self.under_speed_ms}
        for i, (name, unit) in enumerate(QUANTITIES):
            n = self._counts[i]
            out[f"{name}_mean_{unit}"] = round(self._sums[i] / n) if n else None
            out[f"{name}_min_{unit}"] = self._mins[i]
            out[f"{name}_max_{unit}"] = self._maxs[i]
        return out
