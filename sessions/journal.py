"""The journal: every fact for the record is appended here and made durable before anything
else happens to it, so that a record that cannot write (locked, full, unreachable) or a crash
loses nothing the machine did.

One file per console instance (`<data dir>/journal/<id>.jsonl`, mode 0600), one line per
entry: the entry's JSON, a tab, and the CRC-32 of that JSON in hex. Each append is flushed and
fsynced before it returns. A line torn by a crash (no newline, or a CRC that does not check)
ends the journal: it is cut off there the next time the file is opened, and nothing after it
was ever reported as written. The store keeps, per journal, the number of the last entry it
holds (sessions.models.JournalMark, written in the same transaction as the entry's rows), so
that a replay writes each entry exactly once and in order.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessions.errors import RecordError


class JournalError(RecordError):
    """The journal could not be written (a full disk, a broken file system)."""


@dataclass(frozen=True)
class Entry:
    n: int  # 1, 2, ... within its journal
    fact: dict[str, Any]


def _line(entry: Entry) -> bytes:
    text = json.dumps({"n": entry.n, "fact": entry.fact}, separators=(",", ":"),
                      sort_keys=True)
    return f"{text}\t{zlib.crc32(text.encode()):08x}\n".encode()


def _parse(raw: bytes) -> Entry | None:
    if not raw.endswith(b"\n"):
        return None
    text, sep, crc = raw[:-1].rpartition(b"\t")
    if not sep:
        return None
    try:
        if int(crc, 16) != zlib.crc32(text):
            return None
        d = json.loads(text)
        return Entry(int(d["n"]), dict(d["fact"]))
    except (ValueError, KeyError, TypeError):
        return None


def read(path: Path) -> tuple[list[Entry], int]:
    """The whole entries of a journal file, and the byte length they take (a torn tail, if
    any, starts there)."""
    entries: list[Entry] = []
    good = 0
    with open(path, "rb") as f:
        for raw in f:
            entry = _parse(raw)
            if entry is None or entry.n != len(entries) + 1:
                break
            entries.append(entry)
            good += len(raw)
    return entries, good


class Journal:
    """An open journal, appended to by one thread (the recorder's sink)."""

    def __init__(self, path: Path):
        self.path = path
        self.id = path.stem
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        existing, good = read(path) if path.exists() else ([], 0)
        self._n = len(existing)
        try:
            self._fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        except OSError as exc:
            raise JournalError(f"journal {path}: {exc.strerror}") from None
        try:
            # Held while it is in use: a console starting beside this one (a second chair on
            # the same record) must not replay a journal that is still being written.
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(self._fd, good)  # a torn tail was never reported written
            os.lseek(self._fd, good, os.SEEK_SET)
        except OSError as exc:
            os.close(self._fd)
            raise JournalError(f"journal {path}: {exc.strerror or 'in use'}") from None

    @classmethod
    def new(cls, directory: Path) -> Journal:
        return cls(directory / f"{uuid.uuid4().hex}.jsonl")

    @property
    def last(self) -> int:
        return self._n

    def append(self, fact: dict[str, Any]) -> Entry:
        """Append and make durable; raises JournalError if the disk will not have it."""
        entry = Entry(self._n + 1, fact)
        view = memoryview(_line(entry))
        start = os.lseek(self._fd, 0, os.SEEK_CUR)
        try:
            while view:
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)
        except OSError as exc:
            # No partial line is left behind for a later append to follow.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
                os.lseek(self._fd, start, os.SEEK_SET)
            raise JournalError(f"journal {self.path}: {exc.strerror or exc}") from None
        self._n = entry.n
        return entry

    def entries(self, after: int = 0) -> Iterator[Entry]:
        found, _ = read(self.path)
        return (e for e in found if e.n > after)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def remove(self) -> None:
        """Delete the file once the store holds every entry."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def in_use(path: Path) -> bool:
    """Another console holds this journal open (it locks it while it writes)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def leftovers(directory: Path, *, besides: str = "") -> list[Path]:
    """Journals left by earlier runs (crashed, or closed before the store caught up); never
    one a running console still holds."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.jsonl") if p.stem != besides and not in_use(p))
