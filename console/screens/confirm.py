"""A yes/no question for deliberate acts (arming, re-arming after STOP, quitting).

A question that names clients gives a `hidden` version too: shown instead in presentation
mode, and swapped in if the mode changes while it is open."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Button, Static

from console.screens.base import SmpModal
from console.widgets.text import plain


class Confirm(SmpModal[bool]):
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical { width: 64; height: auto; border: thick $warning; padding: 1 2;
                         background: $surface; }
    Confirm Button { margin: 1 1 0 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes", tooltip="Confirm"),
        Binding("n", "answer(False)", "No", id="confirm.no", tooltip="Cancel"),
        Binding("f10", "answer(False)", "No", show=False, id="confirm.close-f10",
                tooltip="Close the question: the same as No"),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No", *,
                 hidden: str | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.question, self.yes, self.no = question, yes, no
        self.hidden = question if hidden is None else hidden

    def _text(self) -> Text:
        return plain(self.hidden if self.app.presentation else self.question)

    def presentation_changed(self, on: bool) -> None:
        self.query_one("#question", Static).update(self._text())

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self._text(), id="question")
            yield Button(f"{self.yes} ({self.app.key('confirm.yes')})", variant="warning",
                         id="yes")
            yield Button(f"{self.no} ({self.app.key('confirm.no', 'confirm.close-f10')})",
                         id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
