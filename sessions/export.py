"""A client's record for the file (JSON, CSV) or for the client (PDF), identified or
pseudonymised.

Identified, the JSON is complete and versioned (every session, gate answer, consumable, summary
and event), the CSV is one row per zone worked and the PDF is for the client: sessions, zones,
pigments with lots, and the aftercare instructions.

Pseudonymised (for teaching and research), the export is built from an allow-list: the record
is first pseudonymised field by field (sessions/pseudonymised.py), then each format carries
only the fields declared for it below, and nothing else leaves. Dates become days since the
client's first session ("day 0"); the client, technicians, machine serials and lots become the
database's keyed pseudonyms; free text and health data are withheld unless the person
exporting includes their category by name. Every CSV cell that a spreadsheet would read as a
formula is neutralised, and stored text is escaped so that no control character leaves.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from protocols import MachineSettings, Stage, Zone
from protocols.aftercare import AFTERCARE
from protocols.text import BIDI, SEPARATORS, printable
from protocols.zones import used_in_label
from sessions.errors import RecordError
from sessions.history import ClientRecord, NeedleView, PigmentView, SessionView, ZoneView
from sessions.include import INCLUDE
from sessions.models import Outcome, outcome_label, outcome_of, zone_of
from sessions.needle_runs import NOT_CONFIRMED, UsedSettings, used_text
from sessions.pseudonymised import check_include, pseudonymise
from sessions.pseudonyms import Pseudonyms
from sessions.store import Store

FORMAT = "smp.client-record"
PSEUDONYMISED_FORMAT = "smp.client-record.pseudonymised"
VERSION = 1
FORMATS = ("json", "csv", "pdf")

DATES_NOTE = "dates are days since the client's first session (day 0)"


class ExportError(RecordError):
    pass


# -- what a pseudonymised export may carry, per format ------------------------------------

# JSON: per object, its fields. Each is taken from the pseudonymised record; free text in them
# is "[withheld]" unless its category was included.
PSEUDONYMISED_JSON: dict[str, tuple[str, ...]] = {
    "document": ("format", "version", "pseudonymised", "dates", "included", "withheld",
                 "client", "health", "consents", "simulator_sessions", "sessions"),
    "client": ("pseudonym",),
    "health": ("hair_colour", "hair_loss_stage", "hair_loss_cause", "fitzpatrick",
               "skin_quality", "allergies", "patch_test", "medications"),
    "consent": ("procedure", "photos", "signed_day"),
    "session": ("session", "day", "stage", "outcome", "aftercare_given", "technician",
                "machine", "planned_zones", "gate", "zones", "pigments", "needles", "telemetry",
                "events"),
    "machine": ("model", "serial", "firmware", "simulator"),
    "gate": ("item", "present", "decision", "detail", "reason"),
    "zone": ("zone", "profile", "reasons", "coverage_pct", "target_density_pct", "passes",
             "notes", "per_run", "confirmed", "used", "runs"),
    "used": ("on_skin", "settings", "needle_ms", "runs"),
    "run": ("seq", "t_ms", "needle_ms", "exact", "ended_by", "settings", "adjustments",
            "samples", "under_speed_ms", "faults", "measured"),
    "pigment": ("zone", "brand", "shade", "dilution", "lot", "expiry_day"),
    "needle": ("zone", "code", "lot", "expiry_day"),
    "telemetry": ("zone", "run_index", "run_ms", "samples", "mean_rate_dhz", "peak_rate_dhz",
                  "mean_voltage_mv", "peak_voltage_mv", "mean_current_ma", "peak_current_ma",
                  "faults"),
    "event": ("seq", "t_ms", "kind", "zone", "settings", "duration_ms", "corrects_seq",
              "payload"),
}
# CSV: the columns, one row per zone worked ("notes" only when notes are included).
PSEUDONYMISED_CSV = (
    "client", "session", "day", "stage", "technician", "machine", "simulator", "outcome",
    "zone", "profile", "coverage_pct", "target_density_pct", "passes", "on_skin", "depth_mm",
    "rate_hz", "voltage_v", "needle_s", "runs", "pigments", "needles", "notes",
)
# PDF: per table, its fields ("notes" only when notes are included).
PSEUDONYMISED_PDF: dict[str, tuple[str, ...]] = {
    "session": ("session", "day", "stage", "technician", "outcome", "aftercare_given",
                "machine"),
    "zone": ("zone", "coverage_pct", "passes", "used", "notes"),
    "pigment": ("brand", "shade", "dilution", "lot", "expiry_day", "zone"),
    "needle": ("code", "lot", "expiry_day", "zone"),
}


def _pick(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """The declared fields of `kind`, in their declared order; anything else stays behind."""
    return {k: values[k] for k in PSEUDONYMISED_JSON[kind] if k in values}


def _day(when: date | datetime | None, day0: date | None) -> int | None:
    if when is None or day0 is None:
        return None
    d = when.date() if isinstance(when, datetime) else when
    return (d - day0).days


def pseudonymised_document(store: Store, record: ClientRecord,
                           include: Collection[str] = ()) -> dict[str, Any]:
    """The pseudonymised export as a plain tree: the JSON, and all the CSV and PDF may use."""
    include = check_include(include)
    p = pseudonymise(record, Pseudonyms(store), include)
    day0 = (p.sessions[0].started_at.date() if p.sessions
            else min((c.signed_on for c in p.consents), default=None))
    sessions = []
    for number, sv in enumerate(p.sessions, start=1):
        seqs = {e.id: e.seq for e in sv.events}
        sessions.append(_pick("session", {
            "session": number, "day": _day(sv.started_at, day0), "stage": sv.stage,
            "outcome": sv.outcome, "aftercare_given": sv.aftercare_given,
            "technician": sv.technician,
            "machine": _pick("machine", dataclasses.asdict(sv.machine)),
            "planned_zones": list(sv.planned_zones),
            "gate": [_pick("gate", dataclasses.asdict(g)) for g in sv.gate],
            "zones": [_pick("zone", {
                **dataclasses.asdict(z), "reasons": list(z.reasons), "confirmed": z.confirmed,
                "used": [_pick("used", u) for u in used_rows(z)],
                "runs": [_pick("run", {
                    **dataclasses.asdict(r), "settings": r.settings,
                    "adjustments": list(r.adjustments), "measured": r.telemetry,
                    "t_ms": round((r.started_at - sv.started_at).total_seconds() * 1000)})
                    for r in z.runs]}) for z in sv.zones],
            "pigments": [_pick("pigment", {**dataclasses.asdict(x),
                                           "expiry_day": _day(x.expiry, day0)})
                         for x in sv.pigments],
            "needles": [_pick("needle", {**dataclasses.asdict(x),
                                         "expiry_day": _day(x.expiry, day0)})
                        for x in sv.needles],
            "telemetry": [_pick("telemetry", dataclasses.asdict(t)) for t in sv.telemetry],
            "events": [_pick("event", {
                "seq": e.seq, "t_ms": round((e.at - sv.started_at).total_seconds() * 1000),
                "kind": e.kind, "zone": e.zone, "settings": e.settings,
                "duration_ms": e.duration_ms,
                "corrects_seq": None if e.corrects_id is None else seqs.get(e.corrects_id),
                "payload": e.payload}) for e in sv.events],
        }))
    health = None if p.health is None else _pick("health", dataclasses.asdict(p.health))
    return _pick("document", {
        "format": PSEUDONYMISED_FORMAT, "version": VERSION, "pseudonymised": True,
        "dates": DATES_NOTE + "; event times are milliseconds from their session's start",
        "included": sorted(include), "withheld": [k for k in INCLUDE if k not in include],
        "client": _pick("client", {"pseudonym": p.client.name}), "health": health,
        "consents": [_pick("consent", {"procedure": c.procedure, "photos": c.photos,
                                       "signed_day": _day(c.signed_on, day0)})
                     for c in p.consents],
        "simulator_sessions": [s["session"] for s, sv in zip(sessions, p.sessions, strict=True)
                               if sv.machine.simulator],
        "sessions": sessions,
    })


def default_name(record: ClientRecord, fmt: str, *, pseudonym: str | None = None,
                 today: date | None = None) -> str:
    """A file name that never holds the client's name: the pseudonym, or the id and date."""
    if pseudonym:
        return f"{pseudonym}.{fmt}"
    return f"client-{record.client.id}-{today or datetime.now(UTC).date():%Y%m%d}.{fmt}"


