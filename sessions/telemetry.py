"""Telemetry summaries: what the record keeps of the 50 Hz stream for good."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Reading:
    """One telemetry sample as the link reports it, in wire integers."""

    at: datetime
    rate_dhz: int
    voltage_mv: int
    current_ma: int
    fault: bool = False


@dataclass
class Accumulator:
    """Running totals for one pedal run or one zone: mean and peak without keeping samples."""

    run_ms: int = 0
    samples: int = 0
    faults: int = 0
    _sums: list[int] = field(default_factory=lambda: [0, 0, 0])
    _peaks: list[int] = field(default_factory=lambda: [0, 0, 0])

    def add(self, r: Reading) -> None:
        self.samples += 1
        self.faults += r.fault
        for i, v in enumerate((r.rate_dhz, r.voltage_mv, r.current_ma)):
            self._sums[i] += v
            self._peaks[i] = max(self._peaks[i], v)

    def merge(self, other: Accumulator) -> None:
        self.run_ms += other.run_ms
        self.samples += other.samples
        self.faults += other.faults
        for i in range(3):
            self._sums[i] += other._sums[i]
            self._peaks[i] = max(self._peaks[i], other._peaks[i])

    def columns(self) -> dict[str, int | None]:
        names = ("rate_dhz", "voltage_mv", "current_ma")
        out: dict[str, int | None] = {"run_ms": self.run_ms, "samples": self.samples,
                                      "faults": self.faults}
        for i, name in enumerate(names):
            has = self.samples > 0
            out[f"mean_{name}"] = round(self._sums[i] / self.samples) if has else None
            out[f"peak_{name}"] = self._peaks[i] if has else None
        return out
