"""`smp sim`: a simulated machine for the console or any other program."""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from protocols.errors import UsageError
from sim.quirks import QUIRKS

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

    from console.cli import Subparsers
    from sim.control import ControlServer
    from sim.firmware import Event
    from sim.machine import SimulatedMachine
    from sim.serve import PtyServer, TcpServer


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "sim", help="run a simulated machine on a pty or loopback TCP",
        description="Run a simulated SMP machine. It prints where to connect, shows a live "
        "status line and reads commands on standard input, one per line, in the scenario "
        "language without the time: 'pedal down', 'skin thick', 'fault stall', 'clear stall', "
        "'fault link-drop 0.5'. Ctrl+C stops it.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="a pseudo-terminal (the default)")
    where.add_argument("--tcp", metavar="HOST:PORT", help="a TCP port on loopback")
    p.add_argument("--link", type=Path, metavar="PATH",
                   help="with --pty: keep a stable symlink to the device at PATH")
    p.add_argument("--allow-remote", action="store_true",
                   help="with --tcp: allow a non-loopback address (not recommended)")
    p.add_argument("--baud", type=_baud, default=115200,
                   help="pace the line to this baud rate, 8N1 (default 115200)")
    p.add_argument("--seed", type=int, default=None, help="seed for every random fault")
    p.add_argument("--fault", action="append", default=[], metavar="NAME[=VALUE][@SECONDS]",
                   help="inject a fault, at start or after SECONDS; repeatable: "
                   "bit-errors=1e-4, drop-frames=0.01, link-drop=0.5@10, reboot@20, stall@5 ...")
    p.add_argument("--script", metavar="FILE|NAME", help="play a scenario file or a shipped one")
    p.add_argument("--skin", default="air", help="initial skin: air normal thin thick scar")
    p.add_argument("--serial", default="SIM-0001", help="machine serial number to report")
    p.add_argument("--events", type=Path, metavar="FILE",
                   help="append the machine's own log (state changes, commands, refusals, "
                   "faults) to FILE as JSON lines: the machine's side of the story")
    p.add_argument("--log-heartbeats", action="store_true",
                   help="with --events: log the arrival of every heartbeat too (for measuring "
                   "the gaps between them on the wire)")
    p.add_argument("--quirk", action="append", default=[], metavar="NAME",
                   help="deliberately break one rule of docs/protocol.md (repeatable), to see "
                   "`smp conformance` fail: " + ", ".join(QUIRKS))
    p.add_argument("--quiet", action="store_true", help="no live status line")
    p.add_argument("--lifeline-fd", type=int, metavar="FD", help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_sim)


def _baud(text: str) -> int:
    if not text.isdigit() or not 300 <= int(text) <= 4_000_000:
        raise argparse.ArgumentTypeError(f"baud {text!r}: a whole number from 300 to 4000000")
    return int(text)


