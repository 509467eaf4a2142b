"""File → Export table to CSV…: the current tab's table as the view shows it, written off the GUI loop.

Provides:
- :func:`table_rows` — the header and rows of a ``QTableView``: the rows as filtered and sorted in the view, the
  visible columns in their on-screen order. Cells are plain text with exact numbers: for a desk table
  (:class:`~ttmt_monitor.ui.table_base.KeyedTableModel`) a number is the row's raw value (a ``Decimal`` written
  as it is, ``1234.5`` not ``"+1,234.50 USD"``), a time is ISO 8601 with milliseconds in the zone the desk shows
  (``2026-06-01T12:00:00.000+02:00``: one width for every row, the precision the services send and
  ``ttmt-monitor export`` writes); any other model gives its ``EXPORT_ROLE`` value when it has one, else its
  display text. A figure the source cannot give (the table's dash, ``NO_FIGURE``) is an empty cell, so a
  spreadsheet reads the column as numbers. When a money column is exported and the table's Currency column is
  hidden, a Currency column is added at the end (an amount never loses its currency).
- :func:`write_csv` — UTF-8 with a header row, written to ``FILE.partial`` and renamed (an error never leaves a
  half file). Text cells a spreadsheet would evaluate (``= + - @``) get a leading ``'`` (DESIGN.md rules).
- :func:`default_export_folder` — where File → Export table to CSV… and File → Export statement… both propose to
  write: the user's Documents folder (``QStandardPaths``), else the home folder (never the working directory).
- :func:`export_view` — asks for the file with a non-modal ``QFileDialog`` (``open()`` and an awaited
  ``finished``: never ``exec()`` inside a coroutine) and writes in an executor thread. A table paged from the
  store (``ui/history_model``) holds only the rows on screen: its every row is read from the store instead
  (its ``export_csv``), by the same rules.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from PySide6.QtCore import QStandardPaths, Qt
from PySide6.QtWidgets import QFileDialog, QTableView, QWidget

from ..core.formatting import NO_FIGURE
from .table_base import ROW_ROLE, KeyedTableModel

#: A model that is not a desk table may answer this role with the exact value of a cell (Decimal, datetime…).
EXPORT_ROLE = Qt.ItemDataRole.UserRole + 20
_TEXT_RISK = ("=", "+", "-", "@", "\t", "\r")
PARTIAL_SUFFIX = ".partial"


def exact_cell(value: Any, *, utc: bool = False) -> str:
    """A raw value as exact plain text: Decimal unrounded, datetimes ISO 8601 with milliseconds and the offset
    (always: ``isoformat()`` alone wrote ``.327000`` for one row and nothing for the next), None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return f"{value:f}" if value.is_finite() else ""
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        try:
            return moment.astimezone(UTC if utc else None).isoformat(timespec="milliseconds")
        except (OverflowError, OSError, ValueError):
            return moment.isoformat(timespec="milliseconds")
    return str(value)


def default_export_folder() -> Path:
    """The folder both exports propose: the user's Documents folder when it exists, else the home folder. (The
    app remembers no last-used export folder; a bare file name would land in the working directory.)"""
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    if docs and Path(docs).is_dir():
        return Path(docs)
    return Path.home()


def safe_text(text: str) -> str:
    """A text cell a spreadsheet shows rather than evaluates (a leading ``'`` before ``= + - @``)."""
    return "'" + text if text.startswith(_TEXT_RISK) else text


def shown_cell(text: Any) -> str:
    """The text a cell shows, as a CSV cell: empty for nothing or for the dash of a figure the source cannot
    give (a number column stays numbers), else :func:`safe_text`."""
    if text is None:
        return ""
    text = str(text)
    return "" if text == NO_FIGURE else safe_text(text)


def _visible_columns(view: QTableView) -> list[int]:
    header = view.horizontalHeader()
    logical = [header.logicalIndex(v) for v in range(header.count())]
    return [c for c in logical if c >= 0 and not header.isSectionHidden(c)]


def table_rows(view: QTableView, *, utc: bool = False) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of what ``view`` shows: its proxy's rows in order, its visible columns in order."""
    model = view.model()
    cols, header = header_of(view)
    source = getattr(view, "source_model", None)
    rows: list[list[str]] = []
    if isinstance(source, KeyedTableModel):
        columns, currency_of = export_plan(source.columns, cols, header)
        for r in range(model.rowCount()):
            obj = model.data(model.index(r, 0), ROW_ROLE)
            row: list[str] = []
            for logical, column in zip(cols, columns, strict=True):
                try:
                    value = column.value(obj)
                except Exception:  # noqa: BLE001 - an odd row exports blank, like the view shows it
                    value = None
                if isinstance(value, (Decimal, datetime)):
                    row.append(exact_cell(value, utc=utc))  # exact, not the rounded "+1,234.50 USD"
                else:  # the text the view shows (through the model: a column may be drawn from beside the row)
                    row.append(shown_cell(model.data(model.index(r, logical))))
            if currency_of is not None:
                row.append(safe_text(exact_cell(currency_of(obj))))
            rows.append(row)
        return header, rows
    for r in range(model.rowCount()):
        row = []
        for c in cols:
            index = model.index(r, c)
            value = model.data(index, EXPORT_ROLE)
            if value is not None and not isinstance(value, str):
                row.append(exact_cell(value, utc=utc))
            else:
                text = value if isinstance(value, str) else model.data(index, Qt.ItemDataRole.DisplayRole)
                row.append(shown_cell(text))
        rows.append(row)
    return header, rows


