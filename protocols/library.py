"""The protocol library: built-in TOML profiles plus a user directory that adds or overrides.

A profile file holds `[[profile]]` tables, each with name, zone, depth_mm, rate_hz, voltage_v,
needle and optional notes. Problems in user files are collected as one-line errors naming the
file, the line, the field and what is allowed; a bad user file never hides the good ones, and
a file that is not a regular file, too large or too deeply nested is skipped unread or
unparsed (protocols/files.py). A profile above VOLTAGE_WARN_ABOVE loads with a one-line
warning. The first profile listed for a zone is that zone's default.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from protocols.errors import SmpError
from protocols.files import UnreadableFile, check_data_nesting, check_toml_nesting, read_text
from protocols.needles import ACCEPTED_FORMS
from protocols.profiles import Profile
from protocols.quantities import BY_FIELD
from protocols.zones import Zone

USER_DIR_ENV = "SMP_PROTOCOLS_DIR"
KEYS = ("name", "zone", "depth_mm", "rate_hz", "voltage_v", "needle", "notes")
REQUIRED = KEYS[:-1]


@dataclass(frozen=True)
class FileError:
    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class FileWarning:
    """A profile that loads but deserves a second look (MachineSettings.advisories)."""

    path: Path
    line: int | None
    profile: str
    advisory: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: warning: profile {self.profile!r}: {self.advisory}"


@dataclass(frozen=True)
class LibraryEntry:
    profile: Profile
    source: Literal["built-in", "user"]
    path: Path
    line: int | None
    overrides: Path | None = None  # the built-in file whose profile of this name it replaces
    warnings: tuple[FileWarning, ...] = ()

    def advisories(self, resolved: Sequence[str]) -> tuple[str, ...]:
        """What to warn about where this profile is resolved: the resolved settings' advisories,
        then the file's warnings about the profile as written that those do not repeat."""
        return (*resolved, *(str(w) for w in self.warnings if w.advisory not in resolved))


class UnknownProfile(SmpError):
    pass


@dataclass
class Library:
    entries: dict[str, LibraryEntry]
    errors: list[FileError] = field(default_factory=list)
    user_dir: Path | None = None

    def get(self, name: str) -> LibraryEntry:
        try:
            return self.entries[name]
        except KeyError:
            close = [n for n in self.entries if name and name in n][:3] or (
                difflib.get_close_matches(name, self.entries, n=3))
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownProfile(
                f"no profile named {name!r}{hint} (see: smp protocols list)") from None

    def for_zone(self, zone: Zone) -> list[LibraryEntry]:
        return [e for e in self.entries.values() if e.profile.zone is zone]

    def default_for(self, zone: Zone) -> LibraryEntry:
        return self.for_zone(zone)[0]

    @property
    def warnings(self) -> list[FileWarning]:
        return [w for e in self.entries.values() for w in e.warnings]


def user_dir() -> Path:
    """Where a clinic keeps its own profile files."""
    if env := os.environ.get(USER_DIR_ENV):
        return Path(env)
    import platformdirs

    return platformdirs.user_config_path("smp") / "protocols"


def builtin_files() -> list[Path]:
    folder = resources.files("protocols") / "library"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml"))


def load_library(user: Path | None = None) -> Library:
    user = user_dir() if user is None else user
    entries: dict[str, LibraryEntry] = {}
    for path in builtin_files():
        profiles, errors, warnings = load_file(path)
        if errors:  # a shipped file that does not load is a bug, not a user error
            raise RuntimeError("; ".join(map(str, errors)))
        for profile, line in profiles:
            entries[profile.name] = LibraryEntry(profile, "built-in", path, line,
                                                 warnings=_of(profile, warnings))
    lib = Library(entries=entries, user_dir=user)
    files, listing_error = _user_files(user)
    lib.errors.extend(listing_error)
    seen: dict[str, LibraryEntry] = {}
    for path in files:
        profiles, errors, warnings = load_file(path)
        lib.errors.extend(errors)
        for profile, line in profiles:
            if (first := seen.get(profile.name)) is not None:
                lib.errors.append(FileError(path, line, (
                    f"profile {profile.name!r} is already defined at {first.path}:{first.line}; "
                    "names must be unique in the user directory")))
                continue
            old = lib.entries.get(profile.name)
            entry = LibraryEntry(profile, "user", path, line,
                                 overrides=old.path if old and old.source == "built-in" else None,
                                 warnings=_of(profile, warnings))
            seen[profile.name] = entry
            lib.entries[profile.name] = entry
    order = list(Zone)
    lib.entries = dict(sorted(lib.entries.items(), key=lambda kv: order.index(kv[1].profile.zone)))
    return lib


def _user_files(user: Path) -> tuple[list[Path], list[FileError]]:
    """The *.toml entries of the user directory, whatever they are (load_file refuses what is
    not a regular file, with a line), and the error if the directory cannot be listed."""
    try:
        return sorted(p for p in user.iterdir() if p.name.endswith(".toml")), []
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    except OSError as exc:
        return [], [FileError(user, None, f"cannot list the profile folder: {exc.strerror}")]


def _of(profile: Profile, warnings: list[FileWarning]) -> tuple[FileWarning, ...]:
    return tuple(w for w in warnings if w.profile == profile.name)


