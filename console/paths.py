"""Where smp keeps its files: the record and logs in the user's data directory, sockets and
the registry of running machine services and simulators in a private runtime directory."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from protocols.errors import SmpError


class UnsafeDirectory(SmpError):
    """A directory smp would keep sockets in is not private to this user."""


def _private(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise UnsafeDirectory(f"{path} is not a directory owned by this user; remove it or set "
                              "XDG_RUNTIME_DIR")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def runtime_dir() -> Path:
    """Sockets and the registry: $XDG_RUNTIME_DIR/smp, else /tmp/smp-<uid>; mode 0700."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and Path(base).is_dir() and os.access(base, os.W_OK):
        return _private(Path(base) / "smp")
    return _private(Path(tempfile.gettempdir()) / f"smp-{os.getuid()}")


def data_dir() -> Path:
    import platformdirs

    return _private(platformdirs.user_data_path("smp"))


def log_dir() -> Path:
    return _private(data_dir() / "logs")
