"""The console driven by keys under Textual's Pilot, for the benches: to an armed machine."""

from __future__ import annotations

import time


async def until(pilot, pred, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError(f"console stuck on {type(pilot.app.screen).__name__}; its log "
                               f"ends {list(pilot.app.view.log[-3:])}")
        await pilot.pause(0.03)


async def keys(pilot, *names: str) -> None:
    for key in names:  # Pilot.press waits for idle, which never comes with telemetry
        pilot.app.simulate_key(key)
        await pilot.pause(0.05)


def on(app, name: str):
    return lambda: type(app.screen).__name__ == name


async def to_armed(pilot) -> None:
    """From the start: a new client, the gate, the plan, zone 1 applied, armed."""
    from console.view import MachineState

    app = pilot.app
    await until(pilot, on(app, "ClientScreen"))
    await keys(pilot, "ctrl+n")
    await until(pilot, lambda: app.screen.query("#name"))
    app.screen.query_one("#name").value = "Bench Client"
    app.screen.query_one("#dob").value = "1980-05-17"
    app.screen.query_one("#consent").value = True
    await keys(pilot, "ctrl+n")
    await until(pilot, on(app, "GateScreen"))
    await keys(pilot, "ctrl+n")
    await until(pilot, on(app, "PlanScreen"))
    await keys(pilot, "ctrl+n")
    await until(pilot, on(app, "WorkScreen"))
    await keys(pilot, "1")
    # The hairline's cartridge, as planned (once the dialog takes keys).
    await until(pilot, lambda: on(app, "FitCartridge")() and app.screen.ready)
    await keys(pilot, "enter")
    await until(pilot, lambda: app.view.machine.applied is not None)
    await pilot.pause(1.0)  # the depth actuator reaches its setpoint
    await keys(pilot, "a")
    await until(pilot, on(app, "Confirm"))
    await keys(pilot, "y")
    await until(pilot, lambda: app.view.machine.state == MachineState.ARMED)
