"""One meaning for each F-key on every screen, F10 closing what is on top, the key list beside
STOP rather than over it, and a footer that keeps STOP, arming and End in sight (a tester:
"F-keys change meaning inside browsers (History: F3 Recall, F4 Touch-ups; Protocols: F3
Stage); F10 does not close F2; the F2 overlay covers the STOP button"; "at 120 columns the
footer cuts off e (End)")."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.screen import Screen
from textual.widgets import TabbedContent, TabPane

from console.app import ViewChanged, make_app
from console.config import ConsoleConfig
from console.screens.help import HelpScreen
from console.view import MachineState
from console.widgets.banner import Banner
from firmware_bridge import Fault
from sessions.clients import add_client
from tests.console.browser_pilot import screen_text
from tests.console.conftest import new_client
from tests.console.test_app import SIZE, fitted, on, open_work, press, until
from tests.console.test_snapshots import FAULTED, LOST, RUNNING, _working


def stack(app) -> list[str]:
    return [type(s).__name__ for s in app.screen_stack]


def tabs(app) -> dict[str, str]:
    """The tabs' labels as shown, by pane."""
    content = app.screen.query_one(TabbedContent)
    return {p.id: str(content.get_tab(p.id).label) for p in app.screen.query(TabPane)}


def active_tab(app) -> str:
    return app.screen.query_one(TabbedContent).active


def firmware(app):
    """The simulated machine's own state: what it did, whatever the console believes."""
    return app.controller.simulator.machine.firmware


@pytest.mark.timeout(60)
def test_f_keys_keep_one_meaning_inside_the_history_and_the_protocols(store):
    add_client(store, new_client())
    app = make_app(store, url="sim://")

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, on(app, "ClientScreen"))
            await press(pilot, "f4")
            await until(pilot, lambda: "Recall by lot (" in screen_text(app))
            below = stack(app)
            await press(pilot, "f4")  # already open: not a second copy
            await pilot.pause(0.1)
            assert stack(app) == below
            # The parts on F6 to F8, named so on their tabs.
            assert tabs(app) == {"tab-clients": "Clients (F6)",
                                 "tab-recall": "Recall by lot (F7)",
                                 "tab-due": "Touch-ups due (F8)"}
            for key, tab in (("f7", "tab-recall"), ("f8", "tab-due"), ("f6", "tab-clients")):
                await press(pilot, key)
                await until(pilot, lambda tab=tab: active_tab(app) == tab)
            # F2 is the key list, here as anywhere; F2 again closes it.
            await press(pilot, "f2")
            await until(pilot, on(app, "HelpScreen"))
            await press(pilot, "f2")
            await until(pilot, on(app, "ConsoleHistoryScreen"))
            assert active_tab(app) == "tab-clients"
            # F3 is presentation mode, even over the export dialog, which it closes (it named
            # the client and would have exported as the other mode did).
            await until(pilot, lambda: "Ann Lee" in screen_text(app))
            await press(pilot, "ctrl+s")
            await until(pilot, on(app, "ExportDialog"))
            await press(pilot, "f3")
            await until(pilot, lambda: app.presentation)
            await until(pilot, on(app, "ConsoleHistoryScreen"))
            await until(pilot, lambda: "Client-" in screen_text(app))
            assert "Ann Lee" not in screen_text(app)
            # F5 puts the protocols in the history's place: F10 comes back to the client list.
            await press(pilot, "f5")
            await until(pilot, lambda: "Stage (" in screen_text(app))
            assert stack(app) == [*below[:-1], "ConsoleProtocolsScreen"]
            await press(pilot, "f5")
            await pilot.pause(0.1)
            assert stack(app) == [*below[:-1], "ConsoleProtocolsScreen"]
            labels = {str(w.render()) for w in app.screen.query("#choices Label")}
            assert labels == {"Stage (F7)", "Skin (F8)"}
            for key, wid in (("f7", "stage"), ("f8", "skin"), ("f6", "profiles")):
                await press(pilot, key)
                await until(pilot, lambda wid=wid: getattr(app.focused, "id", None) == wid)
            await press(pilot, "f3")  # turning it off asks, from here too
            await until(pilot, on(app, "PresentationOff"))
            await press(pilot, "f10")
            await until(pilot, on(app, "ConsoleProtocolsScreen"))
            assert app.presentation
            await press(pilot, "f2")
            await until(pilot, on(app, "HelpScreen"))
            await press(pilot, "f10")
            await until(pilot, on(app, "ConsoleProtocolsScreen"))
            # F4 puts the history back in the protocols' place.
            await press(pilot, "f4")
            await until(pilot, on(app, "ConsoleHistoryScreen"))
            assert stack(app) == below
            # A screen over the history (the replay): F4 goes back to the history under it,
            # F5 replaces both by the protocols; never a second browser on the stack.
            await app.push_screen(Screen())
            await press(pilot, "f4")
            await until(pilot, on(app, "ConsoleHistoryScreen"))
            assert stack(app) == below
            await app.push_screen(Screen())
            await press(pilot, "f5")
            await until(pilot, on(app, "ConsoleProtocolsScreen"))
            assert stack(app) == [*below[:-1], "ConsoleProtocolsScreen"]
            await press(pilot, "f10")
            await until(pilot, on(app, "ClientScreen"))
            await press(pilot, "ctrl+q")

    asyncio.run(run())


