"""Consultation and the contraindication gate: refusals explained, overrides need a reason.

By keyboard: the first box has the focus on arrival, Enter ticks the focused box (Space is
STOP), Tab goes box to box, and an item's reason field takes the focus in turn only once its
box is ticked (an unticked item has nothing to override).

In presentation mode the client is its pseudonym and the reasons are masked as they are typed
(they are health data about a person)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Checkbox, Input, Static

from console.screens.base import SmpScreen
from console.widgets.text import plain
from console.widgets.ticks import Tick
from console.workflow import INTERVAL, WARN_UNDER_DAYS, ClientChoice, Contraindication, Verdict


class GateScreen(SmpScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "next", "Check and continue", id="gate.next",
                tooltip="Run the gate; continue to the session plan if it passes"),
        Binding("ctrl+b", "back", "Back", id="gate.back", tooltip="Back to the client list"),
    ]

    def __init__(self, choice: ClientChoice) -> None:
        super().__init__()
        self.choice = choice

    def _title(self) -> Text:
        c = self.choice
        name = c.alias if self.app.presentation else c.name
        since = "first session" if c.days_since_last is None else \
            f"{c.days_since_last:.1f} days since the last session"
        return plain(f"Consultation: {name}, {c.sessions} session(s), {since}; suggested "
                     f"{c.suggested_stage.label}")

    def presentation_changed(self, on: bool) -> None:
        super().presentation_changed(on)
        self.query_one("#consultation", Static).update(self._title())
        for box in self.query(Input):
            box.password = on

    def compose(self) -> ComposeResult:
        c = self.choice
        hide = self.app.presentation
        yield from self.compose_frame()
        yield Static(self._title(), classes="title", id="consultation")
        yield Static("Tick every item that applies. A REFUSING item stops the session unless "
                     "overridden with a reason; a WARNING item needs an acknowledgement "
                     "(a reason). Everything is recorded.", classes="hint")
        with VerticalScroll(id="items"):
            for item in Contraindication:
                kind = "REFUSES" if item.refuses else "warns"
                with Horizontal(classes="gate-row"):
                    yield Tick(f"{item.label} ({kind})", id=f"has-{item.value}")
                    yield Input(placeholder="tick the item to give a reason",
                                id=f"why-{item.value}", password=hide, disabled=True)
            if c.days_since_last is not None and c.days_since_last < WARN_UNDER_DAYS:
                with Horizontal(classes="gate-row"):
                    yield Static(f"short interval: {c.days_since_last:.1f} days",
                                 classes="gate-label")
                    yield Input(placeholder="reason for the short interval",
                                id=f"why-{INTERVAL}", password=hide)
        yield Static(id="verdict")

    def on_mount(self) -> None:
        self.focus_first("Tick")

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        why = self.query_one(f"#why-{(event.checkbox.id or '').removeprefix('has-')}", Input)
        why.disabled = not event.value
        why.placeholder = ("reason to override / acknowledge" if event.value else
                           "tick the item to give a reason")

    def answers(self) -> tuple[dict[Contraindication, bool], dict[str, str]]:
        answers = {c: self.query_one(f"#has-{c.value}", Checkbox).value
                   for c in Contraindication}
        overrides = {}
        for field in self.query(Input):
            key = (field.id or "").removeprefix("why-")
            if field.value.strip() and not field.disabled:
                overrides[key] = field.value.strip()
        return answers, overrides

    def action_next(self) -> None:
        answers, overrides = self.answers()
        self.app.db_call(self.app.controller.check_gate, answers, overrides,
                         then=lambda verdicts: self.passed(verdicts, answers, overrides),
                         fail=self.refused)

    def refused(self, exc: Exception) -> None:
        verdict = self.query_one("#verdict", Static)
        verdict.set_class(True, "error")
        verdict.update(self.app.shown(f"REFUSED: {exc}"))

    def passed(self, verdicts: list[Verdict], answers: dict[Contraindication, bool],
               overrides: dict[str, str]) -> None:
        from console.screens.plan import PlanScreen

        self.app.workflow.update(answers=answers, overrides=overrides, verdicts=verdicts)
        self.app.push_screen(PlanScreen(self.choice, answers, overrides))

    def action_back(self) -> None:
        self.app.pop_screen()
