"""`smp console [--sim | --port URL] [--db URL]`: the technician's console."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.cli import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "console", help="the technician's console (Textual)",
        description="The technician's console. Without --sim or --port it lists the serial "
        "ports found and offers the simulator. Settings (theme, key map, technician, "
        "presentation mode) are read from console.toml in the user config directory, or "
        "the file named by SMP_CONFIG.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--sim", action="store_true",
                       help="use the simulated machine (started on a pty of its own)")
    where.add_argument("--port", metavar="URL",
                       help="a serial port or pyserial URL (socket://, rfc2217://, sim://)")
    p.add_argument("--db", metavar="URL", help="the record's database URL (default: "
                   "SMP_DB_URL, else a SQLite file in the user data directory)")
    p.add_argument("--presentation", action="store_true",
                   help="hide client identities and health data (teaching): every client is "
                   "its pseudonym; F3 toggles, and turning it off asks for a typed word")
    p.set_defaults(handler=cmd_console)


def cmd_console(args: argparse.Namespace) -> int:
    from console.app import make_app
    from console.config import load_config
    from sessions.store import open_store

    config = load_config()
    if args.presentation:
        config = config.model_copy(update={"presentation": True})
    store = open_store(args.db)  # upgrades the schema; refuses one newer than this program
    try:
        store.require_writable("the console, which records every session,")
        app = make_app(store, url="simulator" if args.sim else args.port, config=config)
        app.run()
    finally:
        store.close()
    return app.return_code or 0
