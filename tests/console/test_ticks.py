"""Ticked and unticked boxes differ in their text, not only in colour."""

import asyncio

from textual.app import App, ComposeResult

from console.widgets.ticks import Tick, TickList


class Boxes(App):
    def compose(self) -> ComposeResult:
        yield Tick("sunburnt skin", id="tick")
        yield TickList[str](("Hairline", "hairline", True), ("Crown", "crown", False), id="list")


def test_a_tick_writes_its_state():
    asyncio.run(_tick())


def test_a_tick_list_writes_each_state():
    asyncio.run(_tick_list())


async def _tick():
    app = Boxes()
    async with app.run_test() as pilot:
        tick = app.query_one("#tick", Tick)
        assert "[ ] sunburnt skin" in str(tick.label)
        tick.toggle()
        await pilot.pause()
        assert tick.value and "[x] sunburnt skin" in str(tick.label)


async def _tick_list():
    app = Boxes()
    async with app.run_test() as pilot:
        ticks = app.query_one("#list", TickList)
        lines = [ticks.render_line(y).text for y in range(2)]
        assert lines[0].startswith("[x] Hairline") and lines[1].startswith("[ ] Crown")
        ticks.select("crown")
        await pilot.pause()
        assert ticks.render_line(1).text.startswith("[x] Crown")
