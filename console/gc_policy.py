"""Full garbage collections, kept out of the time the needle runs.

A full (generation 2) collection holds the GIL while it scans every tracked object, and the
console's heap is large (Textual, SQLAlchemy, pydantic: ~180,000 objects at start-up). Measured
with bench/bench_heartbeat.py: automatic full collections took 20 to 145 ms, the bridge's
heartbeat thread could not run meanwhile, and heartbeat gaps reached 177 ms with the needle
running. So, while the console runs:

- the objects that live as long as the program (modules, classes, the app) are frozen out of
  every later scan (`gc.freeze`), which makes a full collection 2 to 3 times shorter;
- automatic full collections are off; the young generations still collect as usual (about
  4 ms at most);
- the app runs a full collection itself, once one is due by CPython's own measure (10 young
  collections since the last), and only while the needle is not running.
"""

from __future__ import annotations

import gc

DUE_AFTER = 10  # generation-1 collections since the last full one: CPython's default
_NEVER = 1 << 30


class FullCollections:
    """Holds automatic full collections for the console's lifetime; `release()` undoes it."""

    def __init__(self) -> None:
        self._threshold = gc.get_threshold()
        gc.collect()
        gc.freeze()
        young, middle, _ = self._threshold
        gc.set_threshold(young, middle, _NEVER)

    def collect_if_due(self) -> bool:
        """A full collection now if one is due. Call it only while the needle is not running."""
        if gc.get_count()[2] < DUE_AFTER:
            return False
        gc.collect()
        return True

    def release(self) -> None:
        """Back to CPython's policy; what was frozen may be collected again."""
        gc.set_threshold(*self._threshold)
        gc.unfreeze()
