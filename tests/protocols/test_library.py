"""The library and the one-line errors people meet in profile files."""

from pathlib import Path

import pytest

from protocols import Zone, load_library
from protocols.library import check_files, load_file

GOOD = """\
[[profile]]
name = "crown-thick"
zone = "crown"
depth_mm = 1.8
rate_hz = 140
voltage_v = 8.0
needle = "1003RL"
notes = "for thick skin"
"""


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_zone_has_a_builtin_profile():
    lib = load_library(Path("/nonexistent"))
    assert lib.errors == []
    for zone in Zone:
        assert lib.for_zone(zone), zone
        assert lib.default_for(zone).source == "built-in"


def test_user_files_add_and_override_by_name(tmp_path):
    write(tmp_path, GOOD, "a.toml")
    write(tmp_path, GOOD.replace("crown-thick", "crown-standard").replace("140", "125"), "b.toml")
    lib = load_library(tmp_path)
    assert lib.errors == []
    assert lib.get("crown-thick").source == "user"
    override = lib.get("crown-standard")
    assert override.source == "user" and override.overrides is not None
    assert str(override.profile.settings.rate_hz) == "125.0"


def test_a_bad_user_file_does_not_hide_the_good_ones(tmp_path):
    write(tmp_path, GOOD, "a.toml")
    write(tmp_path, "[[profile]\n", "b.toml")
    lib = load_library(tmp_path)
    assert "crown-thick" in lib.entries
    assert len(lib.errors) == 1 and "b.toml:1: TOML syntax error" in str(lib.errors[0])


def test_duplicate_names_in_the_user_directory_are_refused(tmp_path):
    a = write(tmp_path, GOOD, "a.toml")
    write(tmp_path, "# copy\n" + GOOD.replace("140", "120"), "b.toml")
    lib = load_library(tmp_path)
    assert [str(e) for e in lib.errors] == [
        f"{tmp_path / 'b.toml'}:2: profile 'crown-thick' is already defined at {a}:1; "
        "names must be unique in the user directory"
    ]
    assert str(lib.get("crown-thick").profile.settings.rate_hz) == "140.0"


def test_unknown_profile_suggests_close_names():
    with pytest.raises(Exception, match="did you mean crown-standard"):
        load_library(Path("/nonexistent")).get("crown")


def edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


