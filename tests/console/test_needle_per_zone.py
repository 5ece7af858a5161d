"""The needle cartridge per zone (issue: "Each profile names its needle (crown 1003RL) but the
plan takes one needle for all zones, and changing zone never asks for the cartridge").

The plan takes a cartridge per planned zone, prefilled from each zone's profile; the session
records each with its zone; a zone whose cartridge is not the one fitted asks for it to be
fitted (the first zone too: nothing is fitted at the start), and the record says which lot
was fitted for which zone, and when. What the record holds is read back through
sessions/history.py; what the machine holds, from the simulated firmware itself."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from console.app import make_app
from console.config import ConsoleConfig
from console.view import MachineState, MachineView, cartridge_refusal
from console.workflow import Cartridge, WorkflowError
from protocols import NeedleSpec, Zone
from sessions import history
from tests.console.conftest import CLEAR, FAR, NEEDLE, new_client, plan, wait_until
from tests.console.test_app import (
    SIZE,
    field,
    fit,
    on,
    open_work,
    press,
    shown,
    state,
    text,
    until,
)

CROWN_NEEDLE = Cartridge(NeedleSpec.parse("1003RL"), "T-123", FAR)


def firmware(app):
    """The simulated machine's own firmware: the oracle for what the machine holds."""
    return app.controller.machine.transport.simulator.machine.firmware


def session_of(store, name="Ann Lee"):
    (s,) = history.client_record(store, history.find_client(store, name).id,
                                 events=True).sessions
    return s


def notes(s) -> list[str]:
    return [e.payload.get("text", "") for e in s.events if e.kind == "note"]


def idle(app):
    """Disarmed, or latched by the link on a loaded machine: the needle cannot move."""
    return state(app, MachineState.DISARMED, MachineState.STOPPED, MachineState.FAULT)


def notified(app, words: str) -> bool:
    return any(words in str(n.message) for n in app._notifications)


async def to_plan(pilot, app, name="Ann Lee"):
    from tests.console.test_app import new_client as typed_client

    await until(pilot, on(app, "ClientScreen"))
    await typed_client(pilot, name)
    await press(pilot, "ctrl+n")
    await until(pilot, on(app, "PlanScreen"))


async def refused_while_armed(pilot, app, key: str, words: str) -> None:
    """Armed, then `key`: refused in a line with `words`. On a loaded machine the link may
    stop the machine between the two (nothing heard from it for 200 ms): then the dialog
    rightly opens; it is cancelled and the machine armed again."""
    for _ in range(5):
        await press(pilot, "a")  # to arm, or to clear what the link latched and re-arm
        await until(pilot, on(app, "Confirm"))
        await press(pilot, "y")
        await until(pilot, on(app, "WorkScreen"))
        try:
            await until(pilot, state(app, MachineState.ARMED), timeout=3)
        except AssertionError:
            continue  # refused or stopped at once (the link): again
        await press(pilot, key)
        await until(pilot, lambda: notified(app, words) or (on(app, "FitCartridge")()
                                                            and app.screen.ready))
        if notified(app, words):
            return
        await press(pilot, "f10")
        await until(pilot, on(app, "WorkScreen"))
    raise AssertionError(f"never armed long enough to press {key}: {app.view.log}")


async def fitted_hairline(pilot, app):
    """On the working screen of a new session, the hairline's cartridge fitted as planned and
    its settings confirmed."""
    await open_work(pilot, app)
    await press(pilot, "1")
    await fit(pilot, app)
    await until(pilot, lambda: app.view.work.zone is Zone.HAIRLINE
                and app.view.machine.applied is not None)


