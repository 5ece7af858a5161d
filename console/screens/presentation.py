"""Turning presentation mode off: a typed word, never one key, because what follows is every
client's name, contact details and health data on a screen a class may be watching."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Static

from console.screens.base import SmpModal

WORD = "SHOW"


class PresentationOff(SmpModal[bool]):
    DEFAULT_CSS = """
    PresentationOff { align: center middle; }
    PresentationOff > Vertical { width: 72; height: auto; border: thick $warning;
                                 padding: 1 2; background: $surface; }
    PresentationOff Horizontal { height: auto; margin-top: 1; }
    PresentationOff Button { margin-right: 2; }
    PresentationOff #presentation-error { height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f10", "keep", "Keep hidden", id="presentation.keep",
                tooltip="Stay in presentation mode"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Leave presentation mode? Client names, contact details and health "
                         "data will be shown on this screen, and on any projector showing it.\n"
                         f"Type {WORD} and press Enter to show them.", id="question")
            yield Input(placeholder=f"type {WORD} to show identities", id="presentation-word")
            yield Static(id="presentation-error", classes="error")
            with Horizontal():
                yield Button(f"Keep hidden ({self.app.key('presentation.keep')})",
                             id="presentation-keep", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#presentation-word", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip().upper() == WORD:
            self.dismiss(True)
        else:
            self.query_one("#presentation-error", Static).update(
                f"type {WORD} to leave presentation mode, or "
                f"{self.app.key('presentation.keep')} to keep it")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(False)

    def action_keep(self) -> None:
        self.dismiss(False)
