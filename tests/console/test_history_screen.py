"""The history browser driven by keys in a minimal app, against a real SQLite record in
tmp_path filled through the sessions Python API."""

from __future__ import annotations

import asyncio
import json
import re
import stat
from datetime import UTC, date, datetime

import pytest
from textual.widgets import Input, Static

from console.screens.history import ConfirmReplace, ExportDialog, HistoryScreen
from protocols import Zone
from sessions.recorder import Machine
from sessions.store import open_store
from tests.console.browser_pilot import Host, rows, settle, settled_layout
from tests.sessions.factory import FakeClock, client, session

TODAY = date(2026, 3, 30)
SIZE = (160, 45)


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    """Ann Lee: two sessions (lots PG-1 then PG-2); Bo Chen: a SIMULATOR scar session with
    PG-2 and needle lot NL-9; Cy Dunn: scar work in 2022 (touch-up overdue); Di Park: 2022-04
    (due in 16 days); Ann Lewis: no sessions. Read-only for every test, so built once."""
    url = f"sqlite:///{tmp_path_factory.mktemp('record') / 'record.sqlite3'}"
    store = open_store(url)
    ids = {}
    old = FakeClock(datetime(2022, 1, 10, 9, 0, tzinfo=UTC))
    ids["cy"] = client(store, "Cy Dunn")
    session(store, ids["cy"], old, zones=(Zone.SCAR,), lot="PG-0")
    old.advance(days=95)
    ids["di"] = client(store, "Di Park")
    session(store, ids["di"], old, zones=(Zone.NAPE,), lot="PG-0")
    clock = FakeClock()
    ids["ann"] = client(store, "Ann Lee")
    ids["bo"] = client(store, "Bo Chen")
    ids["ann2"] = client(store, "Ann Lewis")
    session(store, ids["ann"], clock, lot="PG-1", depth="1.50", coverage=30)
    clock.advance(days=14)
    session(store, ids["ann"], clock, lot="PG-2", depth="1.80", coverage=70)
    session(store, ids["bo"], clock, zones=(Zone.SCAR,), lot="PG-2", needle_lot="NL-9",
            technician="Mia Ortiz", machine=Machine.simulated())
    store.close()
    return url, ids


def history(url, **kw) -> Host:
    return Host(HistoryScreen(url, today=lambda: TODAY, **kw))


def text(screen, widget_id: str) -> str:
    return str(screen.query_one(f"#{widget_id}", Static).render())


async def search(pilot, words: str) -> None:
    await pilot.press(*words)
    await settle(pilot)


def test_search_as_you_type_and_timeline_with_applied_settings(clinic):
    asyncio.run(_test_search_as_you_type_and_timeline_with_applied_settings(clinic))


