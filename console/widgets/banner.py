"""The banner on every screen: PRESENTATION, REPLAY, SIMULATOR, LINK LOST, FAULT or STOPPED, in
words."""

from __future__ import annotations

from textual.widgets import Static

from console.view import REPLAY, View
from console.widgets.text import set_text

PRESENTATION = "PRESENTATION - client identities and health data hidden"


class Banner(Static):
    DEFAULT_CSS = """
    Banner { dock: top; width: 100%; height: auto; text-style: bold; padding: 0 1;
             background: $warning; color: $text; }
    Banner.-alarm { background: $error; }
    Banner.-none { display: none; }
    """

    def show(self, view: View) -> None:
        alarms = view.banners
        # Presentation mode is the app's (console/app.py); a browser alone has none.
        words = ((PRESENTATION,) if getattr(self.app, "presentation", False) else ()) + alarms
        self.set_class(not words, "-none")
        self.set_class(any(w not in ("SIMULATOR", REPLAY) for w in alarms), "-alarm")
        # Separated by a bar and in capitals, so that no colour is needed to read them.
        # Through set_text: new views come several times a second, and an update of the
        # banner laid out the whole screen again each time.
        set_text(self, "  |  ".join(w if w == PRESENTATION else f"*** {w} ***"
                                    if w not in ("SIMULATOR", REPLAY) else
                                    "SIMULATOR - not a real machine" if w == "SIMULATOR" else
                                    "REPLAY - a recorded session, not the machine"
                                    for w in words))
