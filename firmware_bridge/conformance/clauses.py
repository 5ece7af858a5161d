"""The device clauses of docs/protocol.md, each a function that drives the device through the
probe and returns what it observed (or raises Fail / Skip). Written from the spec: the clause
ids, sections and wording are those of the document, and a test checks that this registry
and the document's clause index name the same clauses.

Each clause starts from a new session (HELLO) and undoes what it set up. Needs:
    arm      the clause sends ARM (only with --allow-arm)
    pedal    someone presses the pedal (the simulator's controls, or a person)
    fault    a fault is caused on purpose (the simulator's controls, or a person)
    boot     the machine is restarted (the simulator's controls, or a person)
"""

from firmware_bridge.conformance import clauses_machine, clauses_session, clauses_wire  # noqa: F401
from firmware_bridge.conformance.registry import CLAUSES, Clause

__all__ = ["CLAUSES", "ORDER", "Clause"]


def _number(cid: str) -> tuple[int, int]:
    section, n = cid.removeprefix("C-").split(".")
    return int(section), int(n)


# In the document's order, but C-11.4 last: it heats the motor and leaves it latched until it
# cools.
ORDER = sorted(CLAUSES, key=lambda cid: (cid == "C-11.4", _number(cid)))
