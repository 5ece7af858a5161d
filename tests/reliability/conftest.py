"""The reliability suite's tools: `smp sim` in another process behind a real pty, its
`--events` log read back as the machine's own account of what the needle did, and a writer
that puts raw bytes on the line past the host.

Every assertion about the needle is made from the machine's log, never from what the host
believes: a host that is wrong about the machine is exactly what this suite looks for.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from firmware_bridge.events import SettingsApplied
from firmware_bridge.schema import WATCHDOG_DEFAULT_MS
from tests.link.conftest import connected, wait_for
from tests.sim.test_sim_process import CROWN, SimProcess

__all__ = ["CROWN", "MachineLog", "Sim", "connected", "wait_for"]

WATCHDOG_MS = WATCHDOG_DEFAULT_MS  # a host that goes silent is stopped by then
# Real time on a shared 2-core machine: a generous margin over the watchdog, never a tight one.
STOP_WITHIN_MS = WATCHDOG_MS + 250
_STATE = re.compile(r"(\w+) -> (\w+): (.*)")


@dataclass(frozen=True)
class Entry:
    t: float  # wall clock
    mono_ns: int  # the machine's monotonic clock (CLOCK_MONOTONIC: comparable across processes)
    what: str
    seq: int
    detail: str

    @property
    def transition(self) -> tuple[str, str, str] | None:
        m = _STATE.fullmatch(self.detail) if self.what == "state" else None
        return (m[1], m[2], m[3]) if m else None


class MachineLog:
    """The machine's `--events` file, re-read on every question (it grows while we ask)."""

    def __init__(self, path: Path):
        self.path = path

    def entries(self) -> list[Entry]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            if line.endswith("}"):  # a line still being written is read next time
                d = json.loads(line)
                out.append(Entry(d["t"], d["mono_ns"], d["what"], d["seq"], d["detail"]))
        return out

    def transitions(self) -> list[tuple[Entry, str, str, str]]:
        return [(e, *e.transition) for e in self.entries() if e.transition]

    def state(self) -> str:
        """The machine's state now, from its log (a boot starts DISARMED)."""
        state = "DISARMED"
        for e in self.entries():
            if e.what == "boot":
                state = "DISARMED"
            elif e.transition:
                state = e.transition[1]
        return state

    def wait_state(self, state: str, timeout: float = 5.0) -> bool:
        return wait_for(lambda: self.state() == state, timeout=timeout, step=0.01)

    def first(self, what: str, after_ns: int = 0, detail: str = "") -> Entry | None:
        return next((e for e in self.entries() if e.what == what and e.mono_ns >= after_ns
                     and detail in e.detail), None)

    def wait_entry(self, what: str, after_ns: int = 0, detail: str = "",
                   timeout: float = 5.0) -> Entry | None:
        wait_for(lambda: self.first(what, after_ns, detail) is not None, timeout=timeout,
                 step=0.01)
        return self.first(what, after_ns, detail)

    def sets(self) -> list[Entry]:
        return [e for e in self.entries() if e.what == "SET"]

    def refused(self) -> list[Entry]:
        return [e for e in self.entries() if e.what == "refused"]

    def stopped_after(self, after_ns: int) -> Entry | None:
        """The first transition out of RUNNING at or after `after_ns`."""
        return next((e for e, old, _, _ in self.transitions()
                     if old == "RUNNING" and e.mono_ns >= after_ns), None)

    def ran(self) -> bool:
        return any(new == "RUNNING" for _, _, new, _ in self.transitions())

    # --- the checks a person would make -----------------------------------------------------

    def assert_needle_safe(self) -> None:
        """The needle ran only after an ARM since the last STOP, fault, reboot or link loss,
        only while the link was alive, and stopped in the same step the link was judged dead
        (each entry reads the clock itself, so "the same step" is within a few ms)."""
        armed = link = False
        state = "DISARMED"
        entries = self.entries()
        for i, e in enumerate(entries):
            if e.what == "boot":
                armed = link = False
                state = "DISARMED"
            elif e.what == "link":
                link = True
            elif e.what == "watchdog":
                armed = link = False  # a link loss needs a new ARM, as a STOP does
            elif e.transition:
                old, new, why = e.transition
                assert old == state, f"log out of order at {e}"
                state = new
                if new == "ARMED" and why == "ARM":
                    armed = True
                elif new in ("FAULTED", "DISARMED"):
                    armed = False
                if new == "RUNNING":
                    assert armed, f"RUNNING without an ARM since the last stop: {e}"
                    assert link, f"RUNNING without a live link: {e}"
            if state == "RUNNING" and not link:
                nxt = entries[i + 1] if i + 1 < len(entries) else None
                assert nxt is not None and nxt.transition and nxt.transition[0] == "RUNNING" \
                    and nxt.mono_ns - e.mono_ns < 5_000_000, \
                    f"needle ran on after the link died: {e}"

    def assert_sets_once_and_as_recorded(self, host_events=(), requested=()) -> None:
        """Each SET sequence number executed once; every read-back the host was given is what
        the machine logged for that sequence number; and, given what the host asked for
        (`requested`), the machine applied nothing else (no corrupted frame was accepted)."""
        sets = self.sets()
        commands = [e for e in self.entries() if e.what in (
            "SET", "ARM", "DISARM", "WATCHDOG", "CLEAR_FAULT", "HELLO", "STOP", "refused")]
        assert len(commands) < 255, "sequence numbers wrapped: the once-only check needs fewer"
        twice = {s: n for s, n in Counter(e.seq for e in sets).items() if n > 1}
        assert not twice, f"SET executed more than once: {twice}"
        by_seq = {e.seq: e.detail for e in sets}
        for ev in host_events:
            if not isinstance(ev, SettingsApplied):
                continue
            if ev.source == "telemetry":
                # Learnt from telemetry: its seq is the last command the machine had acted
                # on, which need not be a SET; what it held is the last SET at or before it.
                held = self._held_after(ev.seq, commands)
                assert held == set_text(ev.applied), (ev, by_seq)
            else:
                assert by_seq.get(ev.seq) == set_text(ev.applied), (ev, by_seq)
        if requested:
            asked = {set_text(s) for s in requested}
            strange = [e for e in sets if e.detail not in asked]
            assert not strange, f"the machine applied what nobody asked for: {strange}"

    @staticmethod
    def _held_after(ack: int, commands: list[Entry]) -> str | None:
        """The setpoints the machine held once it had acted on command `ack`, by its log."""
        at = max((i for i, e in enumerate(commands) if e.seq == ack), default=None)
        assert at is not None, (f"telemetry acknowledged seq {ack}, which the machine never ran",
                                [e for e in commands if abs(e.seq - ack) < 3])
        for e in reversed(commands[:at + 1]):
            if e.what == "SET":
                return e.detail
            if e.what == "HELLO":
                return None
        return None


