"""The session workflow without a terminal: the controller against sim:// and a SQLite file."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import pytest

from console.controller import SessionController
from console.view import Link, MachineState
from console.workflow import WorkflowError, next_session_text
from protocols import SafetyEnvelope, SmpError, Stage, Zone
from protocols.envelope import Range
from sessions import history
from sessions.errors import GateRefused
from sessions.gate import Contraindication
from tests.console.conftest import CLEAR, NEEDLE, new_client, plan, wait_until


def state_is(c, *states):
    return lambda: c.view.machine.state in states


def armed_session(c, zone=Zone.HAIRLINE):
    """A new client's session, the zone chosen and the machine armed; the client."""
    client = c.add_client(new_client())
    c.start_session(plan(), CLEAR, {})
    c.select_zone(zone, cartridge=NEEDLE)
    c.arm()
    assert wait_until(state_is(c, MachineState.ARMED))
    return client


def run_pedal(c, seconds=0.3):
    sim = c.simulator
    sim.do("pedal down")
    assert wait_until(state_is(c, MachineState.RUNNING)), c.view.machine
    assert wait_until(lambda: c.view.work.run_ms > 0)
    wait_until(lambda: False, timeout=seconds)
    sim.do("pedal up")
    assert wait_until(lambda: not c.view.machine.pedal)


def test_the_whole_session_is_recorded_exactly_as_the_controller_confirmed(controller, store):
    c = controller
    assert c.view.machine.simulator and c.view.machine.identity.startswith("SIMULATOR")
    assert "SIMULATOR" in c.view.banners

    client = c.add_client(new_client())
    assert c.find_clients("ann")[0].id == client.id and client.suggested_stage == Stage.S1

    # The gate: a refusing item blocks without a reason, and is recorded with one.
    answers = {**CLEAR, Contraindication.SUNBURN: True}
    with pytest.raises(GateRefused, match="sunburnt skin"):
        c.check_gate(answers, {})
    overrides = {"sunburn": "only the crown was sunburnt and it is not worked today"}
    verdicts = c.check_gate(answers, overrides)
    assert [v.decision for v in verdicts if v.present] == ["overridden"]
    sid = c.start_session(plan(), answers, overrides)

    confirmed = [c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)]
    assert c.view.work.zone is Zone.HAIRLINE and c.view.work.profile
    assert c.view.machine.applied == confirmed[-1]
    confirmed.append(c.adjust("depth_mm", +1))
    assert confirmed[-1].depth_mm == confirmed[0].depth_mm + Decimal("0.05")
    confirmed.append(c.adjust("voltage_v", -2))
    assert confirmed[-1].voltage_v == confirmed[0].voltage_v - Decimal("0.2")

    c.arm()
    assert wait_until(state_is(c, MachineState.ARMED))
    run_pedal(c)

    # STOP: acknowledged, latched, and re-arming is a deliberate act that clears the latch.
    acked, record = c.stop()
    assert acked is True and record == "writing"
    assert wait_until(state_is(c, MachineState.STOPPED))
    assert "STOPPED" in " ".join(c.view.banners)
    c.arm()
    assert wait_until(state_is(c, MachineState.ARMED))

    # A fault: cause and what to do are in the view; recorded as the machine reported it.
    c.simulator.do("fault stall")
    c.simulator.do("pedal down")
    assert wait_until(state_is(c, MachineState.FAULT), timeout=5)
    assert "stalled" in c.view.machine.fault_cause and "re-arm" in c.view.machine.fault_action
    assert any(b.startswith("FAULT: the motor stalled") for b in c.view.banners)
    c.simulator.do("pedal up")
    c.simulator.do("clear stall")
    assert wait_until(lambda: not c.view.machine.pedal)
    c.arm()
    assert wait_until(state_is(c, MachineState.ARMED))

    # Link loss while armed: LOST shown and recorded, then restored; re-arm to continue.
    seen = []
    c.on_view = lambda v: seen.append(v.machine.link)
    c.simulator.do("fault link-drop 0.6")
    assert wait_until(lambda: Link.LOST in seen, timeout=2)
    assert wait_until(lambda: c.view.machine.link == Link.CONNECTED, timeout=3)
    assert wait_until(state_is(c, MachineState.FAULT, MachineState.STOPPED))
    c.arm()
    assert wait_until(state_is(c, MachineState.ARMED))

    confirmed.append(c.select_zone(Zone.CROWN))
    run_pedal(c, 0.2)
    c.set_coverage(Zone.CROWN, 30)
    shown = {z.zone: z for z in c.view.work.zones}
    summary = c.end_session({Zone.HAIRLINE: 25}, "a calm first session", aftercare_given=True)
    assert summary.session_id == sid and "stage 2 between" in summary.next_session
    assert c.view.work is None

    assert c.sink.flush()

    rec = history.client_record(store, client.id, events=True)
    (s,) = rec.sessions
    assert s.machine.simulator and s.machine.model == "SIMULATOR"
    assert s.outcome == "completed" and s.aftercare_given
    assert [g.reason for g in s.gate if g.present] == [overrides["sunburn"]]
    applied = [e.settings for e in s.events if e.kind == "settings-applied"]
    assert applied[:3] == confirmed[:3] and applied[-1] == confirmed[-1]
    zones = {z.zone: z for z in s.zones}
    for zone in (Zone.HAIRLINE, Zone.CROWN):
        assert zones[zone.value].confirmed == shown[zone].settings
    assert zones["hairline"].coverage_pct == 25 and zones["crown"].coverage_pct == 30
    kinds = [e.kind for e in s.events]
    for kind in ("stop", "fault", "link-lost", "link-restored", "pedal-down", "pedal-up"):
        assert kind in kinds, kind
    assert kinds.count("pedal-down") == kinds.count("pedal-up") >= 2
    fault = next(e for e in s.events if e.kind == "fault" and "STALL" in e.payload["code"])
    assert "stalled" in fault.payload["message"]
    for zone in (Zone.HAIRLINE, Zone.CROWN):  # the run timer shown is the recorded runs
        runs = [e.duration_ms for e in s.events if e.kind == "pedal-up" and e.zone == zone]
        assert runs and sum(runs) == shown[zone].run_ms and len(runs) == shown[zone].runs
    assert s.pigments[0].lot == "PG-2026-001" and s.needles[0].lot == "NL-77"


