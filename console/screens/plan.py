"""The session plan: technician, stage, zones, skin, pigment with lot and expiry, and a needle
cartridge per planned zone with its lot and expiry, its code prefilled from the zone's profile
(each profile names its needle). On the simulator the lots are prefilled with TRAINING values;
on a real machine they are typed from the packaging, because recalls depend on them. Zones
with the same cartridge each have their row: the same lot typed twice is the truth."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from console.screens.base import SmpScreen
from console.widgets.ticks import TickList
from console.workflow import (
    TRAINING_LOT,
    ClientChoice,
    Contraindication,
    Pigment,
    Plan,
    cartridge_from,
    training_expiry,
)
from protocols import STAGE_PLANS, Dilution, SkinCondition, SmpError, Stage, Zone

DEFAULT_ZONES = (Zone.HAIRLINE, Zone.MID_SCALP, Zone.CROWN)


class PlanScreen(SmpScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "start", "Start session", id="plan.start",
                tooltip="Open the session in the record and go to the working screen"),
        Binding("ctrl+b", "back", "Back", id="plan.back", tooltip="Back to the gate"),
    ]

    def __init__(self, choice: ClientChoice, answers: dict[Contraindication, bool],
                 overrides: dict[str, str]) -> None:
        super().__init__()
        self.choice, self.answers, self.overrides = choice, answers, overrides

    def compose(self) -> ComposeResult:
        app = self.app
        training = app.view.machine.simulator
        stage = self.choice.suggested_stage
        expiry = training_expiry().isoformat() if training else ""
        lot = TRAINING_LOT if training else ""
        technician = app.config_.technician or ("trainee" if training else "")
        yield from self.compose_frame()
        yield Static("Session plan" + (" (simulator: TRAINING lots prefilled)" if training
                                       else ""), classes="title")
        # Above the fields, so that an error is in sight however far the plan is scrolled.
        yield Static(id="error", classes="error")
        with VerticalScroll(id="plan-body"):
            yield from self._fields(technician, stage, training, lot, expiry)

    def _fields(self, technician: str, stage: Stage, training: bool, lot: str,
                expiry: str) -> ComposeResult:
        library = self.app.controller.library
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
        # A row per zone, shown while the zone is ticked: unticking and ticking again keeps
        # what was typed.
        with Vertical(id="cartridges"):
            yield Static("needle cartridge per planned zone: code, lot, expiry", classes="hint")
            for zone in Zone:
                entries = library.for_zone(zone)
                code = entries[0].profile.needle.code if entries else ""
                row = Horizontal(id=f"cartridge-{zone.value}", classes="cartridge")
                row.display = zone in DEFAULT_ZONES
                with row:
                    yield Label(zone.value)
                    yield Input(code, placeholder="code, e.g. 1003RL", compact=True,
                                id=f"needle-{zone.value}")
                    yield Input(lot, placeholder="cartridge lot", compact=True,
                                id=f"needle-lot-{zone.value}")
                    yield Input(expiry, placeholder="expiry YYYY-MM-DD", compact=True,
                                id=f"needle-expiry-{zone.value}")
        with Horizontal(id="plan-lists"):
            yield TickList([(z.value, z.label) for z in Zone], single=False,
                           ticked={z.value for z in DEFAULT_ZONES}, id="zones")
            yield TickList([(c.value, c.label) for c in SkinCondition], single=False,
                           ticked={c.value for c in self.choice.skin}, id="skin")

    def on_mount(self) -> None:
        self.query_one("#zones").border_title = "zones planned"
        self.query_one("#skin").border_title = "skin conditions"
        self.query_one("#technician", Input).focus()

    def on_tick_list_changed(self, event: TickList.Changed) -> None:
        if event.ticks.id == "zones":
            self._show_cartridges()

    def _zones(self) -> tuple[Zone, ...]:
        # In the library's order (Zone, SkinCondition), whatever order they were ticked in.
        return tuple(z for z in Zone if z.value in self.query_one("#zones", TickList).ticked)

    def _show_cartridges(self) -> None:
        planned = self._zones()
        for zone in Zone:
            self.query_one(f"#cartridge-{zone.value}").display = zone in planned

    def plan(self) -> Plan:
        v = {i.id: i.value.strip() for i in self.query(Input)}
        zones = self._zones()
        return Plan(
            technician=v["technician"],
            stage=Stage(str(self.query_one("#stage", Select).value)),  # it allows no blank
            zones=zones,
            conditions=tuple(c for c in SkinCondition
                             if c.value in self.query_one("#skin", TickList).ticked),
            pigment=Pigment(_text(v, "brand", "pigment brand"), _text(v, "shade", "shade"),
                            Dilution.parse(v["dilution"]), v["pigment-lot"],
                            _date(v["pigment-expiry"], "pigment expiry")),
            cartridges={z: cartridge_from(z, v[f"needle-{z.value}"], v[f"needle-lot-{z.value}"],
                                          v[f"needle-expiry-{z.value}"]) for z in zones})

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


def _text(values: dict[str | None, str], key: str, what: str) -> str:
    if not values[key]:
        raise PlanError(f"{what}: required")
    return values[key]


def _date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PlanError(f"{what} {text!r}: write a date as YYYY-MM-DD") from None
