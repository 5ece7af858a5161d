"""A recorded session played back on the working screen's widgets, read-only: REPLAY on every
frame, play/pause, speed, and a timeline of applies, arms, runs, stops, faults and notes to
jump to. It has no controller and sends nothing to any machine.

The session and its flight record are read in thread workers that post plain objects; the
UI thread only computes pictures from chunks already decoded (console/replay.py). Pushed by
`smp replay` (console/cmd_replay.py) and by the history browser's Replay action. In the
console, the live machine's own banners stay on a line of their own (STOP keys keep working:
they are the app's).
"""

from __future__ import annotations

import bisect
import time
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from console import replay
from console.app_base import KeyedApp
from console.cmd_replay import MAX_SPEED, MIN_SPEED
from console.reader import RecordReader, ReplaySession, outcome_label
from console.view import View
from console.widgets.banner import Banner
from console.widgets.machine import MachinePanel
from console.widgets.scalp import ScalpMap
from console.widgets.table import Table
from console.widgets.text import plain, set_text, settings_lines
from protocols import SmpError

TICK_S = 0.1  # ten pictures a second, as the live screen refreshes
STEP_US = 10_000_000  # left/right: 10 s


class Loaded(Message):
    def __init__(self, rs: ReplaySession | None, error: str, presentation: bool):
        super().__init__()
        self.rs, self.error, self.presentation = rs, error, presentation


class ChunksReady(Message):
    """The flight chunks a seek needed are loaded: show the picture again."""


