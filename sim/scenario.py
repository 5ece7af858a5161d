"""Trainer scenarios: a timed list of pedal presses, skin changes and faults.

One step per line, `<seconds from start> <action> [arguments]`; `#` starts a comment, and the
first comment lines are the scenario's description (what the trainer should point out):

    0.0  say      Hairline pass on normal skin
    0.0  settings 1.5 110 6.5        # depth mm, rate Hz, voltage V the host should apply
    0.5  skin     normal
    1.0  pedal    down
    4.0  pedal    up
    5.0  fault    link-drop 0.5      # seconds

`clear NAME` removes the cause of an injected fault; the latched fault itself is cleared only
by the host, on purpose. Times never go backwards; `#` cannot appear inside `say` text.
A bad line is refused with the file, the line and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from protocols.errors import SmpError
from protocols.files import MissingFile, UnreadableFile, read_text
from protocols.settings import MachineSettings
from sim.physics import Skin

if TYPE_CHECKING:  # sim.machine imports this module
    from sim.machine import SimulatedMachine


class BadScenario(SmpError):
    pass


# fault name -> (argument description, parser or None when it takes no argument)
def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError(f"{text} is outside 0 to 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 60:
        raise ValueError(f"{text} is outside 0 to 60 s")
    return value


def _count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 4096:
        raise ValueError(f"{text} is outside 1 to 4096")
    return value


def _depth_um(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 2500:
        raise ValueError(f"{text} is outside 0 to 2500 µm")
    return value


FAULTS = {
    "bit-errors": ("RATE (0 to 1, per bit)", _rate),
    "drop-bytes": ("RATE (0 to 1)", _rate),
    "dup-bytes": ("RATE (0 to 1)", _rate),
    "drop-frames": ("RATE (0 to 1)", _rate),
    "dup-frames": ("RATE (0 to 1)", _rate),
    "reorder-frames": ("RATE (0 to 1)", _rate),
    "delay-frames": ("SECONDS (0 to 60)", _seconds),
    "garbage": ("BYTES (1 to 4096)", _count),
    "silent": ("SECONDS (0 to 60)", _seconds),
    "link-drop": ("SECONDS (0 to 60)", _seconds),
    "reboot": ("", None),
    "stall": ("", None),
    "overcurrent": ("", None),
    "overtemp": ("", None),
    "pedal-stuck": ("", None),
    "depth-short": ("MICROMETRES (0 to 2500), where the actuator stops", _depth_um),
    "misapply": ("", None),
}
# Faults that stay on until cleared; the others are events or outages with their own length.
CLEARABLE = ("bit-errors", "drop-bytes", "dup-bytes", "drop-frames", "dup-frames",
             "reorder-frames", "delay-frames", "stall", "overcurrent", "overtemp",
             "pedal-stuck", "depth-short", "misapply")
ACTIONS = ("say", "settings", "skin", "pedal", "fault", "clear", "end")


@dataclass(frozen=True)
class Step:
    at_s: float
    action: str
    args: tuple[Any, ...]  # by action: a str, MachineSettings or Skin; a fault's name and number
    line: int

    def __str__(self) -> str:
        return f"{self.at_s:6.1f}s {self.action} {' '.join(map(str, self.args))}".rstrip()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    steps: tuple[Step, ...]

    @property
    def duration_s(self) -> float:
        return self.steps[-1].at_s if self.steps else 0.0


def parse(text: str, path: Path | str) -> Scenario:
    steps: list[Step] = []
    description: list[str] = []
    last = 0.0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            if raw.strip().startswith("#") and not steps:
                description.append(raw.strip().lstrip("#").strip())
            continue
        try:
            step = _step(line, number)
        except ValueError as exc:
            raise BadScenario(f"{path}:{number}: {exc}") from None
        if step.at_s < last:
            raise BadScenario(f"{path}:{number}: time {step.at_s:g} s is before the previous "
                              f"step at {last:g} s; times never go backwards")
        last = step.at_s
        steps.append(step)
    if not steps:
        raise BadScenario(f"{path}: no steps; write one per line as '<seconds> <action> ...'")
    name = Path(str(path)).stem
    return Scenario(name, " ".join(d for d in description if d), tuple(steps))


def _step(line: str, number: int) -> Step:
    head, _, rest = line.partition(" ")
    try:
        at = float(head)
    except ValueError:
        raise ValueError(f"{head!r} is not a time; a step starts with seconds from the start, "
                         "e.g. '1.5 pedal down'") from None
    if not 0 <= at <= 86400:
        raise ValueError(f"time {head} is outside 0 to 86400 s")
    action, _, rest = rest.strip().partition(" ")
    args = rest.split()
    if action == "say":
        if not rest.strip():
            raise ValueError("say needs the text to show")
        return Step(at, action, (rest.strip(),), number)
    if action == "settings":
        return Step(at, action, (_settings(args),), number)
    if action == "skin":
        allowed = ", ".join(s.value for s in Skin)
        if len(args) != 1 or args[0] not in {s.value for s in Skin}:
            raise ValueError(f"skin takes one of: {allowed}")
        return Step(at, action, (Skin(args[0]),), number)
    if action == "pedal":
        if args not in (["down"], ["up"]):
            raise ValueError("pedal takes 'down' or 'up'")
        return Step(at, action, (args[0],), number)
    if action == "fault":
        return Step(at, action, _fault(args), number)
    if action == "clear":
        if len(args) != 1 or args[0] not in CLEARABLE:
            raise ValueError(f"clear takes one of: {', '.join(CLEARABLE)}")
        return Step(at, action, (args[0],), number)
    if action == "end":
        return Step(at, action, (), number)
    raise ValueError(f"unknown action {action!r}; allowed: {', '.join(ACTIONS)}")


def command(text: str) -> Step:
    """One step to do now, written as a scenario line without its time ("pedal down")."""
    try:
        return _step(f"0 {text.strip()}", 0)
    except ValueError as exc:
        raise BadScenario(f"{text.strip()!r}: {exc}") from None


def act(machine: SimulatedMachine, line: str) -> None:
    """Carry out one trainer's command on a SimulatedMachine now: a scenario line without its
    time ("pedal down", "fault stall"), or "play NAME" to play a scenario. One way for every
    door in: `smp sim`'s standard input, its control socket, the in-process simulator."""
    words = line.split()
    if words[:1] == ["play"]:
        if len(words) != 2:
            raise BadScenario(f"{line.strip()!r}: play takes one scenario name")
        machine.play(find(words[1]))
    else:
        machine.do(command(line))


