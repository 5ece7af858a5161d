"""console.toml: README's example loads, ids are written as F2 shows them, and every mistake in
the key map is one line at start naming the file and the key (exit 2, no console)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from textual.theme import BUILTIN_THEMES

from console.app import STOP_IDS, with_stop_keys
from console.config import ConfigError, load_config
from console.keymap import binding_ids, scopes

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"`console.toml`.*?```toml\n(.*?)```", readme, re.S)
    assert m, "README.md has a console.toml example"
    return m[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "console.toml"
    path.write_text(text)
    return path


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"{path}: ")
    assert err.value.exit_code == 2
    return line.removeprefix(f"{path}: ")


def test_readme_s_own_config_example_loads(tmp_path):
    config = load_config(write(tmp_path, readme_example()))
    assert config.theme in BUILTIN_THEMES  # textual-ansi, by the name this Textual gives it
    assert config.technician == "Tom Reyes"
    assert config.keymap == {"stop": "escape,f1", "work.arm": "A", "history.recall": "ctrl+l"}


@pytest.mark.parametrize("name", sorted(BUILTIN_THEMES))
def test_every_theme_of_the_installed_textual_is_accepted(tmp_path, name):
    assert load_config(write(tmp_path, f'theme = "{name}"\n')).theme == name


def test_an_unknown_theme_names_the_themes_allowed(tmp_path):
    line = refused(write(tmp_path, 'theme = "neon"\n'))
    assert line.startswith("theme: unknown theme 'neon'; allowed: ")
    assert "textual-dark" in line and "textual-ansi uses your terminal's colours" in line


def test_binding_ids_written_as_f2_shows_them_need_no_quotes(tmp_path):
    dotted = load_config(write(tmp_path, '[keymap]\nwork.arm = "A"\n"work.end" = "E"\n'))
    assert dotted.keymap == {"work.arm": "A", "work.end": "E"}
    table = load_config(write(tmp_path, '[keymap.work]\narm = "A"\n'))
    assert table.keymap == {"work.arm": "A"}


def test_key_names_are_normalised_to_textual_s(tmp_path):
    config = load_config(write(tmp_path, '[keymap]\nwork.arm = "Ctrl+Shift+A, F7"\n'
                                         'work.help = "?"\n'))
    assert config.keymap == {"work.arm": "ctrl+shift+a,f7", "work.help": "question_mark"}


@pytest.mark.parametrize(("keymap", "expected"), [
    ('work.arn = "x"', "keymap: unknown binding id 'work.arn' (did you mean work.arm"),
    ('nosuch = "x"', "keymap: unknown binding id 'nosuch'; ids are the app's (quit, "),
    ('work.arm = "spce"', "keymap: work.arm = 'spce': unknown key 'spce'; a key is a letter"),
    ('work.arm = "hyperspace+x"', "keymap: work.arm = 'hyperspace+x': unknown key"),
    ('work.arm = ""', "keymap: work.arm = '': give the keys as a string"),
    ("work.arm = 3", "keymap: work.arm = 3: give the keys as a string"),
    # One key, two bindings on the same screen; the app's keys count on every screen.
    ('work.arm = "e"', "keymap: work.arm = 'e': e is also work.end on WorkScreen; one key does "
     "one thing on a screen"),
    ('help = "f4"', "keymap: help = 'f4': f4 is also history; one key does one thing"),
    # The browsers' keys of old (F3 Recall) are the app's everywhere now, inside them too.
    ('history.recall = "f3"', "keymap: history.recall = 'f3': f3 is also presentation on "
     "ConsoleHistoryScreen"),
    ('stop = "a"', "keymap: stop = 'a': a is also work.arm on WorkScreen"),
    ('work.arm = "tab"', "keymap: work.arm = 'tab': tab is also app.focus_next (Textual's)"),
    # STOP's keys cannot be given away.
    ('work.arm = "space"', "keymap: work.arm = 'space': space is a STOP key (space, escape "
     "and ctrl+c always stop); choose another key"),
    ('"history.close" = "escape"', "keymap: history.close = 'escape': escape is a STOP key"),
    ('connect.rescan = "ctrl+c"', "keymap: connect.rescan = 'ctrl+c': ctrl+c is a STOP key"),
])
def test_a_bad_key_map_is_one_line_naming_the_file_and_the_key(tmp_path, keymap, expected):
    assert refused(write(tmp_path, f"[keymap]\n{keymap}\n")).startswith(expected)


def test_moving_both_bindings_of_a_key_is_no_conflict(tmp_path):
    config = load_config(write(tmp_path, '[keymap]\nwork.arm = "e"\nwork.end = "ctrl+e"\n'))
    assert config.keymap == {"work.arm": "e", "work.end": "ctrl+e"}


def test_a_fifo_as_console_toml_is_one_line_never_a_hang(tmp_path):
    fifo = tmp_path / "console.toml"
    os.mkfifo(fifo)
    assert refused(fifo) == "is a FIFO (named pipe), not a regular file; not read"


def test_the_console_does_not_start_with_a_bad_key_map_exit_2(tmp_path):
    path = write(tmp_path, '[keymap]\nwork.arm = "space"\n')
    out = subprocess.run(
        [sys.executable, "-m", "console", "console", "--sim"], capture_output=True, text=True,
        timeout=60, stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SMP_CONFIG": str(path),
             "SMP_DB_URL": f"sqlite:///{tmp_path / 'r.sqlite3'}"})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"smp: error: {path}: keymap: work.arm = 'space': space is a STOP key (space, escape "
        "and ctrl+c always stop); choose another key"]
    assert not (tmp_path / "r.sqlite3").exists()  # refused before anything was opened


def test_the_binding_ids_come_from_every_screen_s_declarations():
    import ast

    written, computed = set(), 0  # every Binding(..., id=...) in console/, read from the source
    for path in (ROOT / "console").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Binding":
                for kw in node.keywords:
                    if kw.arg == "id" and isinstance(kw.value, ast.Constant):
                        written.add(kw.value.value)
                    elif kw.arg == "id":
                        computed += 1  # the zone keys' f-string ids
    ids = set(binding_ids())
    assert written <= ids
    assert {i for i in ids - written if not i.startswith("work.zone-")} == set()
    assert computed == 1 and len(ids - written) == 10
    assert {"history.clients", "protocols.reload", "help.close", *STOP_IDS} <= ids


def test_one_binding_id_means_one_action():
    actions: dict[str, set[str]] = {}
    for scope in scopes():
        for b in scope.bindings:
            if b.id:
                actions.setdefault(b.id, set()).add(b.action)
    assert {i: a for i, a in actions.items() if len(a) > 1} == {}


def test_an_entry_for_stop_only_adds_keys():
    assert with_stop_keys({"stop": "f1", "stop-space": "f12", "work.arm": "A"}) == {
        "stop": "escape,f1", "stop-space": "space,f12", "work.arm": "A"}
    assert with_stop_keys({"stop-ctrl-c": "ctrl+c"}) == {"stop-ctrl-c": "ctrl+c"}
