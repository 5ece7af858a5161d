"""console.toml's [keymap], checked against the bindings the console declares.

The binding ids are read from the Binding declarations themselves (the app and every screen
class in console/screens), so a new binding is remappable, and listed by F2, without a list to
keep up. A key map is refused, one line at a time, for an unknown binding id, an unknown key
name, a key that would do two things on one screen, or a key that would take STOP's keys
(Space, Esc, Ctrl+C) away from it. STOP itself can only gain keys: see app.with_stop_keys.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.binding import Binding
from textual.keys import REPLACED_KEYS, Keys, _character_to_key, key_to_character

if TYPE_CHECKING:
    from textual.app import App
    from textual.screen import Screen

MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
_NAMED = frozenset(k.value for k in Keys if "+" not in k.value and "<" not in k.value)
KEYS_ALLOWED = ("a letter, digit or symbol (or its name: full_stop, comma, question_mark ...), "
                "f1 to f24, escape, space, enter, tab, backspace, up, down, left, right, home, "
                "end, pageup, pagedown, insert or delete, each optionally after ctrl+, shift+ "
                "or alt+; several keys are separated by commas")


@dataclass(frozen=True)
class Scope:
    """Where keys are looked up together: a screen class with the app's bindings."""

    name: str
    bindings: tuple[Binding, ...]  # one per key, as Textual expands them


@functools.cache
def scopes() -> tuple[Scope, ...]:
    from textual.screen import Screen

    from console import screens
    from console.app import SmpApp

    for module in pkgutil.iter_modules(screens.__path__):
        importlib.import_module(f"{screens.__name__}.{module.name}")
    app = _merged(SmpApp)
    if SmpApp.ENABLE_COMMAND_PALETTE:  # Textual adds its binding when the app is built
        app += (Binding(SmpApp.COMMAND_PALETTE_BINDING, "command_palette"),)
    found = sorted((c for c in _subclasses(Screen) if c.__module__.startswith("console.")),
                   key=lambda c: (c.__module__, c.__qualname__))
    return (Scope("everywhere", app),
            *(Scope(c.__name__, (*_merged(c), *app)) for c in found))


def _subclasses(cls: type[Screen[Any]]) -> list[type[Screen[Any]]]:
    out: list[type[Screen[Any]]] = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def _merged(cls: type[Screen[Any] | App[Any]]) -> tuple[Binding, ...]:
    # Textual's own merge: a subclass's binding for a key replaces its bases' for that key.
    merged = cls._merge_bindings()
    return tuple(b for bindings in merged.key_to_bindings.values() for b in bindings)


@functools.cache
def binding_ids() -> dict[str, tuple[str, ...]]:
    """Every binding id the console declares, with its default keys."""
    ids: dict[str, tuple[str, ...]] = {}
    for scope in scopes():
        for b in scope.bindings:
            if b.id is not None:
                ids[b.id] = tuple(dict.fromkeys((*ids.get(b.id, ()), b.key)))
    return ids


