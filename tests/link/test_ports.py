"""`smp ports`: lists ports with VID:PID and serial number, and never touches a port."""

import serial
from serial.tools import list_ports_common

from console.cli import main


def fake_port(device, vid=None, pid=None, serial_number=None, description="n/a"):
    p = list_ports_common.ListPortInfo(device, skip_link_detection=True)
    p.vid, p.pid, p.serial_number, p.description = vid, pid, serial_number, description
    return p


def never_open(*args, **kwargs):
    raise AssertionError("smp ports opened a port")


def test_ports_lists_device_description_vid_pid_serial(monkeypatch, capsys):
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda: [
        fake_port("/dev/ttyUSB0", 0x0403, 0x6001, "A10KXYZ", "FT232R USB UART"),
        fake_port("/dev/ttyS0"),
    ])
    monkeypatch.setattr(serial.Serial, "open", never_open)
    monkeypatch.setattr(serial, "serial_for_url", never_open)
    assert main(["ports"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["DEVICE", "DESCRIPTION", "VID:PID", "SERIAL"]
    assert lines[1].split() == ["/dev/ttyS0", "-", "-", "-"]
    assert lines[2].split() == ["/dev/ttyUSB0", "FT232R", "USB", "UART", "0403:6001", "A10KXYZ"]


def test_ports_says_when_none_are_found(monkeypatch, capsys):
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda: [])
    assert main(["ports"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no serial ports found")


def test_ports_on_this_machine_runs(capsys):
    assert main(["ports"]) == 0
    assert capsys.readouterr().out


def test_dtr_and_rts_are_deasserted_before_the_port_opens(monkeypatch):
    """C-6.6: a board that resets on DTR is not reset by connecting."""
    from firmware_bridge.transport import SerialTransport

    events = []

    class Port:
        def __setattr__(self, name, value):
            events.append((name, value))

        def open(self):
            events.append(("open", None))

    def serial_for_url(url, **kw):
        assert kw["do_not_open"] and kw["exclusive"]
        return Port()
    monkeypatch.setattr(serial, "serial_for_url", serial_for_url)
    SerialTransport("/dev/ttyFAKE0")
    assert events == [("dtr", False), ("rts", False), ("open", None)]
    events.clear()
    SerialTransport("/dev/ttyFAKE0", dtr=True)
    assert events == [("dtr", True), ("rts", False), ("open", None)]
