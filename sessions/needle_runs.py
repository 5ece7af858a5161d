"""What the needle did in a zone, from its runs: the settings used on skin and for how long.

A zone's summary is derived, never stored: the runs are the facts (sessions/recorder.py
writes one row per run, split where the settings changed). Sessions recorded before runs
were (schema 0004) have none; their zones say so and show only the last settings confirmed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from protocols import QUANTITIES, MachineSettings, Zone
from sessions.models import NeedleRun, zone_of
from sessions.telemetry import QUANTITIES as MEASURED

BEFORE_RUNS = "recorded before per-run settings"
NO_NEEDLE_TIME = "no needle time"
NOT_CONFIRMED = "settings not confirmed"


@dataclass(frozen=True)
class RunView:
    seq: int
    zone: Zone | None
    profile: str
    started_at: datetime
    ended_at: datetime
    needle_ms: int  # the machine's own figure
    exact: bool  # False where a boundary is known to a telemetry period only
    ended_by: str
    settings: MachineSettings | None  # None: the machine had not confirmed what it held
    adjustments: tuple[str, ...]
    samples: int
    under_speed_ms: int
    faults: int
    telemetry: dict[str, int | None]  # rate_mean_dhz, rate_min_dhz, ... depth_max_um


@dataclass(frozen=True)
class UsedSettings:
    settings: MachineSettings | None
    needle_ms: int
    runs: int


@dataclass(frozen=True)
class OnSkin:
    """A zone's needle work in one session."""

    used: tuple[UsedSettings, ...]  # each distinct setting, in the order it was first used
    needle_ms: int
    runs: int  # runs as the machine counted them (a split run counts once)
    mean: MachineSettings | None  # time-weighted over the confirmed runs, on the steps
    low: MachineSettings | None  # the range, field by field
    high: MachineSettings | None

    @property
    def longest(self) -> UsedSettings | None:
        """The confirmed settings the needle ran longest at (what "repeat last" offers)."""
        confirmed = [u for u in self.used if u.settings is not None and u.needle_ms > 0]
        return max(confirmed, key=lambda u: u.needle_ms, default=None)


def run_view(r: NeedleRun) -> RunView:
    settings = None if r.depth_um is None else settings_of(r.depth_um, r.rate_dhz, r.voltage_mv)
    stats = {f"{q}_{s}_{u}": getattr(r, f"{q}_{s}_{u}")
             for q, u in MEASURED for s in ("mean", "min", "max")}
    return RunView(r.seq, zone_of(r.zone), r.profile, r.started_at, r.ended_at, r.needle_ms,
                   r.exact, r.ended_by, settings, tuple(json.loads(r.adjustments)), r.samples,
                   r.under_speed_ms, r.faults, stats)


SPLIT = "settings changed"  # how a run's part ends when new settings split it


def on_skin(runs: Sequence[RunView]) -> OnSkin:
    used: dict[MachineSettings | None, list[int]] = {}
    for r in runs:
        u = used.setdefault(r.settings, [0, 0])
        u[0] += r.needle_ms
        u[1] += 1
    return on_skin_of([UsedSettings(s, ms, n) for s, (ms, n) in used.items()],
                      sum(1 for r in runs if r.ended_by != SPLIT))


def on_skin_of(used: Sequence[UsedSettings], runs: int) -> OnSkin:
    """The summary from each distinct setting's needle time (in the order first used) and the
    number of whole runs: what on_skin computes from runs, or a query sums in SQL."""
    confirmed = [u for u in used if u.settings is not None]
    return OnSkin(tuple(used), sum(u.needle_ms for u in used), runs, _weighted(confirmed),
                  _bound(confirmed, min), _bound(confirmed, max))


# Summaries are worked in the wire's integers and validated once per distinct value: a
# client's history builds thousands of them, and validating each costs more than its query.
_WIRE_STEPS = tuple(int(q.step * q.wire_scale) for q in QUANTITIES)


@functools.lru_cache(maxsize=4096)
def settings_of(depth_um: int, rate_dhz: int, voltage_mv: int) -> MachineSettings:
    """MachineSettings.from_wire, once per distinct value (they are frozen: safe to share)."""
    return MachineSettings.from_wire(depth_um, rate_dhz, voltage_mv)


