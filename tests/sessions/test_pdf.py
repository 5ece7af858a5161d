"""The client's PDF: rendered to an image and read back, as a client would see it."""

import pypdfium2 as pdfium
import pytest

from protocols import Zone
from protocols.aftercare import AFTERCARE
from sessions.export import render
from sessions.history import client_record
from sessions.recorder import Machine
from tests.sessions.factory import FakeClock, client, session


@pytest.fixture
def pdf_bytes(sqlite_url):
    from sessions.store import open_store

    store = open_store(sqlite_url)
    clock = FakeClock()
    cid = client(store, "Ann Lee")
    session(store, cid, clock, lot="PG-2026-001")
    clock.advance(days=14)
    session(store, cid, clock, zones=(Zone.CROWN,), lot="PG-2026-002",
            machine=Machine.simulated())
    data = render(store, client_record(store, cid, events=True), "pdf")
    store.close()
    return data


def test_pdf_renders_to_a_readable_page(pdf_bytes):
    doc = pdfium.PdfDocument(pdf_bytes)
    page = doc[0]
    image = page.render(scale=1).to_pil().convert("L")
    w, h = image.size
    assert abs(w - 595) <= 1 and abs(h - 842) <= 1  # A4 at 72 dpi
    ink = sum(image.histogram()[:128]) / (w * h)
    assert 0.005 < ink < 0.3, ink  # printed text and tables, not blank, not a black page
    top = image.crop((0, 0, w, 60))
    assert sum(top.histogram()[:64]) > 200  # the title is at the top, in dark ink
    words = "".join(p.get_textpage().get_text_range() for p in doc)
    for expected in ("Scalp micropigmentation record", "Client: Ann Lee",
                     "Session on 02 March 2026: stage 1", "PG-2026-001", "PG-2026-002",
                     "SIMULATOR", "Aftercare", AFTERCARE[0][:40], "20:1", "Carbon Co",
                     "Settings used on skin", "1.50 mm / 110 Hz / 6.5 V for 1 min 30 s",
                     "Lot", "Expiry"):
        assert expected in words, expected


@pytest.mark.parametrize("name", ["Łukasz Żółć", "Zoë Ng", "Đorđe Šćepanović", "Αλέξης Παπάς",
                                  "Юлия Ёлкина"])
def test_names_beyond_latin_1_print_exactly(sqlite_url, name):
    from sessions.store import open_store

    store = open_store(sqlite_url)
    clock = FakeClock()
    cid = client(store, name)
    session(store, cid, clock, technician="Zoë Đurić")
    data = render(store, client_record(store, cid, events=True), "pdf")
    store.close()
    words = "".join(p.get_textpage().get_text_range() for p in pdfium.PdfDocument(data))
    assert f"Client: {name}" in words and "Technician: Zoë Đurić." in words
    assert "?" not in words.replace("Questions or concerns after a session?", "")
