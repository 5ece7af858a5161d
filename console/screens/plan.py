"""The session plan: technician, stage, zones, skin, pigment with lot and expiry, needle
cartridge with lot. On the simulator the lots are prefilled with TRAINING values; on a real
machine they are typed from the packaging, because recalls depend on them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import ClassVar

from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.widgets import Input, Label, Select, Static

from console.screens.base import SmpScreen
from console.widgets.ticks import TickList
from console.workflow import Cartridge, Pigment, Plan
from protocols import STAGE_PLANS, Dilution, NeedleSpec, SkinCondition, SmpError, Stage, Zone

DEFAULT_ZONES = (Zone.HAIRLINE, Zone.MID_SCALP, Zone.CROWN)


class PlanScreen(SmpScreen):
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("ctrl+n", "start", "Start session", id="plan.start",
                tooltip="Open the session in the record and go to the working screen"),
        Binding("ctrl+b", "back", "Back", id="plan.back", tooltip="Back to the gate"),
    ]

    def __init__(self, choice, answers, overrides) -> None:
        super().__init__()
        self.choice, self.answers, self.overrides = choice, answers, overrides

    def compose(self):
        app = self.app
        training = app.view.machine.simulator
        stage = self.choice.suggested_stage
        expiry = (date.today() + timedelta(days=365)).isoformat() if training else ""
        lot = "TRAINING" if training else ""
        needle = app.controller.library.default_for(Zone.HAIRLINE).profile.needle.code
        technician = app.config_.technician or ("trainee" if training else "")
        yield from self.compose_frame()
        yield Static("Session plan" + (" (simulator: TRAINING lots prefilled)" if training
                                       else ""), classes="title")
        with Grid(id="plan-grid"):
            yield Label("technician")
            yield Input(technician, placeholder="your name", id="technician")
            yield Label("stage")
            yield Select([(s.label, s.value) for s in Stage], value=stage.value,
                         allow_blank=False, id="stage")
            yield Label("pigment")
            with Horizontal(classes="fields"):
                yield Input("Carbon black" if training else "", placeholder="brand",
                            id="brand")
                yield Input("Black" if training else "", placeholder="shade", id="shade")
                yield Input(str(STAGE_PLANS[stage].lightest), placeholder="water:pigment",
                            id="dilution")
                yield Input(lot, placeholder="pigment lot", id="pigment-lot")
                yield Input(expiry, placeholder="expiry YYYY-MM-DD", id="pigment-expiry")
            yield Label("needle")
            with Horizontal(classes="fields"):
                yield Input(needle, placeholder="cartridge, e.g. 1003RL", id="needle")
                yield Input(lot, placeholder="cartridge lot", id="needle-lot")
                yield Input(expiry, placeholder="expiry YYYY-MM-DD", id="needle-expiry")
        with Horizontal(id="plan-lists"):
            yield TickList([(z.value, z.label) for z in Zone], single=False,
                           ticked={z.value for z in DEFAULT_ZONES}, id="zones")
            yield TickList([(c.value, c.label) for c in SkinCondition], single=False,
                           ticked={c.value for c in self.choice.skin}, id="skin")
        yield Static(id="error", classes="error")

    def on_mount(self) -> None:
        self.query_one("#zones").border_title = "zones planned"
        self.query_one("#skin").border_title = "skin conditions"
        self.query_one("#technician", Input).focus()

    def plan(self) -> Plan:
        v = {i.id: i.value.strip() for i in self.query(Input)}
        return Plan(
            technician=v["technician"],
            stage=Stage(self.query_one("#stage", Select).value),
            # In the library's order (Zone, SkinCondition), whatever order they were ticked in.
            zones=tuple(z for z in Zone if z.value in self.query_one("#zones", TickList).ticked),
            conditions=tuple(c for c in SkinCondition
                             if c.value in self.query_one("#skin", TickList).ticked),
            pigment=Pigment(_text(v, "brand", "pigment brand"), _text(v, "shade", "shade"),
                            Dilution.parse(v["dilution"]), v["pigment-lot"],
                            _date(v["pigment-expiry"], "pigment expiry")),
            cartridge=Cartridge(NeedleSpec.parse(v["needle"]), v["needle-lot"],
                                _date(v["needle-expiry"], "needle expiry")))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_start()

    def action_start(self) -> None:
        error = self.query_one("#error", Static)
        try:
            plan = self.plan()
        except SmpError as exc:
            error.update(self.app.shown(f"error: {exc}"))
            return
        self.app.workflow["plan"] = plan
        self.app.db_call(self.app.controller.start_session, plan, self.answers, self.overrides,
                         then=self.started,
                         fail=lambda exc: error.update(self.app.shown(f"error: {exc}")))

    def started(self, session_id: int) -> None:
        from console.screens.work import WorkScreen

        # The gate and the plan are done with: the client list stays beneath the work.
        self.app.pop_screen()
        self.app.pop_screen()
        self.app.push_screen(WorkScreen())

    def action_back(self) -> None:
        self.app.pop_screen()


class PlanError(SmpError):
    pass


def _text(values: dict, key: str, what: str) -> str:
    if not values[key]:
        raise PlanError(f"{what}: required")
    return values[key]


def _date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PlanError(f"{what} {text!r}: write a date as YYYY-MM-DD") from None
