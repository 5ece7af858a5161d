"""Internal errors (a bug, or a record written by another version that this one cannot read):
one line for the person at the console, the details for whoever fixes it in a private file.

Textual's own crash report is a traceback with the local variables of every frame, and for a
screen showing a client those are the client's phone, e-mail, date of birth, allergies and
medications, printed to the terminal (and onto a projector). Here the traceback is written
without local variables to a file only its owner can read (0600) in the data directory, and
the screen or stderr gets one line saying where it is.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from protocols.text import printable


def crash_dir() -> Path:
    import platformdirs

    return platformdirs.user_data_path("smp")


def write(error: BaseException) -> Path:
    """The traceback of `error` (no local variables) in a new 0600 file; its path."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"crash-{stamp}-{os.getpid()}"
    try:
        folder = crash_dir()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".txt", dir=folder)
    except OSError:  # no data directory (a read-only home): the temporary folder, still 0600
        fd, path = tempfile.mkstemp(prefix=f"smp-{name}-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"smp internal error at {stamp}\n\n{printable(text, multiline=True)}")
    return Path(path)


def line(path: Path) -> str:
    return f"smp: internal error; details in {path}"
