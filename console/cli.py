"""The `smp` command line: one parser, one subcommand module per job."""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from typing import TypeAlias

from console import (
    cmd_conformance,
    cmd_console,
    cmd_db,
    cmd_export,
    cmd_history,
    cmd_machine,
    cmd_ports,
    cmd_protocols,
    cmd_replay,
    cmd_sim,
    crash,
)
from protocols.errors import SmpError
from protocols.text import printable

# What every cmd_*.register() is handed: argparse's sub-command action over plain parsers (the
# class is generic only in typeshed, hence the string).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

COMMANDS = (cmd_console, cmd_protocols, cmd_ports, cmd_sim, cmd_machine, cmd_conformance,
            cmd_history, cmd_replay, cmd_export, cmd_db)


def version() -> str:
    try:
        return metadata.version("smp")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smp",
        description="Controller and clinical session logger for rotary SMP machines.",
    )
    parser.add_argument("--version", action="version", version=f"smp {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except SmpError as exc:
        print(f"smp: error: {printable(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line here, the traceback (no locals) in a file
        print(crash.line(crash.write(exc)), file=sys.stderr)
        return 70  # EX_SOFTWARE


if __name__ == "__main__":
    sys.exit(main())
