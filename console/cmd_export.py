"""`smp export CLIENT --format json|csv|pdf [--pseudonymise] [-o FILE] [--force]`"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from console.cmd_history import add_db_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="a client's record as JSON, CSV or a PDF for the client")
    p.add_argument("client", nargs="+", metavar="CLIENT", help="client name or id")
    p.add_argument("--format", required=True, choices=("json", "csv", "pdf"))
    p.add_argument("--pseudonymise", action="store_true",
                   help="replace identities with stable pseudonyms and withhold health data")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="output file (default: CLIENT-NAME.FORMAT in the current directory)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_db_option(p)
    p.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from sessions.export import render, write_file
    from sessions.history import client_record, find_client
    from sessions.store import open_store

    store = open_store(args.db)
    try:
        record = client_record(store, find_client(store, " ".join(args.client)).id, events=True)
        data = render(store, record, args.format, pseudonymise_ids=args.pseudonymise)
    finally:
        store.close()
    out = args.output
    if out is None:
        stem = f"client-{record.client.id}" if args.pseudonymise else \
            re.sub(r"[^a-z0-9]+", "-", record.client.name.lower()).strip("-") or "client"
        out = Path(f"{stem}.{args.format}")
    write_file(out, data, force=args.force)
    print(f"wrote {out} ({len(data)} bytes, {len(record.sessions)} session(s))")
    return 0
