"""STOP at the terminal's input, ahead of the screen.

A STOP key is an event on the UI's loop like any other, and the loop can be busy (the history
browser filling a table of 2,000 rows held it 54 ms: bench/bench_stop_key.py). The terminal
driver reads keys on a thread of its own; this one sends STOP to the machine from there, the
moment a STOP key is read, without waiting for the answer. The key then goes on to the app as
before, where its binding sends STOP again, waits for the answer and says and records it.

Only the keys that stop on every screen (Esc, Ctrl+C and what console.toml adds to them):
Space stops only outside text fields, which only the UI's loop knows.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

from textual import events
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

if TYPE_CHECKING:
    from console.app import SmpApp

log = logging.getLogger(__name__)


class StopFirstDriver(LinuxDriver):
    def process_message(self, message: Message) -> None:
        # On the driver's input thread: read attributes only, and never let a failure here
        # stop the keys reaching the app.
        if isinstance(message, events.Key) and message.key in getattr(
                self._app, "stop_keys", ()):
            try:
                cast("SmpApp", self._app).controller.stop_now()  # the console's: stop_keys
            except Exception:
                log.exception("STOP from the input thread failed (the key still stops)")
        super().process_message(message)