def test_adjustment_outside_the_envelope_is_refused_not_sent_and_recorded(store):
    narrow = SafetyEnvelope(depth_mm=Range(lo=Decimal("1.0"), hi=Decimal("1.55")),
                            rate_hz=Range(lo=Decimal("50"), hi=Decimal("150")),
                            voltage_v=Range(lo=Decimal("3"), hi=Decimal("12")))
    c = SessionController(store, envelope=narrow)
    try:
        c.connect("sim://")
        client = c.add_client(new_client())
        c.start_session(plan(), CLEAR, {})
        first = c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)
        assert first.depth_mm == Decimal("1.50")
        c.adjust("depth_mm", 1)
        with pytest.raises(WorkflowError, match=r"needle depth 1\.60 mm is outside"):
            c.adjust("depth_mm", 1)
        assert c.view.machine.applied.depth_mm == Decimal("1.55")
        assert c.machine.applied.depth_mm == Decimal("1.55")  # nothing else reached it
    finally:
        c.close()
    assert c.sink.flush()
    (s,) = history.client_record(store, client.id, events=True).sessions
    refused = [e for e in s.events if e.kind == "settings-refused"]
    assert len(refused) == 1 and refused[0].settings.depth_mm == Decimal("1.60")


def test_repeat_last_session_settings_and_a_machine_restart(controller, store):
    c = controller
    client = c.add_client(new_client())
    c.start_session(plan(), CLEAR, {})
    c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)
    last = c.adjust("rate_hz", 5)
    c.arm()
    assert wait_until(state_is(c, MachineState.ARMED))
    run_pedal(c)
    c.end_session({Zone.HAIRLINE: 30}, aftercare_given=True)

    again = c.choose_client(client.id)
    assert again.suggested_stage == Stage.S2 and again.days_since_last < 1
    with pytest.raises(GateRefused, match="under the minimum 7"):
        c.check_gate(CLEAR, {})
    c.start_session(plan(stage=Stage.S2), CLEAR, {"interval": "client travels abroad"})
    with pytest.raises(WorkflowError, match="choose a zone first"):
        c.repeat_last()
    c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)
    assert c.repeat_last().startswith(f"repeat: {last.short()}, used ")
    assert c.view.machine.applied == last

    # The machine restarts: it forgets its settings; arming sends the confirmed ones again.
    c.simulator.do("fault reboot")
    assert wait_until(lambda: c.view.machine.applied is None, timeout=3)
    c.arm()
    assert wait_until(state_is(c, MachineState.ARMED))
    assert c.machine.applied == last
    c.end_session({}, aftercare_given=False)
    assert c.sink.flush()
    s = history.client_record(store, client.id, events=True).sessions[-1]
    kinds = [e.kind for e in s.events]
    assert "machine-rebooted" in kinds
    assert any(e.payload.get("text", "").startswith(f"hairline: repeat: {last.short()}")
               for e in s.events)