def check_files(paths: Iterable[Path]) -> tuple[int, list[FileError], list[FileWarning]]:
    """Validate profile files as one set: (profiles found, errors, warnings)."""
    count = 0
    errors: list[FileError] = []
    warnings: list[FileWarning] = []
    seen: dict[str, str] = {}
    for path in paths:
        profiles, file_errors, file_warnings = load_file(path)
        errors.extend(file_errors)
        for profile, line in profiles:
            if profile.name in seen:
                errors.append(FileError(path, line, (
                    f"profile {profile.name!r} is already defined at {seen[profile.name]}")))
            else:
                seen[profile.name] = f"{path}:{line}"
                count += 1
                warnings.extend(_of(profile, file_warnings))
    return count, errors, warnings


def load_file(path: Path) -> tuple[list[tuple[Profile, int | None]], list[FileError],
                                   list[FileWarning]]:
    """The valid profiles of one file with their lines, one error per problem, and one
    warning per setting that loads but is unusual."""
    try:
        text = read_text(path)
        check_toml_nesting(path, text)  # before tomllib, which recurses per level
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line, message = _syntax_error(str(exc))
            return [], [FileError(path, line, f"TOML syntax error: {message}")], []
        check_data_nesting(path, data)
    except UnreadableFile as exc:
        return [], [FileError(path, exc.line, exc.reason)], []
    layout = _Layout(text)
    errors = [
        FileError(path, layout.top_keys.get(key), (
            f"unknown top-level key {key!r}; a profile file holds only [[profile]] tables"))
        for key in data if key != "profile"
    ]
    tables = data.get("profile", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        return [], [*errors, FileError(path, layout.top_keys.get("profile"),
                                       "'profile' must be written as [[profile]] tables")], []
    if not tables and not errors:
        errors.append(FileError(path, None, "no [[profile]] tables found"))
    profiles: list[tuple[Profile, int | None]] = []
    warnings: list[FileWarning] = []
    for index, table in enumerate(tables):
        header, lines = layout.table(index)
        try:
            profile = Profile.model_validate(table)
        except ValidationError as exc:
            label = f"profile {table['name']!r}" if isinstance(table.get("name"), str) else (
                f"profile #{index + 1}")
            for err in exc.errors():
                key, message = _explain(err)
                errors.append(FileError(path, lines.get(key, header), f"{label}: {message}"))
            continue
        profiles.append((profile, header))
        # Only the voltage has an advisory today; its line is where to look.
        warnings.extend(FileWarning(path, lines.get("voltage_v", header), profile.name, advisory)
                        for advisory in profile.settings.advisories())
    return profiles, errors, warnings


def _syntax_error(text: str) -> tuple[int | None, str]:
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", text)
    if not m:
        return None, text
    return int(m[1]), f"{text[: m.start()]} (column {m[2]})"


def _explain(err: ErrorDetails) -> tuple[str, str]:
    """(TOML key at fault, one-line message) for a pydantic error on a profile table."""
    loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
    key = loc[-1] if loc else "profile"
    kind, given = err["type"], err.get("input")
    if kind == "missing":
        return key, f"missing key {key!r} (required: {', '.join(REQUIRED)})"
    if kind == "extra_forbidden":
        return key, f"unknown key {key!r}; allowed keys: {', '.join(KEYS)}"
    if key in BY_FIELD:
        q = BY_FIELD[key]
        if kind in {"out_of_range", "off_step"}:
            return key, f"{key}: {err['msg']}"
        return key, (f"{key}: {given!r} is not a number (allowed {q.range_text()} "
                     f"in steps of {q.step})")
    if key == "name" and kind == "string_pattern_mismatch":
        return key, (f"name {given!r}: use lower-case letters, digits and hyphens, "
                     "at most 64 characters (e.g. crown-thick-skin)")
    message = err["msg"].removeprefix("Value error, ").removeprefix(f"{key}: ")
    if key == "needle" and kind != "value_error":
        message = f"{given!r} is not a needle code; {ACCEPTED_FORMS}"
    elif kind.endswith("_type"):
        message = f"expected {kind.removesuffix('_type')}, got {given!r}"
    return key, f"{key}: {message}"


class _Layout:
    """Line numbers of keys in a profile file; tomllib reports lines only for syntax errors."""

    _HEADER = re.compile(r"^\s*\[\[\s*profile\s*\]\]\s*(#.*)?$")
    _OTHER_HEADER = re.compile(r"^\s*\[")
    _KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")

    def __init__(self, text: str):
        self.top_keys: dict[str, int] = {}
        self.tables: list[tuple[int, dict[str, int]]] = []
        current: dict[str, int] | None = self.top_keys
        for number, line in enumerate(text.splitlines(), start=1):
            if self._HEADER.match(line):
                current = {}
                self.tables.append((number, current))
            elif self._OTHER_HEADER.match(line):
                current = None
                name = line.strip().strip("[]").split(".")[0].strip()
                self.top_keys.setdefault(name, number)
            elif current is not None and (m := self._KEY.match(line)):
                current.setdefault(m[1].strip("\"'"), number)

    def table(self, index: int) -> tuple[int | None, dict[str, int]]:
        if index < len(self.tables):
            return self.tables[index]
        return None, {}
