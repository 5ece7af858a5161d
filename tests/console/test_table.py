"""The console's table keeps its header in line with its rows."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from console.widgets.table import Table


class _One(App):
    def compose(self) -> ComposeResult:
        yield Table()


def test_a_header_drawn_before_the_columns_widen_is_drawn_again_at_their_width():
    """Seen under load in the history browser: rows added, the header drawn before the next
    idle sized the columns, and it stayed at its old widths above the wider rows."""

    async def run() -> tuple[str, str]:
        app = _One()
        async with app.run_test(size=(60, 6)) as pilot:
            table = app.query_one(Table)
            table.add_columns("Started", "Stage")
            await pilot.pause()
            table.add_row("2026-03-02 09:00", "stage 1")
            table.render_line(0)  # drawn now, before the idle that widens the columns
            await table._on_idle(None)  # the columns widen
            return table.render_line(0).text, table.render_line(1).text

    header, row = asyncio.run(run())
    assert header.index("Stage") == row.index("stage 1"), (header, row)


def test_the_same_rows_are_drawn_at_the_same_widths_whatever_was_shown_before():
    """The history browser's snapshot differed 2 runs of 11: the client list's answer and the
    search typed came in either order, and a column kept the width of a name shown and
    filtered away before."""

    async def shown(before: list[str]) -> str:
        app = _One()
        async with app.run_test(size=(60, 6)) as pilot:
            table = app.query_one(Table)
            table.add_columns("Client", "ID")
            for name in before:
                table.add_row(name, "7")
            await pilot.pause()
            table.clear()
            table.add_row("Ann Lee", "1")
            await pilot.pause()
            return table.render_line(1).text

    async def both() -> tuple[str, str]:
        return await shown([]), await shown(["Bartholomew Featherstonehaugh"])

    first, after_a_long_name = asyncio.run(both())
    assert first == after_a_long_name, (first, after_a_long_name)
