"""The recorder during a session: gate, interval, events, consumables, telemetry, crashes."""

import json
import re
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from protocols import Dilution, Stage, Zone
from sessions.errors import GateRefused, RecordError
from sessions.gate import Contraindication
from sessions.history import client_record
from sessions.models import (
    Client,
    Event,
    GateAnswer,
    NeedleRun,
    SessionRow,
    TelemetrySample,
    TelemetrySummary,
    ZoneWork,
)
from sessions.recorder import (
    Machine,
    Recorder,
    close_interrupted,
    open_sessions,
    prune_telemetry,
)
from sessions.telemetry import Reading
from tests.sessions.factory import CLEAR, REAL, FakeClock, client, session, settings


def start(store, cid, clock, answers=CLEAR, **kw):
    return Recorder.start(store, client_id=cid, technician="Tom", stage=Stage.S2, machine=REAL,
                          planned_zones=[Zone.CROWN], answers=answers, clock=clock, **kw)


def test_refusing_contraindication_needs_an_override_with_a_reason(store):
    cid, clock = client(store), FakeClock()
    answers = {**CLEAR, Contraindication.SUNBURN: True}
    with pytest.raises(GateRefused, match=r"sunburnt skin \(refused; override 'sunburn' with a "
                       "reason\\)"):
        start(store, cid, clock, answers)
    with pytest.raises(GateRefused):
        start(store, cid, clock, answers, overrides={"sunburn": "   "})
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(SessionRow)) == 0
    rec = start(store, cid, clock, answers, overrides={"sunburn": "doctor cleared, sun 3 wk ago"})
    with store.reading() as s:
        row = s.scalar(select(GateAnswer).where(GateAnswer.session_id == rec.session_id,
                                                GateAnswer.item == "sunburn"))
    assert (row.present, row.decision, row.reason) == (True, "overridden",
                                                       "doctor cleared, sun 3 wk ago")
    assert "sunburn: overridden" in rec.warnings[0]


def test_warning_contraindication_needs_an_acknowledgement(store):
    cid, clock = client(store), FakeClock()
    answers = {**CLEAR, Contraindication.PREGNANCY: True}
    with pytest.raises(GateRefused, match="pregnancy \\(needs an acknowledgement"):
        start(store, cid, clock, answers)
    rec = start(store, cid, clock, answers, overrides={"pregnancy": "client informed"})
    with store.reading() as s:
        decisions = dict(s.execute(select(GateAnswer.item, GateAnswer.decision)
                                   .where(GateAnswer.session_id == rec.session_id)).all())
    assert decisions["pregnancy"] == "acknowledged"
    assert decisions["sunburn"] == "clear" and len(decisions) == len(Contraindication)


def test_unanswered_question_refuses(store):
    answers = dict(CLEAR)
    del answers[Contraindication.KELOID_PRONE]
    with pytest.raises(GateRefused, match="unanswered: keloid-prone"):
        start(store, client(store), FakeClock(), answers)


def test_interval_rule_warns_under_10_days_and_refuses_under_7(store):
    cid, clock = client(store), FakeClock()
    session(store, cid, clock)
    clock.advance(days=6)
    with pytest.raises(GateRefused, match=r"6\.0 days since the last session, under the "
                       "minimum 7 \\(override 'interval' with a reason\\)"):
        start(store, cid, clock)
    rec = start(store, cid, clock, overrides={"interval": "client travelling abroad"})
    assert any("interval: overridden" in w for w in rec.warnings)
    rec.end(aftercare_given=True)
    clock.advance(days=8)
    rec = start(store, cid, clock)
    assert rec.warnings == ("interval: warned (8.0 days since the last session, under the "
                            "usual 10)",)


def test_events_are_committed_when_the_call_returns(store, db_url):
    from sessions.store import open_store

    clock = FakeClock()
    rec = start(store, client(store), clock)
    rec.zone_changed(Zone.CROWN, profile="crown-standard", reasons=["crown base"])
    got = rec.settings_applied(settings("1.80", "140", "7.5"))
    other = open_store(db_url)  # a separate connection pool sees it at once
    with other.reading() as s:
        ev = s.get(Event, got.id)
        assert (ev.kind, ev.zone, ev.depth_um, ev.rate_dhz, ev.voltage_mv) == (
            "settings-applied", "crown", 1800, 1400, 7500)
        zw = s.scalar(select(ZoneWork).where(ZoneWork.session_id == rec.session_id))
        assert (zw.depth_um, zw.profile, json.loads(zw.reasons)) == (
            1800, "crown-standard", ["crown base"])
    other.close()


