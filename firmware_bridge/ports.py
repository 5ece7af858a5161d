"""The serial ports the operating system lists, for `smp ports`, the connect screen and the
"no such port" hint alike.

Discovery only asks the operating system (serial.tools.list_ports); it never opens a port
and never sends a byte to one: an unknown device must not receive our frames.
"""

from __future__ import annotations

from typing import NamedTuple

from serial.tools import list_ports

from protocols.text import printable


class Port(NamedTuple):
    device: str
    description: str  # "-" when the device gives none; escaped: it comes from the device
    vid_pid: str  # "0403:6001", or "-"
    serial: str  # escaped, or "-"


def found() -> list[Port]:
    """The ports listed now, by device name."""
    out = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        vid_pid = (f"{port.vid:04X}:{port.pid:04X}"
                   if port.vid is not None and port.pid is not None else "-")
        desc = port.description if port.description and port.description != "n/a" else "-"
        out.append(Port(printable(port.device), printable(desc), vid_pid,
                        printable(port.serial_number or "-")))
    return out


def found_text() -> str:
    """The ports listed now, in one line for a hint."""
    devices = [p.device for p in found()]
    return ("ports found: " + ", ".join(devices)) if devices else "no serial ports found"
