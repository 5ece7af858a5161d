"""A top-down map of the scalp (front at the top): every zone, its key, run time (min:s),
coverage and the passes marked (x2)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from console.view import WorkView, ZoneStatus
from console.widgets.text import set_text
from protocols import Zone

# Zone keys, in the order of protocols.zones.Zone: 1 to 9, then 0.
ZONE_KEYS: dict[Zone, str] = {z: str((i + 1) % 10) for i, z in enumerate(Zone)}
# Rows from the front hairline to the nape; a zone spanning the row fills it.
LAYOUT: tuple[tuple[Zone, ...], ...] = (
    (Zone.HAIRLINE,),
    (Zone.TEMPLES, Zone.MID_SCALP, Zone.PART_LINE),
    (Zone.SIDES, Zone.CROWN, Zone.ALOPECIA_PATCH),
    (Zone.SCAR, Zone.BACK),
    (Zone.NAPE,),
)
SHORT = {Zone.MID_SCALP: "Mid-scalp", Zone.CROWN: "Crown", Zone.BACK: "Back",
         Zone.ALOPECIA_PATCH: "Alopecia", Zone.PART_LINE: "Part line", Zone.SCAR: "Scar"}


def _short(zone: Zone) -> str:
    return SHORT.get(zone, zone.label)


class ZoneCell(Static):
    DEFAULT_CSS = """
    ZoneCell { height: 4; border: round $primary-darken-2; padding: 0; }
    ZoneCell.-planned { border: round $primary; }
    ZoneCell.-current { border: double $accent; text-style: bold reverse; }
    ZoneCell:hover { background: $boost; }
    """

    class Clicked(Message):
        def __init__(self, zone: Zone) -> None:
            super().__init__()
            self.zone = zone

    def __init__(self, zone: Zone) -> None:
        super().__init__(id=f"zone-{zone.value}")
        self.zone = zone

    def on_click(self) -> None:
        self.post_message(self.Clicked(self.zone))


class ScalpMap(Widget):
    DEFAULT_CSS = """
    ScalpMap { layout: grid; grid-size: 3; grid-rows: 4; grid-gutter: 0; height: auto;
               width: 100%; }
    ScalpMap .row-1 { column-span: 3; }
    ScalpMap .row-2 { column-span: 2; }
    """

    def __init__(self, *, keys: dict[Zone, str] | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.keys = keys  # the key of each zone as the key map has it; None: keys do nothing

    def compose(self) -> ComposeResult:
        for row in LAYOUT:
            for zone in row:
                cell = ZoneCell(zone)
                if len(row) == 1:
                    cell.add_class("row-1")
                elif len(row) == 2 and zone == row[-1]:
                    cell.add_class("row-2")
                yield cell

    def show(self, work: WorkView | None) -> None:
        statuses = {z.zone: z for z in work.zones} if work else {}
        for cell in self.query(ZoneCell):
            z = cell.zone
            s = statuses.get(z)
            current = work is not None and work.zone is z
            cell.set_class(current, "-current")
            cell.set_class(bool(s and s.planned), "-planned")
            key = f"[{self.keys[z]}] " if self.keys else ""
            mark = ">>" if current else ""
            # Two short lines, so that the smallest tile (13 columns inside) loses nothing to
            # wrapping: the key and the name, then the run time, the coverage and the passes.
            passes = f" x{s.passes}" if s and s.passes else ""
            if s is not None and not s.planned and not s.run_ms and s.coverage_pct is None:
                figures = "unplanned"
            else:
                figures = zone_figures(s) + passes
            set_text(cell, f"{mark}{key}{_short(z)}\n{figures}")


def zone_figures(s: ZoneStatus | None) -> str:
    """A zone's needle time and coverage, short: "2:05  40%" ("--%" before any is noted)."""
    run_s = (s.run_ms if s else 0) // 1000
    cover = f"{s.coverage_pct}%" if s and s.coverage_pct is not None else "--%"
    return f"{run_s // 60}:{run_s % 60:02d} {cover}"