@pytest.mark.timeout(90)
def test_each_profile_names_its_needle_the_plan_takes_one_per_zone_and_changing_zone_asks_for_the_cartridge(  # noqa: E501
        store):
    app = make_app(store, url="sim://")

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await to_plan(pilot, app)
            # A row per planned zone, each with its profile's needle and the TRAINING lot.
            for zone, code in (("hairline", "1RL 0.18mm"), ("mid-scalp", "1003RL"),
                               ("crown", "1003RL")):
                assert (await field(pilot, f"#needle-{zone}")).value == code
                assert app.screen.query_one(f"#needle-lot-{zone}").value == "TRAINING"
                assert app.screen.query_one(f"#cartridge-{zone}").display
            assert not app.screen.query_one("#cartridge-sides").display  # not planned
            (await field(pilot, "#needle-lot-crown")).value = "T-CROWN-1"
            await press(pilot, "ctrl+n")
            await until(pilot, on(app, "WorkScreen"))
            assert app.view.work.fitted is None  # nothing fitted until the technician says

            # The first zone asks for its cartridge, as planned; fitted, it is on the zone line.
            await press(pilot, "1")
            await shown(pilot, app, "FitCartridge")
            assert "Fit the 1RL 0.18mm cartridge for Hairline" in text(app, "#question")
            assert (await field(pilot, "#lot")).value == "TRAINING"
            await press(pilot, "enter")
            await until(pilot, on(app, "WorkScreen"))
            await until(pilot, lambda: "1RL 0.18mm lot TRAINING" in text(app, "#profile"))

            # The crown's is another: asked, with the plan's lot, which the technician
            # corrects from the packaging.
            await press(pilot, "4")
            await shown(pilot, app, "FitCartridge")
            assert "Fit the 1003RL cartridge for Crown" in text(app, "#question")
            assert "On the machine now: 1RL 0.18mm lot TRAINING" in text(app, "#question")
            lot = await field(pilot, "#lot")
            assert lot.value == "T-CROWN-1"
            lot.value = "T-CROWN-2"
            await press(pilot, "enter")
            await until(pilot, on(app, "WorkScreen"))
            await until(pilot, lambda: app.view.work.zone is Zone.CROWN
                        and app.view.machine.applied is not None)
            assert app.view.work.fitted.text == "1003RL lot T-CROWN-2"
            await until(pilot, lambda: "1003RL lot T-CROWN-2" in text(app, "#profile"))
            crown = next(z for z in app.view.work.zones if z.zone is Zone.CROWN)
            assert crown.cartridge.text == "1003RL lot T-CROWN-2"  # as fitted, for next time
            await press(pilot, "ctrl+q")
            await until(pilot, on(app, "Confirm"))
            await press(pilot, "y")

    asyncio.run(run())
    s = session_of(store)
    uses = [(n.zone, n.code, n.lot) for n in s.needles]
    # Each planned zone's cartridge from the start, and the lot fitted for the crown; the
    # hairline's, fitted as planned, is not counted twice (recalls count rows).
    assert sorted(uses) == sorted([("hairline", "1RL 0.18mm", "TRAINING"),
                                   ("mid-scalp", "1003RL", "TRAINING"),
                                   ("crown", "1003RL", "T-CROWN-1"),
                                   ("crown", "1003RL", "T-CROWN-2")]), uses
    said = notes(s)
    assert "cartridge 1RL 0.18mm lot TRAINING fitted for hairline" in said
    assert ("cartridge 1003RL lot T-CROWN-2 fitted for crown (was 1RL 0.18mm lot TRAINING)"
            in said)
    # Fitted before work moved to the crown: the timeline has it in that order.
    fitted_at = next(i for i, e in enumerate(s.events)
                     if e.kind == "note" and "fitted for crown" in e.payload.get("text", ""))
    moved_at = next(i for i, e in enumerate(s.events)
                    if e.kind == "zone-changed" and e.zone == "crown")
    assert fitted_at < moved_at


@pytest.mark.timeout(60)
def test_cancelling_the_cartridge_leaves_the_zone_and_the_machines_settings_as_they_were(store):
    app = make_app(store, url="sim://")

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await fitted_hairline(pilot, app)
            fw = firmware(app)
            held, sets = fw.applied, fw.sets_applied
            await press(pilot, "4")
            await shown(pilot, app, "FitCartridge")
            await press(pilot, "f10")
            await until(pilot, on(app, "WorkScreen"))
            await pilot.pause(0.3)
            assert app.view.work.zone is Zone.HAIRLINE
            assert app.view.work.fitted.text == "1RL 0.18mm lot TRAINING"
            assert (fw.applied, fw.sets_applied) == (held, sets)  # nothing reached it
            await press(pilot, "ctrl+q")
            await until(pilot, on(app, "Confirm"))
            await press(pilot, "y")

    asyncio.run(run())
    s = session_of(store)
    assert not any("fitted for crown" in n for n in notes(s))
    assert [e.zone for e in s.events if e.kind == "zone-changed"] == ["hairline"]


