"""Views carry the domain's enums, read from the stored strings once; each fact has one label,
and the shell, the client's PDF and the history screen print the same one."""

import pypdfium2 as pdfium

from console.cmd_history import _client as history_client
from console.screens.history import _session_line
from protocols import Stage, Zone
from protocols.zones import used_in_label
from sessions.export import render
from sessions.history import client_record, zone_history
from sessions.models import Outcome, outcome_label
from sessions.store import open_store
from tests.sessions.factory import FakeClock, client, session


def test_views_carry_enums_and_every_place_labels_them_alike(sqlite_url, capsys):
    store = open_store(sqlite_url)
    clock = FakeClock()
    cid = client(store, "Ann Lee")
    session(store, cid, clock, stage=Stage.TOUCH_UP, zones=(Zone.CROWN,))
    clock.advance(days=14)
    session(store, cid, clock, stage=Stage.S2, zones=(Zone.NAPE,), end=False)  # left open
    record = client_record(store, cid, events=True)
    done, still_open = record.sessions
    assert done.stage is Stage.TOUCH_UP and done.outcome is Outcome.COMPLETED
    assert still_open.stage is Stage.S2 and still_open.outcome is None
    assert done.planned_zones == (Zone.CROWN,) and type(done.planned_zones[0]) is Zone
    z = done.zones[0]
    assert z.zone is Zone.CROWN and z.runs[0].zone is Zone.CROWN
    assert done.pigments[0].zone is Zone.CROWN and done.needles[0].zone is None
    assert {e.zone for e in done.events} == {None, Zone.CROWN}
    assert all(type(e.zone) is Zone for e in done.events if e.zone is not None)
    assert zone_history(store, cid, Zone.CROWN)[0].stage is Stage.TOUCH_UP

    pdf = "".join(p.get_textpage().get_text_range()
                  for p in pdfium.PdfDocument(render(store, record, "pdf")))
    history_client(store, str(cid))
    shell = capsys.readouterr().out
    store.close()
    for sv in record.sessions:
        stage, outcome = sv.stage.label, outcome_label(sv.outcome)
        assert f"session {sv.id}  {stage}  {outcome}  by " in shell
        assert f", {stage}, {outcome}, by " in _session_line(sv)
        assert f": {stage}" in pdf and f"Outcome: {outcome}." in pdf
    assert "touch-up" in shell and "stage touch-up" not in shell
    assert "Outcome: open." in pdf and "  open  by " in shell
    assert used_in_label(None) in pdf and Zone.CROWN.label in pdf
