"""On start: sessions a crash left open are offered for closing, and nothing else happens
until the offer is answered.

Only sessions whose lease has run out are offered (a session another chair is running renews
its lease and is never offered; the offer says how many such there are). The answer is
deliberate: the word CLOSE typed and Enter, or a button; never one letter, so that a key meant
for another screen cannot close anything. In presentation mode clients and technicians are
named by their pseudonyms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Static

from console.screens.base import SmpScreen
from console.widgets.text import plain
from console.workflow import OpenSession, Pseudonyms

if TYPE_CHECKING:
    from console.app import SmpApp

WORD = "CLOSE"


class RecoverScreen(SmpScreen):
    """A step of its own before connecting (with the banner: SIMULATOR, PRESENTATION...)."""

    DEFAULT_CSS = """
    RecoverScreen #offer { width: 1fr; height: auto; border: thick $warning; padding: 1 2; }
    RecoverScreen Horizontal { height: auto; }
    RecoverScreen Button { margin: 1 1 0 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f10", "keep", "Keep open", id="recover.keep",
                tooltip="Keep the sessions open (they are offered again at the next start)"),
    ]

    def __init__(self, interrupted: list[OpenSession], held: int, names: Pseudonyms) -> None:
        super().__init__()
        self.interrupted, self.held, self.names = interrupted, held, names

    def _text(self) -> str:
        hide = self.app.presentation
        lines = "\n".join(
            f"  session {s.id}: "
            + (f"{self.names.client(s.client_id)}, {self.names.technician(s.technician)}"
               if hide else f"{s.client_name}, {s.technician}")
            + f", started {s.started_at:%Y-%m-%d %H:%M} UTC, {s.events} events"
            for s in self.interrupted[:10])
        more = (f"\n  and {len(self.interrupted) - 10} more" if len(self.interrupted) > 10
                else "")
        held = (f"\n{self.held} other open session(s) are running at another chair and are "
                "not offered." if self.held else "")
        return (f"{len(self.interrupted)} session(s) were interrupted (left open by a crash; "
                f"nobody has held them since):\n{lines}{more}{held}\n\nClose them as "
                f"INTERRUPTED? Every recorded event is kept. Type {WORD} and Enter, or use the "
                f"buttons; {self.app.key('recover.keep')} keeps them open.")

    def presentation_changed(self, on: bool) -> None:
        self.query_one("#question", Static).update(plain(self._text()))

    def compose(self) -> ComposeResult:
        yield from self.compose_frame()
        with Vertical(id="offer"):
            yield Static(plain(self._text()), id="question")
            yield Input(placeholder=f"type {WORD} to close them", id="word")
            with Horizontal():
                yield Button(f"Close them as interrupted ({len(self.interrupted)})",
                             variant="warning", id="close")
                yield Button(f"Keep them open ({self.app.key('recover.keep')})", id="keep")
            yield Static("", id="hint", classes="error")

    def on_mount(self) -> None:
        self.ready = True
        self.show(self.app.view)
        self.query_one("#word", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip().upper() == WORD:
            self.dismiss(True)
        else:
            self.query_one("#hint", Static).update(
                f"type {WORD} (or press a button) to close them; "
                f"{self.app.key('recover.keep')} keeps them open")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "close")

    def action_keep(self) -> None:
        self.dismiss(False)


def offer_recovery(app: SmpApp, then: Callable[[], None]) -> None:
    """Look for interrupted sessions; offer them (and wait for the answer), then `then()`."""
    controller = app.controller

    def found(answer: tuple[tuple[list[OpenSession], int], Pseudonyms]) -> None:
        (interrupted, held), names = answer
        if not interrupted:
            then()
            return

        def answered(close: bool | None) -> None:
            if close:
                app.db_call(controller.close_interrupted, [s.id for s in interrupted],
                            then=lambda n: app.notify(f"{n} session(s) closed as interrupted"))
            then()

        app.push_screen(RecoverScreen(interrupted, held, names), answered)

    def failed(exc: Exception) -> None:
        app.notify(str(exc), title="Record", severity="error")
        then()

    app.db_call(lambda: (controller.interrupted_sessions(), controller.pseudonyms()),
                then=found, fail=failed)
