"""The registry of device clauses: each is a function that drives the device through the
probe and returns what it observed, registered with its id, section, title and needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge.conformance.context import Context


@dataclass(frozen=True)
class Clause:
    id: str
    section: str
    title: str
    needs: frozenset[str]
    run: Callable[[Context], str]
    level: str = "MUST"


CLAUSES: dict[str, Clause] = {}


def clause(cid: str, section: str, title: str, needs: str = "",
           level: str = "MUST") -> Callable[[Callable[[Context], str]], Callable[[Context], str]]:
    def register(fn: Callable[[Context], str]) -> Callable[[Context], str]:
        CLAUSES[cid] = Clause(cid, section, title, frozenset(needs.split()), fn, level)
        return fn
    return register

