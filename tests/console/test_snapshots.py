"""Snapshots of every screen of the console at 80x24 and 200x60, from fixed view states (no
live machine, so every figure on screen is the same on every run): SIMULATOR, LINK LOST and
FAULT banners, and the dialogs over the working screen."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from console.app import ViewChanged, make_app
from console.view import Link, MachineState, MachineView, View, WorkView, ZoneStatus, fault_text
from console.workflow import Cartridge
from firmware_bridge import Fault
from protocols import MachineSettings, NeedleSpec, Stage, Zone
from tests.console.conftest import new_client
from tests.console.test_app import on, until

APPLIED = MachineSettings(depth_mm=Decimal("1.55"), rate_hz=Decimal("110"),
                          voltage_v=Decimal("6.5"))
WAVE = tuple(100 + (i % 7) * 3.0 for i in range(40))
CARTRIDGES = {Zone.HAIRLINE: Cartridge(NeedleSpec.parse("1RL 0.18mm"), "T-118", date(2030, 1, 1)),
              Zone.CROWN: Cartridge(NeedleSpec.parse("1003RL"), "T-123", date(2030, 1, 1))}
MACHINE = MachineView(
    connected=True, simulator=True, identity="SIMULATOR (firmware 1.0.0)", url="sim://",
    state=MachineState.RUNNING, link=Link.CONNECTED, pedal=True, motor=True, rate_hz=109.8,
    voltage_v=6.5, current_a=0.412, depth_mm=1.55, temperature_c=31.2, rtt_ms=11.0,
    telemetry_age_ms=12.0, resend_ratio=0.0, applied=APPLIED, rate_trend=WAVE,
    voltage_trend=tuple(6.5 for _ in WAVE), current_trend=tuple(w / 250 for w in WAVE),
    depth_trend=tuple(1.55 for _ in WAVE))
WORK = WorkView(
    session_id=7, client="Ann Lee", stage=Stage.S1, zone=Zone.HAIRLINE,
    profile="hairline-soft", reasons=("hairline, stage 1, Fitzpatrick IV to VI: needle depth "
                                      "1.65 -> 1.55 mm: too deep heals blue",),
    advisories=(), target_density_pct=30,
    zones=tuple(ZoneStatus(z, z in (Zone.HAIRLINE, Zone.CROWN),
                           30 if z is Zone.CROWN else None,
                           {Zone.HAIRLINE: 42_000, Zone.CROWN: 95_000}.get(z, 0),
                           1 if z in (Zone.HAIRLINE, Zone.CROWN) else 0,
                           APPLIED if z is Zone.HAIRLINE else None, 0, CARTRIDGES.get(z))
                 for z in Zone),
    run_ms=4200, armed_once=True, fitted=CARTRIDGES[Zone.HAIRLINE])
LOG = ("session 7 started: stage 1, 2 zones planned", "zone Hairline: profile hairline-soft",
       "applied (read-back): depth 1.55 mm, rate 110.0 Hz, voltage 6.5 V", "armed",
       "needle running")
RUNNING = View(machine=MACHINE, work=WORK, log=LOG, revision=1)
cause, action = fault_text(Fault.STALL | Fault.STOP)
FAULTED = replace(RUNNING, machine=replace(
    MACHINE, state=MachineState.FAULT, pedal=False, motor=False, rate_hz=0.0, current_a=0.0,
    faults=("STOP", "STALL"), fault_cause=cause, fault_action=action))
LOST = replace(RUNNING, machine=replace(MACHINE, link=Link.LOST, telemetry_age_ms=412.0))
DISARMED = replace(RUNNING, machine=replace(
    MACHINE, state=MachineState.DISARMED, pedal=False, motor=False, rate_hz=0.0,
    current_a=0.0), work=replace(WORK, run_ms=0))


async def started(pilot) -> None:
    """The app has asked the record about interrupted sessions and shown its first screen:
    a screen pushed before that would end up under the connect screen. From here on the
    pictures show the test's views only: the session owner (no machine here) publishes its
    own now and then, which would replace them at a moment that varies with the load."""
    await until(pilot, on(pilot.app, "ConnectScreen"))
    pilot.app.controller.on_view = lambda view: None


async def still(pilot) -> None:
    """No blinking cursor: a snapshot taken mid-blink differs from one taken between."""
    from textual.widgets import Input

    for box in pilot.app.screen.query(Input):
        box.cursor_blink = False
    await pilot.pause(0.05)
    await pilot.pause()  # and every message that set off handled, the app's too


# The smallest terminal a clinic has (a laptop's 80x24) and a big monitor's; the tests that
# drive the console run between the two (130x42).
SIZES = {"80x24": (80, 24), "200x60": (200, 60)}
HARDWARE = replace(MACHINE, simulator=False, identity="SMP-R1 serial R1-0042 (firmware 1.0.0)")


async def up(pilot, screen) -> None:
    """`screen` pushed, on top and ready (its own rows mounted: SmpScreen.ready, a dialog's
    on_mount), and what it set off handled."""
    app = pilot.app
    await app.push_screen(screen)
    await until(pilot, lambda: app.screen is screen and getattr(screen, "ready", True))
    await pilot.pause(0)  # every widget's pending messages handled


def _working(view: View, *then):
    """The working screen showing `view`, with `then` (screens) pushed over it."""
    async def before(pilot):
        from console.screens.work import WorkScreen

        app = pilot.app
        await started(pilot)
        work = WorkScreen()
        await up(pilot, work)
        app.post_message(ViewChanged(view))
        await until(pilot, lambda: app.view is view)  # and shown: work is ready
        await pilot.pause(0)
        for make in then:
            await up(pilot, make())
        await still(pilot)
    return before


def _client(store, *, dialog: bool = False):
    from sessions.clients import add_client

    for name in ("Ann Lee", "Bob Okafor", "Chen Wei"):
        add_client(store, new_client(name))

    async def before(pilot):
        from console.screens.client import ClientScreen

        app = pilot.app
        await started(pilot)
        view = View(machine=MACHINE)
        app.post_message(ViewChanged(view))
        await until(pilot, lambda: app.view is view)  # the banner's, before the screen shows
        await up(pilot, ClientScreen())
        found = app.screen.query_one("#clients")
        await until(pilot, lambda: found.option_count == 3)  # the record's, searched for
        await pilot.pause(0)
        if dialog:
            await pilot.press("ctrl+n")
            await until(pilot, on(app, "NewClientScreen"))
            await pilot.pause(0)
        await still(pilot)
    return before


def _gate(store, *, plan: bool = False):
    from sessions.clients import add_client

    client_id = add_client(store, new_client())

    async def before(pilot):
        from console.screens.gate import GateScreen
        from console.screens.plan import PlanScreen

        app = pilot.app
        await started(pilot)
        # A real machine for the plan: the simulator prefills lots with a date a year on.
        view = View(machine=HARDWARE if plan else MACHINE)
        app.post_message(ViewChanged(view))
        await until(pilot, lambda: app.view is view)
        choice = app.controller.choose_client(client_id)
        if plan:
            await up(pilot, PlanScreen(choice, {}, {}))
        else:
            await up(pilot, GateScreen(choice))
            app.screen.query_one("#has-sunburn").value = True
            await pilot.press("ctrl+n")
            await until(pilot, lambda: "REFUSED" in str(app.screen.query_one("#verdict")
                                                         .render()))
        await pilot.pause(0)
        await still(pilot)
    return before


def _connect(monkeypatch):
    from firmware_bridge import ports

    monkeypatch.setattr(ports, "found", lambda: [
        ports.Port("/dev/ttyACM0", "SMP-R1 rotary machine", "1209:53d0", "R1-0042")])

    async def before(pilot):
        await started(pilot)
        await still(pilot)
    return before


def _recover(store):
    from datetime import datetime

    from sessions.recorder import OpenSession

    async def before(pilot):
        from console.screens.recover import RecoverScreen

        app = pilot.app
        await started(pilot)
        at = datetime(2026, 11, 30, 14, 5)
        await up(pilot, RecoverScreen(
            [OpenSession(3, 1, "Ann Lee", "Tom Reyes", at, 41, at)], 1,
            app.controller.pseudonyms()))
        await still(pilot)
    return before


def _screens():
    from console.screens.cartridge import FitCartridge
    from console.screens.confirm import Confirm
    from console.screens.end import EndScreen
    from console.screens.help import HelpScreen
    from console.screens.presentation import PresentationOff

    return {
        "connect": lambda store, mp: _connect(mp),
        "client": lambda store, mp: _client(store),
        "new-client": lambda store, mp: _client(store, dialog=True),
        "gate-refusal": lambda store, mp: _gate(store),
        "plan": lambda store, mp: _gate(store, plan=True),
        "work-running": lambda store, mp: _working(RUNNING),
        "work-fault": lambda store, mp: _working(FAULTED),
        "work-link-lost": lambda store, mp: _working(LOST),
        "arm-question": lambda store, mp: _working(RUNNING, lambda: Confirm(
            "ARM the machine?\nThe needle runs when the pedal is pressed.", yes="Arm",
            no="Cancel")),
        "cartridge-question": lambda store, mp: _working(DISARMED, lambda: FitCartridge(
            Zone.CROWN, "1003RL", "T-123", "2030-01-01", fitted=CARTRIDGES[Zone.HAIRLINE])),
        "help": lambda store, mp: _working(RUNNING, HelpScreen),
        "end": lambda store, mp: _working(RUNNING, EndScreen),
        "presentation-off": lambda store, mp: _working(RUNNING, PresentationOff),
        "recover": lambda store, mp: _recover(store),
    }


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", list(_screens()))
def test_every_screen_at_80x24_and_200x60(snap_compare, store, monkeypatch, screen,
                                                 size):
    before = _screens()[screen](store, monkeypatch)
    assert snap_compare(make_app(store), terminal_size=SIZES[size], run_before=before)