# -- renderers ----------------------------------------------------------------------------

def _plain(value: object) -> dict[str, Any] | str:
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


# json escapes C0 controls itself (\u001b); these it would leave raw. Escaped the same way,
# the text is exactly what is stored once parsed, and harmless if the file is printed.
_JSON_RAW = re.compile("[\x7f-\x9f" + "".join(sorted(BIDI | SEPARATORS)) + "]")


def _json(doc: Mapping[str, Any]) -> bytes:
    text = json.dumps(doc, default=_plain, indent=2, ensure_ascii=False)
    return (_JSON_RAW.sub(lambda m: f"\\u{ord(m[0]):04x}", text) + "\n").encode()


def to_json(record: ClientRecord, *, now: datetime) -> bytes:
    """The complete record (identified)."""
    return _json({
        "format": FORMAT, "version": VERSION, "exported_at": now.isoformat(),
        "pseudonymised": False, "health_withheld": record.health is None,
        "simulator_sessions": [s.id for s in record.sessions if s.machine.simulator],
        **dataclasses.asdict(record),
    })


# OWASP "CSV injection": a cell starting with one of these is read as a formula by spreadsheet
# programs (=HYPERLINK(...) opens a link); a leading single quote makes it plain text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    text = printable("" if value is None else value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def _csv(header: tuple[str, ...], rows: list[list[object]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for row in (header, *rows):
        w.writerow([csv_cell(c) for c in row])
    return buf.getvalue().encode()


