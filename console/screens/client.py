"""Pick a client (search as you type) or create one.

In presentation mode a client is its pseudonym alone: the list shows it (no name, no id), the
search matches it alone, and the new-client fields are masked as they are typed."""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import ClassVar

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Checkbox, Input, OptionList, Static
from textual.widgets.option_list import Option

from console.screens.base import SmpModal, SmpScreen
from console.widgets.text import plain
from console.widgets.ticks import Tick
from console.workflow import ClientChoice, ClientSummary, ConsentForm, Health, NewClient


class ClientScreen(SmpScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "new", "New client", id="client.new",
                tooltip="Create a client record"),
        Binding("down", "focus_list", "Results", show=False, id="client.results",
                tooltip="Move into the search results"),
    ]

    def compose(self) -> ComposeResult:
        yield from self.compose_frame()
        yield Static("Client", classes="title")
        yield Input(placeholder=self._placeholder(), id="search")
        yield OptionList(id="clients")
        yield Static(id="error", classes="error")

    def _placeholder(self) -> str:
        return ("type a pseudonym (Client-...); Enter picks the first match" if
                self.app.presentation else "type a name or #id; Enter picks the first match")

    def on_mount(self) -> None:
        self.query_one("#search", Input).focus()
        self.search("")

    def on_screen_resume(self) -> None:
        # Back from a session (or a dialog): the list was read before it; read it again.
        super().on_screen_resume()
        if self.query("#search"):
            self.search(self.query_one("#search", Input).value)

    def presentation_changed(self, on: bool) -> None:
        super().presentation_changed(on)
        self.query_one("#clients", OptionList).clear_options()  # nothing of the other mode
        box = self.query_one("#search", Input)
        box.placeholder = self._placeholder()
        self.search(box.value)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.search(event.value)

    searches = 0  # each search's number: only the newest one's results are shown

    def search(self, text: str) -> None:
        hide = self.app.presentation
        self.searches += 1
        n = self.searches
        self.app.db_call(partial(self.app.controller.find_clients, presentation=hide), text,
                         then=lambda clients: self.fill(clients, hide, n))

    def fill(self, clients: list[ClientSummary], hidden: bool, n: int | None = None) -> None:
        if hidden != self.app.presentation:
            return  # read before the mode changed: never shown
        if n is not None and n != self.searches:
            return  # an older search that finished late: a newer one was typed since
        found = self.query("#clients").results(OptionList)
        box = next(found, None)
        if box is None:
            return  # the screen was closed (or the app is ending) before the answer came
        box.clear_options()
        for c in clients[:200]:
            name = c.name if hidden else f"{c.name} (#{c.id})"
            last = f"last {c.last_session_at:%Y-%m-%d}" if c.last_session_at else "new"
            box.add_option(Option(plain(f"{name}  {c.sessions} session(s), {last}"),
                                  id=str(c.id)))
        if not clients:
            box.add_option(Option(f"no match: {self.app.key('client.new')} creates a client",
                                  id="new", disabled=True))

    def action_focus_list(self) -> None:
        self.query_one("#clients", OptionList).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        box = self.query_one("#clients", OptionList)
        if box.option_count and not box.get_option_at_index(0).disabled:
            self.pick(int(box.get_option_at_index(0).id or ""))  # every client's has its id

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id and event.option.id.isdigit():
            self.pick(int(event.option.id))

    def pick(self, client_id: int) -> None:
        self.app.db_call(self.app.controller.choose_client, client_id, then=self.chosen,
                         fail=self.failed)

    def chosen(self, choice: ClientChoice) -> None:
        from console.screens.gate import GateScreen

        self.app.workflow["client"] = choice
        self.app.push_screen(GateScreen(choice))

    def failed(self, exc: Exception) -> None:
        self.query_one("#error", Static).update(self.app.shown(f"error: {exc}"))

    def action_new(self) -> None:
        def created(choice: ClientChoice | None) -> None:
            if choice is not None:
                self.chosen(choice)

        self.app.push_screen(NewClientScreen(), created)