def test_every_link_event_kind_is_recorded_in_order(store):
    clock = FakeClock()
    rec = start(store, client(store), clock)
    rec.zone_changed(Zone.CROWN)
    rec.settings_requested(settings())
    rec.settings_refused(settings("2.50"), "depth above the machine's 2.00 mm")
    rec.settings_applied(settings())
    rec.pedal_down()
    clock.advance(seconds=2)
    rec.pedal_up()
    rec.stop("technician pressed STOP")
    rec.fault("E12", "motor stall")
    rec.link_lost("no heartbeat for 250 ms")
    rec.link_restored()
    rec.machine_rebooted("boot-7f3a")
    rec.note("client asked for a break")
    rec.end(aftercare_given=True)
    with store.reading() as s:
        rows = s.execute(select(Event.seq, Event.kind, Event.duration_ms)
                         .where(Event.session_id == rec.session_id).order_by(Event.seq)).all()
    assert [r.kind for r in rows] == [
        "session-started", "zone-changed", "settings-requested", "settings-refused",
        "settings-applied", "pedal-down", "pedal-up", "stop", "fault", "link-lost",
        "link-restored", "machine-rebooted", "note", "session-ended"]
    assert [r.seq for r in rows] == list(range(1, 15))
    assert rows[6].duration_ms == 2000
    with pytest.raises(RecordError, match="has ended"):
        rec.note("too late")


def _runs(store):
    with store.reading() as s:
        return s.scalars(select(NeedleRun).order_by(NeedleRun.seq)).all()


def test_each_run_is_recorded_with_its_confirmed_settings_and_telemetry(store):
    clock = FakeClock()
    rec = start(store, client(store), clock)
    rec.zone_changed(Zone.CROWN, profile="crown-standard")
    rec.settings_applied(settings("1.80", "130", "7.5"),
                         adjustments=["technician: depth +0.05 mm"])
    for run, rates in enumerate(([1200, 1100, 1300], [1000, 1500])):
        rec.pedal_down()
        for rate in rates:
            clock.advance(milliseconds=20)
            rec.telemetry(Reading(clock(), rate, 7500 + run * 100, 300 + rate // 100,
                                  fault=rate == 1500, depth_um=1800 - run * 50))
        rec.pedal_up(60 + run * 1000, ended_by="pedal up")
    runs = _runs(store)
    assert [(r.seq, r.zone, r.profile, r.needle_ms, r.samples, r.faults) for r in runs] == [
        (1, "crown", "crown-standard", 60, 3, 0), (2, "crown", "crown-standard", 1060, 2, 1)]
    first, second = runs
    assert (first.depth_um, first.rate_dhz, first.voltage_mv) == (1800, 1300, 7500)
    assert json.loads(first.adjustments) == ["technician: depth +0.05 mm"]
    assert (first.rate_mean_dhz, first.rate_min_dhz, first.rate_max_dhz) == (1200, 1100, 1300)
    assert (second.voltage_mean_mv, second.current_max_ma, second.depth_min_um) == (
        7600, 315, 1750)
    # Under 90% of the confirmed 130 Hz (117 Hz): 110 Hz for the 20 ms since the sample before.
    assert first.under_speed_ms == 20
    assert second.under_speed_ms == 0  # 100 Hz is its first sample (no time yet); 150 is fast
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(TelemetrySummary)) == 0
        # Raw rows neither: the flight recorder keeps every frame now (sessions/flight.py).
        assert s.scalar(select(func.count()).select_from(TelemetrySample)) == 0


