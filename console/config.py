"""The console's user settings: theme, key map, technician name, presentation mode.

One TOML file, `console.toml` in the user config directory (platformdirs), or the file named by
SMP_CONFIG. A missing file means the defaults; a bad one is one line naming the file, the
field and what is allowed (never a traceback), and the console does not start (exit 2).

    theme = "textual-ansi"          # any Textual theme; textual-ansi uses your terminal's colours
    technician = "Tom Reyes"        # prefilled on the session plan
    presentation = false            # hide client identities and health data (teaching)
    flight_retention_days = 730     # the flight recorder's telemetry is pruned after this
    [keymap]                        # binding id (as F2 shows it) = keys, comma-separated
    stop = "escape,f1"              # STOP only gains keys: Space, Esc and Ctrl+C always stop
    work.arm = "A"                  # dotted ids need no quotes
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from protocols.errors import SmpError
from protocols.files import (
    MissingFile,
    UnreadableFile,
    check_data_nesting,
    check_toml_nesting,
    read_text,
)

ENV_VAR = "SMP_CONFIG"
# Names Textual has used for the theme that keeps the terminal's own colours: README says
# textual-ansi (Textual before 8.2.5); newer Textual calls it ansi-dark (and ansi-light).
THEME_ALIASES = {"textual-ansi": ("ansi-dark",), "ansi-dark": ("textual-ansi",),
                 "ansi-light": ("textual-ansi",)}


class ConfigError(SmpError):
    exit_code = 2  # the console does not start: a usage error


class ConsoleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    theme: str = Field(default="textual-dark", min_length=1, max_length=100)
    technician: str = Field(default="", max_length=200)
    presentation: bool = False
    # Full-rate telemetry (sessions/flight.py), pruned when a session ends; 2 years by default.
    flight_retention_days: int = Field(default=730, ge=1, le=36500)
    keymap: dict[str, str] = Field(default_factory=dict)

    @field_validator("theme")
    @classmethod
    def _known_theme(cls, name: str) -> str:
        from textual.theme import BUILTIN_THEMES

        for candidate in (name, *THEME_ALIASES.get(name, ())):
            if candidate in BUILTIN_THEMES:
                return str(candidate)
        raise ValueError(f"unknown theme {name!r}; allowed: {', '.join(sorted(BUILTIN_THEMES))}"
                         " (textual-ansi uses your terminal's colours)")

    @field_validator("keymap", mode="before")
    @classmethod
    def _known_bindings(cls, table: object) -> object:
        from console.keymap import check

        return check(table) if isinstance(table, dict) else table


def config_path() -> Path:
    if raw := os.environ.get(ENV_VAR):
        return Path(raw)
    import platformdirs

    return platformdirs.user_config_path("smp") / "console.toml"


def load_config(path: Path | None = None) -> ConsoleConfig:
    path = path or config_path()
    explicit = path != Path() and os.environ.get(ENV_VAR) == str(path)
    try:
        text = read_text(path)  # a regular file only: a FIFO would block the start for ever
        check_toml_nesting(path, text)
        data = tomllib.loads(text)
        check_data_nesting(path, data)
    except MissingFile:
        if explicit:
            raise ConfigError(f"{path}: no such file (named by {ENV_VAR})") from None
        return ConsoleConfig()
    except UnreadableFile as exc:
        raise ConfigError(str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return ConsoleConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "file"
        allowed = ", ".join(ConsoleConfig.model_fields)
        hint = f" (allowed keys: {allowed})" if err["type"] == "extra_forbidden" else ""
        message = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{path}: {where}: {message}{hint}") from None
