"""The bridge and the firmware core over a REAL pty: handshake, read-back, duplicates,
retransmission, watchdog, STOP under a full queue, reboot detection, link states."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal

import pytest

from firmware_bridge import LinkError, LinkState, Machine, OutsideEnvelope
from firmware_bridge.codec import Applied, Fault, MsgType, State, encode
from firmware_bridge.events import (
    CommandFailed,
    FaultLatched,
    LinkStateChanged,
    MachineRebooted,
    SettingsApplied,
    SettingsRefused,
    StateChanged,
)
from protocols import MachineSettings
from protocols.envelope import Range, SafetyEnvelope
from sim.serve import PtyServer
from tests.link.conftest import FrameFilter, connected, wait_for

CROWN = MachineSettings(depth_mm=Decimal("1.8"), rate_hz=Decimal("130"), voltage_v=Decimal("7.5"))
HAIRLINE = MachineSettings(depth_mm=Decimal("1.5"), rate_hz=Decimal("110"),
                           voltage_v=Decimal("6.5"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def of(events, cls):
    return [e for e in events if isinstance(e, cls)]


def fw_log(pty, what):
    return [e for e in list(pty.firmware.log) if e.what == what]


def test_handshake(pty, machine):
    assert machine.ident.serial == "SIM-0001" and machine.ident.boot_id == 0x0B00_7001
    assert machine.simulated
    assert machine.state == State.DISARMED and machine.applied is None
    assert wait_for(lambda: machine.telemetry is not None)
    assert machine.link_state == LinkState.CONNECTED
    assert pty.firmware.handshaken


def test_connecting_changes_nothing_process_wide(pty):
    """The link runs in its own thread (or the machine service's process); it must not tune
    the interpreter for everyone (the old bridge lowered the GIL switch interval)."""
    before = sys.getswitchinterval()
    with connected(pty.address):
        assert sys.getswitchinterval() == before
    assert sys.getswitchinterval() == before


def test_apply_returns_the_read_back(pty, machine):
    confirmed = machine.apply(CROWN)
    assert confirmed == CROWN
    assert pty.firmware.applied == CROWN.to_wire()
    (ev,) = of(machine.events, SettingsApplied)
    assert ev.requested == CROWN and ev.applied == CROWN
    assert machine.applied == CROWN


def test_what_is_reported_applied_is_the_read_back_not_the_request(pty, machine):
    """Invariant 3: what the record says was applied is the machine's read-back."""
    def rewrite(f):
        if f.type == MsgType.APPLIED:  # the machine applied 7.0 V, not the 7.5 V asked for
            return encode(Applied(1800, 1300, 7000), ack=f.ack)
        return 1
    pty.machine.machine_to_host = FrameFilter(rewrite)
    with pytest.raises(LinkError, match=r"but depth 1\.80 mm, rate 130\.0 Hz, voltage 7\.5 V "
                       r"was asked; STOP sent"):
        machine.apply(CROWN)  # set to something nobody asked for: the host stops it
    (ev,) = of(machine.events, SettingsApplied)
    assert ev.applied.voltage_v == Decimal("7.0") and ev.requested.voltage_v == Decimal("7.5")
    assert machine.applied == ev.applied


def test_duplicate_commands_are_answered_but_executed_once(pty, machine):
    """Invariant 3: a setpoint is applied at most once, even when the line duplicates it."""
    pty.machine.host_to_machine = FrameFilter(lambda f: 2 if f.type == MsgType.SET else 1)
    assert machine.apply(CROWN) == CROWN
    assert wait_for(lambda: pty.firmware.duplicates == 1)
    assert pty.firmware.sets_applied == 1 and len(fw_log(pty, "SET")) == 1
    assert len(of(machine.events, SettingsApplied)) == 1


def test_retransmission_after_a_dropped_ack(pty, machine):
    dropped = []

    def drop_first_applied(f):
        if f.type == MsgType.APPLIED and not dropped:
            dropped.append(f)
            return 0
        return 1
    pty.machine.machine_to_host = FrameFilter(drop_first_applied)
    t0 = time.monotonic()
    assert machine.apply(CROWN) == CROWN
    took = time.monotonic() - t0
    assert dropped, "the filter dropped the first read-back"
    assert pty.firmware.sets_applied == 1 and pty.firmware.duplicates == 1
    assert 0.025 <= took < 0.5  # one retransmission timeout, clamped to 25..500 ms
    assert machine.health().resend_ratio > 0


def test_a_command_that_is_never_answered_fails_and_stops_the_machine(pty, machine):
    machine.apply(HAIRLINE)
    machine.arm()
    pty.firmware.set_pedal(True)
    assert wait_for(lambda: machine.state == State.RUNNING)
    pty.machine.machine_to_host = FrameFilter(lambda f: 0 if f.type == MsgType.APPLIED else 1)
    with pytest.raises(LinkError, match="no answer after 4 transmissions"):
        machine.apply(CROWN)
    assert pty.firmware.duplicates == 3  # sent once, retried three times
    assert wait_for(lambda: pty.firmware.state == State.FAULTED)
    assert pty.firmware.faults & Fault.STOP and not pty.firmware.motor_on
    assert of(machine.events, CommandFailed)[0].command == "SET"


def test_outside_the_envelope_is_refused_before_sending(pty):
    """Invariant 2: the bridge enforces the narrower of its envelope and the machine's."""
    pty.close()
    narrow = SafetyEnvelope(depth_mm=Range(lo="0.5", hi="2.0"), rate_hz=Range(lo="80", hi="140"),
                            voltage_v=Range(lo="5.0", hi="8.0"))
    link = PtyServer.simulate(limits=narrow)
    link.start()
    try:
        with Machine.connect(link.address) as m:
            assert m.envelope.voltage_v == Range(lo="5.0", hi="8.0")
            hot = MachineSettings(depth_mm=Decimal("1.8"), rate_hz=Decimal("130"),
                                  voltage_v=Decimal("9.0"))
            events = []
            m.subscribe(events.append)
            with pytest.raises(OutsideEnvelope) as exc:
                m.apply(hot)
            assert str(exc.value) == (
                "not sent: voltage 9.0 V is outside the allowed 5.0 to 8.0 V (the machine "
                "allows 5.0 to 8.0 V, the configured envelope 3.0 to 12.0 V)")
            assert wait_for(lambda: of(events, SettingsRefused))
            assert of(events, SettingsRefused)[0].by == "bridge"
            time.sleep(0.05)
            assert not fw_log(link, "SET") and link.firmware.applied is None
            assert m.apply(CROWN) == CROWN
    finally:
        link.close()


def test_the_configured_envelope_narrows_too(pty):
    clinic = SafetyEnvelope(depth_mm=Range(lo="1.0", hi="2.0"), rate_hz=Range(lo="100", hi="150"),
                            voltage_v=Range(lo="6.0", hi="8.5"))
    refused = r"needle depth 0\.50 mm is outside the allowed 1\.00 to 2\.00 mm"
    with Machine.connect(pty.address, clinic) as m, pytest.raises(OutsideEnvelope, match=refused):
            m.apply(MachineSettings(depth_mm=Decimal("0.5"), rate_hz=Decimal("120"),
                                    voltage_v=Decimal("7.0")))


def test_arm_pedal_run_and_stop(pty, machine):
    machine.apply(CROWN)
    machine.arm()
    pty.firmware.set_pedal(True)
    assert wait_for(lambda: machine.state == State.RUNNING and machine.telemetry.motor_on)
    assert wait_for(lambda: machine.telemetry.rate_dhz > 1000)
    assert machine.stop() is True
    assert pty.firmware.state == State.FAULTED and not pty.firmware.motor_on
    assert wait_for(lambda: machine.state == State.FAULTED)
    assert any(isinstance(e, FaultLatched) and e.new == Fault.STOP for e in machine.events)
    pty.firmware.set_pedal(False)
    with pytest.raises(Exception, match="a fault is latched"):
        machine.arm()
    machine.clear_fault()
    assert wait_for(lambda: machine.state == State.DISARMED)
    machine.arm()
    assert wait_for(lambda: machine.state == State.ARMED)


def test_stop_under_a_full_queue(pty, machine):
    machine.apply(HAIRLINE)
    machine.arm()
    pty.firmware.set_pedal(True)
    assert wait_for(lambda: pty.firmware.motor_on)
    # The machine stops answering SETs, so one is outstanding and the rest pile up behind it.
    pty.machine.machine_to_host = FrameFilter(lambda f: 0 if f.type == MsgType.APPLIED else 1)
    results = []

    def apply_one(v):
        s = MachineSettings(depth_mm=Decimal("1.8"), rate_hz=Decimal(100 + v),
                            voltage_v=Decimal("7.5"))
        try:
            machine.apply(s)
            results.append("applied")
        except LinkError as exc:
            results.append(str(exc))
    threads = [threading.Thread(target=apply_one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    assert wait_for(lambda: machine.status.queued >= 15)
    t0 = time.monotonic()
    assert machine.stop() is True
    stopped_in = time.monotonic() - t0
    for t in threads:
        t.join(5)
    assert pty.firmware.state == State.FAULTED and pty.firmware.faults & Fault.STOP
    assert not pty.firmware.motor_on
    assert stopped_in < 0.25  # acknowledged at once, not after the queue (seconds of retries)
    assert sum("cancelled by STOP" in r for r in results) >= 15
    assert "applied" not in results
    # Nothing queued before the STOP was executed after it.
    log = list(pty.firmware.log)
    stop_at = next(i for i, e in enumerate(log) if e.what == "STOP")
    assert not [e for e in log[stop_at:] if e.what in ("SET", "duplicate")]


def test_watchdog_stops_the_needle_when_the_host_process_dies(pty):
    """Invariant 4: losing the host process stops the needle within the watchdog time."""
    script = textwrap.dedent(f"""
        import sys, time
        from decimal import Decimal
        from firmware_bridge import Machine
        from protocols import MachineSettings
        m = Machine.connect({pty.address!r})
        m.apply(MachineSettings(depth_mm=Decimal("1.8"), rate_hz=Decimal("130"),
                                voltage_v=Decimal("7.5")))
        m.arm()
        print("ready", flush=True)
        time.sleep(60)
    """)
    host = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        assert host.stdout.readline().strip() == "ready"
        pty.firmware.set_pedal(True)
        assert wait_for(lambda: pty.firmware.motor_on)
        time.sleep(0.3)
        assert pty.firmware.motor_on  # the heartbeat keeps it running
        os.kill(host.pid, signal.SIGKILL)
        killed_at = time.monotonic_ns()
        assert wait_for(lambda: not pty.firmware.motor_on, timeout=1.0)
    finally:
        host.kill()
        host.wait()
    fw = pty.firmware
    assert fw.state == State.FAULTED and fw.faults == Fault.LINK_LOST
    silent_for = fw.motor_off_ns - fw.last_host_ns
    # 250 ms after the last valid host frame, not before; the margin is the sim thread's tick
    assert 250e6 <= silent_for <= 290e6
    assert fw.motor_off_ns - killed_at <= 300e6
    time.sleep(0.3)
    assert fw.state == State.FAULTED  # and it stays down


def test_watchdog_stops_the_needle_when_the_line_goes_dead(pty, machine):
    """Invariant 4: losing the link stops the needle within the watchdog time."""
    machine.apply(CROWN)
    machine.arm()
    pty.firmware.set_pedal(True)
    assert wait_for(lambda: pty.firmware.motor_on)
    pty.machine.host_to_machine = lambda data: b""  # the cable is cut on the way in
    assert wait_for(lambda: pty.firmware.state == State.FAULTED, timeout=0.5)
    assert pty.firmware.faults == Fault.LINK_LOST
    pty.machine.host_to_machine = None  # cable back: the machine stays down until a person acts
    time.sleep(0.2)
    assert pty.firmware.state == State.FAULTED and pty.firmware.link_alive


def test_link_states_stale_and_lost_and_back(pty, machine):
    # Frames are counted lost from the last one seen: wait for one (connect() may return
    # before any telemetry has arrived).
    assert wait_for(lambda: machine.telemetry is not None)
    pty.machine.machine_to_host = lambda data: b""
    assert wait_for(lambda: machine.link_state == LinkState.LOST, timeout=1.5)
    pty.machine.machine_to_host = None
    assert wait_for(lambda: machine.link_state == LinkState.CONNECTED, timeout=1.0)
    changes = [(e.old, e.new) for e in of(machine.events, LinkStateChanged)]
    assert changes == [(LinkState.CONNECTED, LinkState.STALE), (LinkState.STALE, LinkState.LOST),
                       (LinkState.LOST, LinkState.CONNECTED)]
    h = machine.health()
    assert h.telemetry_lost > 10 and h.telemetry_age_ms < 100


def test_reboot_is_detected_and_reported(pty, machine):
    machine.apply(CROWN)
    machine.arm()
    old = machine.ident.boot_id
    pty.firmware.reboot(boot_id=0x0B00_7002)
    assert wait_for(lambda: of(machine.events, MachineRebooted))
    (ev,) = of(machine.events, MachineRebooted)
    assert (ev.old_boot_id, ev.new_boot_id) == (old, 0x0B00_7002)
    assert machine.ident.boot_id == 0x0B00_7002
    assert machine.applied is None  # the machine forgot its settings
    assert wait_for(lambda: machine.state == State.DISARMED)
    assert pty.firmware.handshaken  # handshake done again
    assert machine.apply(CROWN) == CROWN  # usable again, after a deliberate re-apply
    assert pty.firmware.state == State.DISARMED  # never re-armed by the host on its own


def test_state_changes_are_published(pty, machine):
    machine.apply(CROWN)
    machine.arm()
    assert wait_for(lambda: machine.state == State.ARMED)
    assert [(e.old, e.new) for e in of(machine.events, StateChanged)][-1] == (
        State.DISARMED, State.ARMED)


def test_close_disarms(pty, machine):
    machine.apply(CROWN)
    machine.arm()
    assert wait_for(lambda: pty.firmware.state == State.ARMED)
    machine.close()
    assert pty.firmware.state == State.DISARMED


def test_rtt_is_measured_and_the_timeout_adapts(pty, machine):
    for _ in range(20):
        machine.apply(CROWN)
    h = machine.health()
    assert h.rtt_ms is not None and h.rtt_ms < 20
    assert 25 <= h.rto_ms <= 500


def test_a_port_that_goes_away_costs_nothing_while_gone_and_is_opened_again(tmp_path):
    """The machine unplugged (its pty closed): the link is lost and the host waits for the
    port without spinning; the machine back on the same path is hand-shaken again as a
    restarted machine, and nothing is re-armed."""
    port = tmp_path / "machine"
    first = PtyServer.simulate(link=port, boot_id=0x0B00_7001)
    first.start()
    m = Machine.connect(str(port), reopen=True)
    second = None
    try:
        m.apply(CROWN)
        m.arm()
        first.close()
        assert wait_for(lambda: m.link_state == LinkState.LOST)
        cpu = time.process_time()
        time.sleep(1.0)
        assert time.process_time() - cpu < 0.3  # a spinning loop would take the whole second
        second = PtyServer.simulate(link=port, boot_id=0x0B00_7002)
        second.start()
        assert wait_for(lambda: m.ident is not None and m.ident.boot_id == 0x0B00_7002, 3)
        assert wait_for(lambda: m.link_state == LinkState.CONNECTED)
        assert m.applied is None
        assert second.firmware.state == State.DISARMED, second.firmware.faults
        assert m.apply(CROWN) == CROWN
    finally:
        m.close(disarm=False)
        if second is not None:
            second.close()
