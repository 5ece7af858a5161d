"""History queries on both backends: the questions a technician and a clinic ask."""

from datetime import date

import pytest

from protocols import Zone
from sessions.history import (
    PAGE_SIZE,
    AmbiguousClient,
    Page,
    RecallPage,
    UnknownClient,
    client_record,
    find_client,
    list_clients,
    recall,
    settings_to_repeat,
    technician_activity,
    timeline,
    touchups_due,
    zone_history,
)
from sessions.needle_runs import on_skin
from sessions.recorder import Machine
from tests.sessions.factory import FakeClock, client, session


@pytest.fixture
def clinic(store):
    clock = FakeClock()
    ann, bo, ann2 = client(store, "Ann Lee"), client(store, "Bo Chen"), client(store, "Ann Lewis")
    session(store, ann, clock, lot="PG-1", depth="1.50", coverage=30)
    clock.advance(days=14)
    session(store, ann, clock, lot="PG-2", depth="1.80", coverage=70)
    session(store, bo, clock, zones=(Zone.SCAR,), lot="PG-2", needle_lot="NL-9",
            technician="Mia Ortiz", machine=Machine.simulated())
    clock.advance(days=20)
    return store, {"ann": ann, "bo": bo, "ann2": ann2}, clock


def test_client_record_lists_sessions_zones_and_consumables(clinic):
    store, ids, _ = clinic
    rec = client_record(store, ids["ann"])
    assert rec.client.name == "Ann Lee" and rec.health.allergies == "nickel"
    assert [s.zones[0].coverage_pct for s in rec.sessions] == [30, 70]
    first = rec.sessions[0]
    assert [z.zone for z in first.zones] == ["hairline", "crown"]
    assert {p.lot for p in first.pigments} == {"PG-1"} and first.needles[0].code == "0601RL"
    assert first.outcome == "completed" and first.aftercare_given
    crown = first.zones[1]
    assert str(crown.confirmed) == "depth 1.50 mm, rate 110.0 Hz, voltage 6.5 V"
    assert first.per_run and crown.runs == ()  # summed in the database, runs not read
    runs = client_record(store, ids["ann"], runs=True).sessions[0].zones[1]
    assert [(r.seq, r.zone, r.needle_ms) for r in runs.runs] == [(2, "crown", 90_000)]
    assert runs.on_skin == crown.on_skin == on_skin(runs.runs)
    assert crown.settings_text() == ["1.50 mm / 110 Hz / 6.5 V for 1 min 30 s"]
    assert first.events == ()
    full = client_record(store, ids["ann"], events=True)
    assert full.sessions[0].events[0].kind == "session-started"


def test_zone_history_and_settings_to_repeat(clinic):
    store, ids, _ = clinic
    visits = zone_history(store, ids["ann"], Zone.CROWN)
    assert [v.work.coverage_pct for v in visits] == [70, 30]  # newest first
    assert visits[0].pigments[0].lot == "PG-2"
    last = settings_to_repeat(store, ids["ann"], Zone.CROWN)
    assert str(last.settings) == "depth 1.80 mm, rate 110.0 Hz, voltage 6.5 V"
    assert last.text() == "repeat: 1.80 mm / 110 Hz / 6.5 V, used 1 min 30 s on 16 Mar 2026"
    older = settings_to_repeat(store, ids["ann"], Zone.CROWN, excluding=last.session_id)
    assert str(older.settings.depth_mm) == "1.50"
    assert settings_to_repeat(store, ids["ann"], Zone.NAPE) is None


def test_recall_finds_every_session_across_clients(clinic):
    store, ids, _ = clinic
    page = recall(store, "PG-2")
    hits = page.items
    assert {(h.client_name, h.zone) for h in hits} == {
        ("Ann Lee", "hairline"), ("Ann Lee", "crown"), ("Bo Chen", "scar")}
    assert [h.simulator for h in hits if h.client_name == "Bo Chen"] == [True]
    assert [h.product for h in hits] == ["Carbon Co Jet 1 20:1"] * 3
    assert (page.total, page.clients, page.sessions, page.simulator_sessions) == (3, 2, 2, 1)
    needles = recall(store, "NL-9").items
    assert [(h.item, h.product, h.client_id) for h in needles] == [
        ("needle", "0601RL", ids["bo"])]
    assert recall(store, "NOPE") == RecallPage((), 0, 0, PAGE_SIZE)


