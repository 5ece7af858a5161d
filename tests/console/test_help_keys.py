"""F2 lists keys as they are typed, not by Textual's names ("full_stop", "question_mark")."""

from console.keymap import shown


def test_key_names_are_shown_as_the_keys_typed():
    assert shown("full_stop") == "."
    assert shown("comma,question_mark") == ", ?"
    assert shown("ctrl+c") == "ctrl+c" and shown("escape") == "escape"
    assert shown("space") == "space" and shown("f2") == "f2" and shown("u") == "u"


def test_the_key_list_names_every_binding_of_every_screen(store):
    """The F2 list is written per screen; a screen left out of it (the cartridge dialog was)
    had keys nobody could look up."""
    import asyncio

    from console.app import make_app
    from console.keymap import binding_ids
    from console.screens.help import key_table

    app = make_app(store)

    async def run():
        async with app.run_test(size=(120, 40)):
            return key_table(app)

    table = asyncio.run(run())
    missing = [i for i in binding_ids() if f"(id {i})" not in table]
    assert not missing, missing
