"""`smp protocols ...` as a person runs it: real processes (tests/smp_process.py), exit codes,
no tracebacks."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from tests.protocols.test_library import GOOD, MALFORMED
from tests.smp_process import run_smp


def smp(*args, env_dir=None, cwd=None):
    env = {"SMP_PROTOCOLS_DIR": str(env_dir or "/nonexistent"), "PATH": "/usr/bin:/bin"}
    return run_smp(args, env=env, cwd=cwd)


def test_help_and_version():
    # Once as the interpreter starts it, with nothing imported before.
    started = subprocess.run([sys.executable, "-m", "console", "--help"], capture_output=True,
                             text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert started.returncode == 0 and "usage: smp" in started.stdout
    assert smp("--help").returncode == 0
    out = smp("--version")
    assert out.returncode == 0 and out.stdout.startswith("smp ")


def test_list_shows_the_library_with_sources(tmp_path):
    (tmp_path / "mine.toml").write_text(GOOD)
    out = smp("protocols", "list", env_dir=tmp_path)
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ZONE", "DEPTH", "mm", "RATE", "Hz", "VOLT", "V",
                                "NEEDLE", "SOURCE"]
    assert any(line.split()[:6] == ["crown-thick", "crown", "1.80", "140.0", "8.0", "1003RL"]
               and line.endswith("user") for line in lines)
    assert any(line.startswith("hairline-soft") and line.endswith("built-in") for line in lines)


def test_show_explains_every_adjustment():
    out = smp("protocols", "show", "crown-standard", "--stage", "2", "--skin", "scar-tissue",
              "--skin", "fitzpatrick-iv-vi")
    assert out.returncode == 0, out.stderr
    assert "resolved  depth 1.40 mm, rate 130.0 Hz, voltage 8.0 V" in out.stdout
    assert ("crown, stage 2, scar tissue: needle depth 1.80 -> 1.50 mm: scar tissue is treated "
            "conservatively") in out.stdout
    assert "voltage 7.5 -> 8.0 V" in out.stdout
    assert "needle depth 1.50 -> 1.40 mm" in out.stdout
    assert "target 70% of natural density" in out.stdout


def test_show_refusal_is_one_error_line_and_exit_1(tmp_path):
    (tmp_path / "fast.toml").write_text(GOOD.replace("140", "145"))
    out = smp("protocols", "show", "crown-thick", "--skin", "thick", env_dir=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "smp: error: crown, stage 1, thick or resistant skin: refused: stroke rate 155.0 Hz is "
        "outside the allowed 50.0 to 150.0 Hz"
    ]
    assert "145.0 -> 155.0 Hz" in out.stdout


@pytest.mark.parametrize(("args", "fragment"), [
    (("show", "nosuch"), "no profile named 'nosuch'"),
    (("show", "crown-standard", "--skin", "oily"), "unknown skin condition 'oily'"),
    (("show", "crown-standard", "--stage", "9"), "unknown stage '9'"),
])
def test_bad_arguments_are_one_line_without_traceback(args, fragment):
    out = smp("protocols", *args)
    assert out.returncode != 0
    assert fragment in out.stderr
    assert "Traceback" not in out.stderr


def test_check_valid_file(tmp_path):
    (tmp_path / "ok.toml").write_text(GOOD)
    out = smp("protocols", "check", tmp_path / "ok.toml")
    assert out.returncode == 0 and "ok: 1 profiles" in out.stdout


@pytest.mark.parametrize(("text", "expected"), MALFORMED[::3], ids=range(0, len(MALFORMED), 3))
def test_check_malformed_prints_one_line_and_exits_1(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = smp("protocols", "check", path)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(path))
    assert expected.format(path=path) in lines[0]
    assert "Traceback" not in out.stderr


# -- issue 16: warnings, and files that are not what they seem (never a hang) ---------------

def test_check_warns_above_10_volts_and_still_exits_0(tmp_path):
    from tests.protocols.test_files import HOT

    path = tmp_path / "hot.toml"
    path.write_text(HOT)
    out = smp("protocols", "check", path)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().splitlines() == [
        f"{path}:6: warning: profile 'crown-thick': voltage 11.0 V is above 10.0 V: unusual for "
        "SMP, check the skin"]
    assert out.stdout.strip() == (
        "ok: 1 profiles in 1 file(s); 1 warning(s), which do not fail the check (exit 0)")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[profile]\n")
    out = smp("protocols", "check", path, broken)
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 2


def test_show_and_list_warn_for_a_profile_above_10_volts(tmp_path):
    from tests.protocols.test_files import HOT

    (tmp_path / "hot.toml").write_text(HOT.replace("11.0", "10.4"))
    warning = (f"{tmp_path / 'hot.toml'}:6: warning: profile 'crown-thick': voltage 10.4 V is "
               "above 10.0 V: unusual for SMP, check the skin")
    out = smp("protocols", "show", "crown-thick", "--skin", "thin", env_dir=tmp_path)
    assert out.returncode == 0, out.stderr
    assert warning in out.stdout.splitlines()  # resolved to 9.9 V: the file's warning stands
    out = smp("protocols", "show", "crown-thick", env_dir=tmp_path)
    assert warning in out.stdout.splitlines() and out.stdout.count("above 10.0 V") == 1
    out = smp("protocols", "list", env_dir=tmp_path)
    assert out.returncode == 0 and out.stderr.strip() == warning


def test_check_of_a_fifo_is_one_line_and_exit_1_never_a_hang(tmp_path):
    import os

    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    out = smp("protocols", "check", fifo)  # smp() gives up after 60 s: a hang fails
    assert out.returncode == 1
    assert out.stderr.strip() == f"{fifo}: is a FIFO (named pipe), not a regular file; not read"


def test_list_with_a_fifo_and_a_3000_deep_file_in_the_folder_names_them_and_lists_the_rest(
        tmp_path):
    import os

    from tests.protocols.test_files import deep

    (tmp_path / "good.toml").write_text(GOOD)
    os.mkfifo(tmp_path / "fifo.toml")
    (tmp_path / "deep.toml").write_text(deep(3000))
    out = smp("protocols", "list", env_dir=tmp_path)
    assert out.returncode == 0 and "crown-thick" in out.stdout
    assert sorted(out.stderr.strip().splitlines()) == [
        f"skipped: {tmp_path / 'deep.toml'}:9: nested more than 16 levels deep (arrays and "
        "inline tables); not parsed",
        f"skipped: {tmp_path / 'fifo.toml'}: is a FIFO (named pipe), not a regular file; "
        "not read",
    ]


def test_check_accepts_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    out = smp("protocols", "check", path)
    assert out.returncode == 0 and "ok: 1 profiles" in out.stdout, out.stderr


ESCAPES = {"\x1b", "\x07", "\u202e", "\x9b"}


def test_escapes_in_profile_files_never_reach_the_terminal(tmp_path):
    """Notes with ESC [2J, BEL or U+202E are refused by name (one escaped line); a file name
    holding ESC is shown escaped by list, show and check."""
    (tmp_path / "hostile.toml").write_text(GOOD.replace(
        '"for thick skin"', r'"for \u001b[2J thick \u0007skin \u202e"'))
    odd = tmp_path / "mine\x1b[2J.toml"
    odd.write_text(GOOD.replace("crown-thick", "crown-mine"))
    runs = {"list": smp("protocols", "list", env_dir=tmp_path),
            "show refused": smp("protocols", "show", "crown-thick", env_dir=tmp_path),
            "show": smp("protocols", "show", "crown-mine", env_dir=tmp_path),
            "check": smp("protocols", "check", tmp_path / "hostile.toml", odd)}
    for name, out in runs.items():
        assert not ESCAPES & set(out.stdout + out.stderr), name
    assert "notes: control character U+001B (ESC) is not allowed" in runs["list"].stderr
    assert "no profile named 'crown-thick'" in runs["show refused"].stderr
    assert "mine\\x1b[2J.toml" in runs["show"].stdout
    assert runs["check"].returncode == 1 and "hostile.toml:8: profile 'crown-thick': notes: " \
        "control character U+001B (ESC)" in runs["check"].stderr


def test_show_escapes_notes_that_reached_it_anyway(monkeypatch, capsys):
    """Escaping on output does not rely on the check at loading: a profile built past it
    (another tool, an older file format) is shown escaped too."""
    import argparse

    from console import cmd_protocols
    from protocols import Stage, load_library

    lib = load_library(Path("/nonexistent"))
    entry = lib.get("crown-standard")
    hostile = entry.profile.model_copy(update={"notes": "one\x1b[2J\x07\nline \u202etwo"})
    lib.entries["crown-standard"] = dataclasses.replace(entry, profile=hostile)
    monkeypatch.setattr(cmd_protocols, "load_library", lambda: lib)
    cmd_protocols.cmd_show(argparse.Namespace(name="crown-standard", stage=Stage.S1, skin=[]))
    out = capsys.readouterr().out
    assert not ESCAPES & set(out)
    assert "notes     one\\x1b[2J\\x07\n          line \\u202etwo\n" in out