@pytest.mark.timeout(60)
def test_a_cartridge_change_is_refused_while_armed_naming_the_disarm_key(store):
    app = make_app(store, url="sim://")

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await fitted_hairline(pilot, app)
            await refused_while_armed(  # the crown: another cartridge
                pilot, app, "4", "the machine is ARMED: disarm (x) before changing the cartridge")
            assert on(app, "WorkScreen")() and app.view.work.zone is Zone.HAIRLINE
            await press(pilot, "x")
            await until(pilot, idle(app))
            await press(pilot, "4")
            await fit(pilot, app)
            await until(pilot, lambda: app.view.work.zone is Zone.CROWN)
            await press(pilot, "ctrl+q")
            await until(pilot, on(app, "Confirm"))
            await press(pilot, "y")

    asyncio.run(run())


def test_the_controller_refuses_a_cartridge_change_while_armed_and_records_nothing(controller,
                                                                                  store):
    c = controller
    client = c.add_client(new_client())
    c.start_session(plan(zones=(Zone.HAIRLINE, Zone.CROWN),
                         cartridges={Zone.CROWN: CROWN_NEEDLE}), CLEAR, {})
    with pytest.raises(WorkflowError, match=r"fit the 0601RL lot NL-77 cartridge for "
                                            r"Hairline and confirm it first"):
        c.select_zone(Zone.HAIRLINE)  # nothing is fitted at the start
    c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)
    c.arm()
    assert wait_until(lambda: c.view.machine.state is MachineState.ARMED)
    with pytest.raises(WorkflowError, match=r"^the machine is ARMED: disarm \(x\) before "
                                            r"changing the cartridge$"):
        c.select_zone(Zone.CROWN, cartridge=CROWN_NEEDLE)
    with pytest.raises(WorkflowError, match="fit the 1003RL lot T-123 cartridge for Crown"):
        c.select_zone(Zone.CROWN)  # not without it either
    assert c.view.work.zone is Zone.HAIRLINE and c.view.work.fitted == NEEDLE
    c.disarm()
    assert wait_until(lambda: c.view.machine.state is MachineState.DISARMED)  # as reported
    c.select_zone(Zone.CROWN, cartridge=CROWN_NEEDLE)
    assert c.view.work.fitted == CROWN_NEEDLE
    c.end_session({}, aftercare_given=False)
    assert c.sink.flush()
    (s,) = history.client_record(store, client.id, events=True).sessions
    assert sorted((n.zone, n.code, n.lot) for n in s.needles) == [
        ("crown", "1003RL", "T-123"), ("hairline", "0601RL", "NL-77")]
    assert [n for n in notes(s) if "fitted" in n] == [
        "cartridge 0601RL lot NL-77 fitted for hairline",
        "cartridge 1003RL lot T-123 fitted for crown (was 0601RL lot NL-77)"]


@pytest.mark.timeout(60)
def test_a_rebound_disarm_key_is_named_in_the_refusal(store):
    app = make_app(store, url="sim://", config=ConsoleConfig(keymap={"work.disarm": "z"}))

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await fitted_hairline(pilot, app)
            await refused_while_armed(pilot, app, "4", "disarm (z) before changing")
            assert not notified(app, "disarm (x)")
            # The controller's own refusal is built from the same key map.
            assert app.controller.disarm_key == "z"
            await press(pilot, "z")
            await until(pilot, idle(app))
            await press(pilot, "ctrl+q")
            await until(pilot, on(app, "Confirm"))
            await press(pilot, "y")

    asyncio.run(run())


@pytest.mark.timeout(60)
def test_a_zone_with_the_cartridge_already_fitted_does_not_ask(store):
    """Mid-scalp and crown are both planned with the 1003RL TRAINING cartridge: fitted for
    one, it stays on for the other."""
    app = make_app(store, url="sim://")

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await open_work(pilot, app)
            await press(pilot, "4")
            await fit(pilot, app)
            await until(pilot, lambda: app.view.work.zone is Zone.CROWN)
            seen = []
            await press(pilot, "3")
            await until(pilot, lambda: seen.append(type(app.screen).__name__)
                        or app.view.work.zone is Zone.MID_SCALP)
            assert "FitCartridge" not in seen
            await press(pilot, "ctrl+q")
            await until(pilot, on(app, "Confirm"))
            await press(pilot, "y")

    asyncio.run(run())
    s = session_of(store)
    assert [n for n in notes(s) if "fitted" in n] == [
        "cartridge 1003RL lot TRAINING fitted for crown"]
    assert [e.zone for e in s.events if e.kind == "zone-changed"] == ["crown", "mid-scalp"]


