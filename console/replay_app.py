"""The app of `smp replay`: the replay screen alone, with no controller and no machine."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from console.app_base import KeyedApp
from sessions.replay import ReplaySession
from sessions.store import Store


class ReplayApp(KeyedApp):
    """The replay alone: no controller, no machine. Presentation mode as the console has it
    (F3 on at once; off asks for a typed word)."""

    TITLE = "smp replay"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f3", "presentation", "Presentation", id="presentation",
                tooltip="Hide client identities and free text; off asks first"),
        Binding("ctrl+q", "quit", "Quit", id="quit", tooltip="Quit"),
    ]

    def __init__(self, store: Store, session: int, *, speed: float = 1.0, play: bool = True,
                 presentation: bool = False, theme: str | None = None,
                 loaded: ReplaySession | None = None):
        super().__init__()
        self.store, self.session, self.speed, self.play = store, session, speed, play
        self._loaded = loaded  # read before the app started
        self._theme = theme
        self.set_reactive(ReplayApp.presentation, presentation)

    def on_mount(self) -> None:
        from console.reader import RecordReader
        from console.screens.replay import ReplayScreen

        if self._theme:
            self.theme = self._theme
        self.sub_title = "PRESENTATION" if self.presentation else ""
        self.push_screen(ReplayScreen(RecordReader(self.store), self.session, speed=self.speed,
                                      play=self.play, loaded=self._loaded))

    def action_presentation(self) -> None:
        from console.screens.presentation import PresentationOff

        if not self.presentation:
            self.presentation = True
        elif not isinstance(self.screen, PresentationOff):
            self.push_screen(PresentationOff(), self._answered_off)

    def _answered_off(self, show: bool | None) -> None:
        if show:
            self._off()

    def _off(self) -> None:
        self.presentation = False

    def watch_presentation(self, on: bool) -> None:
        self.sub_title = "PRESENTATION" if on else ""
