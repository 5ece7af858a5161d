"""Presentation mode, as a class in front of a projector sees it: every screen and dialog of the
console walked by keys (against sim://) over a record full of identifying text, and the screen
read as rendered (the compositor's lines, not widget internals) at every step."""

from __future__ import annotations

import asyncio
import re
from datetime import date

import pytest

from console.app import make_app
from console.config import ConsoleConfig
from protocols import Stage, Zone
from sessions.clients import ConsentForm, Health, NewClient, add_client
from sessions.gate import Contraindication
from sessions.pseudonyms import Pseudonyms
from sessions.recorder import Machine, Recorder
from tests.console.browser_pilot import screen_text, settle
from tests.console.conftest import CLEAR
from tests.console.test_app import SIZE, field, on, press, shown, until
from tests.sessions.factory import FakeClock

NAME, OTHER = "Jane Doe-Smith", "Li Wu"
PHONE, EMAIL, DOB = "+44 20 7946 0123", "jane.doe@example.org", date(1980, 5, 17)
HIDDEN = ["jane", "doe", "smith", "li", "wu", "7946", "0123", "example.org", "1980-05-17",
          "17/05/1980", "latex", "methotrexate", "chemotherapy", "twins", "harold", "finch",
          "wallaby"]


def seed(store) -> int:
    """Jane: a completed session with free text everywhere, and one a crash left open."""
    cid = add_client(store, NewClient(
        name=NAME, phone=PHONE, email=EMAIL, date_of_birth=DOB,
        health=Health(allergies="latex", medications="methotrexate",
                      hair_loss_cause="chemotherapy"),
        consent=ConsentForm(procedure=True, photos=False, version="v3",
                            signed_on=date(2026, 3, 1))))
    add_client(store, NewClient(name=OTHER, phone="07700 900456", email="li@example.org"))
    clock = FakeClock()
    rec = Recorder.start(store, client_id=cid, technician="Tom Reyes", stage=Stage.S1,
                         machine=Machine("Rotary One", "R1-0042", "1.4.2"),
                         planned_zones=[Zone.HAIRLINE],
                         answers={**CLEAR, Contraindication.PREGNANCY: True},
                         overrides={"pregnancy": "expecting twins, Dr Harold Finch agreed"},
                         clock=clock)
    rec.zone_changed(Zone.HAIRLINE, profile="hairline-soft")
    note = rec.note(f"{NAME} ({PHONE}, {EMAIL}) lives at 1 Wallaby Way; born 17/05/1980")
    rec.correct(note.id, "not Jane: Li Wu, on methotrexate")
    rec.record_coverage(Zone.HAIRLINE, coverage_pct=30, notes="chemotherapy until May")
    rec.end(aftercare_given=True)
    clock.advance(days=20)
    Recorder.start(store, client_id=cid, technician="Tom Reyes", stage=Stage.S2,
                   machine=Machine.simulated(), planned_zones=[Zone.CROWN], answers=CLEAR,
                   clock=clock).note("Jane feels faint; DOB 1980-05-17")  # left open
    return cid