CSV_COLUMNS = (
    "client_id", "client", "session_id", "started_utc", "stage", "technician", "machine",
    "simulator", "outcome", "zone", "profile", "coverage_pct", "target_density_pct", "passes",
    "on_skin", "depth_mm", "rate_hz", "voltage_v", "needle_s", "runs", "pigments", "needles",
    "notes",
)


def used_rows(z: ZoneView) -> list[dict[str, Any]]:
    """A zone's settings, a row each, as the CSV and the PDF give them: each setting used on
    skin with its needle time, or one row saying why there is none (no needle time; a session
    recorded before per-run settings, with the last settings confirmed there)."""
    if z.per_run and z.on_skin is not None and z.on_skin.needle_ms > 0:
        return [{"on_skin": "used" if u.settings is not None else NOT_CONFIRMED,
                 "settings": u.settings, "needle_ms": u.needle_ms, "runs": u.runs}
                for u in z.on_skin.used]
    return [{"on_skin": z.settings_text()[0], "settings": None if z.per_run else z.confirmed,
             "needle_ms": 0 if z.per_run else None, "runs": 0 if z.per_run else None}]


def _used_cell(rows: list[dict[str, Any]]) -> str:
    return "\n".join(used_text(UsedSettings(r["settings"], r["needle_ms"], r["runs"]))
                     if r["on_skin"] in ("used", NOT_CONFIRMED) else r["on_skin"]
                     for r in rows)


def _seconds(ms: int | None) -> str:
    return "" if ms is None else f"{ms / 1000:.1f}"


Used = TypeVar("Used", PigmentView, NeedleView)


def _uses(items: Sequence[Used], zone: Zone) -> list[Used]:
    return [i for i in items if i.zone in (zone, None)]


