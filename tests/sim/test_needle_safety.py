"""Invariant 1 under random faults: the needle never runs while the link is lost, unarmed,
faulted or the pedal is up.

The check does not trust the firmware's own flags. An oracle watches from outside: the bytes
actually delivered to the firmware (decoded independently), the pedal input the simulator
gives it, the physics' readings judged by the motor-fault rules of docs/protocol.md 11.3 on
its own, and whether the physics was actually driven. Each seed plays
a random session: link faults, physical faults, reboots, pedal presses and a host that sends
commands, STOPs and heartbeats, and sometimes freezes.
"""

import random

import pytest

from firmware_bridge.codec import (
    Arm,
    ClearFault,
    Decoder,
    Disarm,
    Heartbeat,
    Hello,
    MsgType,
    Set,
    Stop,
    encode,
)
from firmware_bridge.schema import (
    OVERCURRENT_MA,
    OVERCURRENT_TRIP_MS,
    OVERTEMP_DC,
    STALL_BELOW_DHZ,
    STALL_TRIP_MS,
    WATCHDOG_DEFAULT_MS,
)
from sim.clock import FakeClock
from sim.linkfaults import LinkFaults
from sim.machine import SimulatedMachine
from sim.physics import Skin

STEP_MS = 5
WATCHDOG_MS = WATCHDOG_DEFAULT_MS


class Oracle:
    """What the firmware has really been told, and whether its motor is really driven.

    The firmware integrates the time up to an input before acting on it (a frame, a pedal
    change arriving at t acts from t on), so a driven step (start, end] is judged by the
    inputs known at its start."""

    def __init__(self, machine: SimulatedMachine, clock: FakeClock):
        self.m, self.clock = machine, clock
        self.decoder = Decoder()
        self.valid: list[int] = []  # arrival times of valid host frames
        self.arms: list[int] = []
        self.cancels: list[int] = [0]  # STOP, DISARM, HELLO, reboot, fault onset, link loss
        self.pedal: list[tuple[int, bool]] = [(0, False)]  # the firmware's pedal input
        fw = machine.firmware
        feed, step, set_pedal = fw.feed, fw.physics.step, fw.set_pedal

        def watched_feed(data: bytes) -> None:
            now = clock.now_ns()
            for frame in self.decoder.feed(data):
                if self.valid and now - self.valid[-1] >= WATCHDOG_MS * 1_000_000:
                    self.cancels.append(now)  # the link was lost before this frame
                self.valid.append(now)
                if frame.type == MsgType.ARM:
                    self.arms.append(now)
                elif frame.type in (MsgType.STOP, MsgType.DISARM, MsgType.HELLO):
                    self.cancels.append(now)
            feed(data)

        def watched_pedal(down: bool) -> None:
            self.pedal.append((clock.now_ns(), bool(down)))
            set_pedal(down)

        def watched_step(dt_s, *, motor_on, target):
            start = clock.now_ns() - round(dt_s * 1e9)
            if motor_on:
                self.check(start)
            step(dt_s, motor_on=motor_on, target=target)
            self.judge(start, motor_on, fw.physics.readings())

        fw.feed = watched_feed
        fw.set_pedal = watched_pedal
        fw.physics.step = watched_step
        self.driven_steps = 0
        self.slow_since = self.over_since = None  # the oracle's own fault timers
        self.hot = False
        self.fault_due = False  # a motor fault should have latched by now

    def judge(self, start_ns: int, driven: bool, r) -> None:
        """Section 11.3 from the readings, with one step of slack for the firmware's ticks."""
        now = self.clock.now_ns()
        slack = 2 * STEP_MS * 1_000_000
        if not driven:
            self.slow_since = self.over_since = None
            self.fault_due = False
        else:
            slow = r.rate_dhz < STALL_BELOW_DHZ
            self.slow_since = (self.slow_since or start_ns) if slow else None
            over = r.current_ma > OVERCURRENT_MA and not slow
            self.over_since = (self.over_since or start_ns) if over else None
            if (self.slow_since is not None and now - self.slow_since >= STALL_TRIP_MS * 1e6
                    + slack) or (self.over_since is not None and now - self.over_since
                                 >= OVERCURRENT_TRIP_MS * 1e6 + slack):
                if not self.fault_due:
                    self.cancelled()  # a stall or an over-current has tripped
                self.fault_due = True
        hot = r.temperature_dc >= OVERTEMP_DC
        if hot and not self.hot:
            self.cancelled()  # over-temperature, in any state
        self.hot = hot

    def check(self, start: int) -> None:
        def last(times):
            return max((t for t in times if t <= start), default=None)

        pedal = max((p for p in self.pedal if p[0] <= start), key=lambda p: p[0])[1]
        assert pedal, "driven with the pedal up"
        assert not self.fault_due, "driven through a stall or an over-current"
        valid = last(self.valid)
        assert valid is not None and start - valid < WATCHDOG_MS * 1_000_000, (
            "driven with the link lost")
        arm = last(self.arms)
        assert arm is not None and arm > last(self.cancels), (
            "driven without an ARM since the last STOP, DISARM, reboot, fault or link loss")
        self.driven_steps += 1

    def cancelled(self) -> None:
        self.cancels.append(self.clock.now_ns())