@pytest.mark.timeout(90)
def test_f10_closes_whatever_is_on_top_including_the_key_list(store):
    app = make_app(store, url="sim://")

    async def closes(pilot, *keys, opened, back):
        await press(pilot, *keys)
        await until(pilot, on(app, opened))
        depth = len(app.screen_stack)
        await press(pilot, "f10")
        await until(pilot, on(app, back))
        assert len(app.screen_stack) == depth - 1, stack(app)

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, on(app, "ClientScreen"))
            await closes(pilot, "f2", opened="HelpScreen", back="ClientScreen")
            await closes(pilot, "ctrl+n", opened="NewClientScreen", back="ClientScreen")
            await open_work(pilot, app)
            await fitted(pilot, app)
            await closes(pilot, "f2", opened="HelpScreen", back="WorkScreen")
            await closes(pilot, "question_mark", opened="HelpScreen", back="WorkScreen")
            await closes(pilot, "a", opened="Confirm", back="WorkScreen")  # the arm question
            await pilot.pause(0.2)
            assert app.view.machine.state is MachineState.DISARMED  # F10 answered no
            await closes(pilot, "f", opened="Choose", back="WorkScreen")  # a fault to trigger
            await closes(pilot, "f4", opened="ConsoleHistoryScreen", back="WorkScreen")
            await press(pilot, "f4")
            await until(pilot, lambda: "Ann Lee" in screen_text(app))  # her record is read
            await closes(pilot, "f2", opened="HelpScreen", back="ConsoleHistoryScreen")
            await closes(pilot, "ctrl+s", opened="ExportDialog", back="ConsoleHistoryScreen")
            await press(pilot, "f10")
            await until(pilot, on(app, "WorkScreen"))
            await closes(pilot, "f5", opened="ConsoleProtocolsScreen", back="WorkScreen")
            await closes(pilot, "ctrl+p", opened="CommandPalette", back="WorkScreen")
            await press(pilot, "f3")  # on at once; off asks, and F10 keeps it on
            await until(pilot, lambda: app.presentation)
            await closes(pilot, "f3", opened="PresentationOff", back="WorkScreen")
            assert app.presentation
            await press(pilot, "ctrl+q")
            await until(pilot, on(app, "Confirm"))
            await press(pilot, "y")

    asyncio.run(run())


