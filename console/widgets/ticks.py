"""Checkboxes whose state is written, not only coloured.

Textual draws a ticked and an unticked box with the same "X" in two colours; on a monochrome
screen, a projector or for a colour-blind technician they look alike, and these boxes answer
contraindication questions. Here the state is in the text: "[x] sunburnt skin" / "[ ] ...".
"""

from __future__ import annotations

from rich.segment import Segment
from textual.content import Content
from textual.strip import Strip
from textual.widgets import Checkbox, SelectionList
from textual.widgets.option_list import OptionDoesNotExist
from textual.widgets.selection_list import SelectionType


def mark(on: bool) -> str:
    return "[x]" if on else "[ ]"


class Tick(Checkbox):
    BUTTON_LEFT = BUTTON_INNER = BUTTON_RIGHT = ""

    def __init__(self, text: str, value: bool = False, **kwargs):
        self._text = text
        super().__init__(self._label_for(value), value=value, **kwargs)

    def _label_for(self, value: bool) -> Content:
        return Content(f"{mark(value)} {self._text}")  # plain text: "[x]" is not markup here

    def _on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.label = self._label_for(event.value)


class TickList(SelectionList[SelectionType]):
    """A SelectionList that writes each option's state as [x] / [ ] instead of a coloured X."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        _, scroll_y = self.scroll_offset
        try:
            selection = self.get_option_at_index(scroll_y + y)
        except OptionDoesNotExist:
            return strip
        segments = list(strip)
        if len(segments) < 4:
            return strip
        # SelectionList draws its button as three segments and a space: the same four cells.
        rest = segments[4:]
        style = rest[0].style if rest else segments[3].style
        return Strip([Segment(f"{mark(selection.value in self.selected)} ", style), *rest])
