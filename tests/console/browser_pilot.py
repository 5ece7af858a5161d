"""Driving a browser screen (history, protocols) in a minimal app: the host and the waits."""

from __future__ import annotations

from textual.widgets import DataTable

from console.app_base import KeyedApp


class Host(KeyedApp):
    """A browser screen alone, in the least app it may run in: no key map."""

    def __init__(self, screen, *, presentation: bool = False):
        super().__init__()
        self.browser = screen
        self.set_reactive(Host.presentation, presentation)

    def on_mount(self) -> None:
        self.push_screen(self.browser)


async def settle(pilot) -> None:
    # A handler may start the next worker (a highlighted client loads its record): repeat.
    for _ in range(4):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def settled_layout(pilot) -> None:
    # A DataTable sizes its columns when its message queue next runs empty, which may not
    # happen before the picture is taken (a loaded machine shows it); give each table a
    # message to process until none has sizing left to do (DataTable's own flag: no public
    # API says it), then let the screen draw.
    for _ in range(50):
        pending = [t for t in pilot.app.screen.query(DataTable) if t._require_update_dimensions]
        if not pending:
            break
        for table in pending:
            table.call_later(lambda: None)
        await pilot.pause(0.01)
    for _ in range(2):
        await pilot.pause()


def rows(screen, table_id: str) -> list[list[str]]:
    table = screen.query_one(f"#{table_id}", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def screen_text(app) -> str:
    """What the terminal shows now, as a person reads it: the compositor's rendered lines of
    the screen (with the screens beneath a dialog, and the notifications), styles dropped."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False,
                      safe_box=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)
