from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import (
    HARD_LIMITS,
    MachineSettings,
    Profile,
    ProfileRefused,
    SkinCondition,
    Stage,
    Zone,
    load_library,
    resolve,
)
from tests.protocols.test_envelope import envelopes
from tests.protocols.test_settings import settings_strategy


def profile(zone=Zone.CROWN, **settings):
    values = {"depth_mm": 1.8, "rate_hz": 130, "voltage_v": 7.5, **settings}
    return Profile(name="p", zone=zone, settings=MachineSettings(**values), needle="1003RL")


def test_the_issue_example():
    res = resolve(profile(), Stage.S2, [SkinCondition.SCAR_TISSUE])
    assert res.settings == MachineSettings(depth_mm=1.5, rate_hz=130, voltage_v=8.0)
    assert res.reasons[0] == (
        "crown, stage 2, scar tissue: needle depth 1.80 -> 1.50 mm: "
        "scar tissue is treated conservatively"
    )
    assert res.plan.target_density_pct == 70


def test_no_conditions_means_base_settings_and_no_reasons():
    res = resolve(profile())
    assert res.settings == profile().settings
    assert res.reasons == ()


def test_unchanged_cap_is_still_explained():
    res = resolve(profile(depth_mm=1.2), Stage.S1, [SkinCondition.SCAR_TISSUE])
    assert res.settings.depth_mm == Decimal("1.2")
    assert "needle depth 1.20 mm unchanged" in res.reasons[0]


def test_scar_zone_does_not_count_scar_tissue_twice():
    base = profile(Zone.SCAR, depth_mm=1.3, voltage_v=8.0)
    res = resolve(base, Stage.S1, [SkinCondition.SCAR_TISSUE])
    assert res.settings == base.settings
    assert all("already allows for it" in r for r in res.reasons)


def test_result_outside_envelope_is_refused_not_clamped():
    with pytest.raises(ProfileRefused) as exc:
        resolve(profile(rate_hz=145), Stage.S1, [SkinCondition.THICK_RESISTANT])
    assert "stroke rate 155.0 Hz is outside the allowed 50.0 to 150.0 Hz" in str(exc.value)
    assert any("145.0 -> 155.0 Hz" in r for r in exc.value.reasons)


def test_conditions_apply_in_documented_order_whatever_order_given():
    a = resolve(profile(), Stage.S1, [SkinCondition.FITZPATRICK_IV_VI, SkinCondition.SCAR_TISSUE])
    b = resolve(profile(), Stage.S1, [SkinCondition.SCAR_TISSUE, SkinCondition.FITZPATRICK_IV_VI])
    assert a.settings == b.settings
    assert a.settings.depth_mm == Decimal("1.4")  # capped to 1.5, then 0.1 shallower


@given(settings_strategy, st.sets(st.sampled_from(list(SkinCondition))),
       st.sampled_from(list(Stage)), envelopes)
def test_every_resolution_is_inside_the_envelope_or_refused(settings, conds, stage, env):
    base = Profile(name="p", zone=Zone.CROWN, settings=settings, needle="1003RL")
    try:
        res = resolve(base, stage, conds, env)
    except ProfileRefused as exc:
        assert exc.violations
        return
    assert env.contains(res.settings)
    assert HARD_LIMITS.contains(res.settings)


def test_every_builtin_profile_resolves_for_every_stage_without_conditions():
    for entry in load_library().entries.values():
        for stage in Stage:
            assert resolve(entry.profile, stage).settings == entry.profile.settings
