"""`smp sim` in its own process behind a real, paced pty, driven by the bridge."""

import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from firmware_bridge import Machine
from firmware_bridge.codec import Fault, State
from firmware_bridge.events import FaultLatched, LinkState, MachineRebooted
from protocols import MachineSettings
from tests.link.conftest import connected, told, wait_for

CROWN = MachineSettings(depth_mm=1.8, rate_hz=130, voltage_v=7.5)


class SimProcess:
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "console", "sim", "--quiet", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        first = self.proc.stdout.readline()
        m = re.match(r"SIMULATOR listening on (\S+)  \((\d+) baud 8N1, seed (\d+)\)", first)
        assert m, first + self.proc.stderr.read()
        self.address = m[1]
        assert self.proc.stdout.readline().startswith("connect with: smp console --port ")
        control = self.proc.stdout.readline()
        assert control.startswith("control: "), control
        self.control = control.split(": ", 1)[1].strip()

    def say(self, line):
        """A command on the simulator's standard input; waits for its 'ok'."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == f"ok: {line}"

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


@pytest.fixture
def sim():
    process = SimProcess("--pty", "--baud", "115200", "--seed", "1")
    yield process
    process.close()


@pytest.fixture
def host(sim):
    with connected(sim.address) as m:
        yield m


def test_handshake_apply_and_telemetry_against_a_separate_process(sim, host):
    assert host.simulated and host.ident.serial == "SIM-0001"
    assert host.apply(CROWN) == CROWN  # the read-back
    host.arm()
    sim.say("skin normal")
    sim.say("pedal down")
    assert wait_for(lambda: told(host, "state", State.RUNNING)
                    and host.telemetry.rate_dhz > 1200, timeout=3)
    assert host.telemetry.current_ma > 150
    # the depth actuator travels at 2 mm/s; telemetry follows it until it arrives
    assert wait_for(lambda: told(host, "depth_um", 1800), timeout=3)
    sim.say("pedal up")
    assert wait_for(lambda: told(host, "state", State.ARMED))


@pytest.mark.parametrize(("fault", "flag"), [("stall", Fault.STALL),
                                             ("overcurrent", Fault.OVERCURRENT),
                                             ("overtemp", Fault.OVERTEMP)])
def test_physical_faults_stop_the_needle_and_the_host_reports_them(sim, host, fault, flag):
    host.apply(CROWN)
    host.arm()
    sim.say("skin thick")
    sim.say("pedal down")
    assert wait_for(lambda: told(host, "state", State.RUNNING), timeout=3)
    sim.say(f"fault {fault}")
    assert wait_for(lambda: host.faults & flag, timeout=10)
    assert wait_for(lambda: told(host, "rate_dhz", 0) and not host.telemetry.motor_on)
    assert host.state == State.FAULTED
    assert any(isinstance(e, FaultLatched) and e.new & flag for e in host.events)


def test_link_drop_stops_the_needle_and_the_host_sees_the_link_lost(sim, host):
    host.apply(CROWN)
    host.arm()
    sim.say("pedal down")
    assert wait_for(lambda: told(host, "state", State.RUNNING), timeout=3)
    sim.say("fault link-drop 1.0")
    assert wait_for(lambda: host.link_state == LinkState.LOST, timeout=2)
    assert wait_for(lambda: host.link_state == LinkState.CONNECTED, timeout=3)
    assert host.faults & Fault.LINK_LOST and host.state == State.FAULTED
    assert not host.telemetry.motor_on  # still down: the needle does not restart by itself


def test_reboot_is_reported_and_the_machine_comes_back_disarmed(sim, host):
    host.apply(CROWN)
    host.arm()
    sim.say("pedal down")
    sim.say("fault reboot")
    assert wait_for(lambda: any(isinstance(e, MachineRebooted) for e in host.events), timeout=3)
    assert wait_for(lambda: told(host, "state", State.DISARMED))
    assert not host.telemetry.motor_on


def test_the_pty_never_carries_more_than_the_baud_rate(tmp_path):
    # Offer ~20 kB/s of line noise: more than 115200 baud can carry.
    script = tmp_path / "noise.txt"
    script.write_text("".join(f"{t / 20:g} fault garbage 1024\n" for t in range(80)))
    sim = SimProcess("--pty", "--baud", "115200", "--script", str(script))
    fd = os.open(sim.address, os.O_RDWR | os.O_NOCTTY)
    try:
        arrivals = []
        end = time.monotonic() + 3.5
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                arrivals.append((time.monotonic(), len(os.read(fd, 65536))))
    finally:
        os.close(fd)
        sim.close()
    t0 = arrivals[0][0]
    busy = [(t - t0, n) for t, n in arrivals if t - t0 <= 3.0]
    total = sum(n for _, n in busy)
    rate = total / busy[-1][0]
    # Jitter in when this reader wakes up can only move bytes between windows, not add any.
    assert rate <= 11520 * 1.01, rate
    assert rate >= 11520 * 0.9, rate  # and the line was really saturated
    per_second = [sum(n for t, n in busy if k <= t < k + 1) for k in range(3)]
    assert max(per_second) <= 11520 * 1.02, per_second


def test_tcp_on_loopback_and_refusal_elsewhere():
    sim = SimProcess("--tcp", "127.0.0.1:0")
    try:
        assert sim.address.startswith("socket://127.0.0.1:")
        with Machine.connect(sim.address) as m:
            assert m.apply(CROWN) == CROWN
    finally:
        sim.close()
    out = subprocess.run([sys.executable, "-m", "console", "sim", "--tcp", "0.0.0.0:5599"],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    assert out.stderr.strip() == ("smp: error: refusing to listen on 0.0.0.0: the simulator "
                                  "listens on loopback only (127.0.0.1, ::1); add --allow-remote "
                                  "to override")


def test_a_bad_scenario_line_is_refused_with_file_line_and_reason(tmp_path):
    bad = tmp_path / "demo.txt"
    bad.write_text("0 say hi\n1 pedal sideways\n")
    out = subprocess.run([sys.executable, "-m", "console", "sim", "--script", str(bad)],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    assert out.stderr.strip() == f"smp: error: {bad}:2: pedal takes 'down' or 'up'"


def test_the_machine_log_tells_its_own_side_of_the_story(tmp_path):
    import json

    log = tmp_path / "machine.jsonl"
    sim = SimProcess("--pty", "--events", str(log))
    try:
        with connected(sim.address) as host:
            host.apply(CROWN)
            host.arm()
            sim.say("pedal down")
            assert wait_for(lambda: told(host, "state", State.RUNNING), timeout=3)
            host.stop()
    finally:
        sim.close()
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    whats = [e["what"] for e in entries]
    assert whats[0] == "boot" and "HELLO" in whats and "SET" in whats and "STOP" in whats
    states = [e["detail"] for e in entries if e["what"] == "state"]
    assert states[:3] == ["DISARMED -> ARMED: ARM", "ARMED -> RUNNING: pedal down",
                          "RUNNING -> FAULTED: STOP"]


def test_ctrl_c_stops_cleanly_and_removes_the_symlink(tmp_path):
    link = tmp_path / "smp-sim"
    sim = SimProcess("--pty", "--link", str(link), "--script", "hairline-pass")
    assert os.path.realpath(link).startswith("/dev/pts/")
    sim.proc.send_signal(signal.SIGINT)
    assert sim.proc.wait(timeout=10) == 0
    assert "smp sim: stopped" in sim.proc.stderr.read()
    assert not link.exists() and not link.is_symlink()
    sim.close()


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_fifo_or_directory_as_script_is_one_line_and_exit_1_never_a_hang(tmp_path, kind):
    path = tmp_path / "scenario.txt"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    out = subprocess.run([sys.executable, "-m", "console", "sim", "--script", str(path)],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    what = "a FIFO (named pipe)" if kind == "fifo" else "a directory"
    assert out.stderr.strip() == f"smp: error: {path}: is {what}, not a regular file; not read"
