from decimal import Decimal

import pytest

from sim.physics import Skin
from sim.scenario import BadScenario, builtin_names, find, load, parse


def test_at_least_five_documented_trainer_scenarios_ship():
    names = builtin_names()
    assert len(names) >= 5
    for name in names:
        scenario = find(name)
        assert scenario.description.count(" ") > 10, f"{name} says what to point out"
        assert scenario.steps[-1].action == "end"
        assert any(s.action == "settings" for s in scenario.steps)


def test_steps_are_parsed_with_typed_arguments():
    s = parse("# demo\n0 settings 1.5 110 6.5\n0.5 skin thick\n1 pedal down\n"
              "2 fault link-drop 0.5  # pull the cable\n3 fault reboot\n4 clear stall\n5 end\n",
              "demo.txt")
    assert s.description == "demo"
    assert [st.action for st in s.steps] == ["settings", "skin", "pedal", "fault", "fault",
                                             "clear", "end"]
    assert s.steps[0].args[0].rate_hz == Decimal("110")
    assert s.steps[1].args == (Skin.THICK,)
    assert s.steps[3].args == ("link-drop", 0.5)
    assert s.duration_s == 5


BAD = [
    ("1 pedal sideways", "2: pedal takes 'down' or 'up'"),
    ("x pedal down", "2: 'x' is not a time; a step starts with seconds from the start"),
    ("1 jump", "2: unknown action 'jump'; allowed: say, settings, skin, pedal, fault, clear"),
    ("1 skin oily", "2: skin takes one of: air, normal, thin, thick, scar"),
    ("1 fault meteor", "2: fault takes one of: bit-errors"),
    ("1 fault bit-errors 3", "2: fault bit-errors: 3 is outside 0 to 1; it takes RATE"),
    ("1 fault link-drop", "2: fault link-drop takes SECONDS (0 to 60)"),
    ("1 fault reboot now", "2: fault reboot takes no argument"),
    ("1 settings 3.0 120 7", "2: settings depth_mm: 3.0 mm is outside the allowed 0.20 to 2.50"),
    ("1 settings 1.5 120", "2: settings takes DEPTH_MM RATE_HZ VOLTAGE_V"),
    ("1 clear reboot", "2: clear takes one of: bit-errors"),
    ("-1 pedal down", "2: time -1 is outside 0 to 86400 s"),
]


@pytest.mark.parametrize(("line", "expected"), BAD)
def test_a_bad_line_is_refused_with_file_line_and_reason(tmp_path, line, expected):
    path = tmp_path / "bad.txt"
    path.write_text(f"0 say hello\n{line}\n")
    with pytest.raises(BadScenario) as exc:
        load(path)
    assert str(exc.value).startswith(f"{path}:{expected}")
    assert "\n" not in str(exc.value)


def test_time_going_backwards_is_refused(tmp_path):
    path = tmp_path / "back.txt"
    path.write_text("2 pedal down\n1 pedal up\n")
    with pytest.raises(BadScenario, match=r"back.txt:2: time 1 s is before the previous step"):
        load(path)


def test_missing_file_names_the_shipped_scenarios(tmp_path):
    with pytest.raises(BadScenario, match="hairline-pass"):
        find(str(tmp_path / "nope.txt"))
