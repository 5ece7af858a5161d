from decimal import Decimal

import pytest

from protocols.needles import BadNeedleCode, NeedleConfig, NeedleSpec


@pytest.mark.parametrize(
    ("code", "count", "config", "diameter", "canonical"),
    [
        ("1003RL", 3, "RL", "0.30", "1003RL"),
        ("0801RL", 1, "RL", "0.25", "0801RL"),
        ("#10 3RL", 3, "RL", "0.30", "1003RL"),
        ("#8 1rl", 1, "RL", "0.25", "0801RL"),
        ("1RL 0.18mm", 1, "RL", "0.18", "1RL 0.18mm"),
        ("0.20mm 1RL", 1, "RL", "0.20", "0601RL"),
        ("1207M1", 7, "M1", "0.35", "1207M1"),
        ("  1003rs ", 3, "RS", "0.30", "1003RS"),
    ],
)
def test_codes_technicians_write(code, count, config, diameter, canonical):
    n = NeedleSpec.parse(code)
    assert (n.count, n.configuration) == (count, NeedleConfig(config))
    assert n.diameter_mm == Decimal(diameter)
    assert n.code == canonical
    assert NeedleSpec.parse(n.code) == n


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("3RL", "accepted forms: 1003RL"),
        ("1003XX", "accepted forms"),
        ("0903RL", "unknown gauge #9"),
        ("#14 3RL", "unknown gauge #14"),
        ("1RL 0.40mm", "diameter 0.40 mm is outside 0.18 to 0.35 mm"),
        ("1000RL", "needle count 0 is outside 1 to 49"),
        ("", "accepted forms"),
    ],
)
def test_bad_codes_name_the_accepted_forms(code, fragment):
    with pytest.raises(BadNeedleCode) as exc:
        NeedleSpec.parse(code)
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)