@pytest.mark.timeout(90)
@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
def test_the_key_list_never_covers_the_stop_button(store, size):
    app = make_app(store, url="sim://")
    answers = []  # the machine's answer to each STOP the console sent for a key or a click
    sent = app.controller.stop

    def stop(*args, **kwargs):
        answers.append(acked := sent(*args, **kwargs))
        return acked

    app.controller.stop = stop

    def stops_seen() -> int:
        return sum(e.what == "STOP" for e in firmware(app).log)

    async def run():
        async with app.run_test(size=size) as pilot:
            await open_work(pilot, app)
            await fitted(pilot, app)
            await press(pilot, "a")
            await until(pilot, on(app, "Confirm"))
            await press(pilot, "y")
            # Armed (on a loaded machine the link may stop it first: the STOP below is still
            # sent, answered and latched).
            await until(pilot, lambda: firmware(app).state.name == "ARMED"
                        or Fault.STOP in firmware(app).faults)
            await press(pilot, "f2")
            await until(pilot, on(app, "HelpScreen"))
            await pilot.pause(0.1)
            work = app.screen_stack[-2]
            stop_button = work.query_one("#stop-button").region
            box = app.screen.query_one(VerticalScroll).region
            assert Region(0, 0, *size).contains_region(stop_button) and stop_button.height >= 3
            assert not stop_button.overlaps(box), (stop_button, box)
            for banner in work.query(Banner):  # SIMULATOR stays in sight too
                assert not banner.region.overlaps(box)
            assert box.height >= 10  # and the list is still a list

            # Esc stops from under the list, which stays open; so does a click on the button.
            seen = stops_seen()
            await press(pilot, "escape")
            await until(pilot, lambda: len(answers) == 1 and stops_seen() > seen)
            assert answers[0][0], "the simulator did not acknowledge the STOP"
            assert Fault.STOP in firmware(app).faults
            assert firmware(app).state.name not in ("ARMED", "RUNNING")
            seen = stops_seen()
            app.clear_notifications()  # at 80x24 a stack of them reaches the button
            await pilot.pause()
            await pilot.click(offset=(stop_button.x + stop_button.width // 2,
                                      stop_button.y + stop_button.height // 2))
            await until(pilot, lambda: len(answers) == 2 and stops_seen() > seen)
            assert answers[1][0] and on(app, "HelpScreen")()
            await press(pilot, "f10")
            await until(pilot, on(app, "WorkScreen"))
            await press(pilot, "ctrl+q")
            await until(pilot, on(app, "Confirm"))
            await press(pilot, "y")

    asyncio.run(run())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_the_key_list_moves_below_a_banner_that_grows_while_it_is_open(store, size):
    app = make_app(store)

    async def run():
        async with app.run_test(size=size) as pilot:
            await _working(RUNNING, HelpScreen)(pilot)
            work = app.screen_stack[-2]
            for view in (FAULTED, replace(LOST, machine=replace(
                    FAULTED.machine, link=LOST.machine.link))):
                app.post_message(ViewChanged(view))
                await pilot.pause(0.2)
                box = app.screen.query_one(VerticalScroll).region
                for kept in (work.query_one("#stop-button"), *work.query(Banner)):
                    assert not kept.region.overlaps(box), (view.machine, kept, box)

    asyncio.run(run())


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_the_footer_at_120_columns_shows_end(store, size):
    app = make_app(store)

    async def run():
        async with app.run_test(size=size) as pilot:
            await _working(RUNNING)(pilot)
            footer = screen_text(app).splitlines()[size[1] - 1]
            wanted = ["Esc STOP", "a Arm", "e End session"] + (
                ["f2 Keys", "f3 Presentation", "f4 History", "f5 Protocols"]
                if size[0] >= 120 else [])
            assert all(w in footer for w in wanted), footer
            assert footer.index("Esc STOP") < footer.index("a Arm") < footer.index("e End")

    asyncio.run(run())


@pytest.mark.timeout(60)
def test_a_browser_key_rebound_in_the_key_map_renames_its_tab_and_label(store):
    keymap = {"history.recall": "ctrl+l", "protocols.stage": "ctrl+t"}
    app = make_app(store, url="sim://", config=ConsoleConfig(keymap=keymap))

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, on(app, "ClientScreen"))
            await press(pilot, "f4")
            await until(pilot, lambda: "Recall by lot (" in screen_text(app))
            assert tabs(app)["tab-recall"] == "Recall by lot (Ctrl+L)"
            await press(pilot, "f7")  # no longer the recall's
            await pilot.pause(0.1)
            assert active_tab(app) == "tab-clients"
            await press(pilot, "ctrl+l")
            await until(pilot, lambda: active_tab(app) == "tab-recall")
            await press(pilot, "f5")
            await until(pilot, lambda: "Stage (" in screen_text(app))
            labels = {str(w.render()) for w in app.screen.query("#choices Label")}
            assert labels == {"Stage (Ctrl+T)", "Skin (F8)"}
            await press(pilot, "ctrl+t")
            await until(pilot, lambda: getattr(app.focused, "id", None) == "stage")
            await press(pilot, "ctrl+q")

    asyncio.run(run())
