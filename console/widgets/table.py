"""The console's data table: Textual's, with its header kept in line with its rows."""

from __future__ import annotations

from collections.abc import Iterable

from textual.widgets import DataTable
from textual.widgets.data_table import RowKey


class Table(DataTable):
    """Textual (8.2) caches a drawn cell by its content and the table's update count, not by
    its width. Columns widen on the idle after rows are added, so a header drawn in between
    (a loaded machine does) kept its old widths, out of line with the rows beneath it, until
    something else changed the table."""

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        super()._update_dimensions(new_rows)
        self._update_count += 1  # the caches' key: everything is drawn again at the new widths
        self.refresh()
