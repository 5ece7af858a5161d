"""The simulated machine's body: motor, needle-depth actuator and skin load.

A teaching model, not a clinical one: simple equations with plausible constants so that a
trainer can show what happens (spin-up, under-speed when the voltage is too low for the load,
stall, overheating) and tests can rely on it. docs/simulator.md gives the equations.

The motor is a brushed DC motor whose controller regulates the stroke rate to the setpoint with
the drive voltage as its ceiling:
    current      I = I0 + L_skin * (0.5 + 0.5 * r / 130 Hz)   (a short adds current, no torque)
    reachable    r_max = (V - I * R) / Ke                            (0 when jammed)
    rate         dr/dt = (min(r_set, r_max) - r) / tau               (first-order spin-up)
    stall        r_max < 20 Hz while driven: I = V / R, the rate falls (a jam stops it at once)
    temperature  dT/dt = (P * R_th - (T - T_amb)) / (R_th * C_th),   P = I^2 * R + heat
The depth actuator moves toward its setpoint at a bounded speed.

The body only models; it judges nothing. The firmware reads its sensors (`readings()`) and
latches stall, over-current and over-temperature by the rules of docs/protocol.md section 11.3;
`cause_present()` is what its sensors tell it about a fault's cause when asked to clear it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from firmware_bridge.codec import Readings
from firmware_bridge.schema import DHZ_PER_HZ, MV_PER_V, UM_PER_MM
from protocols.settings import WireSettings


class Skin(StrEnum):
    """What the needle is in: nothing, or one of the skin types the trainer selects."""

    AIR = "air"
    NORMAL = "normal"
    THIN = "thin"
    THICK = "thick"
    SCAR = "scar"


@dataclass(frozen=True)
class Constants:
    ke_v_per_hz: float = 0.038  # back-EMF: ~190 Hz free running at 7.5 V
    r_ohm: float = 2.0  # winding resistance
    i0_a: float = 0.15  # no-load current (friction, the cartridge's spring)
    tau_s: float = 0.07  # spin-up time constant: 90% of a step in ~160 ms
    load_a: dict[Skin, float] = field(default_factory=lambda: {
        Skin.AIR: 0.0, Skin.THIN: 0.25, Skin.NORMAL: 0.35, Skin.THICK: 0.7, Skin.SCAR: 0.9,
    })
    stall_below_hz: float = 20.0  # below this the controller cannot hold the rate
    depth_speed_mm_s: float = 2.0
    ambient_c: float = 25.0
    r_th_c_per_w: float = 12.0  # motor to air
    c_th_j_per_c: float = 15.0  # thermal time constant R_th * C_th = 180 s


@dataclass
class Injected:
    """Physical faults a trainer or a test switches on."""

    jam: bool = False  # something blocks the needle: stall
    short_a: float = 0.0  # extra current, e.g. a failing winding: over-current
    heat_w: float = 0.0  # extra heat, e.g. blocked cooling: over-temperature
    depth_limit_um: int | None = None  # the actuator stops short of this position


class MachinePhysics:
    def __init__(self, constants: Constants | None = None):
        self.c = constants or Constants()
        self.skin = Skin.AIR
        self.injected = Injected()
        self.rate_hz = 0.0
        self.current_a = 0.0
        self.voltage_v = 0.0
        self.depth_mm = 0.0
        self.temperature_c = self.c.ambient_c

    def step(self, dt_s: float, *, motor_on: bool, target: WireSettings) -> None:
        c = self.c
        self._move_depth(dt_s, target.depth_um / UM_PER_MM)
        volts = target.voltage_mv / MV_PER_V if motor_on else 0.0
        if motor_on:
            set_hz = target.rate_dhz / DHZ_PER_HZ
            current = self._load_current(self.rate_hz)
            reachable = 0.0 if self.injected.jam else max(0.0, (volts - current * c.r_ohm)
                                                           / c.ke_v_per_hz)
            stalled = reachable < c.stall_below_hz
            goal = 0.0 if stalled else min(set_hz, reachable)
            current = volts / c.r_ohm if stalled else current
            # A short bypasses the winding: it draws current but makes no torque.
            current += self.injected.short_a
        else:
            goal, current = 0.0, 0.0
        if self.injected.jam:
            self.rate_hz = 0.0  # a blocked rotor stops at once
        # Exact discretisation of the first-order lag: stable for any dt.
        self.rate_hz += (goal - self.rate_hz) * (1 - math.exp(-dt_s / c.tau_s))
        if self.rate_hz < 0.5:  # below the tachometer's resolution: stopped
            self.rate_hz = 0.0
        self.current_a = current
        self.voltage_v = volts
        power = current * current * c.r_ohm + self.injected.heat_w
        t_ss = c.ambient_c + power * c.r_th_c_per_w
        self.temperature_c += (t_ss - self.temperature_c) * (
            1 - math.exp(-dt_s / (c.r_th_c_per_w * c.c_th_j_per_c)))

    def drive_off(self) -> None:
        """The drive is cut now: no voltage, no current (the rotor coasts down)."""
        self.voltage_v = 0.0
        self.current_a = 0.0

    def _load_current(self, rate_hz: float) -> float:
        c = self.c
        return c.i0_a + c.load_a[self.skin] * (0.5 + 0.5 * rate_hz / 130.0)

    def _move_depth(self, dt_s: float, goal: float) -> None:
        if self.injected.depth_limit_um is not None:
            goal = min(goal, self.injected.depth_limit_um / UM_PER_MM)
        step = self.c.depth_speed_mm_s * dt_s
        delta = goal - self.depth_mm
        self.depth_mm = goal if abs(delta) <= step else self.depth_mm + step * (1 if delta > 0
                                                                                else -1)

    def cause_present(self, cause: str) -> bool:
        """Whether the sensors still see a fault's cause: "stall" (the rotor is blocked) or
        "overcurrent" (the extra current path is still there); temperature and depth are
        judged by the firmware from `readings()`."""
        if cause == "stall":
            return self.injected.jam
        if cause == "overcurrent":
            return self.injected.short_a > 0
        raise ValueError(f"unknown cause {cause!r}")

    def readings(self) -> Readings:
        return Readings.from_physical(
            rate_hz=self.rate_hz, voltage_v=self.voltage_v, current_a=self.current_a,
            depth_mm=self.depth_mm, temperature_c=self.temperature_c)
