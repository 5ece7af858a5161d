"""Child for test_sink: a recorder writing through a sink forever, printing each note's text
once the sink has it in its journal, until the parent kills it."""

import sys
import threading
from pathlib import Path

from protocols import Stage, Zone
from sessions import facts
from sessions.recorder import Recorder, request
from sessions.sink import RecorderSink
from sessions.store import open_store
from tests.sessions.factory import CLEAR, REAL, FakeClock

store = open_store(sys.argv[1])
journaled = threading.Semaphore(0)
sink = RecorderSink(store, Path(sys.argv[2]), owner="child")
real_accept = sink._accept


def accept(fact):
    real_accept(fact)  # journal appended and fsynced before this returns
    journaled.release()


sink._accept = accept
sink.start()
done, box = threading.Event(), []
clock = FakeClock()
sink.open_session(request(client_id=int(sys.argv[3]), technician="Tom", stage=Stage.S1,
                          machine=REAL, planned_zones=[Zone.CROWN], answers=CLEAR,
                          overrides=None, at=clock()), lambda r: (box.append(r), done.set()))
done.wait()
assert isinstance(box[0], facts.Opened)
print(f"session {box[0].session_id}", flush=True)
rec = Recorder(box[0].session_id, write=lambda f: sink.submit(f), next_seq=2, clock=clock)
n = 0
while True:
    n += 1
    rec.note(f"note {n}")
    journaled.acquire()
    print(f"note {n}", flush=True)