# (file text, the exact error line after "<path>:") — one malformed file per row.
MALFORMED = [
    ("[[profile]\nname = 'x'\n", "1: TOML syntax error: Expected ']]' at the end of an array declaration (column 10)"),
    (edit('zone = "crown"', 'zone = crown'), "3: TOML syntax error: Invalid value (column 8)"),
    (GOOD + 'name = "again"\n', "9: TOML syntax error: Cannot overwrite a value (column 15)"),
    (edit("notes", "colour = 'black'\nnotes"), "8: profile 'crown-thick': unknown key 'colour'; allowed keys: name, zone, depth_mm, rate_hz, voltage_v, needle, notes"),
    (edit('zone = "crown"\n', ""), "1: profile 'crown-thick': missing key 'zone' (required: name, zone, depth_mm, rate_hz, voltage_v, needle)"),
    (edit('needle = "1003RL"\n', ""), "1: profile 'crown-thick': missing key 'needle' (required: name, zone, depth_mm, rate_hz, voltage_v, needle)"),
    (edit("depth_mm = 1.8\n", ""), "1: profile 'crown-thick': missing key 'depth_mm' (required: name, zone, depth_mm, rate_hz, voltage_v, needle)"),
    (edit('name = "crown-thick"\n', ""), "1: profile #1: missing key 'name' (required: name, zone, depth_mm, rate_hz, voltage_v, needle)"),
    (edit("depth_mm = 1.8", "depth_mm = 2.7"), "4: profile 'crown-thick': depth_mm: 2.7 mm is outside the allowed 0.20 to 2.50 mm"),
    (edit("depth_mm = 1.8", "depth_mm = 0.1"), "4: profile 'crown-thick': depth_mm: 0.1 mm is outside the allowed 0.20 to 2.50 mm"),
    (edit("depth_mm = 1.8", "depth_mm = 1.82"), "4: profile 'crown-thick': depth_mm: 1.82 mm is not in steps of 0.05 mm (allowed 0.20 to 2.50 mm)"),
    (edit("rate_hz = 140", "rate_hz = 160"), "5: profile 'crown-thick': rate_hz: 160 Hz is outside the allowed 50.0 to 150.0 Hz"),
    (edit("rate_hz = 140", "rate_hz = 120.25"), "5: profile 'crown-thick': rate_hz: 120.25 Hz is not in steps of 0.1 Hz (allowed 50.0 to 150.0 Hz)"),
    (edit("voltage_v = 8.0", "voltage_v = 12.5"), "6: profile 'crown-thick': voltage_v: 12.5 V is outside the allowed 3.0 to 12.0 V"),
    (edit("voltage_v = 8.0", "voltage_v = 2.0"), "6: profile 'crown-thick': voltage_v: 2.0 V is outside the allowed 3.0 to 12.0 V"),
    (edit("voltage_v = 8.0", 'voltage_v = "high"'), "6: profile 'crown-thick': voltage_v: 'high' is not a number (allowed 3.0 to 12.0 V in steps of 0.1)"),
    (edit("depth_mm = 1.8", "depth_mm = true"), "4: profile 'crown-thick': depth_mm: True is not a number (allowed 0.20 to 2.50 mm in steps of 0.05)"),
    (edit('zone = "crown"', 'zone = "top"'), "3: profile 'crown-thick': zone: unknown zone 'top'; allowed: hairline, temples, mid-scalp, crown, sides, back, nape, scar, alopecia-patch, part-line"),
    (edit('zone = "crown"', 'zone = "crwn"'), "3: profile 'crown-thick': zone: unknown zone 'crwn' (did you mean crown?); allowed: hairline, temples, mid-scalp, crown, sides, back, nape, scar, alopecia-patch, part-line"),
    (edit('needle = "1003RL"', 'needle = "3RL"'), "7: profile 'crown-thick': needle: bad needle code '3RL': accepted forms: 1003RL (gauge, count, type), '#10 3RL' or '3RL 0.30mm'; gauges #6 #8 #10 #12, diameters 0.18 to 0.35 mm, types RL, RS, M1, RM, F"),
    (edit('needle = "1003RL"', 'needle = "0903RL"'), "7: profile 'crown-thick': needle: bad needle code '0903RL': unknown gauge #9; accepted forms: 1003RL (gauge, count, type), '#10 3RL' or '3RL 0.30mm'; gauges #6 #8 #10 #12, diameters 0.18 to 0.35 mm, types RL, RS, M1, RM, F"),
    (edit('name = "crown-thick"', 'name = "Crown Thick"'), "2: profile 'Crown Thick': name 'Crown Thick': use lower-case letters, digits and hyphens, at most 64 characters (e.g. crown-thick-skin)"),
    ('version = 2\n' + GOOD, "1: unknown top-level key 'version'; a profile file holds only [[profile]] tables"),
    ("# nothing here\n", "no [[profile]] tables found"),
    (GOOD + "\n" + GOOD, "10: profile 'crown-thick' is already defined at {path}:1"),
    (edit('"for thick skin"', r'"for \u001b[2J thick skin"'), "8: profile 'crown-thick': notes: control character U+001B (ESC) is not allowed; allowed: printable text, newlines and tabs (no control characters or bidirectional overrides)"),
    (edit('"for thick skin"', r'"\u202ethick"'), "8: profile 'crown-thick': notes: U+202E (right-to-left override) is not allowed; allowed: printable text, newlines and tabs (no control characters or bidirectional overrides)"),
    (edit('needle = "1003RL"', "needle = 1003"), "7: profile 'crown-thick': needle: 1003 is not a needle code; accepted forms: 1003RL (gauge, count, type), '#10 3RL' or '3RL 0.30mm'; gauges #6 #8 #10 #12, diameters 0.18 to 0.35 mm, types RL, RS, M1, RM, F"),
]


@pytest.mark.parametrize(("text", "expected"), MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_file_gives_exactly_one_line(tmp_path, text, expected):
    path = write(tmp_path, text)
    _, errors, _ = check_files([path])
    expected = expected.format(path=path)
    sep = ":" if expected[0].isdigit() else ": "
    assert [str(e) for e in errors] == [f"{path}{sep}{expected}"]


def test_there_are_at_least_twenty_malformed_cases():
    assert len(MALFORMED) >= 20


def test_a_missing_file_is_named(tmp_path):
    _, errors, _ = load_file(tmp_path / "gone.toml")
    assert [str(e) for e in errors] == [f"{tmp_path / 'gone.toml'}: no such file"]


def test_several_errors_in_one_file_give_one_line_each(tmp_path):
    text = edit("depth_mm = 1.8", "depth_mm = 9").replace("rate_hz = 140", "rate_hz = 1")
    _, errors, _ = load_file(write(tmp_path, text))
    assert [e.line for e in errors] == [4, 5]