async def _test_search_as_you_type_and_timeline_with_applied_settings(clinic):
    url, ids = clinic
    app = history(url)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.browser
        assert [r[0] for r in rows(screen, "clients")] == [
            "Ann Lee", "Ann Lewis", "Bo Chen", "Cy Dunn", "Di Park"]
        await search(pilot, "ann")
        assert [r[0] for r in rows(screen, "clients")] == ["Ann Lee", "Ann Lewis"]
        await search(pilot, " lee")
        assert rows(screen, "clients") == [["Ann Lee", str(ids["ann"]), "2", "2026-03-16"]]
        head = text(screen, "client-head")
        assert "Ann Lee" in head and "allergies: nickel" in head and "NW4" in head
        assert [r[:4] for r in rows(screen, "sessions")] == [
            ["2026-03-02 09:00", "stage 1", "completed", "Rotary One R1-0042"],
            ["2026-03-16 09:10", "stage 1", "completed", "Rotary One R1-0042"]]
        # The latest session is shown: each zone with the settings used on skin and for how
        # long, pigment lot and needle lot.
        zones = rows(screen, "zones")
        assert [z[:5] for z in zones] == [
            ["Hairline", "70%", "30%", "2", "1.80 mm / 110 Hz / 6.5 V for 1 min 30 s"],
            ["Crown (vertex)", "70%", "30%", "2", "1.80 mm / 110 Hz / 6.5 V for 1 min 30 s"]]
        assert "lot PG-2" in zones[0][5] and "0601RL lot NL-77" in zones[0][6]
        applied = [r for r in rows(screen, "timeline") if r[2] == "settings applied (read-back)"]
        assert [(r[3], r[4]) for r in applied] == [
            ("Hairline", "depth 1.80 mm, rate 110.0 Hz, voltage 6.5 V"),
            ("Crown (vertex)", "depth 1.80 mm, rate 110.0 Hz, voltage 6.5 V")]
        # The first session, then the crown's timeline across both sessions.
        await pilot.press("enter", "tab", "up")
        await settle(pilot)
        assert "Session" in text(screen, "session-head") and "2026-03-02" in text(
            screen, "session-head")
        assert rows(screen, "zones")[1][4].startswith("1.50 mm / 110 Hz / 6.5 V for ")
        await pilot.press("tab", "down", "enter")
        await settle(pilot)
        assert text(screen, "timeline-head").startswith("Timeline of zone Crown (vertex) across 2")
        crown = [r for r in rows(screen, "timeline") if r[2] == "settings applied (read-back)"]
        assert [r[4].split(",")[0] for r in crown] == ["depth 1.50 mm", "depth 1.80 mm"]
        assert {r[3] for r in rows(screen, "timeline")} == {"Crown (vertex)"}


def test_simulator_sessions_say_simulator(clinic):
    asyncio.run(_test_simulator_sessions_say_simulator(clinic))


async def _test_simulator_sessions_say_simulator(clinic):
    url, _ = clinic
    app = history(url)
    async with app.run_test(size=SIZE) as pilot:
        await search(pilot, "bo")
        screen = app.browser
        assert rows(screen, "sessions")[0][3] == "SIMULATOR"
        assert text(screen, "session-head").startswith("SIMULATOR session")
        assert all(r[0].endswith("SIMULATOR") for r in rows(screen, "timeline"))


def test_recall_by_lot_finds_every_session_across_clients(clinic):
    asyncio.run(_test_recall_by_lot_finds_every_session_across_clients(clinic))


async def _test_recall_by_lot_finds_every_session_across_clients(clinic):
    url, ids = clinic
    app = history(url)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f7", *"PG-2", "enter")
        await settle(pilot)
        screen = app.browser
        found = [(r[0], r[4], r[5], r[7]) for r in rows(screen, "recall")]
        assert found == [("Ann Lee", "machine", "pigment", "Crown (vertex)"),
                         ("Ann Lee", "machine", "pigment", "Hairline"),
                         ("Bo Chen", "SIMULATOR", "pigment", "Scar tissue")]
        assert text(screen, "recall-summary") == (
            "Lot PG-2: 2 client(s), 2 session(s), 1 of them on the SIMULATOR; "
            "showing 1-3 of 3 uses")
        screen.query_one("#lot", Input).value = ""
        await pilot.press(*"NL-9", "enter")
        await settle(pilot)
        assert [(r[1], r[5], r[6]) for r in rows(screen, "recall")] == [
            (str(ids["bo"]), "needle", "0601RL")]


def test_touch_ups_due_within_days(clinic):
    asyncio.run(_test_touch_ups_due_within_days(clinic))


async def _test_touch_ups_due_within_days(clinic):
    url, _ = clinic
    app = history(url)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.browser
        # Default 30 days from 2026-03-30: Cy's scar touch-up (2 years) is overdue and Di's
        # four-year touch-up falls due on 2026-04-15.
        assert [(r[0], r[3], r[4]) for r in rows(screen, "due")] == [
            ("Cy Dunn", "2024-01-10", "scar (2 years)"),
            ("Di Park", "2026-04-15", "standard (4 years)")]
        await pilot.press("f8", "backspace", "backspace", "0", "enter")
        await settle(pilot)
        assert [r[0] for r in rows(screen, "due")] == ["Cy Dunn"]
        await pilot.press("backspace", "enter")
        await settle(pilot)
        assert text(screen, "status") == (
            "ERROR: due within '': a whole number of days, 0 to 36500")