def test_settings_changed_mid_run_split_it_and_unknown_settings_are_recorded_as_unknown(store):
    clock = FakeClock()
    rec = start(store, client(store), clock)
    rec.zone_changed(Zone.HAIRLINE)
    rec.settings_applied(settings("1.50"))
    rec.pedal_down()
    clock.advance(seconds=2)
    rec.settings_applied(settings("1.55"), run_ms=2000)
    clock.advance(seconds=1)
    rec.settings_unknown(settings("1.60"), "no answer", run_ms=3000)
    clock.advance(seconds=1)
    rec.pedal_up(4000)
    runs = _runs(store)
    assert [(r.needle_ms, r.depth_um, r.ended_by, r.exact) for r in runs] == [
        (2000, 1500, "settings changed", False), (1000, 1550, "settings changed", False),
        (1000, None, "pedal up", True)]
    view = client_record(store, client_id_of(store, rec)).sessions[0].zones[0]
    assert view.on_skin.runs == 1 and view.on_skin.needle_ms == 4000
    assert view.settings_text() == ["1.50 mm / 110 Hz / 6.5 V for 2 s",
                                    "1.55 mm / 110 Hz / 6.5 V for 1 s",
                                    "settings not confirmed for 1 s"]
    # The same settings confirmed again mid-run do not split it.
    rec.settings_applied(settings("1.50"))
    rec.pedal_down()
    rec.settings_applied(settings("1.50"), run_ms=500)
    rec.pedal_up(900)
    assert [r.needle_ms for r in _runs(store)][3:] == [900]


def test_a_reboot_forgets_the_settings_for_the_runs_after_it(store):
    clock = FakeClock()
    rec = start(store, client(store), clock)
    rec.zone_changed(Zone.CROWN)
    rec.settings_applied(settings())
    rec.machine_rebooted("0x1")
    rec.pedal_down()
    rec.pedal_up(100)
    assert _runs(store)[0].depth_um is None


def client_id_of(store, rec) -> int:
    with store.reading() as s:
        return s.get(SessionRow, rec.session_id).client_id


def test_raw_telemetry_of_older_records_is_pruned_after_the_window(store):
    clock = FakeClock()
    rec = start(store, client(store), clock)
    rec.pedal_down()
    rec.telemetry(Reading(clock(), 1200, 7000, 300))
    rec.pedal_up()
    # Raw rows as a version before the flight recorder wrote them (its journal replays so).
    rec._write({"op": "samples", "session": rec.session_id,
                "rows": [[clock().isoformat(), 1200, 7000, 300, False]]})
    assert prune_telemetry(store, now=clock() + timedelta(days=29)) == 0
    assert prune_telemetry(store, now=clock() + timedelta(days=31)) == 1
    assert len(_runs(store)) == 1  # runs are kept for good


def test_consumables_need_a_lot_and_an_unexpired_date(store):
    rec = start(store, client(store), FakeClock())
    with pytest.raises(RecordError, match="lot number is required"):
        rec.use_pigment(brand="B", shade="S", dilution=Dilution.parse("6:1"), lot=" ",
                        expiry=date(2030, 1, 1))
    with pytest.raises(RecordError, match="pigment lot L9 expired on 2025-01-01"):
        rec.use_pigment(brand="B", shade="S", dilution=Dilution.parse("6:1"), lot="L9",
                        expiry=date(2025, 1, 1))
    with pytest.raises(RecordError, match="coverage 120% is outside 0 to 100%"):
        rec.record_coverage(Zone.CROWN, coverage_pct=120)


def test_simulator_sessions_are_marked(store):
    rec = Recorder.start(store, client_id=client(store), technician="Trainee", stage=Stage.S1,
                         machine=Machine.simulated("sim-1.0"), planned_zones=[Zone.HAIRLINE],
                         answers=CLEAR, clock=FakeClock())
    with store.reading() as s:
        row = s.get(SessionRow, rec.session_id)
        first = s.scalar(select(Event.payload).where(Event.session_id == rec.session_id))
    assert (row.simulator, row.machine_model, row.machine_serial) == (
        True, "SIMULATOR", "SIMULATOR")
    assert json.loads(first)["machine"]["simulator"] is True


def test_open_sessions_are_found_and_closed_as_interrupted(store):
    clock = FakeClock()
    cid = client(store)
    rec = session(store, cid, clock, end=False)
    done = session(store, client(store, "Bo Chen"), clock)
    found = open_sessions(store)
    assert [o.id for o in found] == [rec.session_id] and found[0].client_name == "Ann Lee"
    before = found[0].events
    close_interrupted(store, rec.session_id, clock=clock)
    assert open_sessions(store) == []
    with store.reading() as s:
        row = s.get(SessionRow, rec.session_id)
        kinds = s.scalars(select(Event.kind).where(Event.session_id == rec.session_id)).all()
        assert s.get(Client, cid).last_completed_at is None
    assert row.outcome == "interrupted" and len(kinds) == before + 1
    with pytest.raises(RecordError, match="already closed"):
        close_interrupted(store, done.session_id)


