"""The STOP button: large, always in the same place, with its keys written on it."""

from __future__ import annotations

from textual.widgets import Button


class StopButton(Button):
    DEFAULT_CSS = """
    StopButton { width: 100%; height: 5; text-style: bold; }
    """

    def __init__(self) -> None:
        super().__init__("STOP  (space / Esc)", variant="error", id="stop-button",
                         tooltip="Stop the needle now; the machine latches until re-armed")
