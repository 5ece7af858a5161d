"""Clocks for the firmware: a fake one that tests advance by hand, and the real monotonic one.

Time is integer nanoseconds so that "the watchdog fires at 250 ms, not at 249.999" is exact.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int: ...


class MonotonicClock:
    """Real time: `time.monotonic_ns()`."""

    def now_ns(self) -> int:
        return time.monotonic_ns()


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, start_ns: int = 0):
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance(self, seconds: float) -> None:
        self.advance_ns(round(seconds * 1_000_000_000))

    def advance_ms(self, ms: int) -> None:
        self.advance_ns(ms * 1_000_000)

    def advance_ns(self, ns: int) -> None:
        if ns < 0:
            raise ValueError("a clock does not go backwards")
        self._now += ns
