"""Every key of the console, screen by screen, with the user's key map applied."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.keymap import shown
from console.screens.base import SmpModal


def key_table(app) -> str:
    from console.app import with_stop_keys
    from console.screens.client import ClientScreen, NewClientScreen
    from console.screens.confirm import Confirm
    from console.screens.connect import ConnectScreen
    from console.screens.end import EndScreen
    from console.screens.gate import GateScreen
    from console.screens.plan import PlanScreen
    from console.screens.presentation import PresentationOff
    from console.screens.work import WorkScreen

    keymap = with_stop_keys(app.config_.keymap)
    parts = []
    for title, cls in (("Everywhere", type(app)), ("Connect", ConnectScreen),
                       ("Client", ClientScreen), ("New client", NewClientScreen),
                       ("Consultation and gate", GateScreen), ("Session plan", PlanScreen),
                       ("Working screen", WorkScreen), ("End of session", EndScreen),
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
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 96%; height: 90%; border: thick $primary;
                                  background: $surface; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("q", "close", "Close", id="help.close", tooltip="Close the key list"),
        Binding("f2", "close", "Close", show=False, id="help.close-f2"),
        Binding("f10", "close", "Close", show=False, id="help.close-f10"),
    ]

    def compose(self):
        with VerticalScroll():
            yield Static(key_table(self.app), id="keys")

    def action_close(self) -> None:
        self.dismiss(None)
