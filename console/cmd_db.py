"""`smp db upgrade | check`: schema management for the record."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from console.cmd_history import add_db_option
from console.echo import echo

if TYPE_CHECKING:
    from console.cli import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("db", help="the record's database: upgrade or check it")
    ps = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = ps.add_parser("upgrade", help="bring the schema to this program's version "
                       "(SQLite: after a backup copy)")
    add_db_option(up)
    up.set_defaults(handler=cmd_upgrade)
    check = ps.add_parser("check", help="schema version, integrity and sessions left open "
                          "(exit 1 on any problem)")
    add_db_option(check)
    check.set_defaults(handler=cmd_check)


def cmd_upgrade(args: argparse.Namespace) -> int:
    from sessions.store import describe, open_store

    store = open_store(args.db, upgrade=False)
    try:
        before, backup = store.upgrade()
        where = describe(store.url)
        if before.status == "current":
            echo(f"{where}: schema {before.head} is current; nothing to do")
        else:
            echo(f"{where}: schema {before.current or 'empty'} -> {before.head}")
        if backup:
            echo(f"backup: {backup}")
    finally:
        store.close()
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from sessions.recorder import open_sessions
    from sessions.store import describe, open_store

    store = open_store(args.db, upgrade=False, read_only=True)  # a check changes nothing
    try:
        where, state = describe(store.url), store.schema()
        ok = True
        if state.status == "current":
            echo(f"schema     {state.current} (current)")
        else:
            ok = False
            echo(f"schema     {state.current or 'empty'}, this program needs {state.head}: "
                  "run 'smp db upgrade'")
        integrity = store.integrity()
        ok = ok and integrity == "ok"
        echo(f"integrity  {integrity}")
        if state.status == "current":
            for o in open_sessions(store):
                echo(f"open       session {o.id} of {o.client_name} (client {o.client_id}), "
                      f"started {o.started_at:%Y-%m-%d %H:%M} UTC, {o.events} events: left "
                      "open by a crash or still running")
        echo(f"database   {where}: {'ok' if ok else 'needs attention'}")
    finally:
        store.close()
    return 0 if ok else 1
