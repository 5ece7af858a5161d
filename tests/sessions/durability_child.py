"""Child process for test_durability: records events forever, printing each id once its
recorder call has returned (i.e. committed), until the parent kills it."""

import sys

from protocols import Stage, Zone
from sessions.recorder import Machine, Recorder
from sessions.store import open_store
from tests.sessions.factory import CLEAR, settings

store = open_store(sys.argv[1])
rec = Recorder.start(store, client_id=int(sys.argv[2]), technician="Tom", stage=Stage.S2,
                     machine=Machine.simulated(), planned_zones=[Zone.CROWN], answers=CLEAR,
                     overrides={"interval": "durability test restarts within seconds"})
print(f"session {rec.session_id}", flush=True)
rec.zone_changed(Zone.CROWN)
n = 0
while True:
    n += 1
    got = rec.settings_applied(settings()) if n % 2 else rec.note(f"note {n}")
    print(got.id, flush=True)