class ReplayScreen(Screen[None]):
    DEFAULT_CSS = """
    ReplayScreen #replay-body { height: 1fr; }
    ReplayScreen #left { width: 34; }
    ReplayScreen #middle { width: 1fr; }
    ReplayScreen #right { width: 44; }
    ReplayScreen #profile, ReplayScreen #log { border: round $primary; height: auto;
                                               padding: 0 1; }
    ReplayScreen #position, ReplayScreen #live, ReplayScreen #session { height: auto;
                                                                         padding: 0 1; }
    ReplayScreen #marks { height: 12; }
    """

    if TYPE_CHECKING:  # a browser runs in any console app (the console, smp replay, alone)
        @property
        def app(self) -> KeyedApp: ...  # type: ignore[override]  # narrowed, never assigned

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "play", "Play/pause", id="replay.play", tooltip="Play or pause"),
        Binding("plus,equals_sign", "speed(2)", "Faster", id="replay.faster",
                tooltip="Twice as fast (up to 64x)"),
        Binding("minus", "speed(0.5)", "Slower", id="replay.slower",
                tooltip="Half as fast (down to 0.1x)"),
        Binding("left", "step(-1)", "-10 s", id="replay.back", tooltip="10 s back"),
        Binding("right", "step(1)", "+10 s", id="replay.forward", tooltip="10 s on"),
        Binding("n", "mark(1)", "Next", id="replay.next", tooltip="The next timeline entry"),
        Binding("b", "mark(-1)", "Previous", id="replay.previous",
                tooltip="The previous timeline entry"),
        Binding("f10,q", "close", "Close", id="replay.close", tooltip="Leave the replay"),
    ]

    def __init__(self, record: RecordReader, session_id: int, *,
                 speed: float = 1.0, play: bool = True,
                 loaded: ReplaySession | None = None):
        super().__init__()
        self._preloaded = loaded  # read before the app started (smp replay): shown at once
        self._record = record
        self.session_id = session_id
        self.speed = speed
        self.playing = play
        self.rs: ReplaySession | None = None
        self.at_us = 0
        self.shown: View | None = None  # the last picture drawn (tests read it)
        self.first_frame_s: float | None = None  # from mount to the first picture
        self._mounted_at = 0.0
        self._fetching = False
        self._last_tick = 0.0
        self._revision = 0

    @property
    def presentation(self) -> bool:
        return bool(getattr(self.app, "presentation", False))

    def compose(self) -> ComposeResult:
        yield Banner(id="banner")
        yield Static(id="live")
        yield Static("Reading the session...", id="session", classes="title")
        with Horizontal(id="replay-body"):
            with Vertical(id="left"):
                yield ScalpMap(id="map")
            with Vertical(id="middle"):
                yield Static(id="profile")
                yield Static(id="log")
            with Vertical(id="right"):
                yield MachinePanel(id="machine")
        yield Static(id="position")
        yield Table(id="marks", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self._mounted_at = time.monotonic()
        self.query_one("#profile").border_title = "zone and settings (the machine's frames)"
        self.query_one("#log").border_title = "recorded"
        self.query_one("#marks", DataTable).add_columns("Time (UTC)", "At", "What")
        self.query_one("#live", Static).display = False
        if hasattr(type(self.app), "presentation"):
            self.watch(self.app, "presentation", self._mode_changed, init=False)
        pre, self._preloaded = self._preloaded, None
        if pre is not None and pre.presentation == self.presentation:
            self.post_message(Loaded(pre, "", pre.presentation))
        else:
            self._load(self.presentation)
        self.set_interval(TICK_S, self._tick)
        self.show(getattr(self.app, "view", View()))

    # -- reading (workers) ------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="replay-load")
    def _load(self, presentation: bool) -> None:
        try:
            rs = self._record.replay(self.session_id, presentation)
        except SmpError as exc:
            self.post_message(Loaded(None, str(exc), presentation))
            return
        self.post_message(Loaded(rs, "", presentation))

    @work(thread=True, exclusive=True, exit_on_error=False, group="replay-fetch")
    def _fetch(self, rs: ReplaySession, at_us: int) -> None:
        start, end = replay.needs(rs, at_us)
        ahead = rs.flight.chunk_of(end) + 1  # the next chunk too: playing reaches it soon
        rs.flight.load([*rs.flight.chunks_for(start, end),
                        *([ahead] if ahead < len(rs.flight.index) else [])])
        self.post_message(ChunksReady())

    @on(Loaded)
    def _loaded(self, msg: Loaded) -> None:
        if msg.presentation != self.presentation:
            return  # read under the other mode: never shown
        if msg.rs is None:
            set_text(self.query_one("#session", Static), f"ERROR: {msg.error}")
            self.playing = False
            return
        first = self.rs is None
        self.rs = msg.rs
        if first:
            self.at_us = msg.rs.start_us
        rs = msg.rs
        set_text(self.query_one("#session", Static),
                 f"REPLAY of session {rs.session_id}  client {rs.client}  by {rs.technician}  "
                 f"{rs.stage.label}  {outcome_label(rs.outcome)}   [{rs.machine}]   "
                 f"{rs.flight.frames} frames")
        self._last_tick = time.monotonic()
        self._update_picture()  # the picture first: a long timeline takes a while to fill
        table = self.query_one("#marks", DataTable)
        table.clear()
        for i, m in enumerate(rs.marks):
            table.add_row(*(plain(x) for x in (
                f"{m.event.at:%H:%M:%S}", _elapsed(m.at_us - rs.start_us), m.text)),
                key=str(i))

    @on(ChunksReady)
    def _chunks_ready(self) -> None:
        self._fetching = False
        self._update_picture()

    # -- playing ----------------------------------------------------------------------

    def _tick(self) -> None:
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        if self.rs is None or not self.playing:
            return
        self.at_us = min(self.rs.end_us, self.at_us + int(elapsed * self.speed * 1e6))
        if self.at_us >= self.rs.end_us:
            self.playing = False
        self._update_picture()

    def seek(self, at_us: int) -> None:
        if self.rs is None:
            return
        self.at_us = max(self.rs.start_us, min(self.rs.end_us, at_us))
        self._update_picture()

    def _update_picture(self) -> None:
        rs = self.rs
        if rs is None:
            return
        if not replay.ready(rs, self.at_us):
            if not self._fetching:
                self._fetching = True
                self._fetch(rs, self.at_us)
            return  # drawn when the chunks are in
        self._revision += 1
        view = replay.view_at(rs, self.at_us, revision=self._revision)
        self._draw(view)
        if self.first_frame_s is None:
            self.first_frame_s = time.monotonic() - self._mounted_at
        # The next chunk read ahead while this one plays.
        ahead = rs.flight.chunk_of(self.at_us) + 1
        if (self.playing and not self._fetching and ahead < len(rs.flight.index)
                and rs.flight.cached(ahead) is None):
            self._fetching = True
            self._fetch(rs, rs.flight.index[ahead].first_us)

    def _draw(self, view: View) -> None:
        self.shown = view
        rs = self.rs
        assert rs is not None
        self.query_one(Banner).show(view)
        self.query_one(ScalpMap).show(view.work)
        self.query_one(MachinePanel).show(view)
        w, m = view.work, view.machine
        zone = w.zone.label if w and w.zone else "none yet"
        applied = m.applied
        if not m.settings_known:
            settings = "SETTINGS NOT CONFIRMED (the machine did not answer)"
        elif applied is None:
            settings = "settings: none in force"
        else:
            settings = settings_lines(applied)
        reasons = "\n".join(f"- {r}" for r in (w.reasons if w else ())) or "-"
        set_text(self.query_one("#profile", Static),
                 f"{zone}  profile {(w.profile if w else '') or '-'}\n{settings}\nwhy:\n"
                 f"{reasons}")
        set_text(self.query_one("#log", Static), "\n".join(view.log))
        done = replay.position(rs, self.at_us).marks_done
        state = "PLAYING" if self.playing else "PAUSED"
        set_text(self.query_one("#position", Static),
                 f"REPLAY {state} x{self.speed:g}  {replay.clock_text(rs, self.at_us)}  "
                 f"[{done}/{len(rs.marks)} entries]  p play/pause, +/- speed, <-/-> 10 s, "
                 "n/b next/previous, Enter on an entry jumps to it")

    # -- what the app sends -----------------------------------------------------------

    def show(self, view: View) -> None:
        """A live view from the console: the live machine's alarms on a line of their own
        (the replay's picture is not the machine's)."""
        live = self.query("#live")
        if not live:
            return
        words = view.banners
        live.first().display = bool(words)
        set_text(live.first(Static), "LIVE MACHINE: " + "  |  ".join(words) if words else "")

    def presentation_changed(self, on: bool) -> None:
        """Handled by _mode_changed (the app's reactive); the app calls this on every screen."""

    def _mode_changed(self, on: bool) -> None:
        # Nothing read under the other mode stays: the names and free text are read again.
        self.rs = None
        self.shown = None
        self.query_one("#marks", DataTable).clear()
        set_text(self.query_one("#session", Static), "Reading the session...")
        for name in ("#profile", "#log"):
            set_text(self.query_one(name, Static), "")
        self._load(on)

    # -- actions ----------------------------------------------------------------------

    def action_play(self) -> None:
        if self.rs is not None and self.at_us >= self.rs.end_us:
            self.at_us = self.rs.start_us  # played to the end: from the start again
        self.playing = not self.playing
        self._last_tick = time.monotonic()
        self._update_picture()

    def action_speed(self, factor: float) -> None:
        self.speed = min(MAX_SPEED, max(MIN_SPEED, self.speed * factor))
        self._update_picture()

    def action_step(self, direction: int) -> None:
        self.seek(self.at_us + direction * STEP_US)

    def action_mark(self, direction: int) -> None:
        rs = self.rs
        if rs is None or not rs.marks:
            return
        times = [m.at_us for m in rs.marks]
        # Next: the first entry after now; previous: the last one before now.
        i = (bisect.bisect_right(times, self.at_us) if direction > 0
             else bisect.bisect_left(times, self.at_us) - 1)
        if 0 <= i < len(rs.marks):
            self.jump(i)

    def jump(self, i: int) -> None:
        """To timeline entry i: the picture as it was when it was recorded."""
        assert self.rs is not None
        self.query_one("#marks", DataTable).move_cursor(row=i)
        self.seek(self.rs.marks[i].at_us)

    @on(DataTable.RowSelected, "#marks")
    def _mark_selected(self, event: DataTable.RowSelected) -> None:
        self.jump(int(event.row_key.value or ""))  # every mark's row has its index

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.dismiss()
        else:
            self.app.exit()


def _elapsed(us: int) -> str:
    s = max(0, us) // 1_000_000
    return f"+{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


__all__ = ["ReplayScreen"]
