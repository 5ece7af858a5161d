"""The command line's tables: every `smp` command prints its rows with `print_table`, one
rich.table.Table laid out one way: no box, columns two spaces apart, left-aligned.

On a terminal the table fits the terminal's width (a long cell wraps within its column) and
the header is bold. Anywhere else (a pipe, a file, the tests) it is plain text: no colour, no
control sequence, and each row is one whole line without trailing blanks, so that grep and cut
read what a person reads. Every cell is escaped first (protocols/text.py), as `echo` escapes a
line: a name holding ESC [2J shows as \\x1b[2J, and "[red]" is text, not rich markup.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from protocols.text import printable

_UNBOUNDED = 1_000_000  # columns: wide enough that a plain table never wraps


def print_table(header: Sequence[str] | None, rows: Iterable[Sequence[object]]) -> None:
    """The rows under `header` (None: no header line) on stdout."""
    table = Table(box=None, pad_edge=False, padding=(0, 1), show_header=header is not None,
                  header_style="bold", show_edge=False)
    for name in header or ():
        table.add_column(Text(printable(name)))
    for row in rows:  # a row longer than the header adds columns, a shorter one is padded
        table.add_row(*(Text(printable(cell)) for cell in row))
    if sys.stdout.isatty():
        Console(highlight=False).print(table)
        return
    text = io.StringIO()
    Console(file=text, width=_UNBOUNDED, color_system=None, highlight=False,
            force_terminal=False, legacy_windows=False).print(table)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in text.getvalue().splitlines()))
