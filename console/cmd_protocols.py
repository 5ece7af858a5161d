"""`smp protocols list | show NAME | check FILE...`"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from console.cli_table import print_table
from console.echo import echo
from protocols import (
    DEPTH,
    RATE,
    VOLTAGE,
    ProfileRefused,
    SkinCondition,
    Stage,
    load_library,
    resolve,
)
from protocols.library import check_files

if TYPE_CHECKING:
    from console.cli import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("protocols", help="the treatment-protocol library")
    ps = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    ls = ps.add_parser("list", help="every profile, built-in and user")
    ls.set_defaults(handler=cmd_list)

    show = ps.add_parser("show", help="a profile resolved for a stage and skin, with reasons")
    show.add_argument("name")
    show.add_argument("--stage", type=_stage, default=Stage.S1,
                      help=f"session stage: {', '.join(s.value for s in Stage)} (default 1)")
    show.add_argument("--skin", type=_skin, action="append", default=[], metavar="CONDITION",
                      help="skin condition, repeatable: "
                      + ", ".join(c.value for c in SkinCondition))
    show.set_defaults(handler=cmd_show)

    check = ps.add_parser("check", help="validate profile files (exit 1 on any error; "
                          "warnings, such as a voltage above 10 V, keep exit 0)")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.set_defaults(handler=cmd_check)


def _stage(text: str) -> Stage:
    try:
        return Stage.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except Exception as exc:  # SmpError
        raise argparse.ArgumentTypeError(str(exc)) from None


def _skin(text: str) -> SkinCondition:
    try:
        return SkinCondition.parse(text)
    except Exception as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_list(args: argparse.Namespace) -> int:
    lib = load_library()
    rows = []
    for entry in lib.entries.values():
        p, s = entry.profile, entry.profile.settings
        source = "user" + (" (overrides built-in)" if entry.overrides else "") if (
            entry.source == "user") else "built-in"
        rows.append((p.name, p.zone.value, DEPTH.fmt(s.depth_mm), RATE.fmt(s.rate_hz),
                     VOLTAGE.fmt(s.voltage_v), p.needle.code, source))
    print_table(("NAME", "ZONE", "DEPTH mm", "RATE Hz", "VOLT V", "NEEDLE", "SOURCE"), rows)
    echo()
    echo(f"{len(lib.entries)} profiles; user directory: {lib.user_dir}")
    for err in lib.errors:
        echo(f"skipped: {err}", err=True)
    for warning in lib.warnings:
        echo(warning, err=True)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    lib = load_library()
    entry = lib.get(args.name)
    p = entry.profile
    where = f"{entry.source}: {entry.path}" + (f":{entry.line}" if entry.line else "")
    echo(f"{p.name}  ({where})")
    echo(f"zone      {p.zone.label}")
    n = p.needle
    echo(f"needle    {n.code} ({n.count} x {n.configuration.label}, {n.diameter_mm} mm)")
    echo(f"base      {p.settings}")
    for warning in entry.warnings:  # the profile as written, with its file and line
        echo(warning)
    try:
        res = resolve(p, args.stage, args.skin)
    except ProfileRefused as exc:
        _print_reasons(exc.reasons)
        raise
    plan = res.plan
    echo(f"{plan.stage.label:<9} target {plan.target_density_pct}% of natural density, "
          f"dilution {plan.lightest} to {plan.darkest}: {plan.aim}")
    echo(f"resolved  {res.settings}")
    _print_reasons(res.reasons)
    written = {w.advisory for w in entry.warnings}
    for advisory in res.advisories:
        if advisory not in written:  # the same words were just said about the base
            echo(f"warning   {advisory}")
    for i, line in enumerate(p.notes.splitlines()):
        echo(f"{'notes' if i == 0 else '':<10}{line}")
    return 0


def _print_reasons(reasons: tuple[str, ...]) -> None:
    echo("why")
    if not reasons:
        echo("  - no skin adjustments: the base profile as written")
    for reason in reasons:
        echo(f"  - {reason}")


def cmd_check(args: argparse.Namespace) -> int:
    count, errors, warnings = check_files(args.files)
    for line in (*errors, *warnings):
        echo(line, err=True)
    if errors:
        return 1
    note = (f"; {len(warnings)} warning(s), which do not fail the check (exit 0)"
            if warnings else "")
    echo(f"ok: {count} profiles in {len(args.files)} file(s){note}")
    return 0