def _settings_cells(st: MachineSettings | None) -> list[str]:
    return ["", "", ""] if st is None else [str(st.depth_mm), str(st.rate_hz), str(st.voltage_v)]


def to_csv(record: ClientRecord) -> bytes:
    """One row per zone and setting used on skin there (a zone with none: one row saying why)."""
    rows: list[list[object]] = []
    for sv in record.sessions:
        for z in sv.zones:
            for u in used_rows(z):
                rows.append([
                    record.client.id, record.client.name, sv.id, sv.started_at.isoformat(),
                    sv.stage, sv.technician, str(sv.machine),
                    "yes" if sv.machine.simulator else "no", sv.outcome or "open", z.zone,
                    z.profile, _blank(z.coverage_pct), _blank(z.target_density_pct), z.passes,
                    u["on_skin"], *_settings_cells(u["settings"]), _seconds(u["needle_ms"]),
                    _blank(u["runs"]),
                    " | ".join(f"{p.brand} {p.shade} {p.dilution} lot {p.lot} exp {p.expiry}"
                               for p in _uses(sv.pigments, z.zone)),
                    " | ".join(f"{n.code} lot {n.lot} exp {n.expiry}"
                               for n in _uses(sv.needles, z.zone)),
                    z.notes,
                ])
    return _csv(CSV_COLUMNS, rows)


def _machine_text(m: Mapping[str, Any]) -> str:
    if m["simulator"]:
        return f"SIMULATOR (firmware {m['firmware']})"
    return f"{m['model']} serial {m['serial']}, firmware {m['firmware']}"


def pseudonymised_csv(doc: Mapping[str, Any]) -> bytes:
    columns = tuple(c for c in PSEUDONYMISED_CSV if c != "notes" or "notes" in doc["included"])
    rows: list[list[object]] = []
    for sv in doc["sessions"]:
        for z, u in ((zone, u) for zone in sv["zones"] for u in zone["used"]):
            depth, rate, volt = _settings_cells(u["settings"])
            values = {
                "client": doc["client"]["pseudonym"], "session": sv["session"],
                "day": sv["day"], "stage": sv["stage"], "technician": sv["technician"],
                "machine": _machine_text(sv["machine"]),
                "simulator": "yes" if sv["machine"]["simulator"] else "no",
                "outcome": sv["outcome"] or "open", "zone": z["zone"], "profile": z["profile"],
                "coverage_pct": _blank(z["coverage_pct"]),
                "target_density_pct": _blank(z["target_density_pct"]), "passes": z["passes"],
                "on_skin": u["on_skin"], "depth_mm": depth, "rate_hz": rate, "voltage_v": volt,
                "needle_s": _seconds(u["needle_ms"]), "runs": _blank(u["runs"]),
                "pigments": " | ".join(
                    f"{p['brand']} {p['shade']} {p['dilution']} lot {p['lot']} expires day "
                    f"{p['expiry_day']}" for p in _uses_tree(sv["pigments"], z["zone"])),
                "needles": " | ".join(
                    f"{n['code']} lot {n['lot']} expires day {n['expiry_day']}"
                    for n in _uses_tree(sv["needles"], z["zone"])),
                "notes": z["notes"],
            }
            rows.append([values[c] for c in columns])
    return _csv(columns, rows)


def _uses_tree(items: list[dict[str, Any]], zone: str) -> list[dict[str, Any]]:
    return [i for i in items if i["zone"] in (zone, None)]


def _blank(v: object) -> str:
    return "" if v is None else str(v)


# DejaVu Sans, shipped in the package (licence in fonts/LICENSE): the PDF core fonts are
# Latin-1 only and printed a name like "Łukasz Żółć" as "?ukasz ?ó??".
FONT = "DejaVuSans"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}
FONT_DIR = Path(__file__).parent / "fonts"
ZONE_HEAD = ("Zone", "Coverage", "Passes", "Settings used on skin (needle time)")
USED_NOTE = ("Settings are those the machine confirmed for each needle run, with the time the "
             "needle ran at them.")