@functools.lru_cache(maxsize=4096)
def _wire(settings: MachineSettings) -> tuple[int, ...]:
    return tuple(settings.to_wire())


def _weighted(used: Sequence[UsedSettings]) -> MachineSettings | None:
    wires = [(_wire(u.settings), u.needle_ms) for u in used if u.settings is not None]
    total = sum(ms for _, ms in wires)
    if total == 0:
        return None
    mean = []
    for i, step in enumerate(_WIRE_STEPS):
        exact = Decimal(sum(w[i] * ms for w, ms in wires)) / total / step
        mean.append(int(exact.quantize(Decimal(1))) * step)
    return settings_of(*mean)


def _bound(used: Sequence[UsedSettings],
           pick: Callable[[Iterable[int]], int]) -> MachineSettings | None:
    wires = [_wire(u.settings) for u in used if u.settings is not None]
    if not wires:
        return None
    return settings_of(*(pick(w[i] for w in wires) for i in range(len(_WIRE_STEPS))))


def duration_text(ms: int) -> str:
    """"4 min 10 s", "40 s", "0.4 s": needle time as a person reads it."""
    if ms < 10_000:
        return f"{ms / 1000:.1f} s".replace(".0 s", " s")
    s = round(ms / 1000)
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s} s" if s else f"{m} min"
    h, m = divmod(m, 60)
    return f"{h} h {m} min"


def used_text(u: UsedSettings) -> str:
    what = u.settings.short() if u.settings is not None else NOT_CONFIRMED
    runs = f", {u.runs} runs" if u.runs > 1 else ""
    return f"{what} for {duration_text(u.needle_ms)}{runs}"


def describe(per_run: bool, skin: OnSkin | None, confirmed: MachineSettings | None,
             ) -> list[str]:
    """A zone's settings as every view says them, a line each: what was used on skin, or
    why nothing can be said of it."""
    if not per_run:
        last = f": last confirmed {confirmed.short()}" if confirmed is not None else ""
        return [f"{BEFORE_RUNS}{last}"]
    if skin is None or skin.needle_ms == 0:
        never = f" (confirmed {confirmed.short()}, never run)" if confirmed is not None else ""
        return [f"{NO_NEEDLE_TIME}{never}"]
    return [used_text(u) for u in skin.used]


_runs = NeedleRun.__table__
_ON_SKIN = (select(_runs.c.session_id, _runs.c.zone, _runs.c.depth_um, _runs.c.rate_dhz,
                   _runs.c.voltage_mv, func.sum(_runs.c.needle_ms), func.count(),
                   func.sum(case((_runs.c.ended_by == SPLIT, 0), else_=1)),
                   func.min(_runs.c.seq).label("first"))
            .group_by(_runs.c.session_id, _runs.c.zone, _runs.c.depth_um, _runs.c.rate_dhz,
                      _runs.c.voltage_mv)
            .order_by(_runs.c.session_id, "first"))


def on_skin_by_zone(s: Session, session_ids: Sequence[int],
                    ) -> dict[tuple[int, str | None], OnSkin]:
    """Each (session, zone)'s summary, summed in the database: a client's history reads a
    few rows per zone, not every run (bench/bench_history.py measures both)."""
    groups: dict[tuple[int, str | None], tuple[list[UsedSettings], list[int]]] = {}
    if session_ids:
        for sid, zone, depth, rate, volt, ms, parts, whole, _ in s.execute(
                _ON_SKIN.where(_runs.c.session_id.in_(session_ids))):
            settings = None if depth is None else settings_of(depth, rate, volt)
            used, runs = groups.setdefault((sid, zone), ([], [0]))
            used.append(UsedSettings(settings, int(ms), int(parts)))
            runs[0] += int(whole)
    return {key: on_skin_of(used, runs[0]) for key, (used, runs) in groups.items()}


def grouped_runs(rows: Iterable[NeedleRun]) -> dict[tuple[int, str | None], list[RunView]]:
    """Runs by (session, zone), in order."""
    out: dict[tuple[int, str | None], list[RunView]] = {}
    for r in rows:
        out.setdefault((r.session_id, r.zone), []).append(run_view(r))
    return out
