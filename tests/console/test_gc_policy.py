"""Full garbage collections wait until the needle is not running (they stall the heartbeat)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc

import pytest

from console.app import make_app
from console.gc_policy import DUE_AFTER, FullCollections
from console.view import MachineState


@pytest.fixture
def full_collections():
    """Counts the generation-2 collections that happen, whoever starts them."""
    seen = []

    def note(phase, info):
        if phase == "stop" and info["generation"] == 2:
            seen.append(info)

    gc.callbacks.append(note)
    yield seen
    gc.callbacks.remove(note)


def make_cyclic_garbage(rounds: int) -> None:
    for _ in range(rounds):
        a, b = [], []
        a.append(b)
        b.append(a)


def test_automatic_full_collections_are_held_and_run_when_asked(full_collections):
    before = gc.get_threshold()
    policy = FullCollections()
    try:
        assert gc.get_freeze_count() > 0  # start-up objects are out of every later scan
        full_collections.clear()
        make_cyclic_garbage(200_000)  # CPython would have run full collections by now
        assert gc.get_count()[2] >= DUE_AFTER
        assert full_collections == []
        assert policy.collect_if_due()
        assert len(full_collections) == 1
        assert not policy.collect_if_due()  # nothing due right after one
    finally:
        policy.release()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_the_console_collects_only_while_the_needle_is_not_running(store, full_collections):
    async def run() -> list[int]:
        app = make_app(store)
        counts = []
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.1)
            for state, pedal in ((MachineState.RUNNING, True), (MachineState.ARMED, True),
                                 (MachineState.ARMED, False)):
                app.view = dataclasses.replace(app.view, machine=dataclasses.replace(
                    app.view.machine, state=state, pedal=pedal))
                make_cyclic_garbage(200_000)
                full_collections.clear()
                app._collect_garbage()
                counts.append(len(full_collections))
        return counts

    # Running, or the pedal held: none. Armed with the pedal up: the due one runs.
    assert asyncio.run(run()) == [0, 0, 1]
