"""The history and protocol browsers opened from the console: banner, STOP, and back."""

import asyncio

from textual.widgets import DataTable

from console.app import make_app
from console.view import MachineState
from tests.console.test_app import SIZE, banner, on, press, state, until


def profile_names(app) -> list[str]:
    table = app.screen.query_one("#profiles", DataTable)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


def test_f4_and_f5_open_the_browsers_with_the_banner_and_f10_comes_back(store):
    app = make_app(store, url="sim://")

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, on(app, "ClientScreen"))
            await press(pilot, "f4")
            await until(pilot, on(app, "ConsoleHistoryScreen"))
            await until(pilot, lambda: "SIMULATOR" in banner(app))
            await press(pilot, "escape")  # STOP works here as on every screen
            await until(pilot, state(app, MachineState.STOPPED))
            await until(pilot, lambda: "STOPPED" in banner(app))
            await press(pilot, "f10")
            await until(pilot, on(app, "ClientScreen"))
            await press(pilot, "f5")
            await until(pilot, on(app, "ConsoleProtocolsScreen"))
            await until(pilot, lambda: "SIMULATOR" in banner(app))
            await until(pilot, lambda: "crown-standard" in profile_names(app))
            await press(pilot, "f10")
            await until(pilot, on(app, "ClientScreen"))
            await press(pilot, "ctrl+q")

    asyncio.run(run())
