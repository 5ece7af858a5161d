"""The recorder's sink: one thread that owns the journal and the store's writing side.

    sink = RecorderSink(store, journal_dir, owner="smp console 1234 on chair-2",
                        on_status=show)
    sink.start()                                   # replays journals a crash left, first
    sink.open_session(request, reply)              # the session row (needs the store now)
    sink.submit(fact)                              # journal (fsync), then the store
    sink.close()

A fact (sessions/facts.py) is durable once it is in the journal; `on_status` says when it is
in the store too, or why it is not. When the store will not write (locked, full, unreachable)
the facts wait in the journal, in order, and the sink tries again every `retry_s`; once the
store writes again they go in exactly once, in order (each with its journal mark, in its own
transaction). If the journal cannot be written either (the same full disk), facts wait in
memory and the status says so: the session owner stops the needle and refuses arming until
everything is written. While a session is open the sink renews its lease in the store, so that
another chair never takes it for interrupted.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from protocols.errors import SmpError
from sessions import facts, meta
from sessions.journal import Journal, JournalError, leftovers, read
from sessions.store import Store

log = logging.getLogger(__name__)

RETRY_S = 0.5
LOCK_WAIT_MS = 100  # a locked record is known within this, not after a 5 s busy timeout
LEASE_S = 60.0  # a session whose lease is older than this is taken for interrupted
RENEW_S = 1.0  # also how soon a record that stopped writing is noticed while nothing else is


@dataclass(frozen=True)
class RecordStatus:
    """Where the record stands, for every screen."""

    writing: bool = True  # everything submitted is in the store, or on its way there
    pending: int = 0  # facts not yet in the store
    reason: str = ""  # why the store is not writing ("" while it is)
    journaled: bool = True  # every pending fact is at least in the journal (else in memory)
    replayed: int = 0  # facts a crashed run left, written at start
    since: float = 0.0  # time.monotonic() of the first failed write, while not writing

    @property
    def text(self) -> str:
        if self.writing and not self.pending:
            return "writing"
        if self.writing:
            return f"writing ({self.pending} to go)"
        where = "in the journal" if self.journaled else "in memory only"
        return f"waiting ({self.reason}); {self.pending} kept {where}"


class RecorderSink:
    def __init__(self, store: Store, journal_dir: Path, *, owner: str = "",
                 on_status: Callable[[RecordStatus], None] | None = None,
                 retry_s: float = RETRY_S, clock: Callable[[], datetime] | None = None):
        self.store = store
        self.journal_dir = Path(journal_dir)
        self.owner = owner
        self.on_status = on_status or (lambda s: None)
        self.retry_s = retry_s
        self._clock = clock or (lambda: datetime.now(UTC))
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._pending: deque[tuple[int | None, dict[str, Any]]] = deque()  # (journal n, fact)
        self._journal: Journal | None = None
        self._writer: facts.StoreWriter | None = None
        self._status = RecordStatus()
        self._reason = ""
        self._sessions: set[int] = set()  # open sessions whose lease we renew
        self._flushes: list[threading.Event] = []  # waiting for everything to be written
        self._renew_at = 0.0
        self._thread = threading.Thread(target=self._run, name="smp-recorder", daemon=True)
        self._stopped = threading.Event()

    # --- the session owner's side (any thread) -------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, fact: dict[str, Any]) -> None:
        self._inbox.put(("fact", fact))

    def open_session(self, request: facts.SessionRequest,
                     reply: Callable[[facts.Opened | SmpError], None]) -> None:
        """Open a session in the store; `reply` gets the result (on the sink's thread)."""
        self._inbox.put(("open", (request, reply)))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is in the store (False if not in time)."""
        if not self._thread.is_alive():
            return not self._pending
        done = threading.Event()
        self._inbox.put(("flush", done))
        return done.wait(timeout)

    def release(self, session_id: int) -> None:
        """Stop renewing a session's lease (it has ended)."""
        self._inbox.put(("release", session_id))

    def close(self, timeout: float = 5.0) -> RecordStatus:
        """Write what can be written within `timeout`, then stop; the journal keeps the rest
        for the next start."""
        self._inbox.put(("close", time.monotonic() + timeout))
        self._thread.join(timeout + 2.0)
        return self._status

    @property
    def status(self) -> RecordStatus:
        return self._status

    # --- the sink's thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._serve()
        except Exception:
            # Never silent: the session owner sees the record stop writing (and stops the
            # needle); the log has the rest.
            log.exception("the recorder's sink failed")
            self._reason = f"the recorder failed; see the log ({type(sys.exc_info()[1]).__name__})"
            self._report(force=True)

    def _serve(self) -> None:
        try:
            self._journal = Journal.new(self.journal_dir)
        except JournalError as exc:
            log.error("%s", exc)
            self._journal = None
        self._writer = facts.StoreWriter(self.store, owner=self.owner, wait_ms=LOCK_WAIT_MS)
        self._replay_leftovers()
        deadline: float | None = None
        retry_at = 0.0  # while the store is not writing: when to try it again
        while True:
            now = time.monotonic()
            # Nothing to retry and no lease to renew: sleep until told (waking every
            # millisecond for a lease nobody holds kept a core 2% busy with no session open).
            wake = retry_at if self._pending else self._renew_at if self._sessions else None
            timeout = None if wake is None else max(0.0, wake - now)
            if deadline is not None:
                timeout = max(0.0, deadline - now) if timeout is None else min(
                    timeout, max(0.0, deadline - now))
            try:
                what, arg = self._inbox.get(
                    timeout=None if timeout is None else timeout if timeout > 0 else 0.001)
            except queue.Empty:
                what, arg = "", None
            if what == "fact":
                self._accept(arg)
            elif what == "open":
                self._open(*arg)
            elif what == "release":
                self._sessions.discard(arg)
            elif what == "close":
                deadline = arg
            elif what == "flush":
                self._flushes.append(arg)
            # A store that failed is tried again on the retry timer, not at every new fact:
            # each try may wait for a lock, and new facts must reach the journal at once.
            if not self._reason or time.monotonic() >= retry_at or deadline is not None:
                self._drain()
                if self._reason:
                    retry_at = time.monotonic() + self.retry_s
            if not self._pending:
                while self._flushes:
                    self._flushes.pop().set()
            self._renew()
            self._report()
            if deadline is not None and (not self._pending or time.monotonic() >= deadline) \
                    and self._inbox.empty():
                break
        self._writer.close()
        if self._journal is not None:
            if self._pending:
                self._journal.close()  # kept for the next start
            else:
                self._journal.remove()
        self._stopped.set()

    def _accept(self, fact: dict[str, Any]) -> None:
        n = None
        if self._journal is not None:
            try:
                n = self._journal.append(fact).n
            except JournalError as exc:
                log.error("%s", exc)
                self._reason = self._reason or "the journal cannot be written (disk full?)"
        self._pending.append((n, fact))

    def _drain(self) -> None:
        """Write pending facts in order until one fails."""
        assert self._writer is not None
        while self._pending:
            n, fact = self._pending[0]
            mark = (self._journal.id, n) if self._journal is not None and n is not None \
                else None
            try:
                self._writer.write(fact, mark=mark)
            except facts.Rejected as exc:
                # The store refuses this fact for good (another chair closed the session,
                # say): it is not lost, it stays in the journal, and the log says which.
                log.error("a fact the record refuses was kept in the journal: %s", exc)
            except SmpError as exc:
                self._reason = facts.why_not_writing(exc)
                return
            except Exception as exc:  # a driver's own error: never the end of the sink
                log.exception("the record did not take a fact")
                self._reason = f"not writing ({type(exc).__name__}; see the log)"
                return
            self._pending.popleft()
        self._reason = ""

    def _open(self, request: facts.SessionRequest,
              reply: Callable[[facts.Opened | SmpError], None]) -> None:
        assert self._writer is not None
        try:
            opened = self._writer.open_session(request, lease_until=self._lease())
        except SmpError as exc:
            reply(exc)
            return
        except Exception as exc:
            log.exception("opening a session failed")
            reply(SmpError(f"the record could not open the session ({type(exc).__name__}; "
                           "see the log)"))
            return
        self._sessions.add(opened.session_id)
        reply(opened)

    def _lease(self) -> datetime:
        return self._clock() + timedelta(seconds=LEASE_S)

    def _renew(self) -> None:
        now = time.monotonic()
        if not self._sessions or now < self._renew_at:
            return
        self._renew_at = now + RENEW_S
        assert self._writer is not None
        try:
            self._writer.renew(self._sessions, self._lease())
        except Exception as exc:
            self._reason = self._reason or facts.why_not_writing(exc)
            self._renew_at = now + self.retry_s

    def _replay_leftovers(self) -> None:
        """Journals of earlier runs: every entry the store does not hold yet, in order."""
        assert self._writer is not None
        besides = self._journal.id if self._journal is not None else ""
        replayed = 0
        try:
            found = self._of_this_record(leftovers(self.journal_dir, besides=besides))
        except SmpError as exc:  # the store is not there yet: the journals wait for it
            log.error("journals not replayed: %s", exc)
            self._reason = facts.why_not_writing(exc)
            found = []
        for path in found:
            entries, _ = read(path)
            try:
                done = self._writer.mark(path.stem)
                for entry in entries:
                    if entry.n > done:
                        try:
                            self._writer.write(entry.fact, mark=(path.stem, entry.n))
                        except facts.Rejected as exc:
                            log.error("journal %s entry %d refused by the record: %s",
                                      path.name, entry.n, exc)
                            self._writer.set_mark(path.stem, entry.n)
                        replayed += 1
            except SmpError as exc:
                # The store is not there yet: this journal waits for the next start.
                log.error("journal %s not replayed: %s", path.name, exc)
                self._reason = facts.why_not_writing(exc)
                continue
            path.unlink()
        self._status = RecordStatus(replayed=replayed)
        self._report(force=True)

    def _of_this_record(self, journals: list[Path]) -> list[Path]:
        """The journals written for the record now at this URL; those of another record (the
        file deleted and made again at the same path) are set aside, never replayed into it:
        their sessions' numbers may be another client's here."""
        stamp = self.journal_dir / "record"
        here = meta.value(self.store, meta.RECORD_ID)
        was = stamp.read_text().strip() if stamp.is_file() else None
        try:
            if was not in (None, here):
                aside = self.journal_dir / f"other-record-{was}"
                aside.mkdir(mode=0o700, exist_ok=True)
                for path in journals:
                    path.rename(aside / path.name)
                if journals:
                    log.error("%d journal(s) written for another record at this place were "
                              "set aside in %s, not replayed into this one", len(journals), aside)
                journals = []
            if was != here:
                part = stamp.with_suffix(".part")
                part.write_text(here + "\n")
                part.chmod(0o600)
                part.replace(stamp)
        except OSError as exc:  # a full disk: what is not known to be this record's waits
            log.error("journal folder %s: %s", self.journal_dir, exc.strerror)
            return [] if was not in (None, here) else journals
        return journals

    def _report(self, force: bool = False) -> None:
        journaled = all(n is not None for n, _ in self._pending)
        since = 0.0 if not self._reason else (self._status.since or time.monotonic())
        status = RecordStatus(writing=not self._reason, pending=len(self._pending),
                              reason=self._reason, journaled=journaled,
                              replayed=self._status.replayed, since=since)
        if force or status != self._status:
            self._status = status
            try:
                self.on_status(status)
            except Exception:
                log.exception("on_status failed")
