"""Printing to the terminal: every line escaped (protocols/text.py), so a name, a note or a file
name holding ESC [2J or U+202E shows as \\x1b[2J or \\u202e and never acts on the terminal."""

from __future__ import annotations

import sys

from protocols.text import printable


def echo(line: object = "", *, err: bool = False) -> None:
    print(printable(line), file=sys.stderr if err else sys.stdout)
