"""SIGKILL at random points: nothing reported as recorded is lost (SQLite, synchronous=FULL)."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from sessions.models import Event
from sessions.recorder import close_interrupted, open_sessions
from sessions.store import open_store
from tests.sessions.factory import client

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow(14)
def test_killed_recorder_loses_nothing_it_reported(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    store = open_store(url)
    cid = client(store)
    rng = random.Random(5)
    for _ in range(20):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.sessions.durability_child", url, str(cid)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ""})
        header = child.stdout.readline()
        assert header.startswith("session "), header
        session_id = int(header.split()[1])
        reported = [int(child.stdout.readline()) for _ in range(rng.randrange(0, 15))]
        time.sleep(rng.random() * 0.02)  # land the kill anywhere inside a commit
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=10)
        assert child.returncode == -signal.SIGKILL
        reported += [int(x) for x in rest.split()]  # whatever it managed to say before death
        with store.reading() as s:
            stored = set(s.scalars(select(Event.id).where(Event.session_id == session_id)))
        assert set(reported) <= stored, set(reported) - stored
        assert store.integrity() == "ok"
        assert [o.id for o in open_sessions(store)] == [session_id]
        close_interrupted(store, session_id)
    store.close()
