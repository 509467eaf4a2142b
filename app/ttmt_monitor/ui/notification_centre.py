"""The in-app notification centre and the notification settings dialog.

Provides:
- :class:`NotificationCentre` — the history of every notification (quiet-hours ones included), newest first,
  with an unread count (signal ``unread_changed(int)``, e.g. for a tab badge) and ``open_trade(str)`` when an
  entry that belongs to a trade is clicked. Connect ``Notifier.delivered`` to :meth:`NotificationCentre.add`.
- :class:`NotificationSettingsDialog` and :func:`open_notification_settings` — per-kind switches and sounds,
  quiet hours, close-to-tray; shown non-modally (``open()``, never ``exec()``: the asyncio loop must keep
  running).

All text is shown as plain text (list items are plain; nothing here interprets markup).
"""

from __future__ import annotations

from datetime import time

from PySide6.QtCore import Qt, QTime, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from ..core.formatting import format_time
from ..core.notify import KIND_LABELS, KINDS, SOUND_LABELS, SOUNDS, Notification, NotifySettings

MAX_ITEMS = 1000
ROLE_TRADE = Qt.ItemDataRole.UserRole
ROLE_UNREAD = Qt.ItemDataRole.UserRole + 1


class NotificationCentre(QWidget):
    unread_changed = Signal(int)
    open_trade = Signal(str)
    settings_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._unread = 0
        self.header = QLabel("Notifications")
        self.mark_read_button = QPushButton("Mark all read")
        self.clear_button = QPushButton("Clear")
        self.settings_button = QPushButton("Settings…")
        self.mark_read_button.clicked.connect(self.mark_all_read)
        self.clear_button.clicked.connect(self.clear)
        self.settings_button.clicked.connect(self.settings_requested.emit)
        # The header on its own line above the buttons: side by side they made the dock ~360 px wide at least,
        # which widened a window on a laptop screen when the centre was opened.
        top = QHBoxLayout()
        top.addWidget(self.mark_read_button)
        top.addWidget(self.clear_button)
        top.addWidget(self.settings_button)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setAlternatingRowColors(True)
        self.list.itemClicked.connect(self._on_item)
        self.list.itemActivated.connect(self._on_item)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.header)
        lay.addLayout(top)
        lay.addWidget(self.list, 1)
        self._update_header()

    @property
    def unread_count(self) -> int:
        return self._unread

    def add(self, n: Notification) -> None:
        """Newest on top; unread (bold) until clicked or marked read. Bounded (oldest dropped)."""
        when = format_time(n.timestamp) if n.timestamp else ""
        flags = "  (quiet hours)" if n.quiet else ""
        item = QListWidgetItem(f"{when}  {n.title}{flags}\n{n.body}")
        item.setData(ROLE_TRADE, n.trade_id)
        item.setData(ROLE_UNREAD, True)
        if n.trade_id:
            item.setToolTip("Click to open the trade")
        self._bold(item, True)
        self.list.insertItem(0, item)
        while self.list.count() > MAX_ITEMS:
            old = self.list.takeItem(self.list.count() - 1)
            if old is not None and old.data(ROLE_UNREAD):
                self._unread -= 1
        self._set_unread(self._unread + 1)

    def mark_all_read(self) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(ROLE_UNREAD):
                item.setData(ROLE_UNREAD, False)
                self._bold(item, False)
        self._set_unread(0)

    def clear(self) -> None:
        self.list.clear()
        self._set_unread(0)

    def _on_item(self, item: QListWidgetItem) -> None:
        if item.data(ROLE_UNREAD):
            item.setData(ROLE_UNREAD, False)
            self._bold(item, False)
            self._set_unread(self._unread - 1)
        trade_id = item.data(ROLE_TRADE)
        if trade_id:
            self.open_trade.emit(str(trade_id))

    def _set_unread(self, n: int) -> None:
        n = max(0, n)
        if n != self._unread:
            self._unread = n
            self.unread_changed.emit(n)
        self._update_header()

    def _update_header(self) -> None:
        self.header.setText(f"Notifications ({self._unread} unread)" if self._unread else "Notifications")

    @staticmethod
    def _bold(item: QListWidgetItem, on: bool) -> None:
        f = QFont(item.font())
        f.setBold(on)
        item.setFont(f)


