"""Text for widgets: safe, and changed cheaply.

Stored text (a name, a note, a device string) reaches a widget only through `plain()`: escaped
(protocols/text.py), so ESC [2J cannot clear the terminal, and never read as markup, so a name
like "[bold red]x" or "[@click=app.quit]x" shows as written instead of acting.

The working screen gets a new view ten times a second. `Static.update` re-lays out the whole
screen by default, and the profiler showed that layout-and-render pass costing more than
everything else the console does. Most widgets do not change between two telemetry frames,
and those that do keep their shape (telemetry numbers are formatted to fixed widths); so:
update only on change, and lay out again only when the number of lines or the longest line
changes.
"""

from __future__ import annotations

import weakref

from rich.text import Text
from textual.widgets import Static

from protocols import DEPTH, RATE, VOLTAGE, MachineSettings
from protocols.text import printable


def plain(text: object) -> Text:
    """`text` for a widget: escaped, newlines kept, no markup."""
    return Text(printable(text, multiline=True))


def settings_lines(s: MachineSettings, keys: tuple[str, str, str] | None = None) -> str:
    """The three settings a line each, as the working screen and the replay show them; with
    `keys`, the keys that change each."""
    rows = (("depth  ", DEPTH, s.depth_mm), ("rate   ", RATE, s.rate_hz),
            ("voltage", VOLTAGE, s.voltage_v))
    return "\n".join(f"{name} {q.fmt_unit(v)}" + (f"   [{keys[i]}]" if keys else "")
                     for i, (name, q, v) in enumerate(rows))


def _shape(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), max(len(line) for line in lines)


_shown: weakref.WeakKeyDictionary[Static, str] = weakref.WeakKeyDictionary()  # set_text's last


def set_text(widget: Static, text: str) -> None:
    old = _shown.get(widget)
    if old == text:
        return
    _shown[widget] = text
    widget.update(plain(text), layout=old is None or _shape(old) != _shape(text))
