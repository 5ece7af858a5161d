"""`smp history [clients [TEXT] | client NAME | recall LOT | due [--within DAYS]]`: the record,
from the shell. Real sub-commands, so that a client named "recall" or "due" can be looked up."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from console.cli_table import print_table
from console.echo import echo
from protocols.text import printable

if TYPE_CHECKING:
    from console.cli import Subparsers
    from sessions.history import Page
    from sessions.store import Store

_Row = TypeVar("_Row")


def add_db_option(p: argparse.ArgumentParser, *, default: object = None) -> None:
    p.add_argument("--db", metavar="URL", default=default,
                   help="database URL (default: SMP_DB_URL, else smp.sqlite3 in the user "
                   "data directory)")


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "history", help="clients, a client's history, a lot recall, or touch-ups due",
        description="smp history                  every client (as smp history clients)\n"
                    "smp history clients [TEXT]   clients whose name contains TEXT\n"
                    "smp history client NAME      a client's sessions (name or id)\n"
                    "smp history recall LOT       every session that used a pigment/needle lot\n"
                    "smp history due              touch-ups due (--within DAYS)\n"
                    "recall and due print a page (--limit N, --page N) and the total",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_db_option(p)
    p.set_defaults(handler=cmd_history, text=[])  # no ACTION: the client list
    ps = p.add_subparsers(dest="action", metavar="ACTION")
    clients = ps.add_parser("clients", help="every client, or those whose name contains TEXT")
    clients.add_argument("text", nargs="*", metavar="TEXT")
    client = ps.add_parser("client", help="one client's sessions, by name or id")
    client.add_argument("name", nargs="+", metavar="NAME")
    recall = ps.add_parser("recall", help="every session that used a pigment or needle lot")
    recall.add_argument("lot", metavar="LOT")
    due = ps.add_parser("due", help="touch-ups due")
    for paged in (recall, due):
        # Checked by the command, not argparse, so that a bad value is one line (_paging).
        paged.add_argument("--limit", default=None, metavar="N",
                           help=f"rows per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})")
        paged.add_argument("--page", default=None, metavar="N",
                           help="which page, from 1 (default 1)")
    due.add_argument("--within", type=_days, default=0, metavar="DAYS",
                     help="also list touch-ups falling due in the next DAYS days")
    due.add_argument("--years", type=_positive, default=None,
                     help="years after the last completed session (default 4)")
    due.add_argument("--scar-years", type=_positive, default=None,
                     help="years for clients with scar work (default 2)")
    for action in (clients, client, recall, due):
        # SUPPRESS: a sub-command's own default would overwrite `smp history --db URL ...`.
        add_db_option(action, default=argparse.SUPPRESS)


DEFAULT_LIMIT, MAX_LIMIT = 50, 1000


def _paging(args: argparse.Namespace) -> tuple[int, int]:
    """(limit, offset) from --limit and --page; a bad value is a one-line usage error."""
    from protocols.errors import UsageError

    def number(option: str, text: str | None, default: int, top: int) -> int:
        if text is None:
            return default
        if not text.isdigit() or not 1 <= int(text) <= top:
            allowed = f"1 to {top}" if top < 10**9 else "1 or more"
            raise UsageError(f"{option} {printable(text)!r}: a whole number, {allowed}")
        return int(text)

    limit = number("--limit", args.limit, DEFAULT_LIMIT, MAX_LIMIT)
    return limit, (number("--page", args.page, 1, 10**9) - 1) * limit


def _within(page: Page[_Row], what: str) -> None:
    """A page past the end of a non-empty answer is a usage error naming the pages there are."""
    from protocols.errors import UsageError

    if page.total and not page.items:
        pages = -(-page.total // page.limit)
        raise UsageError(f"--page {page.offset // page.limit + 1}: past the end; {page.total} "
                         f"{what} make pages 1 to {pages} of {page.limit}")


def _showing(page: Page[_Row]) -> None:
    """The page's place in the whole answer, and how to ask for the next one."""
    echo(page.showing() + (f"; next: --page {page.offset // page.limit + 2}" if page.more
                           else ""))


def _days(text: str) -> int:
    if not text.isdigit() or int(text) > 36500:
        raise argparse.ArgumentTypeError(f"--within {text!r}: a whole number of days, 0 to 36500")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 20:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of years, 1 to 20")
    return int(text)


