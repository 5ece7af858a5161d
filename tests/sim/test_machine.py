"""The whole simulated machine on a fake clock: faults, pacing and scenarios."""

import pytest

from firmware_bridge.codec import (
    Arm,
    Decoder,
    Fault,
    Heartbeat,
    Hello,
    Ident,
    MsgType,
    Set,
    State,
    encode,
)
from protocols.settings import WireSettings
from sim.clock import FakeClock
from sim.machine import SimulatedMachine
from sim.physics import Skin
from sim.scenario import parse

CROWN = WireSettings(1800, 1300, 7500)


class Host:
    """A minimal host on the same fake clock: sends frames, heartbeats every 50 ms."""

    def __init__(self, machine: SimulatedMachine, clock: FakeClock):
        self.m, self.clock = machine, clock
        self.seq = 0
        self.decoder = Decoder()
        self.frames = []
        self.heartbeats = True

    def send(self, msg):
        self.seq = (self.seq + 1) & 0xFF
        self.m.receive(encode(msg, seq=self.seq))

    def run(self, seconds, step_ms=5):
        for i in range(round(seconds * 1000 / step_ms)):
            if self.heartbeats and (i * step_ms) % 50 == 0:
                self.m.receive(encode(Heartbeat()))
            self.m.step()
            self.frames += self.decoder.feed(self.m.transmit())
            self.clock.advance_ms(step_ms)

    def armed(self, settings=CROWN):
        self.send(Hello())
        self.run(0.05)
        self.send(Set(*settings))
        self.run(0.05)
        self.send(Arm())
        self.run(0.05)
        assert self.m.firmware.state == State.ARMED
        return self


def setup(**kw):
    clock = FakeClock()
    machine = SimulatedMachine(clock, **kw)
    return machine, Host(machine, clock).armed()


def test_pedal_runs_the_needle_only_while_armed_and_down():
    m, host = setup()
    m.press_pedal(True)
    host.run(0.3)
    assert m.firmware.state == State.RUNNING and m.firmware.physics.rate_hz > 100
    m.press_pedal(False)
    host.run(0.01)
    assert m.firmware.state == State.ARMED and not m.firmware.motor_on  # drive off at once
    host.run(0.6)
    assert m.firmware.physics.rate_hz == 0  # and the needle has coasted to a stop


def test_link_drop_trips_the_watchdog_and_stays_stopped_when_the_link_returns():
    m, host = setup()
    m.press_pedal(True)
    host.run(0.2)
    m.inject("link-drop", 0.5)
    host.run(0.3)
    assert m.firmware.state == State.FAULTED and m.firmware.faults & Fault.LINK_LOST
    assert not m.firmware.motor_on
    host.run(1.0)  # link back, heartbeats flowing, pedal still down
    assert m.firmware.link_alive and m.firmware.state == State.FAULTED


def test_silent_device_sends_nothing_but_still_listens():
    m, host = setup()
    host.run(0.1)
    before = len(host.frames)
    m.inject("silent", 0.5)
    host.run(0.4)
    assert len(host.frames) == before
    assert m.firmware.link_alive  # host frames still arrive


def test_reboot_brings_a_new_boot_id_and_a_disarmed_machine():
    m, host = setup()
    old = m.firmware.boot_id
    m.press_pedal(True)
    host.run(0.1)
    m.inject("reboot")
    host.run(0.1)
    assert m.firmware.boot_id != old
    assert m.firmware.state == State.DISARMED and not m.firmware.motor_on
    host.send(Hello())
    host.run(0.05)
    idents = [f.message() for f in host.frames if f.type == MsgType.IDENT]
    assert idents[-1].boot_id == m.firmware.boot_id != idents[0].boot_id
    assert isinstance(idents[-1], Ident)


def test_pedal_stuck_down_keeps_the_needle_running_until_stop_and_prevents_arming():
    m, host = setup()
    m.press_pedal(True)
    m.inject("pedal-stuck")
    m.press_pedal(False)  # the technician lifts the pedal: the machine still sees it down
    host.run(0.1)
    assert m.firmware.pedal and m.firmware.state == State.RUNNING
    m.clear("pedal-stuck")
    host.run(0.05)
    assert not m.firmware.pedal and m.firmware.state == State.ARMED


def test_physical_faults_latch_and_stop_the_needle():
    for fault, flag in (("stall", Fault.STALL), ("overcurrent", Fault.OVERCURRENT),
                        ("overtemp", Fault.OVERTEMP)):
        m, host = setup()
        m.set_skin(Skin.THICK)
        m.press_pedal(True)
        host.run(0.2)
        m.inject(fault)
        host.run(8.0)
        assert m.firmware.faults & flag, fault
        assert m.firmware.state == State.FAULTED and m.firmware.physics.rate_hz == 0


def test_depth_actuator_short_of_its_setpoint_shows_in_telemetry():
    m, host = setup()
    m.inject("depth-short", 1200)
    host.run(1.0)
    telemetry = [f.message() for f in host.frames if f.type == MsgType.TELEMETRY]
    assert telemetry[-1].depth_um == 1200  # asked for 1800


def test_the_same_seed_gives_the_same_bytes():
    def run(seed):
        m, host = setup(seed=seed)
        m.inject("bit-errors", 0.001)
        m.inject("garbage", 64)
        host.run(0.5)
        return [f.type for f in host.frames], host.decoder.stats.bad_frames
    assert run(5) == run(5)


def test_a_slow_line_never_carries_more_than_its_baud_rate():
    clock = FakeClock()
    m = SimulatedMachine(clock, baud=9600)
    carried = [0, 0, 0]
    m.inject("garbage", 4096)  # more than the line can carry
    for i in range(3000):  # 3 s in 1 ms steps
        m.step()
        carried[i // 1000] += len(m.transmit())
        clock.advance_ms(1)
    assert all(n <= 960 for n in carried), carried
    assert carried[1] >= 950  # and it does carry a full line


def test_a_scenario_plays_on_the_machine_clock():
    clock = FakeClock()
    m = SimulatedMachine(clock)
    host = Host(m, clock).armed()
    m.play(parse("0 say go\n0.1 skin thick\n0.2 pedal down\n0.5 pedal up\n0.6 end\n", "t.txt"))
    host.run(0.3)
    assert m.caption == "go" and m.firmware.physics.skin == Skin.THICK
    assert m.firmware.state == State.RUNNING
    host.run(0.4)
    assert m.firmware.state == State.ARMED and not m.playing


def test_the_machine_wakes_at_its_watchdog_deadline():
    """A transport sleeps at most next_wakeup_s(): the watchdog must not wait for a poll."""
    m, host = setup()
    host.heartbeats = False
    host.run(0.05)  # the last host frame arrived somewhere in there
    deadline = m.firmware.last_host_ns + m.firmware.watchdog_ms * 1_000_000
    host.clock.advance_ns(deadline - host.clock.now_ns() - 1_500_000)  # 1.5 ms before it
    assert m.next_wakeup_s() <= 0.0015 + 1e-9


def test_the_machine_wakes_when_its_next_telemetry_frame_is_due():
    """Frame k is due at boot + 20 k ms; the machine does not wait for a poll to send it."""
    clock = FakeClock()
    m = SimulatedMachine(clock)
    m.step()  # frame 0, at boot
    m.transmit()
    clock.advance_ms(17)
    assert m.next_wakeup_s() == pytest.approx(0.003)