def test_touch_ups_and_recall_a_page_at_a_time(tmp_path):
    asyncio.run(_test_touch_ups_and_recall_a_page_at_a_time(tmp_path))


async def _test_touch_ups_and_recall_a_page_at_a_time(tmp_path):
    from datetime import timedelta

    from sqlalchemy import insert

    from sessions.history import PAGE_SIZE
    from sessions.models import Client, PigmentUse, SessionRow

    url = f"sqlite:///{tmp_path / 'record.sqlite3'}"
    store = open_store(url)
    at = datetime(2010, 1, 1, tzinfo=UTC)
    many = 2 * PAGE_SIZE + 20  # three pages, the last one short
    with store.engine.begin() as c:
        c.execute(insert(Client), [
            {"name": f"Due {i:03d}", "phone": "", "email": "", "created_at": at,
             "last_completed_at": at + timedelta(days=i), "scar_work": False}
            for i in range(many)])
        c.execute(insert(SessionRow), [
            {"client_id": 1 + i, "technician": "T", "started_at": at + timedelta(days=i),
             "stage": "1", "simulator": False, "machine_model": "M", "machine_serial": "S",
             "machine_firmware": "F", "planned_zones": "", "outcome": "completed"}
            for i in range(many)])
        c.execute(insert(PigmentUse), [
            {"session_id": 1 + i, "zone": None, "brand": "B", "shade": "S",
             "dilution_water": 1, "dilution_pigment": 1, "lot": "BIG",
             "expiry": date(2030, 1, 1)} for i in range(many)])
    store.close()
    app = history(url)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.browser
        await pilot.press("f8")
        await settle(pilot)
        due = [[r[0] for r in rows(screen, "due")]]
        summaries = [text(screen, "due-summary")]
        # Forward three times (the third is past the last page: nothing), then back.
        for key in ("ctrl+f", "ctrl+f", "ctrl+f", "ctrl+o"):
            await pilot.press(key)
            await settle(pilot)
            due.append([r[0] for r in rows(screen, "due")])
            summaries.append(text(screen, "due-summary"))
        names = [f"Due {i:03d}" for i in range(many)]
        pages = [names[:PAGE_SIZE], names[PAGE_SIZE:2 * PAGE_SIZE], names[2 * PAGE_SIZE:]]
        assert due == [pages[0], pages[1], pages[2], pages[2], pages[1]]
        head = f"{many} touch-up(s) due by 2026-03-30 + 30 days; showing"
        assert summaries == [
            f"{head} 1-50 of {many} touch-ups (Ctrl+F next)",
            f"{head} 51-100 of {many} touch-ups (Ctrl+O previous, Ctrl+F next)",
            f"{head} 101-{many} of {many} touch-ups (Ctrl+O previous)",
            f"{head} 101-{many} of {many} touch-ups (Ctrl+O previous)",
            f"{head} 51-100 of {many} touch-ups (Ctrl+O previous, Ctrl+F next)"]
        # Recall pages the same way, and a new lot starts again at its first page.
        await pilot.press("f7", *"BIG", "enter")
        await settle(pilot)
        await pilot.press("ctrl+f")
        await settle(pilot)
        assert [r[2] for r in rows(screen, "recall")] == [
            str(i) for i in range(PAGE_SIZE + 1, 2 * PAGE_SIZE + 1)]
        assert text(screen, "recall-summary") == (
            f"Lot BIG: {many} client(s), {many} session(s); showing 51-100 of {many} uses "
            "(Ctrl+O previous, Ctrl+F next)")
        await pilot.press("enter")  # the same lot again: its first page
        await settle(pilot)
        assert rows(screen, "recall")[0][2] == "1"
        # The page keys act on the tab shown, not on the other one.
        await pilot.press("f8", "ctrl+f")
        await settle(pilot)
        assert [r[0] for r in rows(screen, "due")] == pages[2]


