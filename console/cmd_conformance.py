"""`smp conformance`: does a device follow docs/protocol.md? For machine makers.

The clauses and the runner are in firmware_bridge/conformance/ (the codec and a transport, not
the host's link supervisor). This module is the command line around them: the port, who
presses the pedal (the simulator's control channel, or the person at the machine), and the
report.
"""

from __future__ import annotations

import argparse
import json
import select
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from console.cli_table import print_table
from protocols.errors import SmpError, UsageError

if TYPE_CHECKING:
    from console.cli import Subparsers
    from firmware_bridge.conformance import Operator
    from firmware_bridge.transport import Transport

PEDAL_PROMPTS = {"pedal down": "press and hold the pedal now", "pedal up": "release the pedal"}


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "conformance", help="check that a machine follows the link protocol (for makers)",
        description="Run the device clauses of docs/protocol.md against the machine on PORT: "
        "one line per clause (PASS, FAIL or SKIPPED, what was observed, the section), then a "
        "summary. Exit status 0 when every required clause that ran passed, 1 when one "
        "failed, 2 for bad input or a port that is not a machine of this protocol version. "
        "It never arms the machine without --allow-arm.",
    )
    p.add_argument("--port", metavar="URL", help="the machine: /dev/ttyUSB0, COM3, "
                   "socket://HOST:PORT, a pty, sim://")
    p.add_argument("--clause", action="append", metavar="ID",
                   help="run only this clause (repeatable), e.g. C-9.2")
    p.add_argument("--allow-arm", action="store_true",
                   help="let clauses arm the machine and run the needle")
    p.add_argument("--non-interactive", action="store_true",
                   help="never ask the person at the machine: skip what needs them")
    p.add_argument("--report", type=Path, metavar="FILE", help="also write the results as JSON")
    p.add_argument("--list", action="store_true", help="list the clauses and exit")
    p.add_argument("--baud", type=int, default=115200, help="serial baud rate (default 115200)")
    p.set_defaults(handler=cmd_conformance)


class SimulatorOperator:
    """The simulator's controls, through its control socket (or, for sim://, directly)."""

    name = "simulator"

    def __init__(self, do: Callable[[str], object]):
        self._do = do

    def can(self, action: str) -> bool:
        return True

    def do(self, action: str, prompt: str | None = None,
           idle: Callable[[], None] | None = None) -> None:
        from sim.control import ControlError

        try:
            self._do(action)
        except (ControlError, ValueError) as exc:
            from firmware_bridge.conformance import Fail

            raise Fail(f"the simulator refused '{action}': {exc}") from None


class PersonOperator:
    """The person at the machine: a prompt on the terminal; the link keeps going meanwhile."""

    name = "person"

    def __init__(self, out: Callable[[str], object] = print):
        self.out = out

    def can(self, action: str) -> bool:
        return True

    def do(self, action: str, prompt: str | None = None,
           idle: Callable[[], None] | None = None) -> None:
        text = prompt or PEDAL_PROMPTS.get(action, action)
        if action in PEDAL_PROMPTS:
            self.out(f"  >> {text}")  # the clause watches the pedal in telemetry
            return
        self.out(f"  >> {text}, then press Enter (or type s and Enter to skip this clause)")
        line = _read_line(idle)
        if line.strip().lower() == "s":
            from firmware_bridge.conformance import Skip

            raise Skip("skipped by the person at the machine")


def _read_line(idle: Callable[[], None] | None) -> str:
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0.01)
        if ready:
            return sys.stdin.readline()
        if idle is not None:
            idle()


def _operator(transport: Transport, port: str, interactive: bool) -> Operator | None:
    if transport.simulator is not None:  # sim:// in this process
        from sim.scenario import command

        machine = transport.simulator.machine
        return SimulatorOperator(lambda line: machine.do(command(line)))
    from console.paths import runtime_dir
    from sim.control import SimControl, find_control

    try:
        path = find_control(runtime_dir(), port)
    except SmpError:
        path = None
    if path is not None:
        return SimulatorOperator(SimControl(path).do)
    return PersonOperator() if interactive else None


def cmd_conformance(args: argparse.Namespace) -> int:
    import console.sim_transport  # noqa: F401  (registers sim://)
    from firmware_bridge.conformance import CLAUSES, ORDER, NotAMachine, run, select
    from firmware_bridge.transport import TransportError, open_transport

    if args.list:
        print_table(None, [
            (c.id, f"section {c.section}", c.level,
             c.title + (f" (needs {', '.join(sorted(c.needs))})" if c.needs else ""))
            for c in (CLAUSES[cid] for cid in ORDER)])
        return 0
    clauses = select(args.clause)
    if not args.port:
        raise UsageError("--port is required: the machine's port, e.g. /dev/ttyUSB0, "
                         "socket://127.0.0.1:5555 or the path `smp sim` printed")
    try:
        transport = open_transport(args.port, baudrate=args.baud)
    except TransportError as exc:
        raise NotAMachine(str(exc)) from None
    try:
        interactive = not args.non_interactive and sys.stdin is not None and sys.stdin.isatty()
        operator = _operator(transport, args.port, interactive)
        report = run(transport, args.port, clauses=clauses, allow_arm=args.allow_arm,
                     operator=operator, out=lambda line: print(line, flush=True))
    except TransportError as exc:
        raise NotAMachine(f"{args.port}: {exc}") from None
    finally:
        transport.close()
    if args.report:
        try:
            args.report.write_text(json.dumps(report.to_dict(), indent=2) + "\n",
                                   encoding="utf-8")
        except OSError as exc:
            raise SmpError(f"--report {args.report}: cannot write: {exc.strerror}") from None
        print(f"report written to {args.report}")
    return report.exit_code
