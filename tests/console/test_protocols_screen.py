"""The protocol browser driven by keys in a minimal app, with a user folder in tmp_path."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from textual.widgets import DataTable, Static

from console.screens.protocols import ProtocolsScreen
from protocols import load_library
from tests.console.browser_pilot import Host, rows, settle, settled_layout

GOOD = """\
[[profile]]
name = "crown-fast"
zone = "crown"
depth_mm = 1.8
rate_hz = 150
voltage_v = 7.5
needle = "1003RL"

[[profile]]
name = "crown-standard"
zone = "crown"
depth_mm = 1.7
rate_hz = 130
voltage_v = 7.5
needle = "1003RL"
"""

BAD = """\
# a clinic's file with a mistake on line 6
[[profile]]
name = "too-deep"
zone = "crown"
rate_hz = 120
depth_mm = 3.0
voltage_v = 7.0
needle = "1003RL"
"""


def user_folder(path):
    (path / "clinic.toml").write_text(GOOD)
    (path / "bad.toml").write_text(BAD)
    return path


def resolved(screen) -> list[str]:
    return str(screen.query_one("#resolved", Static).render()).splitlines()


async def choose(pilot, screen, name: str) -> None:
    table = screen.query_one("#profiles", DataTable)
    await pilot.press("f6", *["up"] * table.cursor_row, *["down"] * table.get_row_index(name))
    await pilot.pause()


def test_library_sources_resolution_reasons_and_refusal(tmp_path):
    asyncio.run(_library_sources_resolution_reasons_and_refusal(user_folder(tmp_path)))


async def _library_sources_resolution_reasons_and_refusal(folder):
    app = Host(ProtocolsScreen(lambda: load_library(user=folder)))
    async with app.run_test(size=(150, 50)) as pilot:
        await settle(pilot)
        screen = app.browser
        table = {r[0]: r for r in rows(screen, "profiles")}
        assert table["hairline-soft"][6] == "built-in"
        assert table["crown-fast"][1:] == ["Crown (vertex)", "1.80", "150.0", "7.5", "1003RL",
                                           "user"]
        assert table["crown-standard"][6] == "user (overrides built-in)"
        assert "too-deep" not in table

        await choose(pilot, screen, "crown-fast")
        lines = resolved(screen)
        assert lines[0] == "crown-fast  (user: clinic.toml:1)"
        assert "Resolved  depth 1.80 mm, rate 150.0 Hz, voltage 7.5 V" in lines
        assert lines[-1] == "  - no skin adjustments: the base profile as written"

        # Stage 2 and thin or sensitive skin (the second condition): every reason shown.
        await pilot.press("f7", "down", "enter", "f8", "down", "enter")
        await pilot.pause()
        lines = resolved(screen)
        assert "For       stage 2, thin or sensitive skin" in lines
        assert "Resolved  depth 1.80 mm, rate 140.0 Hz, voltage 7.0 V" in lines
        assert lines[lines.index("Why") + 1:] == [
            "  - crown, stage 2, thin or sensitive skin: voltage 7.5 -> 7.0 V: thin or "
            "sensitive skin takes less drive",
            "  - crown, stage 2, thin or sensitive skin: stroke rate 150.0 -> 140.0 Hz: thin or "
            "sensitive skin takes a slower stroke"]

        # Thick skin instead: 160 Hz is beyond the 150 Hz limit, so it is refused, unclamped.
        await pilot.press("enter", "down", "enter")
        await pilot.pause()
        lines = resolved(screen)
        assert lines[4].startswith("REFUSED   crown, stage 2, thick or resistant skin: refused:")
        assert "160" in lines[4] and "150" in lines[4]
        assert not any(line.startswith("Resolved") for line in lines)
        assert "stroke rate 150.0 -> 160.0 Hz: thick or resistant skin needs a faster stroke" in (
            lines[-1])


def test_user_file_errors_are_listed_with_file_and_line(tmp_path):
    asyncio.run(_user_file_errors(user_folder(tmp_path)))


async def _user_file_errors(folder):
    app = Host(ProtocolsScreen(lambda: load_library(user=folder)))
    async with app.run_test(size=(150, 50)) as pilot:
        await settle(pilot)
        screen = app.browser
        errors = str(screen.query_one("#errors", Static).render())
        assert errors == ("bad.toml:6: profile 'too-deep': depth_mm: 3.0 mm is outside the "
                          "allowed 0.20 to 2.50 mm")
        assert str(screen.query_one("#errors-head", Static).render()) == (
            f"User files in {folder}: 1 problem(s); profiles with problems are left out")

        # The clinic fixes the file and reloads: the error goes, the profile appears.
        (folder / "bad.toml").write_text(BAD.replace("3.0", "2.0"))
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert str(screen.query_one("#errors", Static).render()) == ""
        assert "too-deep" in [r[0] for r in rows(screen, "profiles")]


def test_a_library_that_cannot_be_read_is_one_line(tmp_path):
    def broken():
        raise PermissionError(13, "Permission denied")

    async def go():
        app = Host(ProtocolsScreen(broken))
        async with app.run_test(size=(150, 50)) as pilot:
            await settle(pilot)
            assert app.screen is app.browser
            assert str(app.browser.query_one("#status", Static).render()) == (
                "ERROR: cannot read the protocol library: PermissionError: [Errno 13] "
                "Permission denied")

    asyncio.run(go())


def test_snapshot(tmp_path, monkeypatch, snap_compare):
    # A relative user folder keeps tmp_path, which differs on every run, off the screen.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "protocols").mkdir()
    user_folder(tmp_path / "protocols")

    async def choose_thin_skin(pilot):
        await settle(pilot)
        await choose(pilot, pilot.app.browser, "crown-fast")
        await pilot.press("f8", "down", "enter")
        await pilot.pause()
        await settled_layout(pilot)

    assert snap_compare(Host(ProtocolsScreen(lambda: load_library(user=Path("protocols")))),
                        terminal_size=(130, 44), run_before=choose_thin_skin)


def test_bindings_have_ids_descriptions_and_keys_every_terminal_sends():
    from console.screens.history import ConfirmReplace, ExportDialog, HistoryScreen

    safe = re.compile(r"^(f([1-9]|10)|[a-z0-9]|up|down|left|right|space|ctrl\+[a-gk-ln-z])$")
    for screen in (HistoryScreen, ExportDialog, ConfirmReplace, ProtocolsScreen):
        shown = [b for b in screen.BINDINGS if b.show]
        assert shown, screen.__name__
        for b in shown:
            assert b.id and b.description and b.tooltip, (screen.__name__, b)
            assert all(safe.match(k) for k in b.key.split(",")), (screen.__name__, b.key)
    ids = [b.id for s in (HistoryScreen, ProtocolsScreen) for b in s.BINDINGS]
    assert len(ids) == len(set(ids))
