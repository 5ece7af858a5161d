"""A newcomer's first minutes: `make run`, then README's short tour, key for key, in tmux."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from sessions import history
from sessions.store import open_store
from tests.console.test_tmux import Tmux

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None or shutil.which("make") is None,
                                reason="tmux or make is not installed")


@pytest.mark.slow(9)
@pytest.mark.timeout(180)
def test_make_run_reaches_the_working_screen_and_a_pass_with_the_readme_keys(tmp_path):
    record = tmp_path / "record.sqlite3"
    # `make run` exactly as README says; the record goes to a scratch file, not the user's.
    term = Tmux(tmp_path, f"cd {ROOT} && SMP_DB_URL=sqlite:///{record} make -s run")
    try:
        term.wait_for("SIMULATOR", timeout=120)  # the first run may still be installing
        term.wait_for("Client")
        term.keys("C-n")  # 1. Client: Ctrl+N, name, Tab, date of birth, Tab Tab Enter
        term.wait_for("New client")  # ticks the signed consent, Ctrl+N again
        for keys in (["Ann Lee"], ["Tab"], ["1980-05-17"], ["Tab"], ["Tab"], ["Enter"]):
            term.keys(*keys)  # as a person types: focus moves on Tab before the next keys
            time.sleep(0.2)
        term.wait_for("[x] signed consent to the procedure")
        term.keys("C-n")
        term.wait_for("Consultation")
        term.keys("C-n")  # 2. nothing applies: Ctrl+N checks the gate
        term.wait_for("Session plan")
        term.keys("C-n")  # 3. the TRAINING plan: Ctrl+N starts the session
        term.wait_for("STOP  (space / Esc)")  # the working screen
        term.keys("1")  # 4. the hairline: its cartridge fitted (Enter), its profile
        term.wait_for("Fit the 1RL 0.18mm cartridge")  # resolved, sent, confirmed
        term.keys("Enter")
        term.wait_for("applied (read-back)")
        term.keys("a")
        term.wait_for("ARM the machine?")
        term.keys("y")
        term.wait_for("Machine: ARMED")
        term.keys("p")  # the simulator's pedal
        term.wait_for("Machine: RUNNING")
        term.keys("Space")  # STOP
        term.wait_for("Machine: STOPPED")
        term.keys("C-q")  # a session is open: asked, not lost
        term.wait_for("quit without ending it?")
        term.keys("y")
        term.wait_exit(timeout=20)
    finally:
        term.close()
    store = open_store(f"sqlite:///{record}")
    try:
        (client,) = history.list_clients(store)
        assert client.name == "Ann Lee"
        (s,) = history.client_record(store, client.id, events=True).sessions
        kinds = [e.kind for e in s.events]
        assert "settings-applied" in kinds and "stop" in kinds and s.machine.simulator
    finally:
        store.close()
