"""The console's log: a rotating file, mode 0600, in the data directory. Every message that
says "see the log" names this file. No health datum is ever written to it: the session owner
logs event kinds and ids, never payloads, notes, names or reasons."""

from __future__ import annotations

import io
import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

from console.paths import log_dir

MAX_BYTES = 1 << 20
BACKUPS = 5
_path: Path | None = None


class _Private(RotatingFileHandler):
    """Every file it opens, the first and each after a rotation, is born 0600."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding)


def log_path() -> Path:
    return _path or log_dir() / "console.log"


def setup(path: Path | None = None) -> Path:
    """Send this process's log to the file (once); returns its path."""
    global _path
    if _path is not None:
        return _path
    target = path or log_dir() / "console.log"
    handler = _Private(target, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    os.chmod(target, 0o600)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    _path = target
    return target
