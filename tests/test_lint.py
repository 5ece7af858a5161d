"""`make lint` (run by `make test`) fails on a break of the layering or of strict types.

Each test breaks a copy of the tree in one way the rules forbid and runs the Makefile's own
lint target on it, with this checkout's tools."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("protocols", "firmware_bridge", "sim", "sessions", "console")


@pytest.fixture
def tree(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "Makefile"):
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def make_lint(tree: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent
    # STAMP= : the tools are this checkout's; nothing is installed into the copy.
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(tree), "lint", f"BIN={bin_dir}", "STAMP="],
        capture_output=True, text=True, timeout=240,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(tree),
             "MYPY_CACHE_DIR": str(tree / ".mypy_cache"), "HOME": str(tree)})


def test_a_screen_that_imports_the_record_fails_lint(tree):
    screen = tree / "console" / "screens" / "help.py"
    screen.write_text(screen.read_text() + "\nfrom sessions.store import open_store  # noqa\n")
    done = make_lint(tree)
    assert done.returncode != 0, done.stdout
    assert "console.screens.help -> sessions.store" in done.stdout, done.stdout + done.stderr


def test_the_simulator_reaching_past_the_wire_fails_lint(tree):
    (tree / "sim" / "reach.py").write_text("from firmware_bridge.link import Machine  # noqa\n")
    done = make_lint(tree)
    assert done.returncode != 0, done.stdout
    assert "sim.reach -> firmware_bridge.link" in done.stdout, done.stdout + done.stderr


def test_an_untyped_function_in_protocols_fails_lint(tree):
    (tree / "protocols" / "untyped.py").write_text("def scale(value):\n    return value * 10\n")
    done = make_lint(tree)
    assert done.returncode != 0, done.stdout
    assert "protocols/untyped.py:1: error: Function is missing a type annotation" in \
        done.stdout, done.stdout + done.stderr
