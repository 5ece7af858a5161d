"""STOP at the terminal's input: the driver's thread sends it before the UI's loop sees the key
(console/stop_driver.py). Over a real terminal: tests/console/test_tmux.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from textual import events

from console.stop_driver import StopFirstDriver


class Controller:
    def __init__(self, fails: bool = False):
        self.stops, self.fails = 0, fails

    def stop_now(self) -> None:
        self.stops += 1
        if self.fails:
            raise RuntimeError("the machine service is gone")


def _driver(controller: Controller) -> tuple[StopFirstDriver, list]:
    app = SimpleNamespace(stop_keys=frozenset({"escape", "ctrl+c", "f1"}), controller=controller)
    sent: list = []

    async def make() -> StopFirstDriver:
        return StopFirstDriver(app)

    driver = asyncio.run(make())
    driver.send_message = sent.append  # what would go on to the app's queue
    return driver, sent


def test_a_stop_key_sends_stop_before_it_goes_on_to_the_app():
    """The old console sent STOP only once the UI's loop handled the key: behind the history
    browser filling its tables, 54 ms at p99 (bench/bench_stop_key.py)."""
    controller = Controller()
    driver, sent = _driver(controller)
    for key in ("escape", "ctrl+c", "f1"):  # f1: added to STOP by console.toml
        driver.process_message(events.Key(key, None))
    assert controller.stops == 3
    assert [m.key for m in sent] == ["escape", "ctrl+c", "f1"]  # the bindings still run


def test_other_keys_and_space_go_to_the_app_alone():
    """Space stops only outside text fields, which only the UI's loop knows."""
    controller = Controller()
    driver, sent = _driver(controller)
    for key in ("space", "a", "f4"):
        driver.process_message(events.Key(key, None))
    assert controller.stops == 0 and [m.key for m in sent] == ["space", "a", "f4"]


def test_a_failed_stop_on_the_input_thread_still_lets_the_key_through():
    controller = Controller(fails=True)
    driver, sent = _driver(controller)
    driver.process_message(events.Key("escape", None))
    assert controller.stops == 1 and [m.key for m in sent] == ["escape"]