def export_plan(all_columns: Sequence[Any], cols: Sequence[int],
                header: list[str]) -> tuple[list[Any], Callable[[Any], Any] | None]:
    """(the columns of ``cols``, the currency of a row when a Currency column is added at the end, else None).
    When money is exported and the table's Currency column is not, one is added (its title appended to
    ``header``): an amount never loses its currency."""
    columns = [all_columns[c] for c in cols]
    keys = [c.key for c in columns]
    money = [c for c in columns if c.pl_currency is not None or c.key in _MONEY_KEYS]
    currency_col = next((c for c in all_columns if c.key == "currency"), None)
    currency_of: Any = None
    if money and "currency" not in keys:
        if currency_col is not None:
            currency_of = currency_col.value
        else:
            currency_of = next((c.pl_currency for c in money if c.pl_currency is not None), None)
    if currency_of is not None:
        header.append(currency_col.title if currency_col is not None else "Currency")
    return columns, currency_of


def header_of(view: QTableView) -> tuple[list[int], list[str]]:
    """(the visible columns in their on-screen order, their titles)."""
    model = view.model()
    cols = _visible_columns(view)
    return cols, [str(model.headerData(c, Qt.Orientation.Horizontal) or "") for c in cols]


_MONEY_KEYS = frozenset({"balance", "equity", "margin", "free_margin", "realized_pl", "unrealized_pl", "profit",
                         "commission", "swap", "open_pl", "realized_today"})


def csv_text(rows: Sequence[Sequence[str]]) -> str:
    """Rows as CSV text, written as :func:`write_csv` writes them."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def write_csv(path: str | os.PathLike[str], header: Sequence[str], rows: Sequence[Sequence[str]],
              chunks: Sequence[str] = ()) -> int:
    """Write UTF-8 CSV (header first, then ``rows``, then ``chunks``: rows already as CSV text, :func:`csv_text`)
    atomically: ``FILE.partial`` then renamed. Returns the rows written from ``rows``."""
    target = Path(path)
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    try:
        with open(partial, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
            handle.writelines(chunks)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return len(rows)


async def ask_save_path(parent: QWidget, title: str, suggested: str, file_filter: str) -> str | None:
    """A non-modal save dialog, awaited (never ``exec()`` inside a coroutine). None when cancelled."""
    dialog = QFileDialog(parent, title, suggested, file_filter)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile)
    suffix = file_filter.rsplit("*.", 1)[-1].rstrip(")") if "*." in file_filter else ""
    if suffix:
        dialog.setDefaultSuffix(suffix)
    setattr(parent, "file_dialog", dialog)  # noqa: B010 - tests answer it; also keeps it alive while open
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def finished(result: int) -> None:
        if not done.done():
            done.set_result(result)

    dialog.finished.connect(finished)
    dialog.open()
    try:
        result = await done
        files = dialog.selectedFiles()
    finally:
        setattr(parent, "file_dialog", None)  # noqa: B010
        dialog.deleteLater()
    if result != 1 or not files:
        return None
    return files[0]


async def export_view(parent: QWidget, view: QTableView, name: str, *, utc: bool = False) -> tuple[str, int] | None:
    """Ask where, then write the view's table there off the loop. Returns (path, rows) or None when cancelled."""
    suggested = str(default_export_folder() / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M')}.csv")
    path = await ask_save_path(parent, "Export table to CSV", suggested, "CSV files (*.csv)")
    if path is None:
        return None
    export_csv = getattr(getattr(view, "source_model", None), "export_csv", None)
    if callable(export_csv):  # a table paged from the store: every row, read from it
        cols, header = header_of(view)
        count, chunks = await export_csv(cols, header, utc=utc)
        await asyncio.get_running_loop().run_in_executor(None, write_csv, path, header, (), chunks)
        return path, count
    header, rows = table_rows(view, utc=utc)  # read on the loop (Qt models are not thread-safe); cheap
    count = await asyncio.get_running_loop().run_in_executor(None, write_csv, path, header, rows)
    return path, count
