"""The console's user settings: theme, key map, technician name, presentation mode.

One TOML file, `console.toml` in the user config directory (platformdirs), or the file named by
SMP_CONFIG. A missing file means the defaults; a bad one is one line naming the file, the
field and what is allowed (never a traceback).

    theme = "textual-ansi"          # any Textual theme; textual-ansi uses your terminal's colours
    technician = "Tom Reyes"        # prefilled on the session plan
    presentation = false            # hide client identities and health data (teaching)
    [keymap]                        # binding id = keys, comma-separated (see the help screen)
    stop = "escape,f1"
    arm = "A"
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocols.errors import SmpError

ENV_VAR = "SMP_CONFIG"


class ConfigError(SmpError):
    pass


class ConsoleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    theme: str = Field(default="textual-dark", min_length=1, max_length=100)
    technician: str = Field(default="", max_length=200)
    presentation: bool = False
    keymap: dict[str, str] = Field(default_factory=dict)


def config_path() -> Path:
    if raw := os.environ.get(ENV_VAR):
        return Path(raw)
    import platformdirs

    return platformdirs.user_config_path("smp") / "console.toml"


def load_config(path: Path | None = None) -> ConsoleConfig:
    path = path or config_path()
    explicit = path != Path() and os.environ.get(ENV_VAR) == str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: no such file (named by {ENV_VAR})") from None
        return ConsoleConfig()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return ConsoleConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "file"
        allowed = ", ".join(ConsoleConfig.model_fields)
        hint = f" (allowed keys: {allowed})" if err["type"] == "extra_forbidden" else ""
        raise ConfigError(f"{path}: {where}: {err['msg']}{hint}") from None
