"""End of session: coverage per zone, notes, the aftercare sheet, the next session."""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, VerticalScroll
from textual.widgets import Checkbox, Input, Label, Static

from console.screens.base import SmpScreen
from console.widgets.ticks import Tick
from console.workflow import EndSummary
from protocols import Zone
from protocols.aftercare import AFTERCARE


class EndScreen(SmpScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "finish", "Finish session", id="end.finish",
                tooltip="Record coverage, notes and aftercare; close the session"),
        Binding("ctrl+b", "back", "Back to work", id="end.back",
                tooltip="Return to the working screen"),
    ]

    def compose(self) -> ComposeResult:
        work = self.app.view.work
        yield from self.compose_frame()
        yield Static("End of session", classes="title")
        # Above the form, which gives way to it once the session is closed: at 80x24 the
        # proof that it was recorded must be in sight, not below the fold.
        summary = Static(id="summary")
        summary.display = False
        yield summary
        with VerticalScroll(id="end-body"):
            with Grid(id="coverage"):
                for z in work.zones if work else ():
                    if z.planned or z.settings is not None:
                        yield Label(f"{z.zone.label} coverage %")
                        yield Input("" if z.coverage_pct is None else str(z.coverage_pct),
                                    placeholder="0 to 100", id=f"cover-{z.zone.value}")
            yield Input(placeholder="notes for the record", id="notes",
                        password=self.app.presentation)  # masked in front of a class
            yield Static("Aftercare (give it to the client):\n" +
                         "\n".join(f"- {line}" for line in AFTERCARE), id="aftercare")
            yield Tick("aftercare sheet given and explained", value=False,
                           id="aftercare-given")
            yield Static(id="error", classes="error")

    def on_mount(self) -> None:
        self.done = False
        self.focus_first("Input")  # by keyboard from the first field: Tab goes on

    def presentation_changed(self, on: bool) -> None:
        super().presentation_changed(on)
        self.query_one("#notes", Input).password = on

    def action_finish(self) -> None:
        if self.done:
            self.app.pop_screen()  # back to the client list for the next session
            return
        error = self.query_one("#error", Static)
        coverage = {}
        for field in self.query(Input):
            if field.id and field.id.startswith("cover-") and field.value.strip():
                text = field.value.strip().rstrip("%")
                zone = Zone(field.id.removeprefix("cover-"))
                if not text.isdigit() or not 0 <= int(text) <= 100:
                    error.update(self.app.shown(f"error: {zone.label} coverage "
                                                f"{field.value!r}: allowed 0 to 100"))
                    return
                coverage[zone] = int(text)
        notes = self.query_one("#notes", Input).value
        given = self.query_one("#aftercare-given", Checkbox).value
        end = partial(self.app.controller.end_session, aftercare_given=given)
        self.app.machine_call(end, coverage, notes, then=self.ended,
                              fail=lambda exc: error.update(self.app.shown(f"error: {exc}")))

    def ended(self, summary: EndSummary) -> None:
        self.done = True
        self.query_one("#error", Static).update("")
        cover = ", ".join(f"{z.label} {'--' if p is None else p}%" for z, p in summary.coverage)
        for done in self.query("#coverage, #notes, #aftercare-given"):
            done.display = False  # recorded: nothing there to edit any more
        shown = self.query_one("#summary", Static)
        shown.display = True
        shown.update(
            f"Session {summary.session_id} recorded and closed.\nCoverage: {cover}\n"
            f"Next session: {summary.next_session}\n{self.app.key('end.finish')}: next client   "
            f"{self.app.key('quit')}: quit")

    def action_back(self) -> None:
        if not self.done:
            from console.screens.work import WorkScreen

            self.app.switch_screen(WorkScreen())
