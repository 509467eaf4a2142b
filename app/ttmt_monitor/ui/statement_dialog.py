"""File → Export statement… (issue 18): choose a period, the accounts and where to write; the statement is built
by ``core.analytics.build_statement`` and written as HTML and PDF by ``ttmt_monitor.report.write_statement``
(atomic; Qt prints the PDF without widgets) in an executor thread, never on the GUI loop.

Provides :class:`StatementDialog` (non-modal; ``export_requested(StatementSpec)``), :class:`StatementSpec` and
:func:`write_statement_files` (plain Python + QtGui, thread-safe: it builds its own document).

The accounts are the core's :class:`~ttmt_monitor.core.analytics.StatementAccount` rows with their balance and
equity (``AnalyticsFeed.accounts``): the window refreshes those figures when the export starts (the dialog may
have been open a while), so the statement's Accounts table shows what the Accounts tab shows then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core import analytics as an
from .table_export import default_export_folder


@dataclass(frozen=True, slots=True)
class StatementSpec:
    """What the dialog asks for: the days (inclusive, in the desk's zone), the accounts, the files."""

    first_day: date
    last_day: date
    accounts: tuple[an.StatementAccount, ...]        # with their balance and equity; () = every account
    path: str                                         # the PDF's path; the HTML goes beside it
    pdf: bool = True
    html: bool = True


def write_statement_files(history: list[an.HistoryDeal], spec: StatementSpec, zone: str,
                          now: datetime) -> list[str]:
    """Build the statement and write its files (runs in an executor thread). Returns the paths written."""
    tz = ZoneInfo(zone)
    since = datetime.combine(spec.first_day, time(0), tz)
    until = datetime.combine(spec.last_day + timedelta(days=1), time(0), tz)
    statement = an.build_statement(history, since=since, until=until, zone=zone,
                                   accounts=list(spec.accounts) or None, now=now,
                                   title=f"Trading statement {spec.first_day.isoformat()} – "
                                         f"{spec.last_day.isoformat()}")
    from ..report import write_statement

    return [str(write_statement(statement, path, path.suffix[1:])) for path in spec_files(spec)]


class StatementDialog(QDialog):
    """Period (from, to: whole days), accounts (checked), PDF and/or HTML, file. Non-modal."""

    export_requested = Signal(object)  # StatementSpec

    def __init__(self, accounts: Sequence[an.StatementAccount], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export statement")
        self.setModal(False)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        layout.addLayout(form)
        today = QDate.currentDate()
        self.from_edit = QDateEdit(QDate(today.year(), today.month(), 1))
        self.to_edit = QDateEdit(today)
        for edit in (self.from_edit, self.to_edit):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        period = QHBoxLayout()
        period.addWidget(self.from_edit)
        period.addWidget(QLabel("to"))
        period.addWidget(self.to_edit)
        for text, days in (("This month", 0), ("Last 30 days", 30), ("Last 90 days", 90)):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, days=days: self._preset(days))
            period.addWidget(button)
        form.addRow("Period", period)
        self.accounts_list = QListWidget()
        for account in accounts:
            label, source, currency = account.label, account.source, account.currency
            item = QListWidgetItem(f"{label} — {source}, {currency}" if currency else f"{label} — {source}")
            item.setData(Qt.ItemDataRole.UserRole, account)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.accounts_list.addItem(item)
        form.addRow("Accounts", self.accounts_list)
        self.pdf_box = QCheckBox("PDF")
        self.pdf_box.setChecked(True)
        self.html_box = QCheckBox("HTML")
        self.html_box.setChecked(True)
        formats = QHBoxLayout()
        formats.addWidget(self.pdf_box)
        formats.addWidget(self.html_box)
        formats.addStretch(1)
        form.addRow("Write", formats)
        file_row = QHBoxLayout()
        # The folder Export table to CSV… proposes too (Documents, else home).
        self.path_edit = QLineEdit(str(default_export_folder() / f"statement-{today.toString('yyyy-MM')}.pdf"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        file_row.addWidget(self.path_edit, 1)
        file_row.addWidget(browse)
        form.addRow("File", file_row)
        self.error_label = QLabel("")
        self.error_label.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.error_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self._ok)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.file_dialog: QFileDialog | None = None
        self.replace_box: QMessageBox | None = None  # "Replace them?" while it is open (tests answer it)

    def _preset(self, days: int) -> None:
        today = QDate.currentDate()
        self.to_edit.setDate(today)
        self.from_edit.setDate(QDate(today.year(), today.month(), 1) if days == 0 else today.addDays(-days + 1))

    def _browse(self) -> None:
        dialog = QFileDialog(self, "Statement file", self.path_edit.text(), "PDF files (*.pdf)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        # (Replacing is asked once, by Export, for the PDF and the HTML beside it together: not here for one.)
        dialog.setOption(QFileDialog.Option.DontConfirmOverwrite, True)
        dialog.setDefaultSuffix("pdf")
        dialog.fileSelected.connect(self.path_edit.setText)
        dialog.finished.connect(dialog.deleteLater)
        self.file_dialog = dialog
        dialog.open()  # non-modal

    def spec(self) -> StatementSpec:
        first, last = _day(self.from_edit.date()), _day(self.to_edit.date())
        if last < first:
            raise ValueError("The period ends before it starts.")
        chosen = tuple(item.data(Qt.ItemDataRole.UserRole) for item in
                       (self.accounts_list.item(n) for n in range(self.accounts_list.count()))
                       if item.checkState() == Qt.CheckState.Checked)
        if self.accounts_list.count() and not chosen:
            raise ValueError("Choose at least one account.")
        path = self.path_edit.text().strip()
        if not path:
            raise ValueError("Choose a file.")
        if not (self.pdf_box.isChecked() or self.html_box.isChecked()):
            raise ValueError("Choose PDF, HTML or both.")
        return StatementSpec(first, last, chosen, path,
                             pdf=self.pdf_box.isChecked(), html=self.html_box.isChecked())

    def _ok(self) -> None:
        try:
            spec = self.spec()
        except ValueError as exc:
            self.error_label.setText(str(exc))
            return
        # The name proposed is the month's: the second export of a month would replace the first without a word
        # (a tester's find). Asked, without blocking the loop: open(), answered through ``finished``.
        there = [path for path in spec_files(spec) if path.exists()]
        if not there:
            self._export(spec)
            return
        names = " and ".join(path.name for path in there)
        box = QMessageBox(QMessageBox.Icon.Question, "Replace statement?",
                          f"{names} already {'exists' if len(there) == 1 else 'exist'} in {there[0].parent}."
                          "\n\nReplace with the statement of this period?",
                          QMessageBox.StandardButton.Cancel, self)
        box.setTextFormat(Qt.TextFormat.PlainText)  # (a file name is not markup)
        replace = box.addButton("Replace", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def answered(_result: int) -> None:
            self.replace_box = None
            box.deleteLater()
            if box.clickedButton() is replace:
                self._export(spec)

        box.finished.connect(answered)
        self.replace_box = box
        box.open()

    def _export(self, spec: StatementSpec) -> None:
        self.export_requested.emit(spec)
        self.accept()


def spec_files(spec: StatementSpec) -> list[Path]:
    """The files an export of ``spec`` writes (the HTML beside the PDF, as :func:`write_statement_files` does)."""
    target = Path(spec.path)
    return [target.with_suffix(f".{fmt}") for fmt, wanted in (("html", spec.html), ("pdf", spec.pdf)) if wanted]


def _day(value: QDate) -> date:
    return date(value.year(), value.month(), value.day())


__all__ = ["StatementDialog", "StatementSpec", "write_statement_files"]
