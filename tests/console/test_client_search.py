"""One client search (sessions/search.py, docs/record.md "Finding a client"): `smp history
clients`, the client screen's lookup (the controller's find_clients) and the history browser
find the same clients, in the same order, for the same text; in presentation mode both screens
match the pseudonym alike."""

import argparse
import asyncio
from datetime import date

from textual.widgets import Input

from console.cmd_history import cmd_history
from console.controller import SessionController
from console.screens.history import HistoryScreen
from sessions.clients import NewClient, add_client
from sessions.pseudonyms import Pseudonyms
from sessions.store import open_store
from tests.console.browser_pilot import Host, rows, settle

NAMES = ("Ann Lee", "Bo Chen", "Zoë Łukasz 王", "Łukasz Nowak")


def test_the_shell_and_both_screens_find_the_same_clients(db_url, tmp_path, capsys):
    store = open_store(db_url)
    ids = {name: add_client(store, NewClient(name=name)) for name in NAMES}
    bo = Pseudonyms(store).client(ids["Bo Chen"])  # "Client-" and 8 hex digits
    typed = {  # what each text finds
        "zoe": ["Zoë Łukasz 王"],  # accents and strokes are not typed on every keyboard
        "LUKASZ": ["Zoë Łukasz 王", "Łukasz Nowak"],
        "nowak   lukasz": ["Łukasz Nowak"],  # every word, in any order
        "王 zoë": ["Zoë Łukasz 王"],
        f"#{ids['Bo Chen']}": ["Bo Chen"],
        "ann lee": ["Ann Lee"],
        "lee ann x": [],
    }
    hidden = {f"{bo[7:11].lower()} client": [bo], "ann": []}  # the pseudonym's words only

    def shell(text: str) -> list[str]:
        cmd_history(argparse.Namespace(db=db_url, action="clients", text=text.split()))
        return [n for line in capsys.readouterr().out.splitlines() for n in NAMES if n in line]

    controller = SessionController(store, on_view=lambda view: None,
                                   journal_dir=tmp_path / "journal")
    try:
        client_screen = {t: [c.name for c in controller.find_clients(t)] for t in typed}
        client_screen_hidden = {t: [c.name for c in controller.find_clients(
            t, presentation=True)] for t in hidden}
    finally:
        controller.close()
        store.close()
    browser, browser_hidden = asyncio.run(_browser(db_url, typed, hidden))

    assert {t: shell(t) for t in typed} == client_screen == browser == typed
    assert client_screen_hidden == browser_hidden == hidden


async def _browser(url, typed, hidden):
    app = Host(HistoryScreen(url, today=lambda: date(2026, 3, 30)))
    found, found_hidden = {}, {}
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        box = app.browser.query_one("#search", Input)
        for texts, into in ((typed, found), (hidden, found_hidden)):
            if texts is hidden:
                app.presentation = True
                await settle(pilot)
            for text in texts:
                box.value = text
                await settle(pilot)
                into[text] = [r[0] for r in rows(app.browser, "clients")]
    return found, found_hidden
