"""A nicer place in the scheduler for the processes that keep time: the machine service (its
heartbeat is the needle's lifeline) and the simulator (it stands in for a machine's own
microcontroller, which no other program can starve).

Only these processes ask, each for itself; never the console. Without the privilege to raise
priority (CAP_SYS_NICE) they run at the normal level and say so once in their log: the
machine's watchdog still makes a starved link stop the needle, never run on.
"""

from __future__ import annotations

import logging
import os

NICE = -10  # CFS weight about ten times a normal process's


def raise_priority(what: str) -> bool:
    try:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
    except (PermissionError, OSError, AttributeError):
        logging.getLogger(__name__).info("%s runs at normal priority (no CAP_SYS_NICE)", what)
        return False
    return True
