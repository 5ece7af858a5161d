"""How a failed worker is shown on a screen: one line, never a traceback."""

from __future__ import annotations

from textual.dom import DOMNode
from textual.worker import Worker, WorkerState

from console import crash
from protocols.errors import SmpError


def failure_line(widget: DOMNode, event: Worker.StateChanged,
                 unexpected: str = "unexpected") -> str | None:
    """The line to show for a worker that failed, or None; logs what a person cannot act on."""
    if event.state is not WorkerState.ERROR:
        return None
    err = event.worker.error
    if err is None:  # Textual sets it before the state changes to ERROR
        return None
    if isinstance(err, SmpError):
        return f"ERROR: {err}"
    if isinstance(err, OSError):  # a file or folder a person can fix, not a bug
        return f"ERROR: {unexpected} {type(err).__name__}: {err}"
    # Never the error's text on screen: it may quote a record's values (console/crash.py).
    path = crash.write(err)
    widget.log.error(f"{event.worker.name} failed; details in {path}")
    return f"ERROR: {unexpected} internal error ({type(err).__name__}); details in {path}"