class NotificationSettingsDialog(QDialog):
    """Switches and sound per kind, quiet hours, close-to-tray. ``result_settings()`` after accept."""

    def __init__(
        self, settings: NotifySettings, *, close_to_tray: bool | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Notification settings")
        self._settings = settings
        grid = QGridLayout()
        grid.addWidget(QLabel("Notify on"), 0, 0)
        grid.addWidget(QLabel("Sound"), 0, 1)
        self.switches: dict[str, QCheckBox] = {}
        self.sound_boxes: dict[str, QComboBox] = {}
        for row, kind in enumerate(KINDS, start=1):
            box = QCheckBox(KIND_LABELS[kind])
            box.setChecked(settings.is_enabled(kind))
            combo = QComboBox()
            combo.addItem("None", None)
            for s in SOUNDS:
                combo.addItem(SOUND_LABELS.get(s, s), s)
            idx = combo.findData(settings.sounds.get(kind))
            combo.setCurrentIndex(max(0, idx))
            grid.addWidget(box, row, 0)
            grid.addWidget(combo, row, 1)
            self.switches[kind] = box
            self.sound_boxes[kind] = combo
        self.quiet = QCheckBox("Quiet hours (no pop-ups or sounds; history keeps everything)")
        self.quiet.setChecked(settings.quiet_start is not None and settings.quiet_end is not None)
        self.quiet_start = QTimeEdit(_qtime(settings.quiet_start or time(22, 0)))
        self.quiet_end = QTimeEdit(_qtime(settings.quiet_end or time(7, 0)))
        for w in (self.quiet_start, self.quiet_end):
            w.setDisplayFormat("HH:mm")
        qrow = QHBoxLayout()
        qrow.addWidget(self.quiet)
        qrow.addWidget(QLabel("from"))
        qrow.addWidget(self.quiet_start)
        qrow.addWidget(QLabel("to"))
        qrow.addWidget(self.quiet_end)
        self.close_to_tray = QCheckBox("Keep running in the tray when the window is closed")
        self.close_to_tray.setVisible(close_to_tray is not None)
        self.close_to_tray.setChecked(bool(close_to_tray))
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(grid)
        lay.addLayout(qrow)
        lay.addWidget(self.close_to_tray)
        lay.addWidget(buttons)

    def result_settings(self) -> NotifySettings:
        s = NotifySettings.from_json(self._settings.to_json())  # a copy: cancel leaves the original untouched
        for kind in KINDS:
            s.enabled[kind] = self.switches[kind].isChecked()
            s.sounds[kind] = self.sound_boxes[kind].currentData()
        if self.quiet.isChecked():
            a, b = self.quiet_start.time(), self.quiet_end.time()
            s.quiet_start, s.quiet_end = time(a.hour(), a.minute()), time(b.hour(), b.minute())
        else:
            s.quiet_start = s.quiet_end = None
        return s


def _qtime(t: time) -> QTime:
    return QTime(t.hour, t.minute)


def open_notification_settings(
    parent: QWidget | None, notifier: object, tray: object = None
) -> NotificationSettingsDialog:
    """For the window's menu: show the dialog non-modally; on OK apply (and save) to ``notifier`` and
    ``tray``."""
    rules = getattr(notifier, "rules", None)
    settings = rules.settings if rules is not None else NotifySettings()
    dialog = NotificationSettingsDialog(
        settings,
        close_to_tray=getattr(tray, "close_to_tray", None) if tray is not None else None,
        parent=parent,
    )
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def accepted() -> None:
        apply = getattr(notifier, "apply_settings", None)
        if apply is not None:
            apply(dialog.result_settings())
        if tray is not None and hasattr(tray, "set_close_to_tray"):
            tray.set_close_to_tray(dialog.close_to_tray.isChecked())

    dialog.accepted.connect(accepted)
    dialog.open()
    return dialog
