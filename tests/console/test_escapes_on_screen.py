"""Text with terminal escapes or markup, stored by another version or raw SQL (this one refuses
it on input), reaches the terminal through no screen: the rendered lines hold no control
character, the escapes show as \\x1b, and markup shows as written instead of acting."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from console.app import make_app
from tests.console.browser_pilot import screen_text
from tests.console.test_app import SIZE, field, on, press, until
from tests.sessions.factory import FakeClock, client, session

ESC = "\x1b]0;owned\x07\x1b[2J\u202e\x9b"
NAME = f"Ann {ESC}[bold red]Lee[/] [@click=app.quit]x[/]"
PROFILE = """\
[[profile]]
name = "crown-mine"
zone = "crown"
depth_mm = 1.8
rate_hz = 140
voltage_v = 8.0
needle = "1003RL"
"""


def hostile_record(store, path: str) -> None:
    cid = client(store, "Ann Lee")
    session(store, cid, FakeClock(), lot="PG-1")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE clients SET name = ?", (NAME,))
        db.execute("UPDATE sessions SET technician = ?, machine_serial = ?",
                   (f"Tom{ESC}", f"R1{ESC}"))
        db.execute("UPDATE pigment_uses SET lot = ?", (f"PG{ESC}",))
        db.execute("UPDATE zone_works SET notes = ?, profile = ?", (f"ok{ESC}", f"p{ESC}"))
        db.execute("INSERT INTO events (session_id, seq, at, kind, payload) VALUES "
                   "(1, 99, '2026-03-02 10:00:00', 'note', ?)",
                   (json.dumps({"text": f"n{ESC}"}, ensure_ascii=False),))


def clean(app) -> str:
    shown = screen_text(app)
    bad = sorted({hex(ord(c)) for c in shown if not c.isprintable() and c != "\n"})
    assert bad == [], f"{bad} on screen:\n{shown}"
    return shown


@pytest.mark.timeout(120)
def test_no_screen_passes_an_escape_or_markup_through(store, db_url, tmp_path, monkeypatch):
    hostile_record(store, db_url.removeprefix("sqlite:///"))
    folder = tmp_path / "protocols"
    folder.mkdir()
    (folder / "mine\x1b[2J.toml").write_text(PROFILE)
    (folder / "bad.toml").write_text(PROFILE.replace("crown-mine", "crown-bad")
                                     + 'notes = "\\u001b[2J\\u0007"\n')
    monkeypatch.setenv("SMP_PROTOCOLS_DIR", str(folder))
    app = make_app(store, url="sim://")

    async def run():
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await until(pilot, on(app, "ClientScreen"))
            await until(pilot, lambda: "[bold red]Lee[/]" in screen_text(app))
            shown = clean(app)
            assert "Ann \\x1b]0;owned\\x07\\x1b[2J\\u202e\\x9b[bold red]Lee[/]" in shown
            assert "[@click=app.quit]x[/]" in shown
            await press(pilot, "enter")
            await until(pilot, on(app, "GateScreen"))
            await until(pilot, lambda: "Consultation: Ann \\x1b]0;" in screen_text(app))
            clean(app)
            await press(pilot, "ctrl+b")
            await until(pilot, on(app, "ClientScreen"))

            await press(pilot, "f4")
            await until(pilot, on(app, "ConsoleHistoryScreen"))
            wanted = ("Tom\\x1b]0;owned", "Rotary One R1\\x1b]0;owned", "[bold red]Lee[/]")
            # The timeline is read after the list: until all of it is on screen.
            await until(pilot, lambda: all(t in screen_text(app) for t in wanted))
            clean(app)
            await press(pilot, "f10")
            await until(pilot, on(app, "ClientScreen"))

            await press(pilot, "f5")
            await until(pilot, on(app, "ConsoleProtocolsScreen"))
            await until(pilot, lambda: "crown-mine" in screen_text(app))
            (await field(pilot, "#profiles")).move_cursor(
                row=list(app.screen.library.entries).index("crown-mine"))
            await until(pilot, lambda: "mine\\x1b[2J.toml" in screen_text(app))
            app.clear_notifications()  # the toast would cover the panel of files left out
            await pilot.pause()
            shown = clean(app)
            assert "bad.toml:8: profile 'crown-bad': notes: control character U+001B" in shown
            await press(pilot, "f10")
            await until(pilot, on(app, "ClientScreen"))
            assert app.is_running  # the [@click=app.quit] in the name did nothing
            await press(pilot, "ctrl+q")

    asyncio.run(run())
    assert Path(db_url.removeprefix("sqlite:///")).exists()
