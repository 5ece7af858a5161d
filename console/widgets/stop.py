"""The STOP button: large, always in the same place, with its keys written on it (as the key
map applies them: the keys written are the keys that stop)."""

from __future__ import annotations

from textual.widgets import Button


class StopButton(Button):
    DEFAULT_CSS = """
    StopButton { width: 100%; height: 5; text-style: bold; }
    """

    def __init__(self, keys: str) -> None:
        super().__init__(f"STOP  ({keys})", variant="error", id="stop-button",
                         tooltip="Stop the needle now; the machine latches until re-armed")
