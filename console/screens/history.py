"""The history browser: clients, sessions, per-session and per-zone timelines, lot recall,
touch-ups due, and exports of a client's record.

Every database read and every export runs in a thread worker, through the record's reader
(console/reader.py), and posts the plain objects it returns in a message; only the message
handlers touch widgets.

Presentation mode is the app's (`app.presentation`, console/app.py): the screen follows it and
has no switch of its own. In it the record is shown as a pseudonymised export makes it
(sessions/pseudonymised.py): the same keyed pseudonym for each client and technician, no id,
no contact details, free text and health data withheld; search matches the pseudonym alone.
Anything read under the other mode is dropped, never shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeAlias

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Input,
    Label,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.data_table import RowDoesNotExist, RowKey
from textual.worker import Worker, get_current_worker

from console.app_base import KeyedApp
from console.paths import exports_dir
from console.reader import (
    FORMATS,
    PAGE_SIZE,
    ClientRecord,
    ClientSummary,
    EventView,
    Page,
    RecallPage,
    RecordReader,
    SessionView,
    TouchUpDue,
    default_name,
    match_clients,
    outcome_label,
)
from console.screens.failures import failure_line
from console.widgets.table import Table
from protocols import Zone
from protocols.errors import SmpError
from protocols.text import printable
from protocols.zones import used_in_label

# A page of a paged tab: the lot recall's, or the touch-ups due.
_Paged: TypeAlias = "RecallPage | Page[TouchUpDue]"

MAX_CLIENT_ROWS = 200  # search narrows a large clinic; a longer table helps nobody
MAX_DAYS = 36500


def _utc_today() -> date:
    return datetime.now(UTC).date()


def _cells(*values: object) -> tuple[Text, ...]:
    # DataTable reads str cells as markup; a name like "[b]" must print as written, and one
    # holding ESC [2J must not clear the terminal.
    return tuple(Text(printable("" if v is None else v)) for v in values)


def _text(value: str) -> Text:
    return Text(printable(value, multiline=True))


def _key_id(key: RowKey) -> int:
    """The id a row of the clients or sessions table stands for: each is added under it."""
    assert key.value is not None, "a row added without its key"
    return int(key.value)


def _when(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M}"




# -- messages from the workers ------------------------------------------------------------

class ClientsLoaded(Message):
    def __init__(self, clients: list[ClientSummary], presentation: bool):
        super().__init__()
        self.clients = clients
        self.presentation = presentation


class RecordLoaded(Message):
    def __init__(self, record: ClientRecord, presentation: bool):
        super().__init__()
        self.record = record
        self.presentation = presentation


class RecallLoaded(Message):
    def __init__(self, lot: str, page: RecallPage, presentation: bool):
        super().__init__()
        self.lot = lot
        self.page = page
        self.presentation = presentation


class DueLoaded(Message):
    def __init__(self, within: int, today: date, page: Page[TouchUpDue], presentation: bool):
        super().__init__()
        self.within = within
        self.today = today
        self.page = page
        self.presentation = presentation


class ExportExists(Message):
    def __init__(self, client_id: int, fmt: str, path: Path):
        super().__init__()
        self.client_id = client_id
        self.fmt = fmt
        self.path = path


class ExportWritten(Message):
    def __init__(self, path: Path, size: int, sessions: int):
        super().__init__()
        self.path = path
        self.size = size
        self.sessions = sessions


def _post_unless_cancelled(screen: Screen[None], message: Message) -> None:
    # An exclusive worker that was superseded still runs to the end in its thread; its
    # answer is stale and must not overwrite the newer one.
    if not get_current_worker().is_cancelled:
        screen.post_message(message)


# -- dialogs ------------------------------------------------------------------------------

class ExportDialog(ModalScreen[tuple[str, Path] | None]):
    """Ask for the file; its ending (.json, .csv or .pdf) is the format, so the name and the
    content can never disagree. Answers (format, path) or None."""

    if TYPE_CHECKING:  # a browser's dialog runs in any console app, as the browser does
        @property
        def app(self) -> KeyedApp: ...  # type: ignore[override]  # narrowed, never assigned

    DEFAULT_CSS = """
    ExportDialog { align: center middle; }
    ExportDialog > Vertical {
        width: 80; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }
    ExportDialog #export-format, ExportDialog #export-error { height: auto; margin-top: 1; }
    ExportDialog Horizontal { height: auto; margin-top: 1; }
    ExportDialog Button { margin-right: 2; min-width: 8; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f10", "cancel", "Cancel", id="history.export.cancel",
                tooltip="Close this dialog without exporting"),
    ]

    def __init__(self, who: str, default: Path):
        super().__init__()
        self._who = who
        self._default = default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(_text(f"Export the record of {self._who}"))
            yield Label("File (its ending chooses the format; Enter exports; an existing "
                        "file is kept unless you confirm):")
            yield Input(str(self._default), id="export-path")
            yield Static(id="export-format")
            with Horizontal():
                for fmt in FORMATS:
                    yield Button(f".{fmt}", id=f"format-{fmt}")
                yield Button("Export", id="export-ok", variant="primary")
                yield Button(f"Cancel ({self.app.key('history.export.cancel')})",
                             id="export-cancel")
            yield Static(id="export-error")
            yield Footer()

    def on_mount(self) -> None:
        self.query_one("#export-path", Input).focus()
        self._describe()

    def _path(self) -> tuple[Path | None, str | None]:
        text = self.query_one("#export-path", Input).value.strip()
        if not text:
            return None, None
        path = Path(text).expanduser()
        suffix = path.suffix.lower().lstrip(".")
        return path, suffix if suffix in FORMATS else None

    @on(Input.Changed, "#export-path")
    def _describe(self) -> None:
        _, fmt = self._path()
        self.query_one("#export-format", Static).update(
            f"Format: {fmt.upper()}" if fmt else "Format: none yet (end the name with "
            ".json, .csv or .pdf)")

    @on(Button.Pressed, "#format-json, #format-csv, #format-pdf")
    def _set_format(self, event: Button.Pressed) -> None:
        box = self.query_one("#export-path", Input)
        fmt = (event.button.id or "").removeprefix("format-")
        path, known = self._path()
        if path is None:
            box.value = str(self._default.parent / f"export.{fmt}")
        else:
            box.value = str(path.with_suffix(f".{fmt}") if known else f"{path}.{fmt}")
        box.focus()

    @on(Input.Submitted, "#export-path")
    @on(Button.Pressed, "#export-ok")
    def _submit(self) -> None:
        path, fmt = self._path()
        error = self.query_one("#export-error", Static)
        if path is None:
            error.update("ERROR: give a file name, e.g. ~/client-12.pdf")
        elif fmt is None:
            error.update(_text(f"ERROR: {path.name}: the name must end .json, .csv or .pdf "
                               "(the ending chooses the format)"))
        else:
            # A bare name goes beside the default, not wherever the console was started.
            self.dismiss((fmt, path if path.is_absolute() else self._default.parent / path))

    @on(Button.Pressed, "#export-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmReplace(ModalScreen[bool]):
    """An export would replace an existing file: only a deliberate yes replaces it."""

    if TYPE_CHECKING:  # a browser's dialog runs in any console app, as the browser does
        @property
        def app(self) -> KeyedApp: ...  # type: ignore[override]  # narrowed, never assigned

    DEFAULT_CSS = """
    ConfirmReplace { align: center middle; }
    ConfirmReplace > Vertical {
        width: 80; height: auto; border: thick $warning; background: $surface; padding: 1 2;
    }
    ConfirmReplace Horizontal { height: auto; margin-top: 1; }
    ConfirmReplace Button { margin-right: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Replace", id="history.replace.yes",
                tooltip="Replace the existing file with the new export"),
        Binding("n,f10", "answer(False)", "Keep", id="history.replace.no",
                tooltip="Keep the existing file; nothing is written"),
    ]

    def __init__(self, path: Path):
        super().__init__()
        self._path = path

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(_text(f"{self._path} already exists."))
            yield Label("Replace it with the new export?")
            with Horizontal():
                yield Button(f"Replace ({self.app.key('history.replace.yes')})",
                             id="replace-yes", variant="warning")
                yield Button(f"Keep it ({self.app.key('history.replace.no')})",
                             id="replace-no", variant="primary")
            yield Footer()

    def on_mount(self) -> None:
        self.query_one("#replace-no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "replace-yes")

    def action_answer(self, replace: bool) -> None:
        self.dismiss(replace)


# -- the screen ---------------------------------------------------------------------------

class HistoryScreen(Screen[None]):
    """Browse the record: `record` is a reader (console/reader.py), or the database URL of one
    the screen opens in a worker (None: SMP_DB_URL or the default file) and closes."""

    if TYPE_CHECKING:  # a browser runs in any console app (the console, smp replay, alone)
        @property
        def app(self) -> KeyedApp: ...  # type: ignore[override]  # narrowed, never assigned

    DEFAULT_CSS = """
    HistoryScreen TabbedContent { height: 1fr; }
    HistoryScreen #clients-pane { width: 38; height: 1fr; }
    HistoryScreen #clients { height: 1fr; }
    HistoryScreen #detail { width: 1fr; height: 1fr; }
    HistoryScreen #client-head, HistoryScreen #session-head { height: auto; padding: 0 1; }
    HistoryScreen #sessions { height: auto; max-height: 8; }
    HistoryScreen #zones { height: auto; max-height: 8; }
    HistoryScreen #timeline-head { height: 1; padding: 0 1; text-style: bold; }
    HistoryScreen #timeline { height: 1fr; }
    HistoryScreen .query { height: auto; }
    HistoryScreen .query Label { padding: 1 1 0 1; }
    HistoryScreen .query Input { width: 40; }
    HistoryScreen #recall-summary, HistoryScreen #due-summary { height: auto; padding: 0 1; }
    HistoryScreen #recall, HistoryScreen #due { height: 1fr; }
    HistoryScreen #status { height: 1; padding: 0 1; }
    """
    # F2 to F5 are the console's on every screen (keys, presentation, history, protocols):
    # the browser's own are F6 to F9 and Ctrl+ keys, never a letter (the search, the lot
    # and the days are typed here; nor Ctrl+B, tmux's prefix). F6 to F8 are a browser's parts,
    # as in the protocols.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f6", "show('clients')", "Clients", id="history.clients",
                tooltip="Clients, their sessions and timelines; type to search"),
        Binding("f7", "show('recall')", "Recall lot", id="history.recall",
                tooltip="Every client and session that used a pigment or needle lot"),
        Binding("f8", "show('due')", "Touch-ups due", id="history.due",
                tooltip="Clients whose touch-up falls due within the days given"),
        Binding("ctrl+o", "page(-1)", "Previous page", id="history.page.previous",
                tooltip="Recall and touch-ups: back a page of the answer"),
        Binding("ctrl+f", "page(1)", "Next page", id="history.page.next",
                tooltip="Recall and touch-ups: forward a page of the answer"),
        Binding("ctrl+s", "export", "Export", id="history.export",
                tooltip="Export (save) the selected client's record to JSON, CSV or PDF"),
        Binding("f9", "replay", "Replay", id="history.replay",
                tooltip="Play the selected session back from its flight record (read-only)"),
        Binding("ctrl+r", "refresh", "Refresh", id="history.refresh",
                tooltip="Read the record again: sessions recorded since this opened"),
        Binding("f10", "close", "Close", id="history.close", tooltip="Leave the history"),
    ]

    def __init__(self, record: RecordReader | str | None = None, *,
                 today: Callable[[], date] = _utc_today, export_dir: Path | None = None,
                 name: str | None = None, id: str | None = None):
        super().__init__(name=name, id=id)
        self._record = record if isinstance(record, RecordReader) else RecordReader(record)
        self._today = today
        self._export_dir = export_dir
        self._clients: list[ClientSummary] = []
        self._client_id: int | None = None
        self._shown: ClientRecord | None = None
        self._lot = ""
        # The row each paged tab starts at; a new lot or a new number of days starts again.
        self._offsets = {"recall": 0, "due": 0}
        self._pages: dict[str, _Paged | None] = {"recall": None, "due": None}

    # -- layout -------------------------------------------------------------------------

    @property
    def presentation(self) -> bool:
        """The app's presentation mode (a host app without one has it off)."""
        return bool(getattr(self.app, "presentation", False))

    def compose(self) -> ComposeResult:
        key = self.app.key  # the tabs name their keys as the key map applies them
        with TabbedContent(initial="tab-clients"):
            with TabPane(f"Clients ({key('history.clients')})", id="tab-clients"), Horizontal():
                with Vertical(id="clients-pane"):
                    yield Input(placeholder="search: name or id", id="search")
                    yield Table(id="clients", cursor_type="row", zebra_stripes=True)
                with Vertical(id="detail"):
                    yield Static("Choose a client.", id="client-head")
                    yield Table(id="sessions", cursor_type="row")
                    yield Static(id="session-head")
                    yield Table(id="zones", cursor_type="row")
                    yield Static(id="timeline-head")
                    yield Table(id="timeline", cursor_type="row", zebra_stripes=True)
            with TabPane(f"Recall by lot ({key('history.recall')})", id="tab-recall"), Vertical():
                with Horizontal(classes="query"):
                    yield Label("Lot number:")
                    yield Input(placeholder="e.g. PG-2026-001, then Enter", id="lot")
                yield Static(id="recall-summary")
                yield Table(id="recall", cursor_type="row", zebra_stripes=True)
            with TabPane(f"Touch-ups due ({key('history.due')})", id="tab-due"), Vertical():
                with Horizontal(classes="query"):
                    yield Label("Due within days:")
                    yield Input("30", type="integer", id="within")
                yield Static(id="due-summary")
                yield Table(id="due", cursor_type="row", zebra_stripes=True)
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self._table("clients").add_columns("Client", "ID", "Sessions", "Last (UTC)")
        self._table("sessions").add_columns("Started (UTC)", "Stage", "Outcome", "Machine",
                                            "Technician", "Zones")
        self._table("zones").add_columns(
            "Zone", "Coverage", "Target", "Passes", "Settings used on skin (needle time)",
            "Pigment and lot", "Needle and lot", "Profile")
        self._table("timeline").add_columns("Session", "Time (UTC)", "Event", "Zone",
                                            "Settings", "Detail")
        self._table("recall").add_columns("Client", "ID", "Session", "Date (UTC)", "Machine",
                                          "Item", "Product", "Zone", "Lot", "Expiry")
        self._table("due").add_columns("Client", "ID", "Last completed (UTC)", "Due on",
                                       "Rule")
        if hasattr(type(self.app), "presentation"):
            self.watch(self.app, "presentation", self._mode_changed, init=False)
        self.query_one("#search", Input).focus()
        self._reload()

    def on_unmount(self) -> None:
        self._record.close()

    def _table(self, name: str) -> DataTable[Text]:
        return self.query_one(f"#{name}", DataTable)

    def _status(self, text: str) -> None:
        self.query_one("#status", Static).update(_text(text))

    def _reload(self) -> None:
        self._load_clients(self.presentation)
        if self._client_id is not None:
            self._load_record(self._client_id, self.presentation)
        if self._lot:
            self._load_recall(self._lot, self._offsets["recall"], self.presentation)
        self._request_due(keep_page=True)

    # -- workers: they read and write files, never widgets -------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="history-clients")
    def _load_clients(self, presentation: bool) -> None:
        _post_unless_cancelled(self, ClientsLoaded(self._record.clients(presentation),
                                                   presentation))

    @work(thread=True, exclusive=True, exit_on_error=False, group="history-record")
    def _load_record(self, client_id: int, presentation: bool) -> None:
        _post_unless_cancelled(self, RecordLoaded(self._record.client(client_id, presentation),
                                                  presentation))

    @work(thread=True, exclusive=True, exit_on_error=False, group="history-recall")
    def _load_recall(self, lot: str, offset: int, presentation: bool) -> None:
        page = self._record.recall(lot, offset, presentation)
        _post_unless_cancelled(self, RecallLoaded(lot, page, presentation))

    @work(thread=True, exclusive=True, exit_on_error=False, group="history-due")
    def _load_due(self, within: int, today: date, offset: int, presentation: bool) -> None:
        page = self._record.touchups(within, today, offset, presentation)
        _post_unless_cancelled(self, DueLoaded(within, today, page, presentation))

    @work(thread=True, exclusive=True, exit_on_error=False, group="history-export")
    def _export(self, client_id: int, fmt: str, path: Path, force: bool,
                presentation: bool) -> None:
        if path.exists() and not force:
            self.post_message(ExportExists(client_id, fmt, path))
            return
        size, sessions = self._record.export(client_id, fmt, path, force=force,
                                             presentation=presentation)
        self.post_message(ExportWritten(path, size, sessions))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The one place worker failures surface: one line, never a traceback.
        if line := failure_line(self, event):
            self._status(line)

    # -- clients ------------------------------------------------------------------------

    @on(ClientsLoaded)
    def _clients_loaded(self, msg: ClientsLoaded) -> None:
        if msg.presentation != self.presentation:
            return  # never show names loaded before presentation mode was switched on
        self._clients = msg.clients
        self._fill_clients(self.query_one("#search", Input).value)

    @on(Input.Changed, "#search")
    def _search(self, event: Input.Changed) -> None:
        self._fill_clients(event.value)

    @on(Input.Submitted, "#search")
    def _to_clients(self) -> None:
        self._table("clients").focus()

    def _matches(self, text: str) -> list[ClientSummary]:
        # The console's and the shell's one rule; presentation mode matches only what is
        # shown, the pseudonym, never the id or name.
        return match_clients(self._clients, text, by_id=not self.presentation)

    def _fill_clients(self, text: str) -> None:
        table = self._table("clients")
        found = self._matches(text)
        table.clear()
        for c in found[:MAX_CLIENT_ROWS]:
            table.add_row(*_cells(c.name, self._shown_id(c.id), c.sessions,
                                  _when(c.last_session_at)[:10]), key=str(c.id))
        shown = min(len(found), MAX_CLIENT_ROWS)
        more = f" (first {shown}: type more to narrow)" if len(found) > shown else ""
        self._status(f"{len(found)} of {len(self._clients)} clients{more}")
        if not found:
            self._client_id = None
            self._show_record(None)
        elif self._client_id is not None and table.is_valid_row_index(
                row := self._row_of(table, self._client_id)):
            table.move_cursor(row=row)  # keep the client being read when the list reloads

    @staticmethod
    def _row_of(table: DataTable[Text], client_id: int) -> int:
        try:
            return table.get_row_index(str(client_id))
        except RowDoesNotExist:  # the client is not in the list shown
            return -1

    @on(DataTable.RowHighlighted, "#clients")
    def _client_highlighted(self, event: DataTable.RowHighlighted) -> None:
        client_id = _key_id(event.row_key)
        if client_id != self._client_id or self._shown is None:
            self._client_id = client_id
            self._load_record(client_id, self.presentation)

    @on(RecordLoaded)
    def _record_loaded(self, msg: RecordLoaded) -> None:
        if msg.presentation != self.presentation or msg.record.client.id != self._client_id:
            return
        self._show_record(msg.record)

    def _show_record(self, record: ClientRecord | None) -> None:
        self._shown = record
        head = self.query_one("#client-head", Static)
        sessions = self._table("sessions")
        sessions.clear()
        if record is None:
            head.update("Choose a client.")
            self._show_session(None)
            return
        head.update(_text("\n".join(_client_lines(record, self.presentation))))
        for sv in record.sessions:
            sessions.add_row(*_cells(
                _when(sv.started_at), sv.stage.label, outcome_label(sv.outcome),
                "SIMULATOR" if sv.machine.simulator else f"{sv.machine.model} "
                f"{sv.machine.serial}", sv.technician, ", ".join(z.zone for z in sv.zones)),
                key=str(sv.id))
        if record.sessions:
            sessions.move_cursor(row=len(record.sessions) - 1)  # the latest first in view
            self._show_session(record.sessions[-1])
        else:
            self._show_session(None)

    # -- sessions, zones and timelines --------------------------------------------------

    def _session(self, session_id: int) -> SessionView | None:
        if self._shown is None:
            return None
        return next((s for s in self._shown.sessions if s.id == session_id), None)

    @on(DataTable.RowHighlighted, "#sessions")
    def _session_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_session(self._session(_key_id(event.row_key)))

    def _show_session(self, sv: SessionView | None) -> None:
        head = self.query_one("#session-head", Static)
        zones = self._table("zones")
        zones.clear()
        if sv is None:
            head.update("No sessions recorded." if self._shown else "")
            self._show_timeline("", [])
            return
        head.update(_text(_session_line(sv)))
        for z in sv.zones:
            zones.add_row(*_cells(
                z.zone.label, _pct(z.coverage_pct), _pct(z.target_density_pct),
                z.passes, "; ".join(z.settings_text()),
                "; ".join(f"{p.brand} {p.shade} {p.dilution} lot {p.lot} exp {p.expiry}"
                          for p in sv.pigments if p.zone in (z.zone, None)),
                "; ".join(f"{n.code} lot {n.lot} exp {n.expiry}"
                          for n in sv.needles if n.zone in (z.zone, None)),
                z.profile), key=f"{sv.id}:{z.zone}")
        self._show_timeline(f"Timeline of session {sv.id} ({len(sv.events)} events; "
                            "Enter on a zone for its timeline across sessions)",
                            [(sv, e) for e in sv.events])

    @on(DataTable.RowSelected, "#zones")
    def _zone_selected(self, event: DataTable.RowSelected) -> None:
        if self._shown is None:
            return
        zone = str(event.row_key.value).split(":", 1)[1]
        rows = [(sv, e) for sv in self._shown.sessions for e in sv.events if e.zone == zone]
        visits = sum(1 for sv in self._shown.sessions if any(z.zone == zone for z in sv.zones))
        self._show_timeline(f"Timeline of zone {Zone(zone).label} across {visits} session(s) "
                            f"({len(rows)} events)", rows)
        self._table("timeline").focus()

    def _show_timeline(self, title: str, rows: Iterable[tuple[SessionView, EventView]]) -> None:
        self.query_one("#timeline-head", Static).update(_text(title))
        table = self._table("timeline")
        table.clear()
        for sv, e in rows:
            table.add_row(*_cells(
                f"{sv.id}" + (" SIMULATOR" if sv.machine.simulator else ""),
                f"{e.at:%Y-%m-%d %H:%M:%S}", _KIND.get(e.kind, e.kind),
                "" if e.zone is None else e.zone.label,
                "" if e.settings is None else str(e.settings), _event_detail(e)),
                key=str(e.id))

    # -- recall and due -----------------------------------------------------------------

    @on(Input.Submitted, "#lot")
    def _recall_submitted(self, event: Input.Submitted) -> None:
        lot = event.value.strip()
        if not lot:
            self._status("ERROR: type a pigment or needle lot number, then Enter")
            return
        self._lot = lot
        self._offsets["recall"] = 0
        self._load_recall(lot, 0, self.presentation)

    @on(RecallLoaded)
    def _recall_loaded(self, msg: RecallLoaded) -> None:
        if msg.presentation != self.presentation or msg.lot != self._lot:
            return
        page = msg.page
        self._shown_page("recall", page)
        table = self._table("recall")
        table.clear()
        for h in page.items:
            table.add_row(*_cells(
                h.client_name, self._shown_id(h.client_id), h.session_id, _when(h.started_at),
                "SIMULATOR" if h.simulator else "machine", h.item, h.product,
                used_in_label(h.zone), h.lot, h.expiry))
        sim = page.simulator_sessions
        summary = (f"Lot {msg.lot}: {page.clients} client(s), {page.sessions} session(s)"
                   + (f", {sim} of them on the SIMULATOR" if sim else "")
                   + f"; {self._paged(page, 'uses')}"
                   if page.total else f"No session used lot {msg.lot}.")
        self.query_one("#recall-summary", Static).update(_text(summary))
        self._status(summary)

    @on(Input.Submitted, "#within")
    def _request_due(self, event: Input.Submitted | None = None, *,
                     keep_page: bool = False) -> None:
        text = self.query_one("#within", Input).value.strip()
        if not text.isdigit() or int(text) > MAX_DAYS:
            self._status(f"ERROR: due within {text!r}: a whole number of days, 0 to {MAX_DAYS}")
            return
        if not keep_page:
            self._offsets["due"] = 0
        self._load_due(int(text), self._today(), self._offsets["due"], self.presentation)

    @on(DueLoaded)
    def _due_loaded(self, msg: DueLoaded) -> None:
        if msg.presentation != self.presentation:
            return
        page = msg.page
        self._shown_page("due", page)
        table = self._table("due")
        table.clear()
        for d in page.items:
            table.add_row(*_cells(d.client_name, self._shown_id(d.client_id),
                                  _when(d.last_completed_at)[:10], d.due_on,
                                  "scar (2 years)" if d.scar else "standard (4 years)"))
        summary = f"{page.total} touch-up(s) due by {msg.today:%Y-%m-%d} + {msg.within} days"
        self.query_one("#due-summary", Static).update(Text(
            summary + (f"; {self._paged(page, 'touch-ups')}" if page.total else "")))

    def _paged(self, page: _Paged, what: str) -> str:
        key = self.app.key
        keys = [k for k, ok in ((f"{key('history.page.previous')} previous", page.offset > 0),
                                (f"{key('history.page.next')} next", page.more)) if ok]
        return f"{page.showing()} {what}" + (f" ({', '.join(keys)})" if keys else "")

    def _shown_page(self, tab: str, page: _Paged) -> None:
        self._offsets[tab] = page.offset
        self._pages[tab] = page
        self.refresh_bindings()

    def _paged_tab(self) -> str | None:
        active = self.query_one(TabbedContent).active
        return {"tab-recall": "recall", "tab-due": "due"}.get(active)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action != "page":
            return True
        tab = self._paged_tab()
        page = self._pages[tab] if tab else None
        if page is None:
            return False  # not on a paged tab, or nothing read yet: the keys are hidden
        step = parameters[0] if parameters else 1
        assert isinstance(step, int), step  # the bindings' page(-1) and page(1)
        # Shown but dimmed at either end, so the footer does not jump as pages turn.
        return (page.more if step > 0 else page.offset > 0) or None

    @on(TabbedContent.TabActivated)
    def _tab_changed(self) -> None:
        self.refresh_bindings()

    def action_page(self, step: int) -> None:
        tab = self._paged_tab()
        page = self._pages[tab] if tab else None
        if page is None:
            return
        offset = max(0, page.offset + step * PAGE_SIZE)
        if offset == page.offset or offset >= page.total:
            return
        if tab == "recall":
            self._load_recall(self._lot, offset, self.presentation)
        else:
            self._offsets["due"] = offset
            self._request_due(keep_page=True)

    # -- actions ------------------------------------------------------------------------

    def action_show(self, tab: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{tab}"
        self.query_one({"clients": "#search", "recall": "#lot", "due": "#within"}[tab]).focus()

    def action_refresh(self) -> None:
        self._status("Reading the record again...")
        self._reload()  # the clients' count replaces this when they are read

    def _shown_id(self, client_id: int) -> str:
        return "" if self.presentation else str(client_id)  # an id identifies too

    def _mode_changed(self, on: bool) -> None:
        # F3 works over the export dialogs too: they name the client, and would export, as
        # the other mode did, so they close, to be opened again.
        if isinstance(self.app.screen, ExportDialog | ConfirmReplace):
            self.app.screen.dismiss(None)
        # Clear what is on screen now: nothing loaded under the other mode stays visible.
        self._clients = []
        self._table("clients").clear()
        self._show_record(None)
        for name in ("recall", "due"):
            self._table(name).clear()
            self.query_one(f"#{name}-summary", Static).update("")
            self._pages[name] = None
        self._reload()
        self._status("Presentation mode on: identities and health data hidden"
                     if on else "Presentation mode off")

    def action_export(self) -> None:
        if self._shown is None:
            self._status("ERROR: choose a client to export first "
                         f"({self.app.key('history.clients')}, then a client)")
            return
        client = self._shown.client
        presentation = self.presentation
        # Never the client's name in a file name: the pseudonym shown, or the id and date.
        name = default_name(self._shown, "json", today=self._today(),
                            pseudonym=client.name if presentation else None)
        try:
            folder = self._export_dir or exports_dir()
        except SmpError as exc:  # the data directory cannot be made private
            self._status(f"ERROR: {exc}")
            return

        def chosen(answer: tuple[str, Path] | None) -> None:
            if answer is not None:
                self._status(f"Exporting to {answer[1]} ...")
                self._export(client.id, answer[0], answer[1], False, presentation)

        who = client.name if presentation else f"{client.name} (id {client.id})"
        self.app.push_screen(ExportDialog(who, folder / name), chosen)

    @on(ExportExists)
    def _confirm_replace(self, msg: ExportExists) -> None:
        presentation = self.presentation

        def answered(replace: bool | None) -> None:
            if replace:
                self._export(msg.client_id, msg.fmt, msg.path, True, presentation)
            else:
                self._status(f"Not exported: {msg.path} already exists and was kept")

        self.app.push_screen(ConfirmReplace(msg.path), answered)

    @on(ExportWritten)
    def _exported(self, msg: ExportWritten) -> None:
        self._status(f"Wrote {msg.path} ({msg.size} bytes, {msg.sessions} session(s))")

    def action_replay(self) -> None:
        from console.screens.replay import ReplayScreen

        table = self._table("sessions")
        if self._shown is None or not self._shown.sessions or table.row_count == 0:
            self._status("ERROR: choose a client and one of their sessions to replay "
                         f"({self.app.key('history.clients')})")
            return
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        self.app.push_screen(ReplayScreen(self._record, _key_id(key)))

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.dismiss()
        else:
            self.app.exit()


# -- text -----------------------------------------------------------------------------------

_KIND = {
    "settings-applied": "settings applied (read-back)",
    "settings-requested": "settings requested",
    "settings-refused": "settings REFUSED",
}


def _pct(value: int | None) -> str:
    return "-" if value is None else f"{value}%"


def _client_lines(record: ClientRecord, presentation: bool) -> list[str]:
    c = record.client
    if presentation:  # the record is pseudonymised already; the id is not shown either
        return [f"{c.name}, {len(record.sessions)} session(s)",
                "Identity, free text and health data hidden (presentation mode)."]
    lines = [f"{c.name}  (id {c.id}), {len(record.sessions)} session(s)"]
    contact = [x for x in (c.phone, c.email) if x]
    if c.date_of_birth:
        contact.append(f"born {c.date_of_birth}")
    if contact:
        lines.append("  ".join(contact))
    h = record.health
    if h is not None:
        facts = [h.hair_loss_stage, h.hair_loss_cause,
                 f"Fitzpatrick {h.fitzpatrick}" if h.fitzpatrick else "", h.skin_quality,
                 f"hair {h.hair_colour}" if h.hair_colour else "",
                 f"allergies: {h.allergies}" if h.allergies else "",
                 f"patch test: {h.patch_test}" if h.patch_test else "",
                 f"medications: {h.medications}" if h.medications else ""]
        lines.append("Health: " + (", ".join(f for f in facts if f) or "nothing recorded"))
    for consent in record.consents:
        lines.append(f"Consent {consent.version} signed {consent.signed_on}: procedure "
                     f"{'yes' if consent.procedure else 'NO'}, photos "
                     f"{'yes' if consent.photos else 'no'}")
    return lines


def _session_line(sv: SessionView) -> str:
    parts = [f"Session {sv.id}", f"{_when(sv.started_at)} UTC", sv.stage.label,
             outcome_label(sv.outcome), f"by {sv.technician}", f"machine {sv.machine}",
             "aftercare given" if sv.aftercare_given else "aftercare NOT recorded"]
    gate = [f"{g.item} {g.decision}" + (f" ({g.reason})" if g.reason else "")
            for g in sv.gate if g.decision != "clear"]
    line = ", ".join(parts)
    if gate:
        line += "\nGate: " + "; ".join(gate)
    if sv.machine.simulator:
        line = "SIMULATOR session: practice on a simulated machine, no pigment applied.\n" + line
    return line


def _event_detail(e: EventView) -> str:
    parts = []
    if e.duration_ms is not None:
        parts.append(f"run {e.duration_ms / 1000:.1f} s")
    if e.corrects_id is not None:
        parts.append(f"corrects event {e.corrects_id}")
    for key, value in sorted(e.payload.items()):
        if isinstance(value, dict) or value in ("", None, []):
            continue  # the machine is in the session line; empty fields say nothing
        if isinstance(value, list):
            value = "; ".join(map(str, value))
        parts.append(f"{key}: {value}")
    return ", ".join(parts)
