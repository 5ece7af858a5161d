"""A client's record for the file (JSON, CSV) or for the client (PDF), optionally pseudonymised.

JSON is complete and versioned (every session, gate answer, consumable, summary and event).
CSV is one row per zone worked. The PDF is for the client: sessions, zones, pigments with lots,
and the aftercare instructions. `pseudonymise` replaces identities with stable pseudonyms (the
same client gets the same pseudonym from the same database) and withholds health fields.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import hmac
import io
import json
import os
import secrets
import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from protocols import DEPTH, RATE, VOLTAGE, MachineSettings, Zone
from sessions.errors import RecordError
from sessions.history import ClientRecord, SessionView
from sessions.models import Meta
from sessions.store import Store

FORMAT = "smp.client-record"
VERSION = 1
FORMATS = ("json", "csv", "pdf")
WITHHELD = "[withheld]"

AFTERCARE = (
    "Do not wash the scalp for 3 days (keep it dry for 72 hours).",
    "Keep out of the sun for 7 days; after that use SPF 30 to 50 on the scalp.",
    "No heavy exercise or sweating for 5 days.",
    "No swimming, sauna or steam room for 28 days after your final session.",
    "No exfoliants on the scalp for a month.",
    "From day 4, cleanse gently and moisturise.",
    "Redness fades in about 2 days; small scabs and 'pigment shedding' from about day 3 "
    "are normal.",
)


class ExportError(RecordError):
    pass


# -- pseudonyms -----------------------------------------------------------------------------

def _key(store: Store) -> bytes:
    with store.reading() as s:  # read first: a read-only record with a key can still export
        row = s.get(Meta, "pseudonym_key")
        if row is not None:
            return bytes.fromhex(row.value)
    with store.unit() as s:
        row = s.get(Meta, "pseudonym_key")
        if row is None:
            row = Meta(key="pseudonym_key", value=secrets.token_hex(32))
            s.add(row)
        return bytes.fromhex(row.value)


def _pseudo(key: bytes, kind: str, value: str) -> str:
    # Keyed, so nobody can recover a name by hashing candidate names without the database.
    digest = hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind.capitalize()}-{digest[:8].upper()}"


def pseudonymise(store: Store, record: ClientRecord) -> ClientRecord:
    key = _key(store)
    name = record.client.name
    alias = _pseudo(key, "client", str(record.client.id))

    def scrub(text: str) -> str:
        for part in {name, *name.split()}:
            if len(part) > 2:
                text = text.replace(part, alias)
        return text

    sessions = []
    for sv in record.sessions:
        zones = tuple(dataclasses.replace(z, notes=scrub(z.notes)) for z in sv.zones)
        events = tuple(dataclasses.replace(
            e, payload={k: scrub(v) if isinstance(v, str) else v for k, v in e.payload.items()})
            for e in sv.events)
        gate = tuple(dataclasses.replace(g, detail=WITHHELD if g.present else "",
                                         reason=WITHHELD if g.reason else "")
                     if g.item != "interval" else g for g in sv.gate)
        sessions.append(dataclasses.replace(
            sv, technician=_pseudo(key, "technician", sv.technician), zones=zones,
            events=events, gate=gate))
    client = dataclasses.replace(record.client, name=alias, phone="", email="",
                                 date_of_birth=None)
    return dataclasses.replace(record, client=client, health=None, sessions=tuple(sessions))


# -- renderers ----------------------------------------------------------------------------

def _plain(value):
    if isinstance(value, MachineSettings):
        w = value.to_wire()
        return {"depth_mm": str(value.depth_mm), "rate_hz": str(value.rate_hz),
                "voltage_v": str(value.voltage_v),
                "wire": {"depth_um": w.depth_um, "rate_dhz": w.rate_dhz,
                         "voltage_mv": w.voltage_mv}}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot export {type(value).__name__}")


def to_json(record: ClientRecord, *, pseudonymised: bool, now: datetime) -> bytes:
    doc = {
        "format": FORMAT, "version": VERSION, "exported_at": now.isoformat(),
        "pseudonymised": pseudonymised, "health_withheld": record.health is None,
        "simulator_sessions": [s.id for s in record.sessions if s.machine.simulator],
        **dataclasses.asdict(record),
    }
    return (json.dumps(doc, default=_plain, indent=2, ensure_ascii=False) + "\n").encode()


CSV_COLUMNS = (
    "client_id", "client", "session_id", "started_utc", "stage", "technician", "machine",
    "simulator", "outcome", "zone", "profile", "coverage_pct", "target_density_pct", "passes",
    "depth_mm", "rate_hz", "voltage_v", "pigments", "needles", "notes",
)


def _uses(items, zone: str) -> list:
    return [i for i in items if i.zone in (zone, None)]


def to_csv(record: ClientRecord) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for sv in record.sessions:
        for z in sv.zones:
            st = z.settings
            w.writerow([
                record.client.id, record.client.name, sv.id, sv.started_at.isoformat(),
                sv.stage, sv.technician, str(sv.machine), "yes" if sv.machine.simulator else "no",
                sv.outcome or "open", z.zone, z.profile, _blank(z.coverage_pct),
                _blank(z.target_density_pct), z.passes,
                *(["", "", ""] if st is None else [str(st.depth_mm), str(st.rate_hz),
                                                   str(st.voltage_v)]),
                " | ".join(f"{p.brand} {p.shade} {p.dilution} lot {p.lot} exp {p.expiry}"
                           for p in _uses(sv.pigments, z.zone)),
                " | ".join(f"{n.code} lot {n.lot} exp {n.expiry}"
                           for n in _uses(sv.needles, z.zone)),
                z.notes,
            ])
    return buf.getvalue().encode()


def _blank(v) -> str:
    return "" if v is None else str(v)


# DejaVu Sans, shipped in the package (licence in fonts/LICENSE): the PDF core fonts are
# Latin-1 only and printed a name like "Łukasz Żółć" as "?ukasz ?ó??".
FONT = "DejaVuSans"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}
FONT_DIR = Path(__file__).parent / "fonts"


def to_pdf(record: ClientRecord, *, pseudonymised: bool, now: datetime) -> bytes:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    pdf = FPDF(format="A4")
    pdf.set_title("Scalp micropigmentation record")
    pdf.set_auto_page_break(auto=True, margin=15)
    for style, name in FONT_FILES.items():
        pdf.add_font(FONT, style, FONT_DIR / name)
    pdf.add_page()
    head = FontFace(emphasis="BOLD", fill_color=(225, 225, 225))

    def text(s: str, size: int = 11, style: str = "", h: float = 6) -> None:
        pdf.set_font(FONT, style, size)
        pdf.multi_cell(0, h, s, new_x="LMARGIN", new_y="NEXT")

    def table(rows: list[tuple], widths: tuple[int, ...]) -> None:
        pdf.set_font(FONT, "", 9)
        with pdf.table(col_widths=widths, headings_style=head, line_height=5.5) as t:
            for row in rows:
                r = t.row()
                for cell in row:
                    r.cell(str(cell))
        pdf.ln(3)

    text("Scalp micropigmentation record", 20, "B", 10)
    text(f"Client: {record.client.name}", 14, "B", 8)
    if record.sessions:
        first, last = record.sessions[0].started_at, record.sessions[-1].started_at
        text(f"Sessions: {len(record.sessions)}, from {first:%d %B %Y} to {last:%d %B %Y}")
    text(f"Prepared on {now:%d %B %Y}" + (" (pseudonymised for teaching)"
                                          if pseudonymised else ""))
    if any(s.machine.simulator for s in record.sessions):
        text("SIMULATOR: sessions marked SIMULATOR were practice on a simulated machine; no "
             "pigment was applied in them.", 11, "B")
    pdf.ln(2)
    for sv in record.sessions:
        _pdf_session(sv, text, table)
    text("Aftercare", 14, "B", 8)
    for line in AFTERCARE:
        text(f"-  {line}")
    pdf.ln(2)
    text("Questions or concerns after a session? Contact your clinic.", 10, "I")
    return bytes(pdf.output())


def _pdf_session(sv: SessionView, text, table) -> None:
    sim = "  [SIMULATOR]" if sv.machine.simulator else ""
    stage = "touch-up" if sv.stage == "touch-up" else f"stage {sv.stage}"
    text(f"Session on {sv.started_at:%d %B %Y}: {stage}{sim}", 13, "B", 8)
    text(f"Technician: {sv.technician}.  Outcome: {sv.outcome or 'in progress'}.  "
         f"Aftercare given: {'yes' if sv.aftercare_given else 'no'}.", 10)
    if sv.zones:
        rows = [("Zone", "Coverage", "Depth", "Rate", "Voltage", "Notes")]
        for z in sv.zones:
            s = z.settings
            rows.append((Zone(z.zone).label, "" if z.coverage_pct is None else f"{z.coverage_pct}%",
                         "" if s is None else DEPTH.fmt_unit(s.depth_mm),
                         "" if s is None else RATE.fmt_unit(s.rate_hz),
                         "" if s is None else VOLTAGE.fmt_unit(s.voltage_v), z.notes))
        table(rows, (30, 20, 22, 24, 22, 62))
    if sv.pigments:
        rows = [("Pigment", "Shade", "Dilution (water:pigment)", "Lot", "Expiry", "Zone")]
        rows += [(p.brand, p.shade, p.dilution, p.lot, p.expiry.isoformat(), _where(p.zone))
                 for p in sv.pigments]
        table(rows, (34, 28, 36, 32, 26, 24))
    if sv.needles:
        rows = [("Needle cartridge", "Lot", "Expiry", "Zone")]
        rows += [(n.code, n.lot, n.expiry.isoformat(), _where(n.zone)) for n in sv.needles]
        table(rows, (50, 50, 40, 40))


def _where(zone: str | None) -> str:
    return "all zones" if zone is None else Zone(zone).label


# -- writing ------------------------------------------------------------------------------

def render(store: Store, record: ClientRecord, fmt: str, *, pseudonymise_ids: bool = False,
           now: datetime | None = None) -> bytes:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
    now = now or datetime.now(UTC)
    if pseudonymise_ids:
        record = pseudonymise(store, record)
    if fmt == "json":
        return to_json(record, pseudonymised=pseudonymise_ids, now=now)
    if fmt == "csv":
        return to_csv(record)
    return to_pdf(record, pseudonymised=pseudonymise_ids, now=now)


def write_file(path: Path, data: bytes, *, force: bool = False) -> None:
    """Write `data` to `path` whole or not at all; an existing file is kept unless `force`."""
    path = Path(path)
    if path.exists() and not force:
        raise ExportError(f"{path} already exists; choose another file or add --force")
    if not path.parent.is_dir():
        raise ExportError(f"cannot write {path}: directory {path.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as err:
        raise ExportError(f"cannot write {path}: {err.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if someone created it meanwhile: never clobber
            os.unlink(tmp)
    except FileExistsError:
        os.unlink(tmp)
        raise ExportError(f"{path} already exists; choose another file or add --force") from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
