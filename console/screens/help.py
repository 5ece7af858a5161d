"""Every key of the console, screen by screen, with the user's key map applied.

The list never covers the STOP button or the banner of the screen beneath (SIMULATOR, LINK
LOST, FAULT): it sits below them, and STOP's keys, and a click on the button, still stop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.markup import escape
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from console.keymap import shown
from console.screens.base import SmpModal
from console.widgets.banner import Banner
from console.widgets.stop import StopButton

if TYPE_CHECKING:
    from console.app import SmpApp


def key_table(app: SmpApp) -> str:
    from console.app import with_stop_keys
    from console.screens.cartridge import FitCartridge
    from console.screens.choose import Choose
    from console.screens.client import ClientScreen, NewClientScreen
    from console.screens.confirm import Confirm
    from console.screens.connect import ConnectScreen
    from console.screens.end import EndScreen
    from console.screens.gate import GateScreen
    from console.screens.history import ConfirmReplace, ExportDialog, HistoryScreen
    from console.screens.plan import PlanScreen
    from console.screens.presentation import PresentationOff
    from console.screens.protocols import ProtocolsScreen
    from console.screens.recover import RecoverScreen
    from console.screens.replay import ReplayScreen
    from console.screens.work import WorkScreen

    keymap = with_stop_keys(app.config_.keymap)
    closes, stops = (app.key("help.close-f10", "help.close-f2", "help.close"),
                     app.key("stop", "stop-space", "stop-ctrl-c"))
    parts = [escape(f"{closes} close this list; STOP ({stops}) stops while it is open, as "
                    "everywhere.")]
    for title, cls in (("Everywhere", type(app)), ("This list", HelpScreen),
                       ("Interrupted sessions", RecoverScreen),
                       ("Connect", ConnectScreen), ("Client", ClientScreen),
                       ("New client", NewClientScreen),
                       ("Consultation and gate", GateScreen), ("Session plan", PlanScreen),
                       ("Working screen", WorkScreen), ("Fitting a cartridge", FitCartridge),
                       ("End of session", EndScreen),
                       ("History", HistoryScreen), ("Export", ExportDialog),
                       ("Replacing a file", ConfirmReplace), ("Replay", ReplayScreen),
                       ("Protocols", ProtocolsScreen), ("Pickers", Choose),
                       ("Questions", Confirm), ("Leaving presentation mode", PresentationOff)):
        parts.append(f"[b]{title}[/b]")
        for b in cls.BINDINGS:
            if not isinstance(b, Binding):
                continue
            keys = shown(keymap.get(b.id or "", b.key))
            parts.append(f"  {keys:<18} {b.description or b.action:<22} {b.tooltip}"
                         f"  (id {b.id})")
    parts.append("\nCtrl+P opens the command palette. Keys are remapped by binding id in the "
                 "\\[keymap] table of console.toml (see smp console --help).")
    return "\n".join(parts)


class HelpScreen(SmpModal[None]):
    # Not dimmed: the STOP button beneath is in sight as it always looks.
    DEFAULT_CSS = """
    HelpScreen { align: center top; background: transparent; }
    HelpScreen > VerticalScroll { width: 96%; height: 1fr; margin: 1 0 1 0;
                                  border: thick $primary; background: $surface; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "close", "Close", id="help.close", tooltip="Close the key list"),
        Binding("f2", "close", "Close", show=False, id="help.close-f2",
                tooltip="Close the key list (the key that opened it)"),
        Binding("f10", "close", "Close", show=False, id="help.close-f10",
                tooltip="Close the key list (as this key closes what is on top, everywhere)"),
    ]
    _under: Screen[Any] | None = None  # the screen the list was opened over

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(key_table(self.app), id="keys")

    def on_mount(self) -> None:
        stack = self.app.screen_stack
        self._under = stack[-2] if len(stack) > 1 and stack[-1] is self else None
        self._below_stop()
        # Again whenever the screen beneath is laid out anew: a resize, a banner grown by a
        # FAULT or a LINK LOST moves its STOP button down.
        if self._under is not None:
            self._under.screen_layout_refresh_signal.subscribe(self, lambda _: self._below_stop())

    def on_unmount(self) -> None:
        if self._under is not None:
            self._under.screen_layout_refresh_signal.unsubscribe(self)

    def _beneath(self, kind: type[Widget]) -> list[Widget]:
        return [] if self._under is None else list(self._under.query(kind))

    def _below_stop(self) -> None:
        """Start the list below the banner and the STOP button of the screen beneath."""
        top = max((w.region.bottom for w in (*self._beneath(Banner),
                                               *self._beneath(StopButton))), default=1)
        box = self.query_one(VerticalScroll)
        if box.styles.margin.top != top:
            box.styles.margin = (top, 0, 1, 0)

    def on_click(self, event: events.Click) -> None:
        # The button is in sight, so a click on it does what it says.
        if any(b.region.contains_point(event.screen_offset) for b in self._beneath(StopButton)):
            event.stop()
            self.app.action_stop()

    def action_close(self) -> None:
        self.dismiss(None)
