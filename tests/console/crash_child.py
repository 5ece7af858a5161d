"""Run the real console (App.run, headless) on a record and open the history: for
tests/console/test_crash.py, which reads what this process prints."""

import sys

from console.app import make_app
from sessions.store import open_store


async def open_history(pilot) -> None:
    await pilot.pause(0.3)
    await pilot.press("f4")
    # The history reads the record and shows the client: it crashes, and the app exits (this
    # wait with it). Up to 60 s on a loaded machine; a console still running then quits, and
    # the test sees it did not crash.
    for _ in range(1200):
        await pilot.pause(0.05)
    await pilot.press("ctrl+q")


if __name__ == "__main__":
    store = open_store(sys.argv[1])
    app = make_app(store)
    app.run(headless=True, size=(130, 42), auto_pilot=open_history)
    store.close()
    sys.exit(app.return_code)
