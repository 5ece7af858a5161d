"""Ticked and unticked boxes differ in their text, not only in colour."""

import asyncio

from textual.app import App, ComposeResult

from console.widgets.ticks import Tick, TickList


class Boxes(App):
    def compose(self) -> ComposeResult:
        yield Tick("sunburnt skin", id="tick")
        yield TickList([("hairline", "Hairline"), ("crown", "Crown")], single=False,
                       ticked={"hairline"}, id="list")
        yield TickList([("1", "stage 1"), ("2", "stage 2")], single=True, ticked={"1"},
                       id="stage")


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

        def lines(widget):
            return [str(widget.get_option_at_index(i).prompt) for i in range(widget.option_count)]

        assert lines(ticks) == ["[x] Hairline", "[ ] Crown"]
        ticks.focus()
        ticks.highlighted = 1
        await pilot.press("enter")
        assert ticks.ticked == {"hairline", "crown"} and lines(ticks)[1] == "[x] Crown"
        stage = app.query_one("#stage", TickList)
        stage.focus()
        stage.highlighted = 1
        await pilot.press("enter")
        assert stage.ticked == {"2"} and lines(stage) == ["( ) stage 1", "(*) stage 2"]
