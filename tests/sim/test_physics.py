"""The simulator's physical model behaves as docs/simulator.md documents."""

import pytest

from protocols.settings import MachineSettings, WireSettings
from sim.dots import DotSkin, estimate_dot
from sim.physics import MachinePhysics, Skin

DT = 0.02  # the firmware's 50 Hz tick


def run(phys, seconds, target, motor_on=True):
    for _ in range(round(seconds / DT)):
        phys.step(DT, motor_on=motor_on, target=target)


def time_to(phys, fraction, target, limit=2.0):
    """Seconds until the measured rate reaches `fraction` of the setpoint."""
    t = 0.0
    while phys.rate_hz < fraction * target.rate_dhz / 10:
        phys.step(DT, motor_on=True, target=target)
        t += DT
        assert t < limit, f"never reached {fraction:.0%}: {phys.rate_hz:.1f} Hz"
    return t


HAIRLINE = WireSettings(depth_um=1500, rate_dhz=1100, voltage_mv=6500)
CROWN = WireSettings(depth_um=1800, rate_dhz=1400, voltage_mv=7500)


def test_spin_up_is_first_order_within_100_to_300_ms():
    phys = MachinePhysics()
    t90 = time_to(phys, 0.9, CROWN)
    assert 0.10 <= t90 <= 0.30
    run(phys, 0.5, CROWN)
    assert phys.rate_hz == pytest.approx(140.0, abs=0.5)


def test_rate_falls_to_zero_when_the_motor_is_off():
    phys = MachinePhysics()
    run(phys, 0.5, CROWN)
    run(phys, 0.5, CROWN, motor_on=False)
    assert phys.readings().rate_dhz == 0
    assert phys.readings().current_ma == 0 and phys.readings().voltage_mv == 0


def test_too_little_voltage_under_thick_skin_shows_as_under_speed():
    low = WireSettings(depth_um=1800, rate_dhz=1400, voltage_mv=6000)
    air, skin = MachinePhysics(), MachinePhysics()
    skin.skin = Skin.THICK
    run(air, 1.0, low)
    run(skin, 1.0, low)
    assert air.rate_hz == pytest.approx(140, abs=1)  # in the air the motor keeps up
    assert skin.rate_hz < 125  # under load it cannot: under-speed
    assert skin.current_a > air.current_a  # current rises with load
    skin_ok = MachinePhysics()
    skin_ok.skin = Skin.THICK
    run(skin_ok, 1.0, CROWN)  # 7.5 V is enough
    assert skin_ok.rate_hz == pytest.approx(140, abs=1)


def test_a_jam_stops_the_rotor_at_once_and_draws_the_stall_current():
    """The body only models the jam; the firmware judges it (tests/link/test_firmware_rules)."""
    phys = MachinePhysics()
    run(phys, 0.3, CROWN)
    phys.injected.jam = True
    run(phys, 0.02, CROWN)
    assert phys.readings().rate_dhz == 0
    assert phys.current_a == pytest.approx(7.5 / 2.0)  # stall current V/R
    assert phys.cause_present("stall") and not phys.cause_present("overcurrent")
    phys.injected.jam = False
    assert not phys.cause_present("stall")


def test_a_short_adds_current_but_no_torque():
    phys, healthy = MachinePhysics(), MachinePhysics()
    phys.injected.short_a = 2.6
    run(phys, 0.5, CROWN)
    run(healthy, 0.5, CROWN)
    assert phys.current_a == pytest.approx(healthy.current_a + 2.6)
    assert phys.rate_hz == pytest.approx(healthy.rate_hz)
    assert phys.cause_present("overcurrent")


def test_drive_off_cuts_voltage_and_current_at_once():
    phys = MachinePhysics()
    run(phys, 0.3, CROWN)
    phys.drive_off()
    r = phys.readings()
    assert r.voltage_mv == 0 and r.current_ma == 0 and r.rate_dhz > 1000  # it coasts


def test_blocked_cooling_heats_past_70_c_then_cools_gradually_when_idle():
    phys = MachinePhysics()
    phys.skin = Skin.SCAR
    phys.injected.heat_w = 5.0  # blocked cooling
    t = 0.0
    while phys.temperature_c < 70:
        phys.step(0.1, motor_on=True, target=CROWN)
        t += 0.1
        assert t < 600
    phys.injected.heat_w = 0.0
    cooled = 0.0
    while phys.temperature_c > 60:
        phys.step(0.5, motor_on=False, target=CROWN)
        cooled += 0.5
        assert cooled < 900
    assert cooled > 10  # cooling is gradual, not instant
    assert phys.temperature_c > phys.c.ambient_c


def test_normal_work_does_not_overheat_in_an_hour():
    phys = MachinePhysics()
    phys.skin = Skin.THICK
    run_s = 0
    while run_s < 3600:
        phys.step(0.5, motor_on=True, target=CROWN)
        run_s += 0.5
    assert phys.temperature_c < 60


def test_depth_moves_at_bounded_speed_and_reports_while_moving():
    phys = MachinePhysics()
    phys.depth_mm = 1.0
    target = WireSettings(depth_um=2000, rate_dhz=1200, voltage_mv=7000)
    phys.step(0.1, motor_on=False, target=target)
    assert phys.readings().depth_um == 1200  # 2 mm/s
    run(phys, 1.0, target, motor_on=False)
    assert phys.readings().depth_um == 2000


def test_depth_actuator_that_stops_short():
    phys = MachinePhysics()
    phys.injected.depth_limit_um = 1400
    run(phys, 2.0, CROWN, motor_on=False)
    assert phys.readings().depth_um == 1400


def settings(depth, volts, rate=120):
    return MachineSettings(depth_mm=depth, rate_hz=rate, voltage_v=volts)


def test_dot_model_shows_why_the_hairline_is_gentler():
    hairline = estimate_dot(settings(1.5, 6.5, 110))
    deep = estimate_dot(settings(2.2, 8.5, 130))
    assert hairline.healed_mm < deep.healed_mm
    assert hairline.blowout_risk == "low"
    assert deep.blowout_risk == "high"


def test_dot_model_flags_sunburn_and_scar():
    assert estimate_dot(settings(1.5, 7.0), DotSkin.SUNBURNT).blowout_risk == "high"
    assert estimate_dot(settings(1.3, 8.0), DotSkin.SCAR).blowout_risk == "medium"
    dot = estimate_dot(settings(1.5, 7.0))
    assert dot.healed_mm == pytest.approx(dot.fresh_mm / 2, abs=0.001)


def test_the_builtin_profiles_are_low_risk_on_normal_skin():
    from protocols import load_library

    for entry in load_library().entries.values():
        if entry.profile.zone.value != "scar":
            assert estimate_dot(entry.profile.settings).blowout_risk == "low", entry.profile.name