def flatten(table: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """[keymap] with `work.arm = "x"` unquoted is a nested table in TOML: back to dotted ids."""
    out: dict[str, object] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def normalise_key(key: str) -> str | None:
    """A key as Textual names it ("Ctrl+C" -> "ctrl+c", "?" -> "question_mark"), or None."""
    *mods, base = key.strip().split("+") if key.strip() != "+" else ["+"]
    mods = [m.strip().lower() for m in mods]
    if not base or any(m not in MODIFIERS for m in mods) or len(set(mods)) != len(mods):
        return None
    if len(base) == 1:
        # Textual names ctrl+a in lower case; alone, "A" is the key that types A.
        base = _character_to_key(base.lower() if mods else base)
    else:
        base = base.lower()
        if base not in _NAMED and key_to_character(REPLACED_KEYS.get(base, base)) is None:
            return None
    return "+".join([*mods, base])


def shown(keys: str) -> str:
    """Keys as they are typed: "full_stop,comma" -> ". ,", "ctrl+c" stays "ctrl+c"."""
    out = []
    for key in keys.split(","):
        *mods, base = key.split("+")
        ch = key_to_character(base) if len(base) > 1 else None
        if ch is not None and ch.isprintable() and not ch.isspace():
            base = ch
        out.append("+".join([*mods, base]))
    return " ".join(out)


_LABELS = {"escape": "Esc", "ctrl": "Ctrl", "shift": "Shift", "alt": "Alt"}


def label(keys: str) -> str:
    """Keys for a label or a banner: "escape,space" -> "Esc / space", "ctrl+n" -> "Ctrl+N"."""
    out = []
    for key in shown(keys).split(" "):
        *mods, base = key.split("+")
        fkey = base[:1] == "f" and base[1:].isdigit()
        base = _LABELS.get(base, base.upper() if fkey or (mods and len(base) == 1) else base)
        out.append("+".join([*(_LABELS.get(m, m) for m in mods), base]))
    return " / ".join(out)


def check(raw: Mapping[str, object]) -> dict[str, str]:
    """The key map flattened, with Textual's key names; ValueError naming the first problem."""
    from console.app import STOP_IDS, with_stop_keys

    ids = binding_ids()
    flat = flatten(raw)
    keymap: dict[str, str] = {}
    for bid, value in flat.items():
        if bid not in ids:
            raise ValueError(_unknown_id(bid, ids))
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{bid} = {value!r}: give the keys as a string, e.g. "
                             f"{bid} = \"ctrl+a\" or \"f6,ctrl+a\"")
        keys = []
        for key in value.split(","):
            if (name := normalise_key(key)) is None:
                raise ValueError(f"{bid} = {value!r}: unknown key {key.strip()!r}; a key is "
                                 f"{KEYS_ALLOWED}")
            keys.append(name)
        keymap[bid] = ",".join(dict.fromkeys(keys))
    _check_conflicts(flat, keymap, with_stop_keys(keymap), ids, STOP_IDS)
    return keymap


def _unknown_id(bid: str, ids: Mapping[str, object]) -> str:
    screen = bid.partition(".")[0]
    same = [i for i in ids if i.startswith(f"{screen}.")]
    close = difflib.get_close_matches(bid, ids, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    allowed = (f"the ids for {screen!r} are {', '.join(same)}" if same else
               "ids are the app's (" + ", ".join(i for i in ids if "." not in i)
               + ") or SCREEN.NAME, as F2 lists them")
    return f"unknown binding id {bid!r}{hint}; {allowed}"


def _check_conflicts(flat: Mapping[str, object], keymap: Mapping[str, str],
                     effective: Mapping[str, str], ids: Mapping[str, tuple[str, ...]],
                     stop_ids: tuple[str, ...]) -> None:
    stop_keys = {k for i in stop_ids for k in ids[i]}
    added = {bid: [k for k in keys.split(",") if k not in ids[bid]]
             for bid, keys in keymap.items()}  # keys the user gave that it did not have
    for bid, keys in added.items():
        taken = [k for k in keys if k in stop_keys] if bid not in stop_ids else []
        if taken:
            raise ValueError(f"{bid} = {flat[bid]!r}: {taken[0]} is a STOP key (space, escape "
                             "and ctrl+c always stop); choose another key")
    for scope in scopes():
        holders: dict[str, set[str]] = {}
        for b in scope.bindings:
            keys = effective[b.id].split(",") if b.id and b.id in effective else [b.key]
            for key in keys:
                holders.setdefault(key, set()).add(b.id or f"{b.action} (Textual's)")
        for bid, keys in added.items():
            for key in keys:
                others = sorted(holders.get(key, set()) - {bid})
                if others and bid in holders.get(key, set()):
                    where = "" if scope.name == "everywhere" else f" on {scope.name}"
                    raise ValueError(
                        f"{bid} = {flat[bid]!r}: {key} is also {others[0]}{where}; one key does "
                        "one thing on a screen (move the other binding too, or choose another "
                        "key)")
