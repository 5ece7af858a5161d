"""Needle runs, counted from what the machine says (docs/protocol.md C-9.5).

TELEMETRY carries `runs` (entries to RUNNING since boot, modulo 256) and `needle_ms` (time
driven since boot, modulo 2^32). Fed every frame in order, `RunCounter` tells when each run
started and ended and how long it was, on the machine's clock: a run shorter than a frame
period, or two runs between two frames, is still counted; a frame that never arrived only
moves the boundary of what it would have shown, never the total.

Between two frames the counters say how many runs began (`dr`) and how long the needle was
driven (`dn`). When one interval holds more than one boundary (a run that ended and another
that began, or runs that came and went in it) the split of `dn` between them is not known;
it is shared evenly, so each such boundary is off by less than one telemetry period while the
total stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_bridge.codec import State, Telemetry

RUNS_WRAP, NEEDLE_WRAP, UPTIME_WRAP = 1 << 8, 1 << 32, 1 << 32


@dataclass(frozen=True)
class RunStarted:
    uptime_ms: int  # the frame that told of it (the run began in the interval before it)


@dataclass(frozen=True)
class RunEnded:
    uptime_ms: int  # the frame that told of it
    duration_ms: int  # the machine's needle time for this run
    state: State | None  # what the machine was in when it was told (ARMED: the pedal, ...)
    exact: bool  # False when the run shared its interval with another boundary


RunEvent = RunStarted | RunEnded


class RunCounter:
    def __init__(self) -> None:
        self._last: tuple[int, int] | None = None  # (runs, needle_ms) of the previous frame
        self._uptime: int | None = None  # uptime_ms of the previous frame
        self._open: int | None = None  # needle time of the run going on now, so far
        self._shared = False

    @property
    def running(self) -> bool:
        return self._open is not None

    @property
    def open_ms(self) -> int:
        return self._open or 0

    def reset(self) -> None:
        """The machine restarted: its counters began again from 0."""
        self._last = None
        self._open = None
        self._uptime = None

    def feed(self, t: Telemetry) -> list[RunEvent]:
        state = State(t.state) if t.state in State._value2member_map_ else None
        running = state == State.RUNNING
        out: list[RunEvent] = []
        # Uptime going back is a new boot whose frames came before the link said so (it
        # tells by IDENT): its counters began again from 0, and a difference with the old
        # ones is no needle time (a run of 2^32 ms was shown). The open run ends with what
        # was known of it.
        restarted = (self._uptime is not None and t.uptime_ms < self._uptime
                     and self._uptime - t.uptime_ms < UPTIME_WRAP // 2)
        self._uptime = t.uptime_ms
        if restarted:
            if self._open is not None:
                self._shared = True  # not exact: the old boot's last frames are unknown
                out.append(self._end(t.uptime_ms, None))
            self._last = None
        if self._last is None:
            self._last = (t.runs, t.needle_ms)
            if running:
                # Running before we could see it start: counted from here.
                self._open, self._shared = 0, False
                out.append(RunStarted(t.uptime_ms))
            return out
        dr = (t.runs - self._last[0]) % RUNS_WRAP
        dn = (t.needle_ms - self._last[1]) % NEEDLE_WRAP
        self._last = (t.runs, t.needle_ms)
        if dr == 0:
            if self._open is not None:
                self._open += dn
                if not running:
                    out.append(self._end(t.uptime_ms, state))
            elif running:  # never seen starting (e.g. the first frames were lost)
                self._open, self._shared = dn, False
                out.append(RunStarted(t.uptime_ms))
            return out
        # `dr` runs began in this interval; the open one (if any) ended in it too.
        parts = dr + (1 if self._open is not None else 0)
        share, rest = divmod(dn, parts)
        if self._open is not None:
            self._open += share
            self._shared = parts > 1
            out.append(self._end(t.uptime_ms, state))
        for i in range(dr):
            last = i == dr - 1
            self._open = share + (rest if last else 0)
            self._shared = parts > 1
            out.append(RunStarted(t.uptime_ms))
            if not (last and running):
                out.append(self._end(t.uptime_ms, state))
        return out

    def _end(self, uptime_ms: int, state: State | None) -> RunEnded:
        ended = RunEnded(uptime_ms, self._open or 0, state, not self._shared)
        self._open, self._shared = None, False
        return ended
