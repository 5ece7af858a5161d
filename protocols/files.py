"""Reading a person's text files (profiles, scenarios, console.toml) without hanging or crashing.

Only a regular file is read: a FIFO would block `open()` until a writer came, a device can
stream forever, a directory or a socket cannot be read at all, so each is refused by `stat`
before anything is opened (and the open itself is non-blocking, in case the file was swapped
in between). Files are bounded in size, a UTF-8 byte-order mark is dropped, and a decoding
error names the byte offset and line. `check_toml_nesting` bounds `[` and `{` nesting before
tomllib parses, because tomllib recurses once per level and a few thousand levels end in a
RecursionError.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from protocols.errors import SmpError

MAX_BYTES = 1 << 20  # 1 MiB: far beyond any profile, scenario or console.toml
MAX_NESTING = 16
_BOM = b"\xef\xbb\xbf"

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class UnreadableFile(SmpError):
    """A file that was not read (or not parsed); `reason` is what is wrong, `line` if known."""

    def __init__(self, path: Path, reason: str, line: int | None = None):
        self.path, self.reason, self.line = path, reason, line
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {reason}")


class MissingFile(UnreadableFile):
    """Nothing at that path (a dangling symlink included)."""


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((words for test, words in _KINDS if test(mode)), "not a regular file")


def _refuse(path: Path, mode: int, max_bytes: int, size: int) -> None:
    if (kind := _kind(mode)) is not None:
        raise UnreadableFile(path, f"is {kind}, not a regular file; not read")
    if size > max_bytes:
        raise UnreadableFile(path, f"is {size} bytes; at most {max_bytes} bytes are read")


def read_text(path: Path, *, max_bytes: int = MAX_BYTES) -> str:
    """The text of a regular UTF-8 file of at most `max_bytes`; UnreadableFile otherwise."""
    path = Path(path)
    try:
        st = os.stat(path)  # follows symlinks: a loop is ELOOP here, never an endless read
    except FileNotFoundError:
        raise MissingFile(path, "no such file") from None
    except OSError as exc:
        raise UnreadableFile(path, _os_reason(exc)) from None
    _refuse(path, st.st_mode, max_bytes, st.st_size)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise UnreadableFile(path, _os_reason(exc)) from None
    try:
        st = os.fstat(fd)  # the file opened may not be the one looked at
        _refuse(path, st.st_mode, max_bytes, st.st_size)
        data = _read_at_most(fd, max_bytes + 1)
    except OSError as exc:
        raise UnreadableFile(path, _os_reason(exc)) from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise UnreadableFile(path, f"is more than {max_bytes} bytes; at most {max_bytes} are read")
    return decode(path, data)


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size < limit and (chunk := os.read(fd, min(1 << 16, limit - size))):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def decode(path: Path, data: bytes) -> str:
    """UTF-8 text without a leading byte-order mark; a bad byte is named with offset and line."""
    body = data.removeprefix(_BOM)
    skipped = len(data) - len(body)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise UnreadableFile(path, (
            f"not UTF-8 text: byte 0x{body[exc.start]:02x} at offset {exc.start + skipped} "
            f"({exc.reason}); save the file as UTF-8"), line) from None


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a symlink loop; not read"
    if exc.errno == errno.EACCES:
        return "cannot read: permission denied"
    return f"cannot read: {exc.strerror or exc}"


# Strings and comments are skipped so that brackets inside them do not count.
_TOML_TOKENS = re.compile(r'''"""[\s\S]*?"""(?!")|\'\'\'[\s\S]*?\'\'\'(?!')|"(?:\\.|[^"\\\n])*"'''
                          r"""|'[^'\n]*'|#[^\n]*|[\[\]{}\n"']""")


def check_toml_nesting(path: Path, text: str, *, limit: int = MAX_NESTING) -> None:
    """Refuse TOML whose arrays and inline tables nest deeper than `limit` (with its line)."""
    depth, line = 0, 1
    for m in _TOML_TOKENS.finditer(text):
        token = m[0]
        if token in "[{":
            depth += 1
            if depth > limit:
                raise UnreadableFile(path, (
                    f"nested more than {limit} levels deep (arrays and inline tables); "
                    "not parsed"), line)
        elif token in "]}":
            depth = max(depth - 1, 0)
        elif token in "\"'":
            return  # an unterminated string: tomllib stops with a syntax error there
        line += token.count("\n")


def check_data_nesting(path: Path, data: object, *, limit: int = MAX_NESTING) -> None:
    """Refuse parsed data nested deeper than `limit` (dotted keys nest without brackets)."""
    level: Iterable[object] = [data]
    for _ in range(limit + 1):
        level = [child for node in level for child in _children(node)]
        if not level:
            return
    raise UnreadableFile(path, f"nested more than {limit} levels deep (tables or dotted keys)")


def _children(node: object) -> Iterable[object]:
    if isinstance(node, dict):
        return node.values()
    if isinstance(node, list):
        return node
    return ()