def _settings(args: list[str]) -> MachineSettings:
    if len(args) != 3:
        raise ValueError("settings takes DEPTH_MM RATE_HZ VOLTAGE_V, e.g. 'settings 1.5 110 6.5'")
    try:
        values = [Decimal(a) for a in args]
        return MachineSettings(depth_mm=values[0], rate_hz=values[1], voltage_v=values[2])
    except InvalidOperation:
        raise ValueError(f"settings {' '.join(args)}: not numbers") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ValueError(f"settings {err['loc'][0]}: {err['msg']}") from None


def _fault(args: list[str]) -> tuple[str] | tuple[str, float]:
    if not args or args[0] not in FAULTS:
        raise ValueError(f"fault takes one of: {', '.join(FAULTS)}")
    name, (wants, convert) = args[0], FAULTS[args[0]]
    if convert is None:
        if len(args) != 1:
            raise ValueError(f"fault {name} takes no argument")
        return (name,)
    if len(args) != 2:
        raise ValueError(f"fault {name} takes {wants}")
    try:
        return (name, convert(args[1]))
    except ValueError as exc:
        raise ValueError(f"fault {name}: {exc}; it takes {wants}") from None


def load(path: Path) -> Scenario:
    """A scenario file; only a regular file is read (a FIFO would block the open forever)."""
    try:
        text = read_text(path)
    except MissingFile:
        raise BadScenario(f"{path}: no such scenario file (shipped: "
                          f"{', '.join(builtin_names())})") from None
    except UnreadableFile as exc:
        raise BadScenario(str(exc)) from None
    return parse(text, path)


def builtin_dir() -> Path:
    return Path(str(resources.files("sim") / "scenarios"))


def builtin_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.txt"))


def find(name_or_path: str) -> Scenario:
    """A shipped scenario by name, or a scenario file by path."""
    if name_or_path in builtin_names():  # a path is never joined onto the shipped folder
        return load(builtin_dir() / f"{name_or_path}.txt")
    return load(Path(name_or_path))