@pytest.mark.timeout(60)
def test_an_expired_lot_typed_in_the_dialog_is_refused_in_one_line(store):
    app = make_app(store, url="sim://")

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await open_work(pilot, app)
            await press(pilot, "1")
            await shown(pilot, app, "FitCartridge")
            (await field(pilot, "#expiry")).value = "2020-01-01"
            await press(pilot, "enter")
            await until(pilot, lambda: "expired" in text(app, "#error"))
            said = text(app, "#error")
            assert said == ("error: hairline cartridge lot TRAINING expired on 2020-01-01; "
                            "use an unexpired one"), said
            assert on(app, "FitCartridge")() and app.view.work.zone is None
            app.screen.query_one("#expiry").value = "2030-02-30"
            await press(pilot, "enter")
            await until(pilot, lambda: "YYYY-MM-DD" in text(app, "#error"))
            assert text(app, "#error") == ("error: hairline cartridge expiry '2030-02-30': "
                                           "write a date as YYYY-MM-DD")
            app.screen.query_one("#lot").value = ""
            app.screen.query_one("#expiry").value = "2030-01-01"
            await press(pilot, "enter")
            await until(pilot, lambda: "lot number is required" in text(app, "#error"))
            app.screen.query_one("#lot").value = "T-9"
            await press(pilot, "enter")
            await until(pilot, on(app, "WorkScreen"))
            assert app.view.work.zone is Zone.HAIRLINE
            await press(pilot, "ctrl+q")
            await until(pilot, on(app, "Confirm"))
            await press(pilot, "y")

    asyncio.run(run())
    s = session_of(store)
    # Refused, nothing was recorded; then the lot fitted, which is not the planned one.
    assert [n for n in notes(s) if "fitted" in n] == [
        "cartridge 1RL 0.18mm lot T-9 fitted for hairline"]
    assert ("hairline", "T-9", date(2030, 1, 1)) in {(n.zone, n.lot, n.expiry)
                                                     for n in s.needles}


@pytest.mark.timeout(60)
def test_a_bad_cartridge_in_the_plan_is_one_line_naming_the_zone_and_nothing_is_opened(store):
    app = make_app(store, url="sim://")

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await to_plan(pilot, app)
            cases = (("#needle-crown", "10RL", "crown cartridge: bad needle code '10RL'"),
                     ("#needle-crown", "", "crown cartridge: the cartridge code is required"),
                     ("#needle-lot-crown", "", "crown cartridge: the lot number is required"),
                     ("#needle-expiry-crown", "2020-01-01",
                      "crown cartridge lot TRAINING expired on 2020-01-01"))
            for selector, value, said in cases:
                box = await field(pilot, selector)
                kept, box.value = box.value, value
                await press(pilot, "ctrl+n")
                await until(pilot, lambda said=said: said in text(app, "#error"))
                assert "\n" not in text(app, "#error")
                assert on(app, "PlanScreen")()
                box.value = kept

    asyncio.run(run())
    (client,) = history.list_clients(store)
    assert history.client_record(store, client.id).sessions == ()  # nothing opened


def test_a_cartridge_may_change_only_when_the_needle_cannot_move():
    for m, refused in ((MachineView(state=MachineState.DISARMED), ""),
                       (MachineView(state=MachineState.STOPPED), ""),
                       (MachineView(state=MachineState.FAULT), ""),
                       (MachineView(state=MachineState.ARMED), "is ARMED"),
                       (MachineView(state=MachineState.RUNNING), "is RUNNING"),
                       (MachineView(state=MachineState.UNKNOWN), "state is unknown"),
                       (MachineView(state=MachineState.DISARMED, stale=True),
                        "state is unknown")):
        said = cartridge_refusal(m, "x")
        assert (refused in said and "disarm (x)" in said) if refused else said == "", (m, said)
