"""`smp machine serve --port URL` and `smp machine status`: the machine service by hand.

The console starts a service for its port by itself; run one by hand to keep a machine's link
up across consoles, or to watch it from a second screen (observers join a running service).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING

from console.cli_table import print_table

if TYPE_CHECKING:
    from console.cli import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("machine", help="the machine service (owns a machine's port)",
                       description="The machine service owns a machine's serial port and runs "
                       "the link (heartbeat, retransmission, STOP) in a process of its own. "
                       "The console starts one for its port; these commands run and show "
                       "them by hand.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    serve = verbs.add_parser("serve", help="serve one machine to local clients",
                             description="Open the port, hand-shake, and serve the machine on a "
                             "private socket: one controlling client (a console), any number of "
                             "observers. If the controlling client goes away without saying "
                             "goodbye the service sends STOP at once. Ctrl+C ends it (STOP "
                             "first if the machine may be armed).")
    serve.add_argument("--port", required=True, metavar="URL",
                       help="a serial port or pyserial URL (socket://, rfc2217://)")
    serve.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    serve.add_argument("--channel-fd", type=int, metavar="FD", help=argparse.SUPPRESS)
    serve.add_argument("--hold-fd", type=int, metavar="FD", help=argparse.SUPPRESS)
    serve.add_argument("--exit-with-controller", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--log", type=Path, metavar="FILE",
                       help="append the service's log to FILE (default: standard error)")
    serve.set_defaults(handler=cmd_serve)
    status = verbs.add_parser("status", help="the machine services running for this user")
    status.set_defaults(handler=cmd_status)


def _logging(path: Path | None) -> None:
    if path is None:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    else:
        fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
        os.close(fd)
        handler = RotatingFileHandler(path, maxBytes=1 << 20, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s machine-service[%(process)d] "
                                           "%(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def cmd_serve(args: argparse.Namespace) -> int:
    import console.sim_transport  # noqa: F401  (sim:// for tests and trainers)
    from console.machine_process import find_service, port_key, register
    from console.paths import runtime_dir
    from console.priority import raise_priority
    from firmware_bridge import Machine
    from firmware_bridge.channel import line
    from firmware_bridge.service import serve
    from protocols.errors import SmpError

    _logging(args.log)
    raise_priority("the machine service")
    channel = socket.socket(fileno=args.channel_fd) if args.channel_fd is not None else None
    running = find_service(args.port)
    try:
        if running is not None:
            raise SmpError(f"{args.port} is already served by machine service pid "
                           f"{running.pid} ({running.socket})")
        machine = Machine.connect(args.port, baudrate=args.baud, reopen=True)
    except SmpError as exc:
        if channel is not None:
            with contextlib.suppress(OSError):
                channel.sendall(line({"op": "failed", "reason": str(exc)}))
        logging.getLogger(__name__).error("%s", exc)
        raise
    sock_path = runtime_dir() / f"machine-{os.getpid()}.sock"
    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket is born 0600: only this user can connect
    try:
        listener.bind(str(sock_path))
    finally:
        os.umask(old)
    listener.listen(8)
    entry = register(args.port, sock_path)
    ended = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: ended.set())
    if channel is None:
        print(f"machine service pid {os.getpid()} on {args.port} ({port_key(args.port)}): "
              f"socket {sock_path}", flush=True)
    def leave_registry() -> None:
        for path in (entry, sock_path):
            with contextlib.suppress(OSError):
                path.unlink()

    try:
        serve(machine, listener=listener, inherited=channel,
              exit_with_controller=args.exit_with_controller,
              info={"url": args.port, "socket": str(sock_path), "started": time.time()},
              until=ended.is_set, on_ending=leave_registry)
    finally:
        leave_registry()
        if args.hold_fd is not None:
            with contextlib.suppress(OSError):
                os.close(args.hold_fd)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from console.machine_process import services
    from firmware_bridge.client import MachineClient
    from protocols.errors import SmpError

    running = services()
    if not running:
        print("no machine service is running")
        return 0
    rows: list[tuple[str, ...]] = []
    for s in running:
        where = (f"pid {s.pid}", s.url,
                 f"since {time.strftime('%Y-%m-%d %H:%M', time.localtime(s.started))}")
        try:
            with MachineClient.connect(s.socket, role="observe", who="smp machine status") as c:
                ident = c.ident
                machine = ("SIMULATOR" if c.simulated else f"{ident.model} {ident.serial}") \
                    if ident else "no machine"
                state = "UNKNOWN" if c.state is None else c.state.name
                held = c.service.get("controller") or "no controller"
                rows.append((*where, machine, state, f"link {c.link_state.value}", held))
        except SmpError as exc:
            rows.append((*where, f"not answering: {exc}"))
    print_table(None, rows)
    return 0
