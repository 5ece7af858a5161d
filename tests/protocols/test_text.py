"""The one text check (what may be stored) and escape (what is shown)."""

import pytest

from protocols.text import UnsafeText, ascii_printable, check, printable

HOSTILE = {
    "window title": "Ann\x1b]0;owned\x07Lee",
    "clear screen": "Ann\x1b[2JLee",
    "bell": "Ann\x07",
    "right-to-left override": "Ann \u202eeeL",
    "isolate": "Ann \u2066Lee\u2069",
    "mark": "Ann\u200fLee",
    "DEL": "Ann\x7f",
    "C1 CSI": "Ann\x9b2J",
    "NEL": "Ann\x85Lee",
    "line separator": "Ann\u2028Lee",
}


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_controls_and_bidi_overrides_are_refused_naming_the_field_not_the_value(value):
    with pytest.raises(UnsafeText) as err:
        check("client name", value)
    message = str(err.value)
    assert message.startswith("client name: ") and "is not allowed; allowed: printable" in message
    assert "Ann" not in message and "\n" not in message  # never the value: it may be health


def test_the_message_names_the_character():
    with pytest.raises(UnsafeText, match=r"control character U\+001B \(ESC\)"):
        check("notes", "\x1b[2J", multiline=True)
    with pytest.raises(UnsafeText, match=r"U\+202E \(right-to-left override\)"):
        check("name", "\u202e")


def test_newline_and_tab_only_in_multi_line_text():
    assert check("notes", "line one\n\tline two", multiline=True) == "line one\n\tline two"
    for value in ("a\nb", "a\tb", "a\rb"):
        with pytest.raises(UnsafeText):
            check("name", value)
    with pytest.raises(UnsafeText):
        check("notes", "a\rb", multiline=True)


@pytest.mark.parametrize("value", ["Łukasz Żółć", "Zoë Ng", "Юлия", "李小龍", "O'Brien-Smith",
                                   "مريم", "עברית", "👩🏽‍⚕️ emoji with ZWJ", "[bold red]x[/]"])
def test_ordinary_text_of_every_script_is_kept(value):
    assert check("name", value) == value
    assert printable(value) == value


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_printable_escapes_so_nothing_acts_on_a_terminal(value):
    shown = printable(value)
    assert shown.isprintable(), shown
    assert "Ann" in shown


def test_escapes_are_visible_and_multi_line_keeps_its_lines():
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("a\u202eb") == "a\\u202eb"
    assert printable("one\ntwo") == "one\\ntwo"
    assert printable("one\ntwo\x07", multiline=True) == "one\ntwo\\x07"


def test_device_strings_are_printable_ascii():
    assert ascii_printable("R1-\x1b[2J0042\u202e") == "R1-?[2J0042?"
    assert ascii_printable("SMP-R1 serial 42") == "SMP-R1 serial 42"
