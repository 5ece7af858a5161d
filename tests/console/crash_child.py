"""Run the real console (App.run, headless) on a record and open the history: for
tests/console/test_crash.py, which reads what this process prints.

`crash_child.py URL record`: the history cannot read a value in the record; the line the
browser shows is printed to stdout, and the console quits as a person would.
`crash_child.py URL bug`: a bug in the console's own code on the UI thread (an exception with
a client's phone number in a local variable): the console crashes."""

import sys

from console.app import make_app
from console.screens import history
from sessions.store import open_store

PHONE = "+44 20 7946 0123"


def _buggy_fill(self, text: str) -> None:
    phone = PHONE  # a local a traceback with locals would carry  # noqa: F841
    raise ValueError("'occiput-v2' is not a valid Zone")


def status(app) -> str:
    found = app.screen.query("#status")  # the browser's, once it is mounted
    return str(found.first().render()) if isinstance(app.screen, history.HistoryScreen) \
        and found else ""


async def open_history(pilot) -> None:
    await pilot.pause(0.3)
    await pilot.press("f4")
    # Up to 60 s on a loaded machine, until the app crashed (it is exiting with its code) or
    # the browser shows its line, which is printed.
    for _ in range(1200):
        await pilot.pause(0.05)
        if pilot.app.return_code is not None:
            return
        if "ERROR" in (line := status(pilot.app)):
            print(line)
            break
    await pilot.press("ctrl+q")


if __name__ == "__main__":
    if sys.argv[2] == "bug":
        history.HistoryScreen._fill_clients = _buggy_fill
    store = open_store(sys.argv[1])
    app = make_app(store)
    app.run(headless=True, size=(130, 42), auto_pilot=open_history)
    store.close()
    sys.exit(app.return_code)