def test_export_writes_a_file_and_refuses_an_existing_one(clinic, tmp_path):
    asyncio.run(_test_export_writes_a_file_and_refuses_an_existing_one(clinic, tmp_path))


async def _test_export_writes_a_file_and_refuses_an_existing_one(clinic, tmp_path):
    url, ids = clinic
    app = history(url, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await search(pilot, "ann lee")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ExportDialog)
        # The default name never holds the client's name: the id and the day.
        out = tmp_path / f"client-{ids['ann']}-20260330.json"
        assert app.screen.query_one("#export-path", Input).value == str(out)
        assert text(app.screen, "export-format") == "Format: JSON"
        await pilot.press("enter")
        await settle(pilot)
        doc = json.loads(out.read_bytes())
        assert doc["client"]["name"] == "Ann Lee" and len(doc["sessions"]) == 2
        assert text(app.browser, "status").startswith(f"Wrote {out} (")

        # The same file again: asked, and "n" keeps it untouched.
        before = out.read_bytes()
        await pilot.press("ctrl+s", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmReplace)
        await pilot.press("n")
        await settle(pilot)
        assert out.read_bytes() == before
        assert text(app.browser, "status") == f"Not exported: {out} already exists and was kept"

        # A PDF, replacing an existing file only after "y".
        pdf = out.with_suffix(".pdf")
        pdf.write_bytes(b"old")
        await pilot.press("ctrl+s")
        await pilot.click("#format-pdf")
        await pilot.pause()
        assert app.screen.query_one("#export-path", Input).value == str(pdf)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert pdf.read_bytes().startswith(b"%PDF")

        # A name without a format, then a folder that does not exist: one line each,
        # nothing written, the screen carries on.
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one("#export-path", Input).value = str(tmp_path / "notes.txt")
        await pilot.press("enter")
        await pilot.pause()
        assert text(app.screen, "export-error") == (
            "ERROR: notes.txt: the name must end .json, .csv or .pdf (the ending chooses the "
            "format)")
        app.screen.query_one("#export-path", Input).value = str(tmp_path / "no" / "x.csv")
        await pilot.pause()
        assert text(app.screen, "export-format") == "Format: CSV"
        await pilot.press("enter")
        await settle(pilot)
        assert text(app.browser, "status") == (
            f"ERROR: cannot write {tmp_path / 'no' / 'x.csv'}: directory {tmp_path / 'no'} "
            "does not exist")
        assert sorted(p.name for p in tmp_path.iterdir()) == [out.name, pdf.name]


def test_presentation_mode_hides_names_and_health(clinic, tmp_path):
    asyncio.run(_test_presentation_mode_hides_names_and_health(clinic, tmp_path))


