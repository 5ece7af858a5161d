"""The history and protocol browsers inside the console.

The browsers are standalone screens (console/screens/history.py, protocols.py); here they get
what every console screen has: the banner on top (SIMULATOR, LINK LOST, FAULT: invariant 5),
kept current while a session runs underneath. The app's STOP keys work on them as anywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.screen import Screen

from console.screens.history import HistoryScreen
from console.screens.protocols import ProtocolsScreen
from console.view import View
from console.widgets.banner import Banner

if TYPE_CHECKING:
    from console.app import SmpApp


if TYPE_CHECKING:  # what the mixin is mixed into, for the checker
    _Browser = Screen[None]
else:  # at run time a plain mixin: as a second Screen in the bases, Textual would dispatch
    _Browser = object  # the browser's handlers differently (its status line stayed empty)


class _WithBanner(_Browser):
    """Put first in the bases: its compose wraps the browser's."""

    if TYPE_CHECKING:
        @property
        def app(self) -> SmpApp: ...  # type: ignore[override]  # as SmpScreen's

    def compose(self) -> ComposeResult:
        yield Banner(id="banner")
        yield from super().compose()

    def on_mount(self) -> None:
        self.show(self.app.view)

    def on_screen_resume(self) -> None:
        self.show(self.app.view)

    def show(self, view: View) -> None:
        for banner in self.query(Banner):
            banner.show(view)

    def presentation_changed(self, on: bool) -> None:
        self.show(self.app.view)  # the banner; the history follows the mode by itself


class ConsoleHistoryScreen(_WithBanner, HistoryScreen):
    pass


class ConsoleProtocolsScreen(_WithBanner, ProtocolsScreen):
    pass


BROWSERS = (ConsoleHistoryScreen, ConsoleProtocolsScreen)