def cmd_history(args: argparse.Namespace) -> int:
    from sessions.store import open_store

    # Checked before the store opens, so that a bad --limit touches no database; the other
    # actions print no pages and never read it.
    paging = _paging(args) if args.action in ("recall", "due") else (DEFAULT_LIMIT, 0)
    store = open_store(args.db)
    try:
        if args.action == "client":
            return _client(store, " ".join(args.name))
        if args.action == "recall":
            return _recall(store, args.lot, paging)
        if args.action == "due":
            return _due(store, args, paging)
        return _clients(store, " ".join(args.text))
    finally:
        store.close()


def _clients(store: Store, text: str = "") -> int:
    from sessions.history import find_clients

    clients = find_clients(store, text)
    if not clients:
        echo(f"no client matches {printable(text)!r}" if text else
             "no clients in the record yet")
        return 0
    print_table(("ID", "CLIENT", "SESSIONS", "LAST SESSION"), [
        (c.id, c.name, c.sessions, f"{c.last_session_at:%Y-%m-%d}" if c.last_session_at else "-")
        for c in clients])
    return 0


def _client(store: Store, text: str) -> int:
    from sessions.history import client_record, find_client
    from sessions.models import outcome_label

    rec = client_record(store, find_client(store, text).id)
    c = rec.client
    echo(f"{c.name} (id {c.id}): {len(rec.sessions)} session(s)")
    for sv in rec.sessions:
        sim = "  SIMULATOR" if sv.machine.simulator else ""
        echo()
        echo(f"{sv.started_at:%Y-%m-%d %H:%M} UTC  session {sv.id}  {sv.stage.label}  "
             f"{outcome_label(sv.outcome)}  by {sv.technician}{sim}")
        echo(f"  machine   {sv.machine}")
        for g in sv.gate:
            if g.decision != "clear":
                echo(f"  gate      {g.item}: {g.decision}" + (f" ({g.reason})" if g.reason
                                                             else ""))
        for z in sv.zones:
            cov = "-" if z.coverage_pct is None else f"{z.coverage_pct}%"
            echo(f"  {z.zone:<14} coverage {cov:<5} passes {z.passes}"
                 + (f"  profile {z.profile}" if z.profile else ""))
            for line in z.settings_text():
                echo(f"  {'':<14} {line}")
        for p in sv.pigments:
            echo(f"  pigment   {p.brand} {p.shade} {p.dilution} lot {p.lot} exp {p.expiry}"
                  + (f" ({p.zone})" if p.zone else ""))
        for n in sv.needles:
            echo(f"  needle    {n.code} lot {n.lot} exp {n.expiry}"
                  + (f" ({n.zone})" if n.zone else ""))
    return 0


def _recall(store: Store, lot: str, paging: tuple[int, int]) -> int:
    from sessions.history import recall

    limit, offset = paging
    page = recall(store, lot, limit=limit, offset=offset)
    if not page.total:
        echo(f"no session used lot {lot}")
        return 0
    _within(page, "uses")
    print_table(("CLIENT ID", "CLIENT", "SESSION", "DATE", "ITEM", "PRODUCT", "ZONE", "EXPIRY"), [
        (h.client_id, h.client_name, h.session_id, f"{h.started_at:%Y-%m-%d}",
         h.item + (" (SIMULATOR)" if h.simulator else ""), h.product, h.zone or "all",
         h.expiry) for h in page.items])
    echo()
    echo(f"lot {lot}: {page.clients} client(s), {page.sessions} session(s)")
    _showing(page)
    return 0


def _due(store: Store, args: argparse.Namespace, paging: tuple[int, int]) -> int:
    from sessions.history import SCAR_TOUCH_UP_YEARS, TOUCH_UP_YEARS, touchups_due

    limit, offset = paging
    page = touchups_due(store, today=datetime.now(UTC).date(), within_days=args.within,
                        years=args.years or TOUCH_UP_YEARS,
                        scar_years=args.scar_years or SCAR_TOUCH_UP_YEARS,
                        limit=limit, offset=offset)
    if not page.total:
        echo("no touch-ups due")
        return 0
    _within(page, "touch-ups due")
    print_table(("CLIENT ID", "CLIENT", "LAST COMPLETED", "DUE", "RULE"), [
        (d.client_id, d.client_name, f"{d.last_completed_at:%Y-%m-%d}", d.due_on,
         "scar" if d.scar else "standard") for d in page.items])
    echo()
    _showing(page)
    return 0