def test_a_zone_works_with_the_profile_chosen_for_it_and_keeps_it(controller, store):
    c = controller
    client = c.add_client(new_client())
    c.start_session(plan(stage=Stage.S2), CLEAR, {})
    assert [n for n, _ in c.profiles_for(Zone.HAIRLINE)] == ["hairline-soft", "hairline-defined"]
    soft = c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)  # the default: 110 Hz, 6.5 V
    assert c.view.work.profile == "hairline-soft"
    assert c.view.work.profiles == ("hairline-soft", "hairline-defined")
    defined = c.select_zone(Zone.HAIRLINE, "hairline-defined")  # 120 Hz, 7.0 V
    assert c.view.work.profile == "hairline-defined" and c.view.machine.applied == defined
    assert (defined.rate_hz, defined.voltage_v) != (soft.rate_hz, soft.voltage_v)
    assert defined.rate_hz - soft.rate_hz == Decimal("10")

    # Back to the hairline after the crown: the choice holds for the session.
    c.select_zone(Zone.CROWN)
    assert c.view.work.profiles == ("crown-standard",)
    assert c.select_zone(Zone.HAIRLINE) == defined
    assert c.view.work.profile == "hairline-defined"

    # Another zone's profile is refused in one line, and nothing changes.
    with pytest.raises(WorkflowError, match="profile 'crown-standard' is not for Hairline: "
                                            "allowed hairline-soft, hairline-defined"):
        c.select_zone(Zone.HAIRLINE, "crown-standard")
    assert c.view.work.profile == "hairline-defined" and c.view.machine.applied == defined
    c.end_session({Zone.HAIRLINE: 40}, aftercare_given=True)

    assert c.sink.flush()

    (s,) = history.client_record(store, client.id).sessions
    (hairline,) = [z for z in s.zones if z.zone == Zone.HAIRLINE.value]
    assert hairline.profile == "hairline-defined"


