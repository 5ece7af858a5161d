"""Checkboxes whose state is written, not only coloured.

Textual draws a ticked and an unticked box with the same "X" in two colours; on a monochrome
screen, a projector or for a colour-blind technician they look alike, and these boxes answer
contraindication questions. Here the state is in the text: "[x] sunburnt skin" / "[ ] ...".
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.content import Content
from textual.message import Message
from textual.widgets import Checkbox, OptionList
from textual.widgets.option_list import Option


def mark(on: bool) -> str:
    return "[x]" if on else "[ ]"


class Tick(Checkbox):
    BUTTON_LEFT = BUTTON_INNER = BUTTON_RIGHT = ""

    def __init__(self, text: str, value: bool = False, **kwargs: Any):
        self._text = text
        super().__init__(self._label_for(value), value=value, **kwargs)

    def _label_for(self, value: bool) -> Content:
        return Content(f"{mark(value)} {self._text}")  # plain text: "[x]" is not markup here

    def _on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.label = self._label_for(event.value)


class TickList(OptionList):
    """Choices whose state is written in each line, "(*)" or "[x]", never shown by colour
    alone; Enter or a click ticks. `single`: exactly one is chosen (a stage); otherwise any
    number (zones, skin conditions)."""

    class Changed(Message):
        def __init__(self, ticks: TickList):
            super().__init__()
            self.ticks = ticks

        @property
        def control(self) -> TickList:
            return self.ticks

    def __init__(self, items: list[tuple[str, str]], *, single: bool, ticked: set[str],
                 id: str | None = None):
        self._labels = dict(items)
        self._single = single
        self.ticked = set(ticked)
        super().__init__(*(Option(self._prompt(key), id=key) for key in self._labels), id=id)

    def _prompt(self, key: str) -> Text:
        on = key in self.ticked
        mark = ("(*)" if on else "( )") if self._single else ("[x]" if on else "[ ]")
        return Text(f"{mark} {self._labels[key]}")

    @on(OptionList.OptionSelected)
    def _toggle(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        key = event.option.id or ""
        if self._single:
            self.ticked = {key}
        else:
            self.ticked ^= {key}
        for other in self._labels:
            self.replace_option_prompt(other, self._prompt(other))
        self.post_message(self.Changed(self))
