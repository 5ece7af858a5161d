"""The machine service in a process of its own, between the console (this test, or a child
process that can be killed) and `smp sim` on a real pty, with a man in the middle of the line
where a case needs one. Every verdict about the needle comes from the simulator's own log.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import pytest

from console import machine_process
from firmware_bridge.codec import State
from firmware_bridge.commands import NotAllowed, NotConfirmed, OutcomeUnknown
from firmware_bridge.core import Knowledge
from firmware_bridge.events import SettingsApplied, SettingsUnknown, UnsafeReport
from protocols import MachineSettings
from tests.reliability.conftest import CROWN, set_text, wait_for

DEEP = MachineSettings(depth_mm=2.4, rate_hz=150, voltage_v=11)


class Mitm:
    """sim/mitm.py in its own process between the host and the machine."""

    def __init__(self, upstream: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "sim.mitm", upstream],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.fullmatch(r"mitm on (\S+)\n", line)
        assert m, line
        self.address = m[1]

    def say(self, command: str) -> int:
        """Carry out a command; the CLOCK_MONOTONIC time (ns) at which it took effect."""
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().split()
        assert answer[:1] == ["ok"], answer
        return int(answer[1])

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def mitm(sim):
    m = Mitm(sim.address)
    yield m
    m.close()


@pytest.fixture
def connect():
    """Control a machine through a service process, as the console does."""
    opened = []

    def make(port: str):
        client, service = machine_process.connect_machine(port)
        client.events = []
        client.subscribe(client.events.append)
        opened.append((client, service))
        return client

    yield make
    for client, service in opened:
        client.close()
        if service is not None:
            service.close()


def _hold_the_gil() -> None:
    """One C call that keeps the interpreter to itself for about a second."""
    import random

    data = [random.random() for _ in range(1_500_000)]
    data.sort()


def needle_running(sim, host, settings=CROWN) -> int:
    """Apply, arm, pedal down; the machine's clock (ns) when its log says RUNNING."""
    assert host.apply(settings) == settings
    host.arm()
    sim.say("pedal down")
    assert sim.log.wait_state("RUNNING")
    return [e for e, _, new, _ in sim.log.transitions() if new == "RUNNING"][-1].mono_ns


def test_the_service_runs_the_link_in_its_own_process(sim, connect):
    host = connect(sim.address)
    assert host.ident.serial == "SIM-0001" and host.simulated
    service = machine_process.find_service(sim.address)
    assert service is not None and service.pid != os.getpid()
    needle_running(sim, host)
    sim.say("pedal up")
    assert sim.log.wait_state("ARMED")


def test_a_busy_console_cannot_delay_the_heartbeat(make_sim, connect):
    """The console's process runs pure-Python threads and one long GIL-holding call: the
    heartbeat comes from the service's process and keeps arriving at the machine, by the
    machine's own log. (This suite runs on loaded machines: it counts the beats that arrived
    while the console was busy; bench/bench_heartbeat.py measures the gaps.)"""
    sim = make_sim("--log-heartbeats")
    host = connect(sim.address)
    needle_running(sim, host)
    stop = threading.Event()

    def hog() -> None:
        while not stop.is_set():
            sum(i * i for i in range(10_000))

    hogs = [threading.Thread(target=hog) for _ in range(2)]
    start = time.monotonic_ns()
    for t in hogs:
        t.start()
    try:
        _hold_the_gil()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in hogs:
            t.join()
    end = time.monotonic_ns()
    sim.say("pedal up")
    beats = [e for e in sim.log.entries() if e.what == "heartbeat" and start < e.mono_ns < end]
    expected = (end - start) / 50e6
    assert len(beats) >= 0.6 * expected, (len(beats), expected)
    sim.log.assert_needle_safe()


def test_beside_an_in_process_link_the_same_work_stops_the_needle(sim):
    """Why the link has a process of its own: the same long GIL-holding call in the process
    that runs the heartbeat starves it, and the machine's watchdog stops the needle."""
    from firmware_bridge import Machine

    with Machine.connect(sim.address) as host:
        needle_running(sim, host)
        start = time.monotonic_ns()
        _hold_the_gil()
        assert sim.log.wait_entry("watchdog", after_ns=start, timeout=3) is not None
        sim.say("pedal up")


def test_a_set_whose_answers_are_all_lost_is_shown_as_what_the_machine_applied(sim, mitm,
                                                                               connect):
    """The machine applies the SET; every APPLIED is lost on the way back. The host must
    not keep showing the old settings: they are unknown, then what the machine's telemetry
    names; arming waits for a confirmed SET; no needle runs at settings the host does not
    show (the machine's log is the judge)."""
    host = connect(mitm.address)
    assert host.apply(CROWN) == CROWN
    mitm.say("drop m2h APPLIED")
    with pytest.raises(OutcomeUnknown, match="not confirmed"):
        host.apply(DEEP)
    assert [e for e in host.events if isinstance(e, SettingsUnknown)]
    assert set_text(DEEP) in [e.detail for e in sim.log.sets()]  # the machine applied it
    def learnt():
        return [e.applied for e in host.events if isinstance(e, SettingsApplied)
                and e.source == "telemetry"]

    assert wait_for(lambda: learnt() == [DEEP])
    assert host.applied == DEEP and host.knowledge is Knowledge.KNOWN
    assert sim.log.wait_state("FAULTED")  # the host stopped the machine
    host.clear_fault()
    with pytest.raises(NotConfirmed):
        host.arm()
    mitm.say("pass m2h APPLIED")
    assert host.apply(CROWN) == CROWN
    host.arm()
    sim.say("pedal down")
    assert sim.log.wait_state("RUNNING")
    assert host.applied == CROWN and sim.log.sets()[-1].detail == set_text(CROWN)
    sim.say("pedal up")


