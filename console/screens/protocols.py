"""The protocol browser: every profile, built-in and user, resolved for a chosen stage and skin
with every reason (or the refusal and why), and the problems found in user files with file and
line.

The library is read from disk in a thread worker (user files may sit on a slow share); resolving
a profile is pure arithmetic and runs on the spot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static
from textual.worker import Worker, get_current_worker

from console.app_base import KeyedApp
from console.screens.failures import failure_line
from console.widgets.table import Table
from console.widgets.text import plain
from console.widgets.ticks import TickList
from protocols import (
    DEPTH,
    RATE,
    VOLTAGE,
    Library,
    LibraryEntry,
    ProfileRefused,
    SkinCondition,
    Stage,
    load_library,
    resolve,
)


def _source(entry: LibraryEntry) -> str:
    if entry.source == "built-in":
        return "built-in"
    return "user (overrides built-in)" if entry.overrides else "user"


def _where(path: Path, line: int | None, user_dir: Path | None) -> str:
    """A file as a person finds it: built-in files by name, user files from the user folder."""
    shown = path.name
    if user_dir is not None and path.is_relative_to(user_dir):
        shown = str(path.relative_to(user_dir))
    return f"{shown}:{line}" if line else shown


class LibraryLoaded(Message):
    def __init__(self, library: Library):
        super().__init__()
        self.library = library


class ProtocolsScreen(Screen[None]):
    """Browse the library that `loader` returns (default: built-in plus the user folder)."""

    if TYPE_CHECKING:  # a browser runs in any console app (the console, smp replay, alone)
        @property
        def app(self) -> KeyedApp: ...  # type: ignore[override]  # narrowed, never assigned

    DEFAULT_CSS = """
    ProtocolsScreen #profiles { height: 1fr; }
    ProtocolsScreen #bottom { height: 17; border-top: solid $primary; }
    ProtocolsScreen #choices { width: 33; }
    ProtocolsScreen #choices Label { padding: 0 1; text-style: bold; }
    ProtocolsScreen TickList { height: auto; border: none; }
    ProtocolsScreen #resolution { width: 1fr; }
    ProtocolsScreen #resolution Static { padding: 0 1; }
    ProtocolsScreen #errors-head { height: auto; padding: 0 1; text-style: bold; }
    ProtocolsScreen #errors-box { height: auto; max-height: 8; }
    ProtocolsScreen #errors { padding: 0 1; }
    ProtocolsScreen #status { height: 1; padding: 0 1; }
    """
    # F2 to F5 are the console's on every screen; the browser's parts are F6 to F8, as in
    # the history, and Ctrl+R reads again, as there.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f6", "focus('#profiles')", "Profiles", id="protocols.profiles",
                tooltip="The profiles of the library; arrows choose one"),
        Binding("f7", "focus('#stage')", "Stage", id="protocols.stage",
                tooltip="The session stage to resolve for; arrows, then Enter or Space"),
        Binding("f8", "focus('#skin')", "Skin", id="protocols.skin",
                tooltip="Skin conditions to resolve for; Enter or Space ticks or unticks"),
        Binding("ctrl+r", "reload", "Reload files", id="protocols.reload",
                tooltip="Read the user profile files again (after editing them)"),
        Binding("f10", "close", "Close", id="protocols.close",
                tooltip="Leave the protocol browser"),
    ]

    def __init__(self, loader: Callable[[], Library] = load_library, *,
                 name: str | None = None, id: str | None = None):
        super().__init__(name=name, id=id)
        self._loader = loader
        self.library: Library | None = None

    def compose(self) -> ComposeResult:
        key = self.app.key  # the labels name their keys as the key map applies them
        yield Table(id="profiles", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="bottom"):
            with Vertical(id="choices"):
                yield Label(f"Stage ({key('protocols.stage')})")
                yield TickList([(st.value, st.label.capitalize()) for st in Stage],
                               single=True, ticked={Stage.S1.value}, id="stage")
                yield Label(f"Skin ({key('protocols.skin')})")
                yield TickList([(c.value, c.label) for c in SkinCondition], single=False,
                               ticked=set(), id="skin")
            with VerticalScroll(id="resolution"):
                yield Static("Loading the library ...", id="resolved")
        yield Static(id="errors-head")
        with VerticalScroll(id="errors-box"):
            yield Static(id="errors")
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#profiles", DataTable).add_columns(
            "Profile", "Zone", f"Depth {DEPTH.unit}", f"Rate {RATE.unit}",
            f"Voltage {VOLTAGE.unit}", "Needle", "Source")
        self.query_one("#profiles", DataTable).focus()
        self._load(self._loader)

    # -- loading ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="protocols-library")
    def _load(self, loader: Callable[[], Library]) -> None:
        library = loader()
        if not get_current_worker().is_cancelled:
            self.post_message(LibraryLoaded(library))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if line := failure_line(self, event, "cannot read the protocol library:"):
            self._status(line)

    @on(LibraryLoaded)
    def _loaded(self, msg: LibraryLoaded) -> None:
        lib = self.library = msg.library
        table = self.query_one("#profiles", DataTable)
        chosen = self._chosen()
        table.clear()
        for name, entry in lib.entries.items():
            p, s = entry.profile, entry.profile.settings
            table.add_row(*(plain(c) for c in (
                p.name, p.zone.label, DEPTH.fmt(s.depth_mm), RATE.fmt(s.rate_hz),
                VOLTAGE.fmt(s.voltage_v), p.needle.code, _source(entry))), key=name)
        if chosen in lib.entries:
            table.move_cursor(row=table.get_row_index(chosen))
        self.query_one("#errors", Static).update(plain("\n".join(
            f"{_where(err.path, err.line, lib.user_dir)}: {err.message}" for err in lib.errors)))
        folder = lib.user_dir if lib.user_dir is not None else "no user folder"
        self.query_one("#errors-head", Static).update(plain(
            f"User files in {folder}: {len(lib.errors)} problem(s); profiles with problems "
            "are left out" if lib.errors else f"User files in {folder}: no problems"))
        users = sum(1 for e in lib.entries.values() if e.source == "user")
        self._status(f"{len(lib.entries)} profiles ({users} from user files)")
        self._show()

    # -- resolving ----------------------------------------------------------------------

    def _chosen(self) -> str | None:
        table = self.query_one("#profiles", DataTable)
        if self.library is None or table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    @on(DataTable.RowHighlighted, "#profiles")
    @on(TickList.Changed)
    def _show(self) -> None:
        name = self._chosen()
        if self.library is None or name is None:
            return
        entry = self.library.entries[name]
        [stage] = self.query_one("#stage", TickList).ticked
        conditions = [SkinCondition(c) for c in self.query_one("#skin", TickList).ticked]
        self.query_one("#resolved", Static).update(plain("\n".join(
            _explain(entry, Stage(stage), conditions, self.library.user_dir))))

    def _status(self, text: str) -> None:
        self.query_one("#status", Static).update(plain(text))

    # -- actions ------------------------------------------------------------------------

    def action_reload(self) -> None:
        self._status("Reading the library ...")
        self._load(self._loader)

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.dismiss()
        else:
            self.app.exit()


def _explain(entry: LibraryEntry, stage: Stage, conditions: list[SkinCondition],
             user_dir: Path | None) -> list[str]:
    """The resolution of a profile in words, as `smp protocols show` gives it."""
    p = entry.profile
    n = p.needle
    skin = ", ".join(c.label for c in SkinCondition if c in conditions) or "no skin conditions"
    lines = [
        f"{p.name}  ({_source(entry)}: {_where(entry.path, entry.line, user_dir)})",
        f"Zone      {p.zone.label}; needle {n.code} ({n.count} x {n.configuration.label}, "
        f"{n.diameter_mm} mm)",
        f"Base      {p.settings}",
        f"For       {stage.label}, {skin}",
    ]
    try:
        res = resolve(p, stage, conditions)
    except ProfileRefused as exc:
        lines.append(f"REFUSED   {exc}")
        lines.append("          nothing was clamped: choose other conditions or another "
                     "profile")
        reasons = exc.reasons
    else:
        plan = res.plan
        lines.append(f"Resolved  {res.settings}")
        lines.append(f"Plan      target {plan.target_density_pct}% of natural density, "
                     f"dilution {plan.lightest} to {plan.darkest}: {plan.aim}")
        lines.extend(f"WARNING   {a}" for a in entry.advisories(res.advisories))
        reasons = res.reasons
    lines.append("Why")
    lines.extend(f"  - {r}" for r in reasons or
                 ("no skin adjustments: the base profile as written",))
    if p.notes:
        lines.append(f"Notes     {p.notes}")
    return lines
