"""`smp ports`: the serial ports found, with VID:PID and serial number.

Discovery only asks the operating system (serial.tools.list_ports); it never opens a port
and never sends a byte to one: an unknown device must not receive our frames.
"""

from __future__ import annotations

import argparse

from serial.tools import list_ports

from console.echo import echo
from protocols.text import printable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ports", help="serial ports found, with VID:PID and serial number")
    p.set_defaults(handler=cmd_ports)


def rows() -> list[tuple[str, str, str, str]]:
    out = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        vid_pid = (f"{port.vid:04X}:{port.pid:04X}"
                   if port.vid is not None and port.pid is not None else "-")
        desc = port.description if port.description and port.description != "n/a" else "-"
        # USB descriptor strings come from the device: shown escaped.
        out.append((port.device, printable(desc), vid_pid, printable(port.serial_number or "-")))
    return out


def cmd_ports(args: argparse.Namespace) -> int:
    found = rows()
    if not found:
        echo("no serial ports found (is the machine plugged in and switched on? "
             "smp console --sim runs the simulator)")
        return 0
    table = [("DEVICE", "DESCRIPTION", "VID:PID", "SERIAL"),
             *((printable(d), *rest) for d, *rest in found)]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for row in table:
        echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0