@pytest.mark.parametrize("direction", ["m2h", "h2m"])
def test_a_one_way_cut_stops_the_needle_within_the_watchdog_time(sim, mitm, connect,
                                                                 direction):
    host = connect(mitm.address)
    needle_running(sim, host)
    cut = mitm.say(f"cut {direction}")
    assert wait_for(lambda: sim.log.stopped_after(cut) is not None, timeout=3)
    stopped = sim.log.stopped_after(cut)
    cause = stopped.transition[2]
    # Towards the host only the host can stop it (the machine still hears heartbeats); towards
    # the machine, its watchdog does. Either way within the watchdog time (the host acts at
    # 150 ms; bench/bench_cuts.py measures the distribution over many cuts).
    assert cause == ("STOP" if direction == "m2h" else "watchdog"), stopped
    assert (stopped.mono_ns - cut) / 1e6 <= 250
    mitm.say("heal")
    sim.log.assert_needle_safe()


def test_an_unknown_state_from_the_machine_is_answered_with_stop(sim, mitm, connect):
    host = connect(mitm.address)
    needle_running(sim, host)
    at = mitm.say("state m2h 7")
    assert sim.log.wait_entry("STOP", after_ns=at) is not None
    assert wait_for(lambda: any(isinstance(e, UnsafeReport) and "unknown state 7" in e.what
                                for e in host.events))
    assert host.state is None  # shown as unknown, never as the last state it understood
    mitm.say("state m2h none")
    assert wait_for(lambda: host.state == State.FAULTED)


def test_a_killed_console_has_its_needle_stopped_by_the_service_at_once(sim, tmp_path):
    child = subprocess.Popen([sys.executable, "-m", "tests.reliability.host_child", "client",
                              sim.address], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "armed"
        sim.say("pedal down")
        assert sim.log.wait_state("RUNNING")
        killed = time.monotonic_ns()
        child.kill()
        child.wait(timeout=5)
        assert wait_for(lambda: sim.log.stopped_after(killed) is not None, timeout=3)
        stopped = sim.log.stopped_after(killed)
        assert stopped.transition[2] == "STOP"  # the service's, long before any watchdog
        assert (stopped.mono_ns - killed) / 1e6 < 200
        # and the service it started ended after its last STOP
        assert wait_for(lambda: machine_process.find_service(sim.address) is None, timeout=5)
    finally:
        child.stdout.close()
        if child.poll() is None:
            child.kill()


def test_a_second_controller_is_refused_naming_who_holds_the_machine(sim, connect):
    connect(sim.address)
    with pytest.raises(NotAllowed, match=r"^the machine is controlled by smp console pid "
                                         rf"{os.getpid()} \(.*\) since \d\d:\d\d:\d\d$"):
        machine_process.connect_machine(sim.address)


def test_an_observer_sees_everything_and_may_only_stop(sim, connect):
    host = connect(sim.address)
    service = machine_process.find_service(sim.address)
    from firmware_bridge.client import MachineClient

    with MachineClient.connect(service.socket, role="observe", who="second screen") as watcher:
        needle_running(sim, host)
        assert wait_for(lambda: watcher.state == State.RUNNING)
        with pytest.raises(NotAllowed, match="only observes"):
            watcher.arm()
        assert watcher.stop()
        assert sim.log.wait_state("FAULTED")


def test_a_stale_registry_entry_from_a_crashed_service_is_removed_not_trusted(sim, connect):
    from console.paths import runtime_dir

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    entry = runtime_dir() / f"machine-{dead.pid}.json"
    sock = runtime_dir() / f"machine-{dead.pid}.sock"
    sock.write_text("")
    entry.write_text(f'{{"pid": {dead.pid}, "url": "{sim.address}", "key": '
                     f'"{machine_process.port_key(sim.address)}", "socket": "{sock}", '
                     f'"started": 0}}')
    host = connect(sim.address)  # starts a service of its own instead of joining the dead one
    assert host.ident is not None
    assert not entry.exists() and not sock.exists()


def test_a_port_open_elsewhere_is_one_line(sim):
    import serial

    holder = serial.serial_for_url(sim.address, exclusive=True)
    try:
        with pytest.raises(Exception) as exc:
            machine_process.connect_machine(sim.address)
        assert str(exc.value) == f"port {sim.address} is busy: another program has it open"
    finally:
        holder.close()
