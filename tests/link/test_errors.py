"""Errors a person meets when connecting: each one line that says what to do."""

import errno
import grp
import os
import random
import re
import socket
import threading
import time

import pytest
import serial

from firmware_bridge import PROTOCOL_VERSION, LinkError, Machine, TransportError
from firmware_bridge.transport import explain_open_error, open_transport
from protocols.envelope import Range, SafetyEnvelope
from sim.clock import MonotonicClock
from sim.firmware import Firmware
from sim.serve import PtyServer
from tests.link.test_link_pty import CROWN


def one_line(exc):
    text = str(exc)
    assert "\n" not in text and text
    return text


def test_no_such_port_lists_the_ports_that_exist():
    with pytest.raises(TransportError) as exc:
        Machine.connect("/dev/ttyNOPE9")
    text = one_line(exc.value)
    assert text.startswith("no such port /dev/ttyNOPE9; ")
    assert "ports found: " in text or "no serial ports found" in text


def test_permission_denied_names_the_group(pty, monkeypatch):
    real_open = os.open

    def denied(path, *a, **kw):
        if path == pty.address:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, *a, **kw)
    monkeypatch.setattr(serial.serialposix.os, "open", denied)
    with pytest.raises(TransportError) as exc:
        Machine.connect(pty.address)
    text = one_line(exc.value)
    group = grp.getgrgid(os.stat(pty.address).st_gid).gr_name
    assert text.startswith(f"permission denied on {pty.address}: join the group '{group}'")
    assert "dialout on Debian/Ubuntu, uucp on Arch" in text


def test_permission_hint_defaults_to_dialout():
    text = explain_open_error("/nonexistent/ttyUSB0", PermissionError(errno.EACCES, "x"))
    assert "join the group 'dialout'" in text


def test_port_busy(pty):
    with Machine.connect(pty.address):
        with pytest.raises(TransportError) as exc:
            Machine.connect(pty.address)
        assert one_line(exc.value) == f"port {pty.address} is busy: another program has it open"


def test_a_device_answering_garbage_is_named_within_2_s(pty):
    rng = random.Random(7)
    pty.machine.machine_to_host = lambda data: rng.randbytes(len(data))  # as at a wrong baud rate
    t0 = time.monotonic()
    with pytest.raises(LinkError) as exc:
        Machine.connect(pty.address)
    assert time.monotonic() - t0 < 2.0
    assert re.fullmatch(rf"{pty.address}: the device answers garbage \(\d+ bytes, no valid "
                        r"frame\): wrong baud rate, or not an SMP machine", one_line(exc.value))


def test_a_silent_device_is_named_within_2_s():
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        t0 = time.monotonic()
        with pytest.raises(LinkError, match=r"no answer to HELLO within 1\.5 s"):
            Machine.connect(path)
        assert time.monotonic() - t0 < 2.0
    finally:
        os.close(master)
        os.close(slave)


def test_loop_url_is_recognised_as_an_echo():
    with pytest.raises(LinkError, match="only our own frames came back"):
        Machine.connect("loop://")


class OtherVersionFirmware(Firmware):
    def ident(self):
        import dataclasses
        return dataclasses.replace(super().ident(), protocol=PROTOCOL_VERSION + 1)


def test_protocol_version_mismatch_names_both_versions():
    link = PtyServer.simulate(firmware=OtherVersionFirmware(MonotonicClock()))
    link.start()
    try:
        with pytest.raises(LinkError) as exc:
            Machine.connect(link.address)
        assert one_line(exc.value) == (
            f"{link.address}: protocol version mismatch: the machine speaks version "
            f"{PROTOCOL_VERSION + 1}, this smp speaks version {PROTOCOL_VERSION}")
    finally:
        link.close()


def test_machine_limits_that_exclude_the_configured_envelope():
    machine_limits = SafetyEnvelope(depth_mm=Range(lo="0.2", hi="2.5"),
                                    rate_hz=Range(lo="50", hi="150"),
                                    voltage_v=Range(lo="3.0", hi="8.0"))
    clinic = SafetyEnvelope(depth_mm=Range(lo="1.0", hi="2.0"), rate_hz=Range(lo="100", hi="150"),
                            voltage_v=Range(lo="9.0", hi="12.0"))
    link = PtyServer.simulate(limits=machine_limits)
    link.start()
    try:
        with pytest.raises(LinkError) as exc:
            Machine.connect(link.address, clinic)
        assert one_line(exc.value) == (
            f"{link.address}: voltage: the machine allows 3.0 to 8.0 V but 9.0 to 12.0 V is "
            "required; no value satisfies both")
    finally:
        link.close()


def test_sim_url_runs_an_in_process_machine():
    with Machine.connect("sim://?serial=SIM-0042") as m:
        assert m.ident.serial == "SIM-0042" and m.simulated
        assert m.apply(CROWN) == CROWN
        fw = m.transport.simulator.firmware
        assert fw.applied == CROWN.to_wire()


def test_sim_url_with_an_unknown_option():
    with pytest.raises(TransportError, match="unknown option 'colour'"):
        open_transport("sim://?colour=red")


def test_spy_url_wraps_a_real_port(pty, tmp_path):
    log = tmp_path / "spy.txt"
    with Machine.connect(f"spy://{pty.address}?file={log}") as m:
        assert m.apply(CROWN) == CROWN
    assert "TX" in log.read_text() or "RX" in log.read_text()


def test_socket_url_reaches_a_machine_on_loopback():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    done = threading.Event()

    def serve():
        conn, _ = server.accept()
        conn.settimeout(0.002)
        fw = Firmware(MonotonicClock(), output=conn.sendall)
        while not done.is_set():
            try:
                data = conn.recv(4096)
                if not data:
                    break
                fw.feed(data)
            except TimeoutError:
                pass
            except OSError:
                break
            fw.tick()
        conn.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with Machine.connect(f"socket://127.0.0.1:{port}") as m:
            assert m.apply(CROWN) == CROWN
    finally:
        done.set()
        t.join(2)
        server.close()
