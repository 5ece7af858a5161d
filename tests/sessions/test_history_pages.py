"""Touch-ups due and recall by lot, a page at a time, on both backends: every page, and the
total, against the rule computed here in plain Python over a generated record (29 February,
scar work, clients completed the same day, names shared by two clients)."""

from __future__ import annotations

import calendar
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert

from sessions.history import TOUCH_UP_YEARS, Page, recall, touchups_due
from sessions.models import Client, NeedleUse, PigmentUse, SessionRow

T0 = datetime(2020, 1, 1, tzinfo=UTC)


def _due(last: date, years: int) -> date:
    # The oracle, stated independently of sessions.history: a 29 February falls due on the
    # 28th in a year without one.
    year = last.year + years
    if (last.month, last.day) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28)
    return last.replace(year=year)


@pytest.fixture
def clients(store):
    """80 clients: a third with scar work, some never completed, many completed on 28 and
    29 February or on the same day as another, and pairs sharing a name."""
    rng = random.Random(14)
    days = [date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1), date(2025, 2, 28),
            date(2026, 2, 28), date(2026, 3, 1), date(2028, 2, 28), date(2028, 2, 29)]
    rows = []
    for i in range(80):
        if i % 11 == 0:
            last = None
        else:
            day = (rng.choice(days) if rng.random() < 0.6
                   else T0.date() + timedelta(days=rng.randrange(3000)))
            last = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
                minutes=rng.randrange(24 * 60))
        rows.append({"name": f"Client {rng.randrange(30):02d}", "phone": "", "email": "",
                     "created_at": T0, "last_completed_at": last,
                     "scar_work": rng.random() < 0.35})
    with store.engine.begin() as c:
        c.execute(insert(Client), rows)
        ids = c.execute(Client.__table__.select().order_by(Client.id)).all()
    return [(r.id, r.name, r.last_completed_at, r.scar_work) for r in ids]


def _expected(clients, horizon: date, years: int, scar_years: int):
    due = [(_due(last.date(), scar_years if scar else years), name, cid, scar)
           for cid, name, last, scar in clients if last is not None]
    return sorted(d for d in due if d[0] <= horizon)


def _all_pages(fetch, limit: int) -> tuple[list, set[int]]:
    items, totals, offset = [], set(), 0
    while True:
        page = fetch(limit=limit, offset=offset)
        assert isinstance(page, Page) and (page.offset, page.limit) == (offset, limit)
        assert len(page.items) <= limit
        totals.add(page.total)
        items += page.items
        if not page.more:
            assert page.end == page.total or not page.items
            return items, totals
        offset += limit


@pytest.mark.parametrize("horizon", [date(2028, 2, 28), date(2028, 2, 29), date(2030, 2, 28),
                                     date(2030, 3, 1), date(2032, 2, 29), date(2035, 1, 1)])
def test_touch_up_pages_are_exact(store, clients, horizon):
    # 20 years: that rule has nobody due, so the other one alone fills every page (its own
    # order must then be exact at every page's end, not rescued by the other rule's rows).
    for years, scar_years in ((TOUCH_UP_YEARS, 2), (4, 1), (3, 2), (4, 20), (20, 2)):
        want = _expected(clients, horizon, years, scar_years)
        for limit in (1, 2, 3, 7, 50):
            items, totals = _all_pages(
                lambda y=years, sy=scar_years, **page: touchups_due(
                    store, today=horizon - timedelta(days=5), within_days=5, years=y,
                    scar_years=sy, **page), limit)
            assert totals == {len(want)}, (years, scar_years, limit)
            assert [(d.due_on, d.client_name, d.client_id, d.scar) for d in items] == want


