"""What the browsers read from the record: the history browser's and the replay's one reader.

Screens never import sessions/ (docs/architecture.md; import-linter keeps it so): the session
owner (console/controller.py) writes the record and answers the session's own questions, and
this reader serves the browsers. Every method does I/O: screens call it from their workers,
never from the UI thread. The record's plain view types are named here for their annotations.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from sessions.export import FORMATS, default_name, render, write_file
from sessions.history import (
    PAGE_SIZE,
    ClientRecord,
    ClientSummary,
    EventView,
    Page,
    RecallPage,
    SessionView,
    TouchUpDue,
    client_record,
    list_clients,
    recall,
    touchups_due,
)
from sessions.models import outcome_label
from sessions.pseudonymised import pseudonymise
from sessions.pseudonyms import Pseudonyms
from sessions.replay import ReplaySession
from sessions.replay import load as load_replay
from sessions.search import fold, match_clients
from sessions.store import Store, open_store

__all__ = [
    "FORMATS", "PAGE_SIZE", "ClientRecord", "ClientSummary", "EventView", "Page", "RecallPage",
    "RecordReader", "ReplaySession", "SessionView", "TouchUpDue", "default_name", "fold",
    "match_clients", "outcome_label",
]

_P = TypeVar("_P", bound=Page[Any])  # a page of rows that each name a client


class RecordReader:
    """One record, read: a Store its caller owns, or one opened from a URL (None: SMP_DB_URL
    or the default file) on first use, in a worker, and closed with the reader. In
    presentation mode every answer names clients by their pseudonyms (stable for one
    database, so cached), and a client's record is pseudonymised as an export makes it."""

    def __init__(self, source: Store | str | None = None):
        self._owned = not isinstance(source, Store)
        self._url = None if isinstance(source, Store) else source
        self._store = source if isinstance(source, Store) else None
        self._lock = threading.Lock()
        self._names: Pseudonyms | None = None

    def _get(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = open_store(self._url)
            return self._store

    def _pseudonyms(self) -> Pseudonyms:
        if self._names is None:
            self._names = Pseudonyms(self._get())
        return self._names

    def close(self) -> None:
        with self._lock:
            if self._owned and self._store is not None:
                self._store.close()
                self._store = None

    def clients(self, presentation: bool) -> list[ClientSummary]:
        clients = list_clients(self._get())
        if not presentation:
            return clients
        names = self._pseudonyms()  # in the pseudonyms' order: the names' would say something
        return sorted((dataclasses.replace(c, name=names.client(c.id)) for c in clients),
                      key=lambda c: c.name)

    def client(self, client_id: int, presentation: bool) -> ClientRecord:
        record = client_record(self._get(), client_id, events=True, runs=False)
        return pseudonymise(record, self._pseudonyms()) if presentation else record

    def recall(self, lot: str, offset: int, presentation: bool) -> RecallPage:
        page = recall(self._get(), lot, limit=PAGE_SIZE, offset=offset)
        if page.total and not page.items:  # fewer rows than when the page was chosen
            page = recall(self._get(), lot, limit=PAGE_SIZE, offset=_last(page))
        return self._aliased(page) if presentation else page

    def touchups(self, within: int, today: date, offset: int,
                 presentation: bool) -> Page[TouchUpDue]:
        store = self._get()
        page = touchups_due(store, today=today, within_days=within, limit=PAGE_SIZE,
                            offset=offset)
        if page.total and not page.items:
            page = touchups_due(store, today=today, within_days=within, limit=PAGE_SIZE,
                                offset=_last(page))
        return self._aliased(page) if presentation else page

    def export(self, client_id: int, fmt: str, path: Path, *, force: bool,
               presentation: bool) -> tuple[int, int]:
        """Write the client's record to `path`: (bytes written, sessions in it). Refuses a
        file that is there unless `force`, even one that appeared since the caller looked."""
        store = self._get()
        record = client_record(store, client_id, events=True, runs=False)
        data = render(store, record, fmt, pseudonymise_ids=presentation)
        write_file(path, data, force=force)
        return len(data), len(record.sessions)

    def replay(self, session_id: int, presentation: bool) -> ReplaySession:
        return load_replay(self._get(), session_id, presentation=presentation)

    def _aliased(self, page: _P) -> _P:
        names = self._pseudonyms()
        return dataclasses.replace(page, items=tuple(
            dataclasses.replace(row, client_name=names.client(row.client_id))
            for row in page.items))


def _last(page: Page[Any]) -> int:
    """The offset of the last page of an answer as long as `page` says."""
    return (page.total - 1) // page.limit * page.limit