async def hidden(pilot, where: str) -> str:
    app = pilot.app
    await until(pilot, lambda: screen_text(app).strip())  # a screen still composing is blank
    await pilot.pause(0.05)
    shown = screen_text(app)
    leaks = [w for w in HIDDEN
             if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", shown, re.IGNORECASE)]
    assert leaks == [], f"{where}: {leaks} on screen:\n{shown}"
    assert "PRESENTATION" in shown, f"{where}: no PRESENTATION indicator:\n{shown}"
    assert "\x1b" not in shown
    return shown


@pytest.mark.slow(13)
@pytest.mark.timeout(180)
def test_every_screen_and_dialog_in_presentation_mode_hides_identities(store, tmp_path,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    cid = seed(store)
    alias = Pseudonyms(store).client(cid)
    app = make_app(store, config=ConsoleConfig(presentation=True))  # as --presentation

    async def run():
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            # The recovery dialog at start names the open session's client by pseudonym.
            await until(pilot, on(app, "RecoverScreen"))
            assert alias in await hidden(pilot, "recovery dialog")
            assert app.sub_title == "PRESENTATION"
            await press(pilot, "f10")
            await until(pilot, on(app, "ConnectScreen"))
            await hidden(pilot, "connect")
            await press(pilot, "s")
            await until(pilot, on(app, "ClientScreen"))
            await until(pilot, lambda: alias in screen_text(app))
            await hidden(pilot, "client list")

            # Search matches what is shown (the pseudonym), never the name behind it.
            (await field(pilot, "#search")).value = "jane"  # typed, so shown in the box
            await until(pilot, lambda: "no match" in screen_text(app))
            assert alias not in screen_text(app)
            (await field(pilot, "#search")).value = ""

            # A new client typed in front of the class: masked; an error line says nothing.
            await press(pilot, "ctrl+n")
            await until(pilot, on(app, "NewClientScreen"))
            (await field(pilot, "#name")).value = "Jane \x1b[2JDoe-Smith"
            (await field(pilot, "#dob")).value = "1980-05-17"
            (await field(pilot, "#consent")).value = True
            (await field(pilot, "#phone")).value = PHONE
            (await field(pilot, "#allergies")).value = "latex"
            await press(pilot, "ctrl+n")
            await until(pilot, lambda: "control character" in screen_text(app))
            await hidden(pilot, "new client dialog with an error line")
            await press(pilot, "ctrl+g")
            await until(pilot, on(app, "ClientScreen"))

            (await field(pilot, "#search")).value = alias.lower()
            # Until the list holds Jane alone: the empty search before showed both clients.
            await until(pilot, lambda: app.screen.query_one("#clients").option_count == 1
                        and alias in screen_text(app))
            await press(pilot, "enter")
            await until(pilot, on(app, "GateScreen"))
            await until(pilot, lambda: alias in screen_text(app))  # the consultation is read
            await hidden(pilot, "gate")
            (await field(pilot, "#has-sunburn")).value = True
            await press(pilot, "ctrl+n")
            await until(pilot, lambda: "REFUSED" in screen_text(app))
            await hidden(pilot, "gate refusal")
            (await field(pilot, "#why-sunburn")).value = "Dr Harold Finch says latex only"
            await pilot.pause(0.1)
            await hidden(pilot, "gate reason typed")
            await press(pilot, "ctrl+n")
            await until(pilot, on(app, "PlanScreen"))
            await hidden(pilot, "plan")
            await press(pilot, "ctrl+n")
            await until(pilot, on(app, "WorkScreen"))
            await press(pilot, "v")  # no zone yet: a notification
            await until(pilot, lambda: "choose a zone first" in screen_text(app))
            await hidden(pilot, "a notification")
            await press(pilot, "1")
            await shown(pilot, app, "FitCartridge")
            await hidden(pilot, "cartridge dialog")
            await press(pilot, "enter")
            await until(pilot, lambda: app.view.machine.applied is not None)
            await until(pilot, lambda: "sunburn overridden" in screen_text(app))
            assert alias in await hidden(pilot, "working screen")
            await press(pilot, "v")
            await until(pilot, on(app, "Choose"))
            await hidden(pilot, "profile dialog")
            await press(pilot, "q")
            await press(pilot, "f2")
            await until(pilot, on(app, "HelpScreen"))
            await hidden(pilot, "help")
            await press(pilot, "q")

            # Leaving presentation mode takes a typed word: F3 and a letter do not.
            await press(pilot, "f3")
            await until(pilot, on(app, "PresentationOff"))
            await hidden(pilot, "presentation off dialog")
            await press(pilot, "y", "enter")
            await until(pilot, lambda: "type SHOW to leave" in screen_text(app))
            await press(pilot, "f10")
            await until(pilot, on(app, "WorkScreen"))
            assert app.presentation
            await hidden(pilot, "after a refused 'off'")

            await press(pilot, "e")
            await until(pilot, on(app, "EndScreen"))
            (await field(pilot, "#notes")).value = "Jane: chemotherapy again in May"
            (await field(pilot, "#cover-hairline")).value = "40"
            await pilot.pause(0.1)
            await hidden(pilot, "end of session")
            await press(pilot, "ctrl+n")
            await until(pilot, lambda: "recorded and closed" in screen_text(app))
            await hidden(pilot, "end summary")
            await press(pilot, "ctrl+n")
            await until(pilot, on(app, "ClientScreen"))

            # The history browser: every tab, the timelines, recall, due, the export dialog.
            await press(pilot, "f4")
            await until(pilot, on(app, "ConsoleHistoryScreen"))
            await until(pilot, lambda: alias in screen_text(app))
            await hidden(pilot, "history clients")
            await press(pilot, *alias.lower())
            # Filtered to Jane, and her record read (the keys below act on what it shows).
            await until(pilot, lambda: "1 of 2 clients" in screen_text(app)
                        and "Timeline of session" in screen_text(app))
            await settle(pilot)
            await hidden(pilot, "history record and timeline")
            screen = app.screen
            await press(pilot, "enter", "tab", "up", "up", "up")  # the first session
            await until(pilot, lambda: "Timeline of session 1 " in screen_text(app))
            await hidden(pilot, "history: first session's timeline (free text of every kind)")
            await press(pilot, "tab", "enter")
            await until(pilot, lambda: "Timeline of zone" in screen_text(app))
            await hidden(pilot, "history zone timeline")
            await press(pilot, "f7", *"TRAINING", "enter")  # the lot of the walk's session
            await until(pilot, lambda: "Lot TRAINING: 1 client(s)" in screen_text(app))
            await hidden(pilot, "history recall")
            await press(pilot, "f8")
            await until(pilot, lambda: "touch-up(s) due" in screen_text(app))
            await hidden(pilot, "history due")
            await press(pilot, "f6")
            await press(pilot, "ctrl+s")
            await until(pilot, on(app, "ExportDialog"))
            assert alias in await hidden(pilot, "export dialog")
            await press(pilot, "f10")
            await until(pilot, lambda: app.screen is screen)
            await press(pilot, "f10")
            await until(pilot, on(app, "ClientScreen"))

            await press(pilot, "f5")
            await until(pilot, on(app, "ConsoleProtocolsScreen"))
            await until(pilot, lambda: "crown-standard" in screen_text(app))
            await hidden(pilot, "protocol browser")
            await press(pilot, "f10")
            await until(pilot, on(app, "ClientScreen"))

            # Off, deliberately: now the names are there (the check above could fail).
            await press(pilot, "f3")
            await until(pilot, on(app, "PresentationOff"))
            await press(pilot, *"show", "enter")
            await until(pilot, lambda: not app.presentation)
            (await field(pilot, "#search")).value = ""  # it holds the pseudonym typed before
            await until(pilot, lambda: NAME in screen_text(app))
            assert not app.presentation and "PRESENTATION" not in screen_text(app)
            await press(pilot, "f3")  # on again at once
            await until(pilot, lambda: NAME not in screen_text(app))
            await hidden(pilot, "on again")
            await press(pilot, "ctrl+q")

    asyncio.run(run())
