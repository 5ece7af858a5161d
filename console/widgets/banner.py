"""The banner on every screen: SIMULATOR, LINK LOST, FAULT or STOPPED, in words."""

from __future__ import annotations

from textual.widgets import Static

from console.view import View


class Banner(Static):
    DEFAULT_CSS = """
    Banner { dock: top; width: 100%; height: auto; text-style: bold; padding: 0 1;
             background: $warning; color: $text; }
    Banner.-alarm { background: $error; }
    Banner.-none { display: none; }
    """

    def show(self, view: View) -> None:
        words = view.banners
        self.set_class(not words, "-none")
        self.set_class(any(w != "SIMULATOR" for w in words), "-alarm")
        # Separated by a bar and in capitals, so that no colour is needed to read them.
        self.update("  |  ".join(f"*** {w} ***" if w != "SIMULATOR" else
                                 "SIMULATOR - not a real machine" for w in words))
