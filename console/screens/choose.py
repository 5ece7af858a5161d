"""Pick one item from a list (a port, a fault to trigger, a scenario to play)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from console.screens.base import SmpModal
from console.widgets.text import plain


class Choose(SmpModal[str | None]):
    DEFAULT_CSS = """
    Choose { align: center middle; }
    Choose > Vertical { width: 72; height: auto; max-height: 80%; border: thick $primary;
                        padding: 0 1; background: $surface; }
    Choose OptionList { height: auto; max-height: 20; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "cancel", "Cancel", id="choose.cancel", tooltip="Close"),
        Binding("f10", "cancel", "Cancel", show=False, id="choose.close-f10",
                tooltip="Close (as this key closes what is on top, everywhere)"),
    ]

    def __init__(self, title: str, items: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.items = items

    def compose(self) -> ComposeResult:
        with Vertical():
            keys = self.app.key("choose.cancel", "choose.close-f10")
            yield Static(plain(f"{self.title_text} ({keys} closes)"))
            yield OptionList(*(Option(plain(label), id=key) for key, label in self.items))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
