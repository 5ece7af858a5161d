"""The end of a session as a technician at a small terminal meets it: nothing stated for them
(the aftercare box), and the proof that it was recorded in sight, not below the fold."""

from __future__ import annotations

import asyncio

import pytest

from console.app import make_app
from sessions import history
from tests.console.test_app import arm, field, fitted, on, open_work, press, text, to_work, until
from tests.console.test_layout import _on_screen


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_aftercare_sheet_given_is_not_pre_ticked_and_session_recorded_is_in_sight(store, size):
    """Why: "aftercare sheet given" was pre-ticked; at 80x24 "Session N recorded ... Next
    session" was below the fold."""
    app = make_app(store, url="sim://")

    async def run():
        async with app.run_test(size=size) as pilot:
            await open_work(pilot, app)
            await press(pilot, "e")
            await until(pilot, on(app, "EndScreen"))
            tick = await field(pilot, "#aftercare-given")
            assert tick.value is False and "[ ]" in str(tick.render())
            await press(pilot, "ctrl+n")  # ended without ticking it
            await until(pilot, lambda: "recorded and closed" in text(app, "#summary"))
            summary = app.screen.query_one("#summary")
            await until(pilot, lambda: _on_screen(app, summary).height >= 3)
            shown = "\n".join(str(summary.render()).split("\n")[:_on_screen(app, summary).height])
            assert "recorded and closed" in shown and "Next session" in shown, shown

    asyncio.run(run())
    (client,) = history.list_clients(store)
    (s,) = history.client_record(store, client.id).sessions
    assert s.ended_at is not None and s.aftercare_given is False  # as ticked: not given


@pytest.mark.timeout(60)
def test_a_stopped_banner_from_one_client_never_follows_to_the_next_clients_screens(store):
    """Why: a STOPPED banner from one client stayed on the client list, the end screen and the
    next client's working screen, which also showed the previous client's settings under
    "zone none". The oracle for the machine is the simulator's own state."""
    app = make_app(store, url="sim://")

    async def run():
        async with app.run_test(size=(120, 40)) as pilot:
            await open_work(pilot, app)
            await fitted(pilot, app)
            await arm(pilot, app)
            await press(pilot, "space")
            await until(pilot, lambda: "STOPPED" in text(app, "Banner"))
            assert "depth   1.50 mm" in text(app, "#profile")
            await press(pilot, "e")
            await until(pilot, on(app, "EndScreen"))
            await press(pilot, "ctrl+n")
            await until(pilot, lambda: "recorded and closed" in text(app, "#summary"))
            await until(pilot, lambda: "STOPPED" not in text(app, "Banner"))
            machine = app.controller.simulator.machine
            assert machine.status()["state"] == "DISARMED"  # the latch was cleared, not hidden
            await press(pilot, "ctrl+n")
            await until(pilot, on(app, "ClientScreen"))
            assert "STOPPED" not in text(app, "Banner")
            await to_work(pilot, app, name="Bo Chen")
            assert "STOPPED" not in text(app, "Banner")
            profile = text(app, "#profile")
            assert app.view.work.zone is None and "1.50 mm" not in profile, profile
            assert machine.status()["state"] == "DISARMED"

    asyncio.run(run())