def _plain_error(err: ErrorDetails, own: str) -> str:
    """A validation error in a technician's words, not the library's."""
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    if kind == "string_too_short":
        return "required"
    if kind == "string_too_long":
        return f"at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch" and own == "hair loss stage":
        return "allowed NW1 to NW7, or Ludwig I, II or III"
    return str(err["msg"]).removeprefix("Value error, ").removeprefix(f"{own}: ")


CONSENT_FORM = "v1"  # the clinic's consent form, as pre-filled; the technician corrects it


class NewClientScreen(SmpModal[ClientChoice | None]):
    DEFAULT_CSS = """
    NewClientScreen { align: center middle; }
    NewClientScreen > Vertical { width: 80; height: auto; border: thick $primary;
                                 background: $surface; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "save", "Save", id="newclient.save", tooltip="Create the client"),
        Binding("ctrl+g", "cancel", "Cancel", id="newclient.cancel", tooltip="Close"),
        Binding("f10", "cancel", "Cancel", show=False, id="newclient.close-f10",
                tooltip="Close without creating the client"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("New client (health data is special-category data: only what is "
                         "needed)", classes="title")
            hide = self.app.presentation  # typed in front of a class: masked
            # What a session needs first (Tab goes down in this order), then the rest.
            yield Input(placeholder="full name (required)", id="name", password=hide)
            yield Input(placeholder="date of birth YYYY-MM-DD (required: adults only)",
                        id="dob", password=hide)
            yield Input(CONSENT_FORM, placeholder="consent form version (as printed on it)",
                        id="consent-version")
            yield Tick("signed consent to the procedure (today, this form version)",
                       id="consent")
            yield Tick("signed consent to photographs (separate, optional)", id="photos")
            yield Input(placeholder="phone", id="phone", password=hide)
            yield Input(placeholder="email", id="email", password=hide)
            yield Input(placeholder="Fitzpatrick skin type 1 to 6", id="fitzpatrick",
                        password=hide)
            yield Input(placeholder="hair loss stage: NW1..NW7 or Ludwig I..III", id="stage",
                        password=hide)
            yield Input(placeholder="allergies", id="allergies", password=hide)
            yield Static(id="error", classes="error")

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def presentation_changed(self, on: bool) -> None:
        for box in self.query(Input):
            box.password = on

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_save()

    def action_save(self) -> None:
        v = {i.id: i.value.strip() for i in self.query(Input)}
        error = self.query_one("#error", Static)
        try:
            born = date.fromisoformat(v["dob"]) if v["dob"] else None
        except ValueError:
            born = None
        if born is None or born > date.today():
            # Never the value typed: it is personal data.
            error.update("error: date of birth: required, as YYYY-MM-DD (e.g. 1984-03-21)")
            return
        if not self.query_one("#consent", Checkbox).value:
            error.update("error: consent: tick the signed consent to the procedure (with its "
                         "form version); no session starts without it")
            return
        fitz = v["fitzpatrick"]
        if fitz and not (fitz.isdigit() and 1 <= int(fitz) <= 6):
            # Never the value typed: it is a health datum.
            error.update("error: Fitzpatrick skin type: allowed 1 to 6, or empty")
            return
        try:
            consent = ConsentForm(procedure=True,
                                  photos=self.query_one("#photos", Checkbox).value,
                                  version=v["consent-version"], signed_on=date.today())
            client = NewClient(
                name=v["name"], phone=v["phone"], email=v["email"], date_of_birth=born,
                consent=consent,
                health=Health(fitzpatrick=int(fitz) if fitz else None,
                              hair_loss_stage=v["stage"], allergies=v["allergies"]))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]).replace("_", " ")
            own = str(err["loc"][-1]).replace("_", " ")  # the check names the field itself
            message = _plain_error(err, own)
            error.update(self.app.shown(f"error: {field}: {message}"))
            return
        self.app.db_call(self.app.controller.add_client, client, then=self.dismiss,
                         fail=lambda e: error.update(self.app.shown(f"error: {e}")))

    def action_cancel(self) -> None:
        self.dismiss(None)
