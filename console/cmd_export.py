"""`smp export CLIENT --format json|csv|pdf [--pseudonymise [--include WHAT,...]] [-o FILE]
[--force]`"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from console.cmd_history import add_db_option
from console.echo import echo
from sessions.include import INCLUDE

if TYPE_CHECKING:
    from console.cli import Subparsers

FORMATS = ("json", "csv", "pdf")


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "export", help="a client's record as JSON, CSV or a PDF for the client",
        description="Pseudonymised exports (for teaching and research) carry only the fields "
        "declared safe: dates as days since the first session, keyed pseudonyms for the "
        "client, technicians, serials and lots, and no free text or health data unless "
        "--include names it: " + "; ".join(f"{k}: {v}" for k, v in INCLUDE.items()) + ".")
    p.add_argument("client", nargs="+", metavar="CLIENT", help="client name or id")
    p.add_argument("--format", choices=FORMATS,
                   help="json, csv or pdf (default: from FILE's ending)")
    p.add_argument("--pseudonymise", action="store_true",
                   help="replace identities with stable pseudonyms and withhold free text and "
                   "health data")
    p.add_argument("--include", type=_include, default=(), metavar="WHAT,...",
                   help=f"with --pseudonymise: also export these ({', '.join(INCLUDE)}); "
                   "names, e-mails, dates and phone numbers are still taken out of the text")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="output file (default: the pseudonym, or client-ID-DATE, .FORMAT in "
                   "the private exports folder; never the client's name)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_db_option(p)
    p.set_defaults(handler=cmd_export, parser=p)


def _include(text: str) -> tuple[str, ...]:
    words = tuple(w.strip() for w in text.split(",") if w.strip())
    unknown = [w for w in words if w not in INCLUDE]
    if unknown or not words:
        raise argparse.ArgumentTypeError(
            f"{unknown[0] if unknown else text!r}: allowed {', '.join(INCLUDE)}"
            " (comma-separated)")
    return words


def cmd_export(args: argparse.Namespace) -> int:
    from console.paths import exports_dir
    from sessions.export import ExportError, default_name, render, write_file
    from sessions.history import client_record, find_client
    from sessions.pseudonyms import Pseudonyms
    from sessions.store import open_store

    if args.include and not args.pseudonymise:  # an identified export holds everything
        args.parser.error("--include goes with --pseudonymise")  # exits 2
    ending = args.output.suffix.lower().lstrip(".") if args.output else ""
    if args.format is None:
        if ending not in FORMATS:
            raise ExportError(f"give --format ({', '.join(FORMATS)}) or an output FILE ending "
                              "in .json, .csv or .pdf")
        args.format = ending
    elif ending in FORMATS and ending != args.format:
        raise ExportError(f"--format {args.format} but {args.output.name} ends in "
                          f".{ending}; make them agree")
    store = open_store(args.db)
    try:
        record = client_record(store, find_client(store, " ".join(args.client)).id, events=True)
        data = render(store, record, args.format, pseudonymise_ids=args.pseudonymise,
                      include=args.include)
        alias = Pseudonyms(store).client(record.client.id) if args.pseudonymise else None
    finally:
        store.close()
    out = args.output or exports_dir() / default_name(record, args.format, pseudonym=alias)
    write_file(out, data, force=args.force)
    echo(f"wrote {out} ({len(data)} bytes, {len(record.sessions)} session(s))"
         + (f", pseudonymised as {alias}; included: {', '.join(args.include) or 'nothing'}"
            if alias else ""))
    return 0
