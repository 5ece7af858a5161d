"""`smp ports`: the serial ports found (firmware_bridge.ports), with VID:PID and serial
number; discovery never opens a port."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from console.cli_table import print_table
from console.echo import echo
from firmware_bridge import ports

if TYPE_CHECKING:
    from console.cli import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("ports", help="serial ports found, with VID:PID and serial number")
    p.set_defaults(handler=cmd_ports)


def cmd_ports(args: argparse.Namespace) -> int:
    found = ports.found()
    if not found:
        echo("no serial ports found (is the machine plugged in and switched on? "
             "smp console --sim runs the simulator)")
        return 0
    print_table(("DEVICE", "DESCRIPTION", "VID:PID", "SERIAL"), found)
    return 0
