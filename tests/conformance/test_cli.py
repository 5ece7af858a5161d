"""`smp conformance` on the command line: bad input is one line and exit 2, no traceback; a
report a maker can attach to a bug."""

import dataclasses
import json
import os
import random
import threading

import pytest

from console.cli import main
from firmware_bridge.conformance import CLAUSES, ORDER
from firmware_bridge.schema import PROTOCOL_VERSION
from sim.clock import MonotonicClock
from sim.firmware import Firmware
from sim.serve import PtyServer


def one_line_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("smp: error: ") and "Traceback" not in err
    return err.strip()


def test_an_unknown_clause_id_names_how_to_list_them(capsys):
    err = one_line_error(capsys, ["conformance", "--port", "/dev/null", "--clause", "C-99.1"])
    assert err == (f"smp: error: unknown clause 'C-99.1'; `smp conformance --list` shows the "
                   f"{len(CLAUSES)} clauses (C-1.1 to {ORDER[-2]})")


def test_no_port(capsys):
    assert "--port is required" in one_line_error(capsys, ["conformance"])


def test_list_shows_every_clause(capsys):
    assert main(["conformance", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ORDER


def test_no_such_port(capsys):
    assert "no such port /dev/ttyNOPE7" in one_line_error(
        capsys, ["conformance", "--port", "/dev/ttyNOPE7"])


@pytest.fixture
def bare_pty():
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_a_silent_port_is_not_a_machine(capsys, bare_pty):
    _, path = bare_pty
    err = one_line_error(capsys, ["conformance", "--port", path])
    assert err == (f"smp: error: {path}: not an SMP machine: no answer to HELLO within 1.5 s (is "
                   "it switched on, and is this its port?)")


def test_a_port_that_answers_garbage_is_not_a_machine(capsys, bare_pty):
    master, path = bare_pty
    stop = threading.Event()
    rng = random.Random(3)

    def noise():
        while not stop.wait(0.01):
            os.write(master, bytes(b or 1 for b in rng.randbytes(32)))
    t = threading.Thread(target=noise, daemon=True)
    t.start()
    try:
        err = one_line_error(capsys, ["conformance", "--port", path])
    finally:
        stop.set()
        t.join()
    assert err.startswith(f"smp: error: {path}: not an SMP machine: the device answers garbage")


def test_a_loopback_is_not_a_machine(capsys):
    err = one_line_error(capsys, ["conformance", "--port", "loop://"])
    assert err == ("smp: error: loop://: not an SMP machine: only our own frames came back (a "
                   "loopback or an echoing device)")


class OtherVersionFirmware(Firmware):
    def ident(self):
        return dataclasses.replace(super().ident(), protocol=PROTOCOL_VERSION + 1)


def test_a_device_of_another_protocol_version_names_both(capsys):
    link = PtyServer.simulate(firmware=OtherVersionFirmware(MonotonicClock()))
    link.start()
    try:
        err = one_line_error(capsys, ["conformance", "--port", link.address])
    finally:
        link.close()
    assert err == (f"smp: error: {link.address}: the device speaks protocol version "
                   f"{PROTOCOL_VERSION + 1}; smp conformance checks version {PROTOCOL_VERSION}")


def test_a_report_a_maker_can_attach(capsys, tmp_path):
    report = tmp_path / "report.json"
    code = main(["conformance", "--port", "sim://?serial=SIM-0042", "--clause", "C-9.2",
                 "--clause", "C-4.3", "--clause", "C-10.4", "--non-interactive",
                 "--report", str(report)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith("device: SMP-R1 SIM-0042, firmware 2.0.0, protocol 2 (a simulator)")
    assert out[1].startswith("not arming: ")
    assert [line.split()[:2] for line in out[2:5]] == [["PASS", "C-4.3"], ["PASS", "C-9.2"],
                                                       ["SKIPPED", "C-10.4"]]
    assert out[5] == "2 passed, 0 failed, 1 skipped"
    data = json.loads(report.read_text())
    assert data["device"]["serial"] == "SIM-0042" and data["summary"] == out[5]
    assert [r["outcome"] for r in data["results"]] == ["PASS", "PASS", "SKIPPED"]
    assert data["results"][2]["observed"] == "needs an armed machine: --allow-arm"


def test_on_another_device_the_person_at_the_machine_is_asked(monkeypatch):
    """No simulator controls: the pedal and the faults are asked of a person, who here is a
    script acting on the simulated machine; the heartbeat goes on while they are asked."""
    from console import cmd_conformance
    from firmware_bridge.conformance import run, select
    from firmware_bridge.schema import State
    from sim.scenario import command
    from tests.conformance.virtual import virtual

    line, _ = virtual()
    machine = line.machine
    prompts: list[str] = []
    released_at = []

    def person_reads(text: str) -> None:
        prompts.append(text)
        if "press" in text and "pedal" in text:
            machine.press_pedal(True)
        elif "release the pedal" in text:
            machine.press_pedal(False)

    read = line.read

    def read_and_watch(*a):  # the person lets go once the needle has run a while
        data = read(*a)
        fw = machine.firmware
        if "release it when the needle runs" in " ".join(prompts[-1:]) and \
                fw.state == State.RUNNING and fw.physics.rate_hz > 100 and not released_at:
            released_at.append(line.now())
            machine.press_pedal(False)
        return data
    line.read = read_and_watch
    actions = {"unblock the needle": "clear stall", "block the needle": "fault stall"}

    def enter(idle):
        for _ in range(50):
            idle()  # the person takes a moment; the link keeps going
        wanted = next(a for p, a in actions.items() if p in prompts[-1])
        machine.do(command(wanted))
        return "\n"
    monkeypatch.setattr(cmd_conformance, "_read_line", enter)
    report = run(line, "/dev/ttyUSB9", clauses=select(["C-10.4", "C-11.3"]), allow_arm=True,
                 operator=cmd_conformance.PersonOperator(out=person_reads), clock=line.now,
                 out=lambda _: None)
    assert [r.outcome for r in report.results] == ["PASS", "PASS"], report.results
    assert prompts[0] == "  >> press the pedal now, release it when the needle runs"
    assert any("block the needle so that the motor cannot turn, then press Enter" in p
               for p in prompts)
    assert released_at


def test_the_person_may_skip_a_clause(monkeypatch):
    from console import cmd_conformance
    from firmware_bridge.conformance import run, select
    from tests.conformance.virtual import virtual

    line, _ = virtual()
    monkeypatch.setattr(cmd_conformance, "_read_line", lambda idle: "s\n")
    report = run(line, "/dev/ttyUSB9", clauses=select(["C-10.1"]),
                 operator=cmd_conformance.PersonOperator(out=lambda _: None), clock=line.now,
                 out=lambda _: None)
    assert [(r.outcome, r.observed) for r in report.results] == [
        ("SKIPPED", "skipped by the person at the machine")]
