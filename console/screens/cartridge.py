"""Fit the zone's cartridge: asked when work moves to a zone whose cartridge is not the one on
the machine (the first zone of a session too: nothing is fitted until the technician says so).

It shows the zone and its cartridge as planned, with the lot and expiry to check against the
packaging (prefilled with the planned ones); an unplanned zone has no planned cartridge, so
its code is asked for too (prefilled from the zone's profile). Confirming is the zone change
itself (SessionController.select_zone with the cartridge): the record holds the cartridge for
the zone and when it was fitted, then the zone's settings go to the machine. A refusal (an
expired lot, the machine armed) is one line here and the dialog stays; cancelling changes
nothing, neither the zone nor the machine's settings."""

from __future__ import annotations

import functools
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from console.screens.base import SmpModal
from console.workflow import Cartridge, cartridge_from
from protocols import SmpError, Zone


class FitCartridge(SmpModal[bool]):
    DEFAULT_CSS = """
    FitCartridge { align: center middle; }
    FitCartridge > Vertical { width: 64; height: auto; border: thick $warning; padding: 1 2;
                              background: $surface; }
    FitCartridge #question { margin: 0 0 1 0; }
    FitCartridge .row { height: 1; }
    FitCartridge Label { width: 11; }
    FitCartridge Input { width: 1fr; }
    FitCartridge .error { padding: 0; }
    FitCartridge #buttons { height: auto; }
    FitCartridge Button { margin: 1 1 0 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "fitted", "Fitted", id="cartridge.fitted",
                tooltip="The cartridge is fitted: record it and move to the zone"),
        Binding("f10", "cancel", "Cancel", id="cartridge.cancel",
                tooltip="Do not change the cartridge or the zone"),
    ]

    def __init__(self, zone: Zone, code: str, lot: str, expiry: str, *,
                 fitted: Cartridge | None, unplanned: bool = False) -> None:
        super().__init__()
        self.zone, self.code, self.lot, self.expiry = zone, code, lot, expiry
        self.fitted, self.unplanned = fitted, unplanned
        self.ready = False  # shown: a key typed ahead of the dialog does not answer it
        self.busy = False  # asked of the controller, its answer not back yet
        self.done = False  # fitted, but another screen was opened over it meanwhile

    def compose(self) -> ComposeResult:
        zone = self.zone.label
        on = (f"On the machine now: {self.fitted.text}." if self.fitted else
              "No cartridge is fitted yet in this session.")
        asks = (f"{zone} is not in the plan: fit its cartridge" if self.unplanned else
                f"Fit the {self.code} cartridge for {zone}")
        with Vertical():
            yield Static(f"{asks}, then check the lot against its packaging.\n{on}",
                         id="question")
            with Horizontal(classes="row"):
                yield Label("cartridge")
                if self.unplanned:
                    yield Input(self.code, placeholder="code, e.g. 1003RL", compact=True,
                                id="code")
                else:
                    yield Static(self.code, id="code")  # the plan's: changed in the plan
            with Horizontal(classes="row"):
                yield Label("lot")
                yield Input(self.lot, placeholder="cartridge lot", compact=True, id="lot")
            with Horizontal(classes="row"):
                yield Label("expiry")
                yield Input(self.expiry, placeholder="YYYY-MM-DD", compact=True, id="expiry")
            yield Static(id="error", classes="error")
            with Horizontal(id="buttons"):
                yield Button(f"Fitted ({self.app.key('cartridge.fitted')})",
                             variant="warning", id="fitted")
                yield Button(f"Cancel ({self.app.key('cartridge.cancel')})", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#code" if self.unplanned else "#lot", Input).focus()
        self.ready = True

    def cartridge(self) -> Cartridge:
        code = self.query_one("#code", Input).value if self.unplanned else self.code
        return cartridge_from(self.zone, code, self.query_one("#lot", Input).value,
                              self.query_one("#expiry", Input).value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_fitted()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "fitted":
            self.action_fitted()
        else:
            self.action_cancel()

    def action_fitted(self) -> None:
        if self.busy or not self.ready:
            return
        error = self.query_one("#error", Static)
        try:
            cartridge = self.cartridge()
        except SmpError as exc:
            error.update(self.app.shown(f"error: {exc}"))
            return
        self.busy = True
        app = self.app
        app.machine_call(functools.partial(app.controller.select_zone, unplanned=self.unplanned,
                                           cartridge=cartridge),
                         self.zone, then=lambda _: self._close(),
                         fail=functools.partial(self._failed, cartridge))

    def _failed(self, cartridge: Cartridge, exc: SmpError) -> None:
        self.busy = False
        w = self.app.view.work
        if w is not None and cartridge.same(w.fitted) and w.zone is self.zone:
            # Fitted and recorded, the zone changed; what failed came after (the profile
            # refused, the settings not confirmed): said as any command's failure is.
            self._close()
            self.app.notify(str(exc), title="Not done", severity="error", timeout=10)
            return
        self.query_one("#error", Static).update(self.app.shown(f"error: {exc}"))

    def _close(self) -> None:
        # dismiss() pops the top screen, whichever it is: should anything be opened over
        # this one while the controller works, it stays, and this closes once back on top.
        if self.app.screen is self:
            self.dismiss(True)
        else:
            self.done = True

    def on_screen_resume(self) -> None:
        if self.done:
            self.dismiss(True)

    def action_cancel(self) -> None:
        if self.ready and not self.busy:
            self.dismiss(False)