def play(seed: int, seconds: float = 6.0) -> Oracle:
    rng = random.Random(seed)
    clock = FakeClock()
    faults = LinkFaults(bit_error_rate=rng.choice([0, 1e-5, 1e-4, 1e-3, 1e-2]),
                        drop_frame_rate=rng.choice([0, 0.01, 0.1]),
                        dup_frame_rate=rng.choice([0, 0.01, 0.1]),
                        reorder_frame_rate=rng.choice([0, 0.02]))
    m = SimulatedMachine(clock, seed=seed, faults=faults)
    oracle = Oracle(m, clock)
    m.set_skin(rng.choice(list(Skin)))
    seq = 0
    frozen_until = 0

    def send(msg):
        nonlocal seq
        seq = (seq + 1) & 0xFF
        m.receive(encode(msg, seq=seq))

    send(Hello())
    for i in range(round(seconds * 1000 / STEP_MS)):
        now_ms = i * STEP_MS
        if now_ms >= frozen_until and now_ms % 50 == 0:
            m.receive(encode(Heartbeat()))
        r = rng.random()
        if r < 0.02:
            send(rng.choice([Hello(), Set(1800, 1300, 7500), Set(1500, 1100, 6500), Arm(),
                             Arm(), Disarm(), ClearFault(), Stop()]))
        elif r < 0.03:
            m.press_pedal(rng.random() < 0.6)
        elif r < 0.033:
            frozen_until = now_ms + rng.choice([100, 300, 800])  # the host stalls
        elif r < 0.036:
            fault = rng.choice(["reboot", "stall", "overcurrent", "overtemp", "pedal-stuck",
                                "link-drop", "silent", "garbage", "depth-short"])
            value = {"link-drop": 0.4, "silent": 0.4, "garbage": 200, "depth-short": 900}
            if fault == "reboot":
                oracle.cancelled()
            m.inject(fault, value.get(fault))
        elif r < 0.040:
            m.clear(rng.choice(["stall", "overcurrent", "overtemp", "pedal-stuck"]))
        m.step()
        m.transmit()
        clock.advance_ms(STEP_MS)
    return oracle


@pytest.mark.parametrize("seed", range(120))
def test_the_needle_never_runs_when_it_must_not(seed):
    play(seed)


def test_the_random_sessions_do_run_the_needle_sometimes():
    """Otherwise the test above would pass with a machine that never runs at all."""
    driven = sum(play(seed).driven_steps > 0 for seed in range(40))
    assert driven >= 10