def test_a_run_is_needle_time_not_pedal_time(controller, store):
    c = controller
    client = c.add_client(new_client())
    c.start_session(plan(), CLEAR, {})
    c.select_zone(Zone.CROWN, cartridge=NEEDLE)

    # The pedal pressed while disarmed: the needle never ran, so no run.
    c.simulator.do("pedal down")
    assert wait_until(lambda: c.view.machine.pedal)
    wait_until(lambda: False, timeout=0.3)
    c.simulator.do("pedal up")
    assert wait_until(lambda: not c.view.machine.pedal)
    assert c.view.work.run_ms == 0

    # A stall mid-run: the run ends at the fault, however long the pedal stays down after.
    c.arm()
    assert wait_until(state_is(c, MachineState.ARMED))
    c.simulator.do("pedal down")
    assert wait_until(state_is(c, MachineState.RUNNING))
    wait_until(lambda: False, timeout=0.3)
    c.simulator.do("fault stall")
    assert wait_until(state_is(c, MachineState.FAULT), timeout=5)
    wait_until(lambda: False, timeout=1.5)  # the pedal still held
    assert c.view.work.run_ms == 0  # no run going on
    c.simulator.do("pedal up")
    assert wait_until(lambda: not c.view.machine.pedal)
    (crown,) = [z for z in c.view.work.zones if z.zone is Zone.CROWN]
    assert crown.runs == 1 and 200 <= crown.run_ms < 1400, crown.run_ms
    assert any(line.startswith("needle stopped (FAULT): run of") for line in c.view.log)
    c.end_session({Zone.CROWN: 20}, aftercare_given=True)

    assert c.sink.flush()

    (s,) = history.client_record(store, client.id, events=True).sessions
    kinds = [e.kind for e in s.events if e.kind in ("pedal-down", "pedal-up", "fault")]
    assert kinds == ["pedal-down", "fault", "pedal-up"] or kinds == [
        "pedal-down", "pedal-up", "fault"], kinds
    (up,) = [e for e in s.events if e.kind == "pedal-up"]
    assert up.duration_ms == crown.run_ms


def test_one_pseudonym_per_client_and_search_by_it_alone(controller, store):
    from sessions.pseudonyms import Pseudonyms

    c = controller
    ann = c.add_client(new_client("Ann Lee"))
    client = c.add_client(new_client("Zed Quinn"))  # the chosen one
    alias = Pseudonyms(store).client(client.id)  # the exports' keyed pseudonym
    assert client.alias == alias and alias.startswith("Client-")
    c.start_session(plan(), CLEAR, {})
    assert (c.view.work.client, c.view.work.client_alias) == ("Zed Quinn", alias)
    shown = c.find_clients("", presentation=True)
    assert {s.name for s in shown} == {alias, ann.alias}
    for hidden in ("zed", "Quinn", f"#{client.id}"):  # (digits alone may be in a pseudonym)
        assert [s.name for s in c.find_clients(hidden, presentation=True)] == [], hidden
    assert [s.id for s in c.find_clients(alias.lower(), presentation=True)] == [client.id]
    assert [s.name for s in c.find_clients("zed")] == ["Zed Quinn"]


def test_steps_out_of_order_are_refused_in_one_line(store):
    c = SessionController(store)
    try:
        with pytest.raises(WorkflowError, match="no client chosen"):
            c.check_gate(CLEAR, {})
        with pytest.raises(WorkflowError, match="no session is open"):
            c.select_zone(Zone.CROWN)
        assert c.stop() == (False, "writing")  # nothing connected: nothing to stop
    finally:
        c.close()


def test_telemetry_is_coalesced_for_the_screen(controller):
    c = controller
    c.add_client(new_client())
    c.start_session(plan(), CLEAR, {})
    c.select_zone(Zone.CROWN, cartridge=NEEDLE)
    c.arm()
    c.simulator.do("pedal down")
    assert wait_until(state_is(c, MachineState.RUNNING))
    before = len(c.views)
    wait_until(lambda: False, timeout=1.0)
    published = len(c.views) - before
    c.simulator.do("pedal up")
    # 50 telemetry frames a second arrive; the screen gets about 5 views (plus a few events).
    assert 3 <= published <= 12, published
    assert len(c.view.machine.rate_trend) >= 3 and c.view.machine.rate_hz > 50


