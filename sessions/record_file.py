"""What is at a SQLite record's path, decided before SQLite touches it.

SQLite turns any path into a database: a zero-length file, or a path that does not exist, is
silently a new empty one, and a WAL database opened read-only still creates -wal and -shm
files beside it. So: only a path where nothing exists is created; an existing file must be a
regular file starting with SQLite's header; a record that cannot be written (a read-only
filesystem, a file or folder without write permission) is opened read-only, through a URI
that writes nothing at all.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sessions.errors import StoreError

SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite 3 database


@dataclass(frozen=True)
class RecordFile:
    path: Path
    exists: bool
    read_only: str | None  # why it cannot be written ("on a read-only filesystem"), or None


def inspect_path(path: Path) -> RecordFile:
    """The record file at `path`; StoreError (one line) for anything that is not one."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return RecordFile(path, False, None)
    except OSError as err:
        raise StoreError(f"cannot open database {path}: {err.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"database {path} is not a file; give the path of an smp record "
                         "(a SQLite file)")
    if st.st_size == 0:
        raise StoreError(f"database {path} is an empty file (0 bytes), not an smp record; smp "
                         "creates a record only where no file exists: remove it or choose "
                         "another path")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            header = os.read(fd, len(SQLITE_HEADER))
        finally:
            os.close(fd)
    except OSError as err:
        raise StoreError(f"cannot read database {path}: {err.strerror}") from None
    if header != SQLITE_HEADER:
        raise StoreError(f"database {path} is not an SQLite database, so not an smp record; "
                         "restore the record from a backup or choose another path")
    return RecordFile(path, True, read_only_reason(path))


def read_only_reason(path: Path) -> str | None:
    """Why the record at `path` cannot be written, or None. WAL writes -wal and -shm files
    beside it, so the folder must be writable as well as the file."""
    if os.statvfs(path).f_flag & os.ST_RDONLY:
        return "it is on a read-only filesystem"
    if not os.access(path, os.W_OK):
        return "the file is not writable"
    if not os.access(path.parent, os.W_OK):
        return "its folder is not writable"
    return None


def read_only_uri(path: Path) -> str:
    """A URI that opens the record without writing anything, -wal and -shm included.

    With no -wal file there is no writer mid-transaction and the main file is the whole
    record: `immutable` reads it without creating -wal or -shm. With a -wal (a console is
    running, or one crashed) its transactions must be read too, through the -shm; on a
    read-only filesystem that works only if the -shm is there as well.
    """
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    on_ro_fs = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    immutable = not wal.exists() or (on_ro_fs and not shm.exists())
    return f"file:{quote(str(path.resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")