def test_the_case_that_needs_every_part_of_the_rule_is_there(clients):
    # Otherwise the test above would pass without 29 February, shared names or a page break
    # inside one due day having been exercised.
    lasts = [last.date() for _, _, last, _ in clients if last is not None]
    assert date(2024, 2, 29) in lasts and date(2028, 2, 29) in lasts
    names = [name for _, name, _, _ in clients]
    assert len(set(names)) < len(names)
    due = _expected(clients, date(2030, 2, 28), 4, 2)
    assert len(due) > 7
    # Both rules have days shared by several clients, completed in another order than their
    # names': a page that ends inside such a day must still be in name order.
    for scar in (False, True):
        days: dict = {}
        for _, name, last, s in clients:
            if last is not None and s == scar:
                days.setdefault(last.date(), []).append((last, name))
        assert any(sorted(d) != sorted(d, key=lambda x: x[1]) for d in days.values()), scar
    assert any(scar and last.date() == date(2028, 2, 29) for _, _, last, scar in clients
               if last is not None)


def test_a_scar_client_completed_on_29_february_is_due_on_28_february(store):
    with store.engine.begin() as c:
        c.execute(insert(Client), [{
            "name": "Leap", "phone": "", "email": "", "created_at": T0, "scar_work": True,
            "last_completed_at": datetime(2028, 2, 29, 15, 0, tzinfo=UTC)}])
    page = touchups_due(store, today=date(2030, 2, 28))
    assert [(d.client_name, d.due_on) for d in page.items] == [("Leap", date(2030, 2, 28))]
    assert page.total == 1
    assert touchups_due(store, today=date(2030, 2, 27)).total == 0


def test_a_page_needs_a_positive_limit_and_no_negative_offset(store):
    with pytest.raises(ValueError, match="limit >= 1 and offset >= 0"):
        touchups_due(store, today=date(2030, 1, 1), limit=0)
    with pytest.raises(ValueError, match="limit >= 1 and offset >= 0"):
        recall(store, "PG-1", offset=-1)


def test_recall_pages_are_exact(store, clients):
    rng = random.Random(5)
    sessions, uses, expected = [], [], []
    with store.engine.begin() as c:
        for sid in range(1, 41):
            cid, name, _, _ = rng.choice(clients)
            # Four start times only: many sessions start together, ordered then by id.
            started = T0 + timedelta(days=rng.randrange(4))
            sim = sid % 4 == 0
            sessions.append({
                "id": sid, "client_id": cid, "technician": "T", "started_at": started,
                "stage": "1", "simulator": sim, "machine_model": "M", "machine_serial": "S",
                "machine_firmware": "F", "planned_zones": "", "outcome": "completed"})
            for zone in rng.sample([None, "crown", "hairline", "scar"], rng.randrange(1, 4)):
                lot = rng.choice(["A", "B"])
                uses.append(("pigment", {"session_id": sid, "zone": zone, "brand": "Carbon Co",
                                         "shade": "Jet", "dilution_water": 20,
                                         "dilution_pigment": 1, "lot": lot,
                                         "expiry": date(2030, 1, 1)}))
                if rng.random() < 0.5:
                    uses.append(("needle", {"session_id": sid, "zone": zone, "code": "0601RL",
                                            "lot": lot, "expiry": date(2029, 1, 1)}))
        c.execute(insert(SessionRow), sessions)
        for item, row in uses:
            c.execute(insert(PigmentUse if item == "pigment" else NeedleUse), [row])
            s = sessions[row["session_id"] - 1]
            name = next(n for i, n, _, _ in clients if i == s["client_id"])
            product = "Carbon Co Jet 20:1" if item == "pigment" else "0601RL"
            expected.append((row["lot"], (s["started_at"], row["session_id"], item,
                                          row["zone"] or ""),
                             (s["client_id"], name, row["session_id"], s["started_at"],
                              s["simulator"], item, product, row["zone"], row["lot"],
                              row["expiry"])))
    for lot in ("A", "B"):
        want = [hit for _, _, hit in sorted(e for e in expected if e[0] == lot)]
        for limit in (1, 4, 50):
            items, totals = _all_pages(lambda lot=lot, **page: recall(store, lot, **page), limit)
            assert totals == {len(want)}
            assert [tuple(vars(h).values()) for h in items] == want
        page = recall(store, lot, limit=2)
        assert page.clients == len({h[0] for h in want})
        assert page.sessions == len({h[2] for h in want})
        assert page.simulator_sessions == len({h[2] for h in want if h[4]})
    assert recall(store, "A", limit=5, offset=1000).items == ()
