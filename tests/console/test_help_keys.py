"""F2 lists keys as they are typed, not by Textual's names ("full_stop", "question_mark")."""

from console.keymap import shown


def test_key_names_are_shown_as_the_keys_typed():
    assert shown("full_stop") == "."
    assert shown("comma,question_mark") == ", ?"
    assert shown("ctrl+c") == "ctrl+c" and shown("escape") == "escape"
    assert shown("space") == "space" and shown("f2") == "f2" and shown("u") == "u"