def test_touchups_due_after_four_years_or_two_for_scars(clinic):
    store, _, clock = clinic
    today = clock().date()
    assert touchups_due(store, today=today) == Page((), 0, 0, PAGE_SIZE)
    due = touchups_due(store, today=date(2028, 4, 1)).items
    assert [(d.client_name, d.scar, d.due_on) for d in due] == [
        ("Bo Chen", True, date(2028, 3, 16))]
    due = touchups_due(store, today=date(2030, 3, 1), within_days=30).items
    assert [d.client_name for d in due] == ["Bo Chen", "Ann Lee"]
    assert touchups_due(store, today=date(2028, 4, 1), scar_years=3).total == 0


def test_technician_activity(clinic):
    store, _, _ = clinic
    act = {a.technician: a for a in technician_activity(store)}
    assert (act["Tom Reyes"].sessions, act["Tom Reyes"].completed, act["Tom Reyes"].zones) == (
        2, 2, 4)
    assert (act["Mia Ortiz"].simulator, act["Mia Ortiz"].zones) == (1, 1)


def test_find_client_by_name_id_and_close_matches(clinic):
    store, ids, _ = clinic
    assert find_client(store, "ann lee").id == ids["ann"]
    assert find_client(store, f"#{ids['bo']}").name == "Bo Chen"
    assert find_client(store, "Lewis").id == ids["ann2"]
    with pytest.raises(AmbiguousClient, match=r"'Ann' is ambiguous: Ann Lee \(id \d+\), "
                       r"Ann Lewis \(id \d+\); give the id instead"):
        find_client(store, "Ann")
    with pytest.raises(UnknownClient, match="no client named 'Bo Chan'; did you mean Bo Chen"):
        find_client(store, "Bo Chan")
    assert [c.name for c in list_clients(store)] == ["Ann Lee", "Ann Lewis", "Bo Chen"]


def test_timeline_of_a_session(clinic):
    store, ids, _ = clinic
    sid = client_record(store, ids["ann"]).sessions[0].id
    kinds = [e.kind for e in timeline(store, sid)]
    assert kinds[0] == "session-started" and kinds[-1] == "session-ended"
    assert kinds.count("settings-applied") == 2


def test_lookups_fold_case_and_unicode_on_both_sides(store):
    import unicodedata

    from sessions.history import find_clients
    from sessions.search import fold
    from tests.sessions.factory import client

    nfd = unicodedata.normalize("NFD", "Zoë Łukasz 王")
    zoe = client(store, nfd)  # stored decomposed, looked up composed: still the same name
    client(store, "Łukasz Nowak")
    assert fold(nfd) == fold("ZOË  ŁUKASZ 王") == fold("zoe lukasz 王") == "zoe lukasz 王"
    for typed in ("Zoë Łukasz 王", nfd, "zoË ŁUKASZ 王", "ŁUKASZ 王", "zoe lukasz"):
        assert [c.id for c in find_clients(store, typed)] == [zoe], typed
        assert find_client(store, typed).id == zoe
    # Exact matches come first; every partial match follows, each word anywhere in the name.
    assert [c.name for c in find_clients(store, "łukasz nowak")] == ["Łukasz Nowak"]
    assert len(find_clients(store, "łukasz")) == 2
    assert [c.id for c in find_clients(store, "王 ZOË")] == [zoe]
    # A miss suggests near names, never one that folds to what was typed.
    with pytest.raises(UnknownClient) as err:
        find_client(store, "Zoe Lukaz")
    assert str(err.value) == f"no client named 'Zoe Lukaz'; did you mean {nfd}?"
