"""The timeline cannot be rewritten: not through the ORM, not through raw SQL."""

import pytest
from sqlalchemy import delete, select, text, update

from sessions.errors import AppendOnlyViolation
from sessions.models import Event
from tests.sessions.factory import FakeClock, client, session


@pytest.fixture
def recorded(store):
    rec = session(store, client(store), FakeClock())
    with store.reading() as s:
        first = s.scalar(select(Event).where(Event.session_id == rec.session_id,
                                             Event.seq == 1))
    return store, first.id


def _payload(store, event_id):
    with store.reading() as s:
        return s.get(Event, event_id).payload


def test_orm_update_is_refused(recorded):
    store, eid = recorded
    before = _payload(store, eid)
    with pytest.raises(AppendOnlyViolation, match="append-only"), store.unit() as s:
        s.get(Event, eid).payload = '{"rewritten": true}'
    assert _payload(store, eid) == before


def test_orm_delete_is_refused(recorded):
    store, eid = recorded
    with pytest.raises(AppendOnlyViolation), store.unit() as s:
        s.delete(s.get(Event, eid))
    assert _payload(store, eid)


@pytest.mark.parametrize("stmt", [
    update(Event).values(kind="note"), delete(Event)], ids=["update", "delete"])
def test_orm_bulk_statements_are_refused(recorded, stmt):
    store, eid = recorded
    with pytest.raises(AppendOnlyViolation), store.unit() as s:
        s.execute(stmt.where(Event.id == eid))
    assert _payload(store, eid)


@pytest.mark.parametrize("sql", [
    "UPDATE events SET kind = 'note' WHERE id = :id", "DELETE FROM events WHERE id = :id"],
    ids=["update", "delete"])
def test_raw_sql_is_refused_by_the_database(recorded, sql):
    store, eid = recorded
    # Bypass the ORM entirely: the trigger in the database is what stops this.
    with pytest.raises(Exception, match="append-only"), store.engine.begin() as c:
        c.execute(text(sql), {"id": eid})
    with store.engine.connect() as c:
        assert c.execute(text("SELECT kind FROM events WHERE id = :id"),
                         {"id": eid}).scalar() == "session-started"


def test_a_correction_is_a_new_event_pointing_at_the_old(store):
    clock = FakeClock()
    rec = session(store, client(store), clock, end=False)
    wrong = rec.note("used 12:1 on the crown")
    fix = rec.correct(wrong.id, "it was 10:1", dilution="10:1")
    with store.reading() as s:
        events = s.scalars(select(Event).where(Event.session_id == rec.session_id)
                           .order_by(Event.seq)).all()
    assert [e.id for e in events][-2:] == [wrong.id, fix.id]
    assert events[-1].corrects_id == wrong.id and events[-1].kind == "correction"
    assert "12:1" in events[-2].payload  # the original stays as it was
