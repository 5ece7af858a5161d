"""The record says what the needle did: a scripted session on `smp sim --pty` (its own process,
a real pty, the machine service between) with three runs at different settings and an
adjustment in between. The oracle is the machine's own log: which settings it held while it
was RUNNING, and for how long. The record, the history, the PDF text, the CSV and the JSON must
each show exactly those three settings with their needle times, and "repeat last" in the next
session must offer the documented one (the settings used longest).
"""

from __future__ import annotations

import csv
import io
import json
import time
from decimal import Decimal

import pypdfium2 as pdfium
import pytest

from console import replay
from console.controller import SessionController
from console.view import MachineState
from protocols import MachineSettings, Stage, Zone
from sessions import history
from sessions import replay as records
from sessions.export import render
from sessions.needle_runs import duration_text, on_skin
from tests.console.conftest import CLEAR, NEEDLE, new_client, plan, wait_until
from tests.reliability.conftest import MachineLog, Sim

# Generous against the machine's own figures: both are the machine's clock, read a telemetry
# period (20 ms) apart at each end, on a loaded 2-core machine.
NEEDLE_MS_SLACK = 120


@pytest.fixture
def sim(tmp_path):
    s = Sim(tmp_path)
    yield s
    s.close()


@pytest.fixture
def console(store, sim, tmp_path):
    c = SessionController(store, journal_dir=tmp_path / "journal")
    c.connect(sim.address)
    yield c
    c.close()