def fault_steps(specs: list[str]) -> str:
    """--fault options as scenario lines ("link-drop=0.5@10" -> "10 fault link-drop 0.5")."""
    lines = []
    for spec in specs:
        body, _, at = spec.partition("@")
        name, _, value = body.partition("=")
        lines.append(f"{at or 0} fault {name} {value}".rstrip())
    return "\n".join(sorted(lines, key=lambda line: float(line.split()[0])
                            if _is_number(line.split()[0]) else 0.0))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def cmd_sim(args: argparse.Namespace) -> int:
    from console.priority import raise_priority
    from sim.clock import MonotonicClock
    from sim.machine import SimulatedMachine
    from sim.physics import Skin
    from sim.scenario import BadScenario, Scenario, find, parse
    from sim.serve import PtyServer, TcpServer, parse_hostport

    if args.skin not in {s.value for s in Skin}:
        raise BadScenario(f"--skin {args.skin!r}: allowed {', '.join(s.value for s in Skin)}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    script = find(args.script) if args.script else None
    faults = parse(fault_steps(args.fault) + "\n", "--fault") if args.fault else None
    if script and faults:
        steps = tuple(sorted(script.steps + faults.steps, key=lambda s: s.at_s))
        script = Scenario(script.name, script.description, steps)
    script = script or faults

    unknown = [q for q in args.quirk if q not in QUIRKS]
    if unknown:
        raise UsageError(f"--quirk {unknown[0]!r}: allowed {', '.join(QUIRKS)}")
    raise_priority("the simulator")
    machine = SimulatedMachine(MonotonicClock(), seed=seed, baud=args.baud, serial=args.serial,
                               quirks=args.quirk)
    machine.set_skin(Skin(args.skin))
    if args.events:
        write = _event_writer(args.events)
        for event in list(machine.firmware.log):  # what happened before we listened: the boot
            write(event)
        machine.firmware.on_event = write
        machine.firmware.log_heartbeats = args.log_heartbeats
    if args.tcp:
        host, port = parse_hostport(args.tcp)
        if args.allow_remote:
            print(f"smp sim: warning: listening on {host}, reachable from other machines",
                  file=sys.stderr)
        server: TcpServer | PtyServer = TcpServer(machine, host, port,
                                                  allow_remote=args.allow_remote)
    else:
        server = PtyServer(machine, link=args.link)
    control = _control_server(machine, server, args.link)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up as Ctrl+C does
    if script:
        # Before the line starts: a step at 0 s (`--fault silent=30`) is in force before the
        # machine's first frame, not from whenever this thread gets round to it.
        machine.play(script)
    # Ctrl+C is how a trainer stops it, whenever it comes: close the line, remove the link.
    with (contextlib.suppress(KeyboardInterrupt), server,
          contextlib.closing(control) if control else contextlib.nullcontext()):
        where = str(args.link) if args.link else server.address
        print(f"SIMULATOR listening on {where}  ({args.baud} baud 8N1, seed {seed})", flush=True)
        print(f"connect with: smp console --port {where}", flush=True)
        print(f"control: {control.path if control else 'none'}", flush=True)
        if args.quirk:
            print(f"smp sim: warning: deliberately non-conforming: {', '.join(args.quirk)}",
                  file=sys.stderr, flush=True)
        if script:
            print(f"playing scenario {script.name}: {script.description}", flush=True)
        _read_commands(machine)
        if args.lifeline_fd is not None:
            _hold_lifeline(args.lifeline_fd)
        _show_status(machine, quiet=args.quiet)
    print("\nsmp sim: stopped", file=sys.stderr)
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _control_server(machine: SimulatedMachine, server: TcpServer | PtyServer,
                    link: Path | None) -> ControlServer | None:
    """The control socket for programs that know only the port; None (with a warning) when
    there is no private runtime directory to put it in."""
    from console.paths import runtime_dir
    from protocols.errors import SmpError
    from sim.control import ControlServer
    from sim.serve import PtyServer

    devices = [server.address]
    if isinstance(server, PtyServer) and link is not None:
        devices.append(str(link.absolute()))
    try:
        control = ControlServer(machine, runtime_dir(), devices)
        control.start()
    except (SmpError, OSError) as exc:  # the simulator still works without its controls
        print(f"smp sim: warning: no control socket: {exc}", file=sys.stderr)
        return None
    return control


def _event_writer(path: Path) -> Callable[[Event], None]:
    import json

    try:
        out = path.open("a", buffering=1, encoding="utf-8")  # a line reaches the file at once
    except OSError as exc:
        from protocols.errors import SmpError

        raise SmpError(f"--events {path}: cannot write: {exc.strerror}") from None

    def write(event: Event) -> None:
        out.write(json.dumps({"t": time.time(), "mono_ns": event.at_ns, "what": event.what,
                              "seq": event.seq, "detail": event.detail}) + "\n")

    return write


def _hold_lifeline(fd: int) -> None:
    """Run while `fd` is open at its other end (the machine service that drives us holds it):
    a simulator started for a console ends with it, after the service's last STOP."""
    import signal

    def wait() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 1):
                pass
        os.kill(os.getpid(), signal.SIGINT)  # a real signal: it ends the status line's sleep

    threading.Thread(target=wait, name="smp-sim-lifeline", daemon=True).start()


def _read_commands(machine: SimulatedMachine) -> None:
    """Standard input lines are commands for the machine; errors are reported, not fatal."""
    from sim.scenario import BadScenario, act

    def loop() -> None:
        for line in sys.stdin:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                act(machine, line)
                print(f"ok: {line.strip()}", flush=True)
            except BadScenario as exc:
                print(f"smp sim: error: {exc}", file=sys.stderr, flush=True)

    if sys.stdin is not None and not sys.stdin.closed:
        threading.Thread(target=loop, name="smp-sim-stdin", daemon=True).start()


def _show_status(machine: SimulatedMachine, *, quiet: bool) -> None:
    tty = sys.stderr.isatty()
    # A trainer types commands into the same terminal: there the status line has the last row
    # to itself, below a scrolling region, and is drawn with the cursor saved and restored, so
    # a redraw never wipes the command being typed (a "\r" redraw ran into it).
    pinned = tty and not quiet and sys.stdin is not None and sys.stdin.isatty()
    rows = 0
    last_caption = ""
    try:
        while True:
            time.sleep(0.2 if tty else 1.0)
            if machine.caption != last_caption:
                last_caption = machine.caption
                print(("" if pinned or not tty else "\r\033[K") + f"say: {last_caption}",
                      file=sys.stderr, flush=True)
            if quiet:
                continue
            line = machine.status_line()
            if pinned:
                width, height = os.get_terminal_size(sys.stderr.fileno())
                if height != rows:  # the first time, or the window was resized
                    rows = height
                    # Off the last row first (a newline scrolls if the cursor is there), then
                    # the region; setting it homes the cursor, hence the save and restore.
                    _write(f"\n\033[1A\0337\033[1;{rows - 1}r\0338")
                _write(f"\0337\033[{rows};1H\033[K{line[: width - 1]}\0338")
            elif tty:
                width = os.get_terminal_size(sys.stderr.fileno()).columns
                _write("\r\033[K" + line[: width - 1])
            else:
                print(line, file=sys.stderr, flush=True)
    finally:
        if rows:  # the whole window scrolls again, and the status line goes
            _write(f"\0337\033[r\033[{rows};1H\033[K\0338")


def _write(text: str) -> None:
    print(text, end="", file=sys.stderr, flush=True)
