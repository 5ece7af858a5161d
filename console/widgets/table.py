"""The console's data table: Textual's, with its columns as wide as what it shows now, and its
header kept in line with its rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Self

from textual.render import measure
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey


class Table(DataTable):  # type: ignore[type-arg]  # cells of any renderable
    """Two fixes to Textual's (8.2) DataTable.

    A column's auto width is the widest cell it has held since it was made: `clear()` keeps
    it. So the same rows could be drawn at different widths, depending on what was shown
    before them, and in what order the workers' answers arrived (a search typed before the
    client list loaded left the name column narrower than one typed after). Here a column
    is as wide as its header and the rows shown now, whatever came before.

    Textual caches a drawn cell by its content and the table's update count, not by its
    width. Columns widen on the idle after rows are added, so a header drawn in between (a
    loaded machine does) kept its old widths, out of line with the rows beneath it, until
    something else changed the table."""

    def clear(self, columns: bool = False) -> Self:
        super().clear(columns)
        for column in self.columns.values():
            if column.auto_width:
                column.content_width = measure(self.app.console, column.label, 1)
        return self

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        super()._update_dimensions(new_rows)
        self._update_count += 1  # the caches' key: everything is drawn again at the new widths
        self.refresh()