SIM_NOTE = ("SIMULATOR: sessions marked SIMULATOR were practice on a simulated machine; no "
            "pigment was applied in them.")


Row = tuple[str, ...]


@dataclass(frozen=True)
class _PdfSession:
    heading: str
    line: str
    zones: Sequence[Row]  # each table: its heading row first
    pigments: Sequence[Row]
    needles: Sequence[Row]


def _zone_row(zone: Zone, coverage: int | None, passes: int,
              used: list[dict[str, Any]]) -> Row:
    return (zone.label, "" if coverage is None else f"{coverage}%", str(passes),
            _used_cell(used))


def _line(technician: str, outcome: Outcome | None, aftercare: bool) -> str:
    return (f"Technician: {technician}.  Outcome: {outcome_label(outcome)}.  "
            f"Aftercare given: {'yes' if aftercare else 'no'}.")


def _pdf_identified(sv: SessionView) -> _PdfSession:
    sim = "  [SIMULATOR]" if sv.machine.simulator else ""
    zones = [(*ZONE_HEAD, "Notes")] + [
        (*_zone_row(z.zone, z.coverage_pct, z.passes, used_rows(z)), z.notes)
        for z in sv.zones]
    pigments = [("Pigment", "Shade", "Dilution (water:pigment)", "Lot", "Expiry", "Zone")] + [
        (p.brand, p.shade, p.dilution, p.lot, p.expiry.isoformat(), used_in_label(p.zone))
        for p in sv.pigments]
    needles = [("Needle cartridge", "Lot", "Expiry", "Zone")] + [
        (n.code, n.lot, n.expiry.isoformat(), used_in_label(n.zone)) for n in sv.needles]
    return _PdfSession(f"Session on {sv.started_at:%d %B %Y}: {sv.stage.label}{sim}",
                       _line(sv.technician, sv.outcome, sv.aftercare_given), zones, pigments,
                       needles)


def _pdf_pseudonymised(sv: Mapping[str, Any], notes: bool) -> _PdfSession:
    """One session of the pseudonymised tree, with only PSEUDONYMISED_PDF's fields."""
    s = {k: sv[k] for k in PSEUDONYMISED_PDF["session"]}
    sim = "  [SIMULATOR]" if s["machine"]["simulator"] else ""
    zf, pf, nf = (PSEUDONYMISED_PDF[k] for k in ("zone", "pigment", "needle"))
    zones = [ZONE_HEAD + (("Notes",) if notes else ())] + [
        _zone_row(Zone(z["zone"]), z["coverage_pct"], z["passes"], z["used"])
        + ((z["notes"],) if notes else ())
        for z in ({k: z[k] for k in zf} for z in sv["zones"])]
    pigments = [("Pigment", "Shade", "Dilution (water:pigment)", "Lot (pseudonym)",
                 "Expires", "Zone")] + [
        (p["brand"], p["shade"], p["dilution"], p["lot"], f"day {p['expiry_day']}",
         used_in_label(zone_of(p["zone"])))
        for p in ({k: p[k] for k in pf} for p in sv["pigments"])]
    needles = [("Needle cartridge", "Lot (pseudonym)", "Expires", "Zone")] + [
        (n["code"], n["lot"], f"day {n['expiry_day']}", used_in_label(zone_of(n["zone"])))
        for n in ({k: n[k] for k in nf} for n in sv["needles"])]
    return _PdfSession(f"Session {s['session']}, day {s['day']}: {Stage(s['stage']).label}{sim}",
                       _line(s["technician"], outcome_of(s["outcome"]), s["aftercare_given"]),
                       zones,
                       pigments, needles)