def machine_runs(log: MachineLog) -> list[tuple[str, int]]:
    """(the settings the machine held, ms it was RUNNING) for each run, from its own log."""
    held, runs, since = None, [], None
    for e in log.entries():
        if e.what == "SET":
            held = e.detail
        elif e.transition:
            old, new, _ = e.transition
            if new == "RUNNING":
                since = e.mono_ns
            elif old == "RUNNING":
                runs.append((held, (e.mono_ns - since) // 1_000_000))
    return runs


def wire(s: MachineSettings) -> str:
    w = s.to_wire()
    return f"{w.depth_um} um {w.rate_dhz} dHz {w.voltage_mv} mV"


def run_needle(c: SessionController, sim: Sim, seconds: float) -> None:
    if c.view.machine.state is not MachineState.ARMED:
        c.arm()
        assert wait_until(lambda: c.view.machine.state is MachineState.ARMED, timeout=5)
    n = len(machine_runs(sim.log))
    sim.say("pedal down")
    assert sim.log.wait_state("RUNNING"), sim.log.entries()[-5:]
    time.sleep(seconds)
    sim.say("pedal up")
    assert wait_until(lambda: len(machine_runs(sim.log)) == n + 1, timeout=5)
    # The run is over for the host too (its end is recorded) before anything else is asked.
    assert wait_until(lambda: c.view.work.run_ms == 0 and not c.view.machine.pedal, timeout=5)


def test_three_runs_are_recorded_and_exported_exactly_as_the_machine_ran_them(
        console, sim, store):
    c = console
    client = c.add_client(new_client())
    sid = c.start_session(plan(stage=Stage.S1), CLEAR, {})
    base = c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)  # hairline-soft: 1.50 mm / 110 Hz / 6.5 V
    run_needle(c, sim, 0.3)
    c.adjust("depth_mm", +1)  # 1.55 / 110 / 6.5: the run the needle does longest
    run_needle(c, sim, 1.2)
    c.adjust("rate_hz", +10)
    third = c.adjust("voltage_v", +1)  # 1.55 / 111 / 6.6
    run_needle(c, sim, 0.6)
    assert c.mark_pass() == 1 and c.mark_pass() == 2
    # Another zone and back: the adjustments hold for the hairline, and "why" says so.
    crown = c.select_zone(Zone.CROWN)
    assert c.select_zone(Zone.HAIRLINE) == third
    assert c.view.work.reasons[-3:] == ("technician: depth +0.05 mm",
                                        "technician: rate +1.0 Hz",
                                        "technician: voltage +0.1 V")
    c.disarm()
    c.end_session({Zone.HAIRLINE: 40}, aftercare_given=True)
    assert c.sink.flush()

    # The oracle: what the machine says it ran.
    ran = machine_runs(sim.log)
    step = Decimal("0.05")
    expected = [base, base.model_copy(update={"depth_mm": base.depth_mm + step}), third]
    assert [held for held, _ in ran] == [wire(s) for s in expected], ran

    (s,) = history.client_record(store, client.id, runs=True).sessions
    zones = {z.zone: z for z in s.zones}
    hairline = zones["hairline"]
    # What every view shows is summed in the database; it must equal the runs one by one.
    summed = history.client_record(store, client.id).sessions[0].zones[0]
    assert summed.zone == "hairline" and summed.on_skin == on_skin(hairline.runs)
    assert [r.settings for r in hairline.runs] == expected
    for r, (_, ms) in zip(hairline.runs, ran, strict=True):
        assert abs(r.needle_ms - ms) <= NEEDLE_MS_SLACK, (r.needle_ms, ms)
        assert r.samples > 0 and r.profile == "hairline-soft"
        for q, u in (("rate", "dhz"), ("voltage", "mv"), ("current", "ma"), ("depth", "um")):
            lo, mean, hi = (r.telemetry[f"{q}_{s}_{u}"] for s in ("min", "mean", "max"))
            assert lo is not None and lo <= mean <= hi, (q, r.telemetry)  # as measured
    assert hairline.runs[0].adjustments == ()
    assert hairline.runs[2].adjustments == ("technician: depth +0.05 mm",
                                            "technician: rate +1.0 Hz",
                                            "technician: voltage +0.1 V")
    assert hairline.passes == 2
    lines = [f"{x.short()} for {duration_text(r.needle_ms)}"
             for x, r in zip(expected, hairline.runs, strict=True)]
    assert hairline.settings_text() == lines
    assert zones["crown"].settings_text() == [
        f"no needle time (confirmed {crown.short()}, never run)"]

    # Every export says the same: those three settings with their needle times.
    record = history.client_record(store, client.id, events=True)
    pdf_doc = pdfium.PdfDocument(render(store, record, "pdf"))
    try:
        pdf = " ".join(p.get_textpage().get_text_range() for p in pdf_doc)
    finally:
        pdf_doc.close()
    flat = " ".join(pdf.split())
    for line in lines:
        assert line in flat, (line, flat)
    assert "no needle time" in flat

    rows = list(csv.DictReader(io.StringIO(render(store, record, "csv").decode())))
    worked = [(r["depth_mm"], r["rate_hz"], r["voltage_v"], r["needle_s"])
              for r in rows if r["zone"] == "hairline"]
    assert worked == [(str(x.depth_mm), str(x.rate_hz), str(x.voltage_v),
                       f"{r.needle_ms / 1000:.1f}")
                      for x, r in zip(expected, hairline.runs, strict=True)]
    assert [r["on_skin"] for r in rows if r["zone"] == "crown"] == [
        f"no needle time (confirmed {crown.short()}, never run)"]

    doc = json.loads(render(store, record, "json"))
    used = doc["sessions"][0]["zones"][0]["on_skin"]["used"]
    assert [(u["settings"]["wire"]["depth_um"], u["settings"]["wire"]["rate_dhz"],
             u["settings"]["wire"]["voltage_mv"], u["needle_ms"]) for u in used] == [
        (*x.to_wire(), r.needle_ms) for x, r in zip(expected, hairline.runs, strict=True)]
    pseudo = json.loads(render(store, record, "json", pseudonymise_ids=True))
    assert [u["needle_ms"] for u in pseudo["sessions"][0]["zones"][0]["used"]] == [
        r.needle_ms for r in hairline.runs]

    # The replay of this session shows the same: three runs, each RUNNING at the settings the
    # machine's log says it held, for about as long as the machine ran.
    rs = records.load(store, sid)
    rs.flight.load(range(len(rs.flight.index)))
    starts = [m for m in rs.marks if m.kind == "run"]
    ends = [m for m in rs.marks if m.kind == "run-end"]
    assert len(starts) == len(ends) == 3
    for (start, end), x, (_, ms) in zip(zip(starts, ends, strict=True), expected, ran,
                                        strict=True):
        middle = replay.view_at(rs, (start.at_us + end.at_us) // 2)
        assert "REPLAY" in middle.banners and middle.machine.state is MachineState.RUNNING
        assert middle.machine.applied == x
        assert abs((end.at_us - start.at_us) / 1000 - ms) <= 2 * NEEDLE_MS_SLACK

    # The next session: repeat last offers the settings used longest, with when and how long.
    c.choose_client(client.id)
    c.start_session(plan(stage=Stage.S2), CLEAR, {"interval": "the client travels abroad"})
    c.select_zone(Zone.HAIRLINE, cartridge=NEEDLE)
    longest = hairline.runs[1]
    said = c.repeat_last()
    assert said == (f"repeat: {expected[1].short()}, used {duration_text(longest.needle_ms)} "
                    f"on {s.started_at:%d %b %Y}")
    assert wait_until(lambda: sim.log.sets()[-1].detail == wire(expected[1]))
    assert c.view.machine.applied == expected[1]
    assert any(r.startswith("repeat: ") and f"(session {sid})" in r
               for r in c.view.work.reasons)
