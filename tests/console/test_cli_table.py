"""The command line's one table printer (console/cli_table.py): plain whole lines off a
terminal, the terminal's width and a bold header on one; `smp machine status` through it."""

from __future__ import annotations

import sys

from console.cli import main
from console.cli_table import print_table
from console.machine_process import Registered
from protocols.errors import SmpError

LONG = "a description long enough that no narrow terminal holds it on one line"


def test_off_a_terminal_rows_are_whole_plain_lines(capsys):
    print_table(("NAME", "NOTE"), [("ann", LONG), ("[red]bo", "ESC \x1b[2J here"), ("cy", 7)])
    out = capsys.readouterr().out
    assert "\x1b" not in out  # no colour, and a name's ESC is shown escaped
    assert out.splitlines() == [
        "NAME     NOTE",
        f"ann      {LONG}",
        "[red]bo  ESC \\x1b[2J here",  # markup in a cell is text
        "cy       7",
    ]


def test_a_table_without_a_header_and_rows_of_unequal_length(capsys):
    print_table(None, [("pid 1", "a", "not answering: refused"), ("pid 22", "b", "c", "d")])
    assert capsys.readouterr().out.splitlines() == [
        "pid 1   a  not answering: refused",
        "pid 22  b  c                       d",
    ]


def test_on_a_terminal_it_fits_the_width_and_the_header_is_bold(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "40")
    print_table(("NAME", "NOTE"), [("ann", LONG)])
    out = capsys.readouterr().out
    assert "\x1b[1m" in out
    lines = out.splitlines()
    assert len(lines) > 2 and all(len(_plain(line)) <= 40 for line in lines)
    assert " ".join(_plain(line)[5:].strip() for line in lines[1:]) == LONG


def _plain(line: str) -> str:
    while "\x1b[" in line:
        start = line.index("\x1b[")
        line = line[:start] + line[line.index("m", start) + 1:]
    return line


def test_machine_status_is_one_row_per_service(capsys, monkeypatch):
    services = [Registered(41, "socket:///dev/ttyUSB0", "k1", "/tmp/a.sock", 0.0, None),
                Registered(4242, "sim://", "k2", "/tmp/b.sock", 0.0, None)]
    monkeypatch.setattr("console.machine_process.services", lambda: services)

    def refuse(path, **_):
        raise SmpError(f"cannot reach {path}")

    monkeypatch.setattr("firmware_bridge.client.MachineClient.connect", refuse)
    assert main(["machine", "status"]) == 0
    rows = [line.split("  ") for line in capsys.readouterr().out.splitlines()]
    assert [r[0] for r in rows] == ["pid 41", "pid 4242"]
    assert rows[0][-1] == "not answering: cannot reach /tmp/a.sock"
    assert rows[1][-1] == "not answering: cannot reach /tmp/b.sock"