def test_next_session_follows_the_interval_rules():
    today = date(2026, 3, 2)
    assert next_session_text(Stage.S1, [Zone.CROWN], today) == (
        "stage 2 between 2026-03-12 and 2026-03-16 (not before 2026-03-09 without an override)")
    assert "touch-up around 2028-03-02" in next_session_text(Stage.S4, [Zone.SCAR], today)
    assert "touch-up around 2030-03-02" in next_session_text(Stage.TOUCH_UP, [Zone.CROWN],
                                                             today)
    # The same date rule as the clinic's touch-ups due: 29 February four years on is 29
    # February (the console said the 28th), two years on the 28th.
    leap = date(2028, 2, 29)
    assert "touch-up around 2032-02-29" in next_session_text(Stage.TOUCH_UP, [Zone.CROWN], leap)
    assert "touch-up around 2030-02-28" in next_session_text(Stage.S4, [Zone.SCAR], leap)


def test_a_mismatched_read_back_is_recorded_as_applied_and_stops_the_machine(controller, store):
    """Invariant 3: the record holds what the machine applied (its read-back), not what was
    asked, even when they differ; and the machine is stopped."""
    c = controller
    client = c.add_client(new_client())
    c.start_session(plan(), CLEAR, {})
    c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)
    c.simulator.do("fault misapply")
    with pytest.raises(SmpError, match=r"the machine applied depth 1\.60 mm"):
        c.adjust("depth_mm", 1)  # asks 1.55 mm; the faulty firmware applies 1.60 mm
    assert c.view.machine.applied.depth_mm == Decimal("1.60")
    assert wait_until(state_is(c, MachineState.STOPPED, MachineState.FAULT))
    assert c.sink.flush()
    (s,) = history.client_record(store, client.id, events=True).sessions
    kinds = [(e.kind, e.settings.depth_mm if e.settings else None) for e in s.events
             if e.kind.startswith("settings")]
    assert kinds[-2:] == [("settings-requested", Decimal("1.55")),
                          ("settings-applied", Decimal("1.60"))]


def test_quick_presses_each_count(controller):
    """Two "depth +" presses arriving together give two steps, and two "cover +" give 20%."""
    import threading

    c = controller
    c.add_client(new_client())
    c.start_session(plan(), CLEAR, {})
    c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)  # 1.50 mm
    presses = [threading.Thread(target=c.adjust, args=("depth_mm", 1)) for _ in range(2)]
    presses += [threading.Thread(target=c.bump_coverage, args=(10,)) for _ in range(2)]
    for t in presses:
        t.start()
    for t in presses:
        t.join(timeout=10)
    assert c.machine.applied.depth_mm == Decimal("1.60")
    assert next(z for z in c.view.work.zones if z.zone is Zone.HAIRLINE).coverage_pct == 20


def test_a_profile_above_10_volts_warns_where_the_console_resolves_it(store, tmp_path):
    from protocols import SkinCondition, load_library
    from tests.protocols.test_library import GOOD

    hot = GOOD.replace("crown-thick", "crown-standard").replace("8.0", "10.4")
    (tmp_path / "hot.toml").write_text(hot)
    c = SessionController(store, library=load_library(tmp_path))
    try:
        c.connect("sim://")
        c.add_client(new_client())
        c.start_session(plan(conditions=(SkinCondition.THIN_SENSITIVE,)), CLEAR, {})
        applied = c.select_zone(Zone.CROWN, cartridge=NEEDLE)
        assert applied.voltage_v == Decimal("9.9")  # resolved below 10 V: warned all the same
        assert c.view.work.advisories == (
            f"{tmp_path / 'hot.toml'}:6: warning: profile 'crown-standard': voltage 10.4 V is "
            "above 10.0 V: unusual for SMP, check the skin",)
    finally:
        c.close()


def test_the_console_s_client_lookup_folds_case_and_unicode(store):
    import unicodedata

    c = SessionController(store)
    try:
        zoe = c.add_client(new_client("Zoë Łukasz 王")).id
        c.add_client(new_client("Bo Chen"))
        for typed in ("łukasz", "ŁUKASZ", unicodedata.normalize("NFD", "ZOË"), f"#{zoe}"):
            assert [x.id for x in c.find_clients(typed)] == [zoe], typed
        assert len(c.find_clients("")) == 2
    finally:
        c.close()