def set_text(settings) -> str:
    """How the machine logs a SET it executed."""
    w = settings.to_wire()
    return f"{w.depth_um} um {w.rate_dhz} dHz {w.voltage_mv} mV"


class Sim:
    """`smp sim --pty` in its own process with its log in `log` and raw access to its line."""

    def __init__(self, tmp_path: Path, *args: str, seed: int = 7):
        self.log = MachineLog(tmp_path / f"machine-{time.monotonic_ns()}.jsonl")
        self.process = SimProcess("--pty", "--baud", "115200", "--seed", str(seed),
                                  "--events", str(self.log.path), *args)
        self.address = self.process.address
        self._raw: int | None = None

    def say(self, line: str) -> None:
        self.process.say(line)

    def inject(self, data: bytes) -> None:
        """Bytes onto the line towards the machine, past the host: a second opener of the pty
        that only writes (it never reads, so it takes nothing meant for the host). A tty
        write is not interleaved with another, so frames stay whole."""
        if self._raw is None:
            self._raw = os.open(self.address, os.O_WRONLY | os.O_NOCTTY)
        os.write(self._raw, data)

    def kill(self) -> None:
        self.process.proc.kill()
        self.process.proc.wait(timeout=10)

    def close(self) -> None:
        if self._raw is not None:
            os.close(self._raw)
        self.process.close()


@pytest.fixture
def make_sim(tmp_path):
    made = []

    def make(*args: str, seed: int = 7) -> Sim:
        s = Sim(tmp_path, *args, seed=seed)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture
def sim(make_sim):
    return make_sim()


def run_pass(sim: Sim, host, seconds: float = 0.3) -> None:
    """Apply, arm, pedal down until the machine logs RUNNING, run, pedal up."""
    assert host.apply(CROWN) == CROWN
    host.arm()
    sim.say("pedal down")
    assert sim.log.wait_state("RUNNING"), sim.log.entries()[-5:]
    time.sleep(seconds)
    sim.say("pedal up")