async def _test_presentation_mode_hides_names_and_health(clinic, tmp_path):
    url, ids = clinic
    app = history(url, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await search(pilot, "ann lee")
        screen = app.browser
        assert "nickel" in text(screen, "client-head")
        app.presentation = True  # the app's one state: the screen follows it
        await settle(pilot)
        assert rows(screen, "clients") == []  # "ann lee" matches nothing that is shown
        screen.query_one("#search", Input).value = f"#{ids['ann']}"
        await settle(pilot)
        assert rows(screen, "clients") == []  # nor does an id: ids are not shown either
        screen.query_one("#search", Input).value = ""
        await settle(pilot)
        shown = rows(screen, "clients")
        names = [r[0] for r in shown]
        assert len(names) == 5 and all(n.startswith("Client-") for n in names)
        assert names == sorted(names) and {r[1] for r in shown} == {""}
        await pilot.press("f7", *"PG-2", "enter")
        await settle(pilot)
        assert {r[0][:7] for r in rows(screen, "recall")} == {"Client-"}
        assert {r[1] for r in rows(screen, "recall")} == {""}
        await pilot.press("f6", "f8", "f7", "f6")  # no key of the browser reveals anything
        await settle(pilot)
        await pilot.press(*names[0][7:].lower())  # the pseudonym, typed as the class sees it
        await settle(pilot)
        head = text(screen, "client-head")
        assert head.startswith(names[0]) and "id " not in head and "nickel" not in head
        assert all("Tom Reyes" not in r[4] for r in rows(screen, "sessions"))
        await pilot.press("ctrl+s")
        await pilot.pause()
        path = tmp_path / f"{names[0]}.json"  # the file name carries the pseudonym
        assert app.screen.query_one("#export-path", Input).value == str(path)
        await pilot.press("enter")
        await settle(pilot)
        doc = json.loads(path.read_bytes())
        # The pseudonym on screen is the export's: one keyed pseudonym per client.
        assert doc["pseudonymised"] is True and doc["client"]["pseudonym"] == names[0]
        assert not {"Ann", "Lee", "Lewis", "Bo", "Chen", "Cy", "Dunn", "Di", "Park"} & set(
            re.findall(r"\w+", json.dumps(doc)))


def test_a_database_error_is_one_line_on_screen(tmp_path):
    asyncio.run(_test_a_database_error_is_one_line_on_screen(tmp_path))


async def _test_a_database_error_is_one_line_on_screen(tmp_path):
    app = history(f"sqlite:///{tmp_path / 'missing' / 'x.sqlite3'}")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.screen is app.browser
        assert text(app.browser, "status") == (
            f"ERROR: cannot create database {tmp_path / 'missing' / 'x.sqlite3'}: directory "
            f"{tmp_path / 'missing'} does not exist")


def test_snapshot(clinic, snap_compare):
    """Ann Lee's latest session: zones with read-backs and lots, and its timeline."""
    url, _ = clinic

    async def find_ann_lee(pilot):
        await settle(pilot)
        for box in pilot.app.browser.query(Input):
            box.cursor_blink = False  # a blinking cursor makes the picture depend on timing
        await search(pilot, "ann lee")
        await settled_layout(pilot)

    assert snap_compare(history(url), terminal_size=(150, 44), run_before=find_ann_lee)


def test_refresh_reads_what_was_recorded_since_the_browser_opened(tmp_path):
    url = f"sqlite:///{tmp_path / 'record.sqlite3'}"
    store = open_store(url)
    client(store, "Ann Lee")

    async def run():
        app = history(url)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            names = lambda: [r[0] for r in rows(app.browser, "clients")]  # noqa: E731
            assert names() == ["Ann Lee"]
            client(store, "Bo Chen")  # the console records a new client meanwhile
            await pilot.pause(0.2)
            await settle(pilot)
            assert names() == ["Ann Lee"]  # what is shown was read when it opened
            await pilot.press("ctrl+r")
            await settle(pilot)
            assert names() == ["Ann Lee", "Bo Chen"]
            assert text(app.browser, "status") == "2 of 2 clients"

    try:
        asyncio.run(run())
    finally:
        store.close()


def test_exports_default_to_the_private_folder_not_where_the_console_started(clinic, tmp_path,
                                                                            monkeypatch):
    """Why: exports defaulted to the current directory (a source tree, a shared folder)."""
    url, ids = clinic
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    folder = tmp_path / "data" / "smp" / "exports"

    async def run():
        app = history(url)
        async with app.run_test(size=SIZE) as pilot:
            await search(pilot, "ann lee")
            await pilot.press("ctrl+s")
            await pilot.pause()
            box = app.screen.query_one("#export-path", Input)
            assert box.value == str(folder / f"client-{ids['ann']}-20260330.json")
            box.value = "ann.csv"  # a bare name: beside the default, not in `here`
            await pilot.press("enter")
            await settle(pilot)
            assert text(app.browser, "status").startswith(f"Wrote {folder / 'ann.csv'} (")

    asyncio.run(run())
    assert list(here.iterdir()) == [] and (folder / "ann.csv").is_file()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