def test_adjustments_hold_for_the_zone_and_another_profile_drops_them_saying_so(controller):
    c = controller
    c.add_client(new_client())
    c.start_session(plan(stage=Stage.S2), CLEAR, {})
    soft = c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)
    assert not any(r.startswith("technician:") for r in c.view.work.reasons)
    c.adjust("depth_mm", +1)
    moved = c.adjust("voltage_v", +1)
    c.select_zone(Zone.CROWN)
    assert not any(r.startswith("technician:") for r in c.view.work.reasons)
    assert c.select_zone(Zone.HAIRLINE) == moved  # held, not reset to the profile
    assert c.view.work.reasons[-2:] == ("technician: depth +0.05 mm",
                                        "technician: voltage +0.1 V")
    assert any("its adjustments hold" in line for line in c.view.log)
    c.adjust("depth_mm", -1)  # back to the profile's depth: only the voltage step is left
    assert c.view.work.reasons[-1] == "technician: voltage +0.1 V"
    defined = c.select_zone(Zone.HAIRLINE, "hairline-defined")
    assert defined != moved and defined.depth_mm == soft.depth_mm
    assert not any(r.startswith("technician:") for r in c.view.work.reasons)
    assert any("earlier adjustments and repeat no longer apply" in line for line in c.view.log)
    with pytest.raises(WorkflowError, match="no earlier session of this client ran the needle"):
        c.repeat_last()


def test_a_session_can_be_ended_after_the_machine_disappeared_while_armed(controller, store):
    c = controller
    client = armed_session(c)
    c.simulator.do("fault link-drop 60")  # the cable pulled, for longer than anyone waits
    assert wait_until(lambda: c.view.machine.link == Link.LOST, timeout=3)
    started = time.monotonic()
    summary = c.end_session({Zone.HAIRLINE: 20}, aftercare_given=True)
    assert time.monotonic() - started < 5  # not the 30 s a DISARM nobody answers would take
    assert c.view.work is None and summary.session_id
    assert c.sink.flush()
    (s,) = history.client_record(store, client.id, events=True).sessions
    assert s.outcome == "completed"
    assert any(e.payload.get("text", "").startswith("machine unreachable at end: the link is "
                                                    "lost") for e in s.events)


def test_a_stop_latched_in_a_session_ends_with_it_and_the_next_client_starts_disarmed(
        controller, store):
    c = controller
    first = armed_session(c)
    c.stop()
    assert wait_until(state_is(c, MachineState.STOPPED))
    c.end_session({}, aftercare_given=True)
    assert wait_until(state_is(c, MachineState.DISARMED))
    assert not any(b.startswith("STOPPED") for b in c.view.banners)
    c.add_client(new_client("Bo Chen"))
    c.start_session(plan(), CLEAR, {})
    assert c.view.work.zone is None and c.view.machine.state is MachineState.DISARMED
    assert c.sink.flush()
    (s,) = history.client_record(store, first.id, events=True).sessions
    assert "the STOP latch was cleared at the end of the session" in [
        e.payload.get("text") for e in s.events]


def test_the_zone_s_needle_time_moves_while_the_needle_runs(controller):
    c = controller
    armed_session(c, Zone.CROWN)
    c.simulator.do("pedal down")
    assert wait_until(state_is(c, MachineState.RUNNING))

    def crown_ms():
        return next(z for z in c.view.work.zones if z.zone is Zone.CROWN).run_ms

    assert wait_until(lambda: crown_ms() > 0)
    first = crown_ms()
    assert wait_until(lambda: crown_ms() > first + 100)  # before the run has ended
    assert c.view.machine.state is MachineState.RUNNING
    c.simulator.do("pedal up")
    assert wait_until(lambda: not c.view.machine.pedal and c.view.work.run_ms == 0)
    (crown,) = [z for z in c.view.work.zones if z.zone is Zone.CROWN]
    assert crown.runs == 1 and crown.run_ms >= first