def test_one_recorder_is_safe_across_threads(store):
    rec = start(store, client(store), FakeClock())
    ids: list[int] = []

    def worker(n):
        for i in range(10):
            ids.append(rec.note(f"thread {n} note {i}").id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.reading() as s:
        seqs = s.scalars(select(Event.seq).where(Event.session_id == rec.session_id)
                         .order_by(Event.seq)).all()
    assert len(set(ids)) == 40 and seqs == list(range(1, 42))


def test_a_failed_call_commits_nothing_and_the_recorder_carries_on(store):
    from sqlalchemy import exc

    from sessions import facts
    from sessions.models import EventKind

    clock = FakeClock()
    rec = start(store, client(store), clock)
    rec.zone_changed(Zone.CROWN)  # seq 2
    # A second event with seq 2 breaks UNIQUE (session_id, seq) in the database, after the
    # zone work row of the same fact was written: the whole fact must roll back.
    clash = facts.event(rec.session_id, 2, clock(), EventKind.NOTE, payload={"text": "lost"},
                        zone_work={"zone": "nape", "values": {}})
    with pytest.raises(exc.IntegrityError):
        rec._write(clash)
    assert rec.note("kept").seq == 3  # same connection, rolled back, still usable
    with store.reading() as s:
        texts = s.scalars(select(Event.payload).where(Event.kind == "note")).all()
        zones = s.scalars(select(ZoneWork.zone)).all()
    assert [json.loads(t)["text"] for t in texts] == ["kept"]
    assert zones == ["crown"]


@pytest.mark.parametrize("reason", ["x", "ok", "xxxxxxxxxxxxxxxxxxxx", "ok ok ok ok ok ok",
                                    "fine", "a b c d e f g h", "n/a n/a n/a"])
def test_a_refusal_is_not_overridden_by_a_reason_without_substance(store, reason):
    # Before: sunburn was overridden with the reason "x".
    cid, clock = client(store), FakeClock()
    answers = {**CLEAR, Contraindication.SUNBURN: True}
    with pytest.raises(GateRefused, match=r"overriding 'sunburn' needs a reason of substance: "
                                          r"at least 3 words and 15 characters") as err:
        start(store, cid, clock, answers, overrides={"sunburn": reason})
    assert reason not in str(err.value).replace("'sunburn'", "")  # never echoed back
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(SessionRow)) == 0


def test_an_interval_refusal_needs_a_reason_of_substance_too(store):
    cid, clock = client(store), FakeClock()
    session(store, cid, clock)
    clock.advance(days=2)
    with pytest.raises(GateRefused, match="overriding 'interval' needs a reason of substance"):
        start(store, cid, clock, overrides={"interval": "ok"})
    start(store, cid, clock, overrides={"interval": "the client flies abroad next week"})


@pytest.mark.parametrize(("born", "consent", "said"), [
    (date(2010, 3, 3), True, "the client is under 18: refused, with no override"),
    (None, True, "no date of birth on record (only adults, 18 or over, are treated"),
    (date(1980, 1, 1), False, "no signed consent to the procedure on record"),
])
def test_a_minor_or_a_client_without_date_of_birth_or_consent_has_no_session(
        store, born, consent, said):
    # Before: no date of birth was asked, nothing checked the client was an adult, and three
    # clients without a signed consent had sessions.
    from sessions.clients import ConsentForm, NewClient, add_client

    cid = add_client(store, NewClient(name="Kim Park", date_of_birth=born, consent=ConsentForm(
        procedure=True, photos=False, version="v3", signed_on=date(2026, 1, 5))
        if consent else None))
    overrides = {c.value: "the client insists, and her GP agreed" for c in Contraindication}
    with pytest.raises(GateRefused, match=re.escape(said)):
        start(store, cid, FakeClock(), overrides=overrides)
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(SessionRow)) == 0


def test_eighteen_today_is_an_adult(store):
    from sessions.clients import ConsentForm, NewClient, add_client
    from sessions.gate import age_on

    clock = FakeClock()
    today = clock().date()
    born = today.replace(year=today.year - 18)
    assert age_on(born, today) == 18 and age_on(born, date.fromordinal(today.toordinal() - 1)) \
        == 17
    cid = add_client(store, NewClient(name="Kim Park", date_of_birth=born, consent=ConsentForm(
        procedure=True, photos=False, version="v3", signed_on=today)))
    assert start(store, cid, clock).session_id