def to_pdf(record: ClientRecord, *, now: datetime) -> bytes:
    """The client's own record (identified)."""
    head = [f"Client: {record.client.name}"]
    if record.sessions:
        first, last = record.sessions[0].started_at, record.sessions[-1].started_at
        head.append(f"Sessions: {len(record.sessions)}, from {first:%d %B %Y} to {last:%d %B %Y}")
    head.append(f"Prepared on {now:%d %B %Y}")
    return _pdf(head, [_pdf_identified(sv) for sv in record.sessions],
                any(s.machine.simulator for s in record.sessions))


def pseudonymised_pdf(doc: Mapping[str, Any]) -> bytes:
    included = doc["included"]
    head = [f"Client: {doc['client']['pseudonym']}",
            "Pseudonymised for teaching: the client, technicians, machine serials and lots are "
            f"pseudonyms; {DATES_NOTE}. Included: "
            + (", ".join(INCLUDE[k] for k in included) if included else
               "no free text and no health data") + "."]
    if doc["sessions"]:
        head.append(f"Sessions: {len(doc['sessions'])}, from day {doc['sessions'][0]['day']} to "
                    f"day {doc['sessions'][-1]['day']}")
    return _pdf(head, [_pdf_pseudonymised(sv, "notes" in included) for sv in doc["sessions"]],
                bool(doc["simulator_sessions"]))


def _pdf(head: list[str], sessions: list[_PdfSession], simulator: bool) -> bytes:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    pdf = FPDF(format="A4")
    pdf.set_title("Scalp micropigmentation record")
    pdf.set_auto_page_break(auto=True, margin=15)
    for style, name in FONT_FILES.items():
        pdf.add_font(FONT, style, FONT_DIR / name)
    pdf.add_page()
    heading = FontFace(emphasis="BOLD", fill_color=(225, 225, 225))

    def text(s: str, size: int = 11, style: str = "", h: float = 6) -> None:
        pdf.set_font(FONT, style, size)
        pdf.multi_cell(0, h, printable(s, multiline=True), new_x="LMARGIN", new_y="NEXT")

    def table(rows: Sequence[Row], widths: tuple[int, ...]) -> None:
        if len(rows) < 2:
            return
        pdf.set_font(FONT, "", 9)
        with pdf.table(col_widths=widths, headings_style=heading, line_height=5.5) as t:
            for row in rows:
                r = t.row()
                for cell in row:
                    r.cell(printable(cell, multiline=True))
        pdf.ln(3)

    text("Scalp micropigmentation record", 20, "B", 10)
    text(head[0], 14, "B", 8)
    for line in head[1:]:
        text(line)
    if simulator:
        text(SIM_NOTE, 11, "B")
    text(USED_NOTE, 10)
    pdf.ln(2)
    for sv in sessions:
        text(sv.heading, 13, "B", 8)
        text(sv.line, 10)
        table(sv.zones, (26, 20, 16, 76, 42)[:len(sv.zones[0])])
        table(sv.pigments, (34, 28, 36, 32, 26, 24))
        table(sv.needles, (50, 50, 40, 40))
    text("Aftercare", 14, "B", 8)
    for line in AFTERCARE:
        text(f"-  {line}")
    pdf.ln(2)
    text("Questions or concerns after a session? Contact your clinic.", 10, "I")
    return bytes(pdf.output())


# -- writing ------------------------------------------------------------------------------

def render(store: Store, record: ClientRecord, fmt: str, *, pseudonymise_ids: bool = False,
           include: Collection[str] = (), now: datetime | None = None) -> bytes:
    """The export of `record` in `fmt`; pseudonymised, with the free text of `include`."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if include and not pseudonymise_ids:
        raise ExportError("include goes with pseudonymise: an identified export holds "
                          "everything already")
    now = now or datetime.now(UTC)
    if pseudonymise_ids:
        doc = pseudonymised_document(store, record, include)
        if fmt == "json":
            return _json(doc)
        return pseudonymised_csv(doc) if fmt == "csv" else pseudonymised_pdf(doc)
    if fmt == "json":
        return to_json(record, now=now)
    return to_csv(record) if fmt == "csv" else to_pdf(record, now=now)


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
