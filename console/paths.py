"""Where smp keeps what only this user may open: the runtime directory (the machine services'
and simulators' sockets and their registry entries), and the data directory's journals and
logs (the record itself is sessions/store.py's).

The runtime directory is $XDG_RUNTIME_DIR/smp when the session has a usable runtime directory
(it exists and is this user's, not writable by anyone else), else /tmp/smp-<uid>. Either is
created 0700 and refused if it exists owned by someone else or writable by group or others: a
socket in a directory another user controls could be swapped for theirs.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from protocols.errors import SmpError


class RuntimeDirError(SmpError):
    pass


def _private(path: Path) -> str | None:
    """Why `path` is not a private directory of this user, or None if it is."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "does not exist"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid != os.getuid():
        return f"is owned by uid {st.st_uid}, not by you (uid {os.getuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"is writable by others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def _made(path: Path, parents: bool = False) -> Path:
    try:
        path.mkdir(mode=0o700, parents=parents)
    except FileExistsError:
        pass
    except OSError as exc:
        raise RuntimeDirError(f"cannot create {path}: {exc.strerror}") from None
    why = _private(path)
    if why is not None:
        raise RuntimeDirError(f"{path} {why}; remove it, or set XDG_RUNTIME_DIR to a private "
                              "directory")
    return path


def runtime_dir() -> Path:
    """The private runtime directory, created 0700 if missing; RuntimeDirError if unsafe."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_absolute() and _private(Path(xdg)) is None:
        return _made(Path(xdg) / "smp")
    return _made(Path("/tmp") / f"smp-{os.getuid()}")


def data_dir() -> Path:
    import platformdirs

    return _made(platformdirs.user_data_path("smp"), parents=True)


def exports_dir() -> Path:
    """Where exports go unless told otherwise: private, like the record (they hold health
    data), and never the directory the console or the command happened to start in."""
    return _made(data_dir() / "exports")


def log_dir() -> Path:
    return _made(data_dir() / "logs")
