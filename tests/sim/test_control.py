"""The simulator's control channel: a 0600 socket in a private directory, a registry entry a
program that knows only the port can find, stale entries removed, one-line refusals."""

import json
import os
import stat
import subprocess
import sys

import pytest

from console.paths import RuntimeDirError, runtime_dir
from sim.clock import FakeClock
from sim.control import ControlError, ControlServer, SimControl, find_control
from sim.machine import SimulatedMachine
from tests.sim.test_sim_process import SimProcess


@pytest.fixture
def private(tmp_path):
    d = tmp_path / "run"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture
def served(private, tmp_path):
    machine = SimulatedMachine(FakeClock())
    link = tmp_path / "machine-link"
    link.symlink_to("/dev/null")
    with ControlServer(machine, private, ["/dev/pts/77", str(link)]) as server:
        yield machine, server, link


def test_commands_in_the_scenario_language_and_status(served):
    machine, server, _ = served
    with SimControl(str(server.path)) as control:
        assert control.do("pedal down") == "ok: pedal down"
        assert control.do("fault stall") == "ok: fault stall"
        assert machine.firmware.pedal and machine.firmware.physics.injected.jam
        status = control.status()
        assert status["pedal"] is True and status["state"] == "DISARMED"
        assert set(status) >= {"state", "pedal", "link", "faults", "readings", "caption",
                               "playing"}
        with pytest.raises(ControlError, match=r"'pedal sideways': pedal takes 'down' or 'up'"):
            control.do("pedal sideways")
        assert control.do("clear stall") == "ok: clear stall"  # still usable after a refusal


def test_the_socket_is_0600_and_the_entry_names_the_device(served):
    _, server, link = served
    assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(server.entry).st_mode) == 0o600
    entry = json.loads(server.entry.read_text())
    assert entry["pid"] == os.getpid() and entry["control"] == str(server.path)
    assert {"/dev/pts/77", str(link), "/dev/null"} <= set(entry["devices"])


def test_find_control_by_path_link_or_real_path(served, private):
    _, server, link = served
    for port in ("/dev/pts/77", str(link), "/dev/null"):
        assert find_control(private, port) == str(server.path)
    assert find_control(private, "/dev/pts/78") is None


def test_a_stale_entry_is_removed_not_trusted(private):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    sock = private / "sim-1-1.sock"
    sock.write_text("")
    entry = private / "sim-1-1.json"
    entry.write_text(json.dumps({"pid": int(dead), "devices": ["/dev/pts/9"],
                                 "control": str(sock)}))
    assert find_control(private, "/dev/pts/9") is None
    assert not entry.exists() and not sock.exists()


def test_closing_removes_the_socket_and_the_entry(private):
    server = ControlServer(SimulatedMachine(FakeClock()), private, ["/dev/pts/5"])
    server.start()
    server.close()
    assert list(private.iterdir()) == []
    with pytest.raises(ControlError, match="cannot reach the simulator's control socket"):
        SimControl(str(server.path))


def test_smp_sim_serves_its_control_channel_for_its_port():
    sim = SimProcess("--pty", "--seed", "3")
    try:
        assert sim.control.endswith(".sock")
        assert find_control(runtime_dir(), sim.address) == sim.control
        with SimControl(sim.control) as control:
            control.do("skin thick")
            assert control.status()["skin"] == "thick"
    finally:
        sim.close()
    assert not os.path.exists(sim.control)


# --- console/paths.py ------------------------------------------------------------------------

def test_the_runtime_dir_is_xdg_smp_when_usable(tmp_path, monkeypatch):
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    d = runtime_dir()
    assert d == xdg / "smp" and stat.S_IMODE(d.stat().st_mode) == 0o700
    assert runtime_dir() == d  # and again, once it exists


def test_an_unusable_xdg_dir_falls_back_to_tmp(tmp_path, monkeypatch):
    xdg = tmp_path / "shared"
    xdg.mkdir()
    xdg.chmod(0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert runtime_dir() == type(xdg)(f"/tmp/smp-{os.getuid()}")


def test_a_runtime_dir_others_can_write_is_refused(tmp_path, monkeypatch):
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    (xdg / "smp").mkdir()
    (xdg / "smp").chmod(0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    with pytest.raises(RuntimeDirError, match=r"smp is writable by others \(mode 777\); remove"):
        runtime_dir()


@pytest.mark.skipif(os.getuid() != 0, reason="making a directory someone else's needs root")
def test_a_runtime_dir_owned_by_someone_else_is_refused(tmp_path, monkeypatch):
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    (xdg / "smp").mkdir(mode=0o700)
    os.chown(xdg / "smp", 4242, -1)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    with pytest.raises(RuntimeDirError, match="is owned by uid 4242, not by you"):
        runtime_dir()
