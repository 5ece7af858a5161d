"""How a failed worker is shown on a screen: one line, never a traceback."""

from __future__ import annotations

from textual.worker import Worker, WorkerState

from protocols.errors import SmpError


def failure_line(widget, event: Worker.StateChanged, unexpected: str = "unexpected") -> str | None:
    """The line to show for a worker that failed, or None; logs what a person cannot act on."""
    if event.state is not WorkerState.ERROR:
        return None
    err = event.worker.error
    if isinstance(err, SmpError):
        return f"ERROR: {err}"
    widget.log.error(f"{event.worker.name} failed", err)
    return f"ERROR: {unexpected} {type(err).__name__}: {err}"
