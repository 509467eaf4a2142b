"""The in-app notification centre and the notification settings dialog.

Provides:
- :class:`NotificationCentre` — the history of every notification (quiet ones included), grouped by what it
  belongs to: one trade's fills, TP hits and close under one expandable group (a neutral source's position
  likewise), the group with the newest entry on top; each entry shows its time and kind ("12:00:03 · TP hit")
  above its text. Connection problems and summaries stand alone. Unread entries and groups carry a dot (not a
  wall of bold); ``unread_changed(int)`` for a badge; ``open_trade(str)`` when an entry (or a group, activated)
  that belongs to a trade is clicked. Connect ``Notifier.delivered`` to :meth:`NotificationCentre.add`.
- :class:`NotificationSettingsDialog` and :func:`open_notification_settings` — per kind: keep in the centre,
  pop up, sound; quiet hours, close-to-tray; shown non-modally (``open()``, never ``exec()``: the asyncio loop
  must keep running).

All text is shown as plain text (tree items are plain; tooltips go through ``plain_tooltip``).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, time
from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPersistentModelIndex, QRect, QSize, Qt, QTime, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QIcon, QPalette, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTimeEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.formatting import format_time
from ..core.notify import KIND_LABELS, KIND_SHORT, KINDS, SOUND_LABELS, SOUNDS, Notification, NotifySettings
from .widgets import dot_pixmap, plain_tooltip

HOLD_MS = 3000  # what arrives while the pointer moves over the list waits at most this long after it stopped
MAX_ITEMS = 1000  # entries kept (the oldest go first; an emptied group goes with its last entry)
ROLE_TRADE = Qt.ItemDataRole.UserRole
ROLE_UNREAD = Qt.ItemDataRole.UserRole + 1
ROLE_GROUP = Qt.ItemDataRole.UserRole + 2  # on a group's header: its key
ROLE_NOTIFICATION = Qt.ItemDataRole.UserRole + 3  # on an entry: the Notification


def entry_time(ts: datetime | None, now: datetime | None = None) -> str:
    """An entry's time: ``"14:05:03"`` today, ``"2026-11-23 14:05:03"`` another day (local time)."""
    full = format_time(ts)
    if not full:
        return ""
    today = format_time(now or datetime.now().astimezone())[:10]
    return full[11:] if full[:10] == today else full


def entry_text(n: Notification) -> str:
    """An entry: time and kind on the first line, then what happened (the group's header already names the
    trade, so the line reads on its own without it)."""
    flags = "  (quiet hours)" if n.in_quiet_hours else ""
    head = " · ".join(x for x in (entry_time(n.timestamp), KIND_SHORT.get(n.kind, n.kind)) if x)
    body = n.body if n.body_complete else " · ".join(x for x in (n.title, n.body) if x)
    if n.subject and body.startswith(n.subject + ": "):
        body = body[len(n.subject) + 2:]
    elif n.subject and not n.body_complete and n.body and n.subject.endswith(n.body):
        body = n.title  # a neutral source's "account · source" is already in the group's heading
    return f"{head}{flags}\n{body}"


class WrappingDelegate(QStyledItemDelegate):
    """Rows as tall as their wrapped text at the tree's current width, and a group's first line (the trade) in
    bold, the rest in the normal weight (bold everywhere was a wall of bold text).

    QTreeView asks a row's height before (and not again after) the dock gets its width, so a long line wrapped
    into a two-line row lost its second line: here the height is measured against the text rectangle the style
    gives at the viewport's width, and the tree re-lays out its rows when it is resized
    (NotificationCentre.eventFilter). Text is drawn as plain text (QPainter.drawText never reads markup)."""

    def __init__(self, tree: QTreeWidget) -> None:
        super().__init__(tree)
        self._tree = tree

    def _parts(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
               ) -> list[tuple[str, QFont]]:
        text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        normal = QFont(option.font)
        if not index.data(ROLE_GROUP):
            return [(text, normal)]
        bold = QFont(normal)
        bold.setBold(True)
        first, _, rest = text.partition("\n")
        return [(first, bold)] + ([(rest, normal)] if rest else [])

    def _text_rect(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex,
                   rect: QRect | None = None) -> QRect:
        """Where the text goes: the style's text rectangle of the item (its dot and margins left out), as painted.
        ``rect``: the item's own (paint); None: the one it will get, the viewport's width less the branch
        indentation (sizeHint is asked before the row has a rectangle)."""
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        if rect is None:
            depth, parent = 0, index.parent()
            while parent.isValid():
                depth, parent = depth + 1, parent.parent()
            tree = self._tree
            rect = QRect(0, 0, max(60, tree.viewport().width() - tree.indentation() * (depth + 1)), 1000)
        opt.rect = rect
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        return style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, widget).adjusted(2, 3, -2, 0)

    @staticmethod
    def _heights(parts: list[tuple[str, QFont]], width: int) -> list[int]:
        return [QFontMetrics(font).boundingRect(QRect(0, 0, max(1, width), 100000), Qt.TextFlag.TextWordWrap,
                                                part).height() for part, font in parts]

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        # Measured at the width paint will wrap at (the style's text rectangle): an estimate of it was off by a
        # few pixels either way, and a row came out a line short (its last line lost, seen under X11) or long.
        width = self._text_rect(option, index).width()
        return QSize(width, sum(self._heights(self._parts(option, index), width)) + 6)

    def paint(self, painter: Any, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        parts = self._parts(opt, index)
        opt.text = ""  # the style draws background, selection and the dot; the text is ours
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        rect = self._text_rect(option, index, opt.rect)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.save()
        painter.setPen(opt.palette.color(role))
        top = rect.top()
        flags = int(Qt.TextFlag.TextWordWrap) | int(Qt.AlignmentFlag.AlignLeft) | int(Qt.AlignmentFlag.AlignTop)
        for (part, font), height in zip(parts, self._heights(parts, rect.width()), strict=True):
            painter.setFont(font)
            painter.drawText(QRect(rect.left(), top, rect.width(), 100000), flags, part)
            top += height
        painter.restore()


class NotificationCentre(QWidget):
    unread_changed = Signal(int)
    open_trade = Signal(str)
    settings_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._unread = 0
        self._groups: dict[str, QTreeWidgetItem] = {}  # open groups by key (a finished one leaves this map)
        self._entries: deque[QTreeWidgetItem] = deque()  # every entry, oldest first (for the bound)
        self._pointer_in = False  # the pointer is over the list: what arrives waits in _held (add)
        self._held: list[Notification] = []
        self._hold_timer = QTimer(self)  # a child: it dies with the centre
        self._hold_timer.setSingleShot(True)
        self._hold_timer.setInterval(HOLD_MS)
        self._hold_timer.timeout.connect(self._let_in)
        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.PlainText)
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
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setColumnCount(1)
        self.tree.setWordWrap(True)
        self.tree.setUniformRowHeights(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setIndentation(14)
        self.tree.setItemDelegate(WrappingDelegate(self.tree))
        self.tree.setVerticalScrollMode(QTreeWidget.ScrollMode.ScrollPerPixel)
        self.tree.viewport().installEventFilter(self)
        # Hover events, so each move of the pointer over the list is seen and keeps it still (add, eventFilter);
        # without this attribute only the pointer's entering was, and the list held for 3 s from there.
        self.tree.viewport().setAttribute(Qt.WidgetAttribute.WA_Hover)
        self._width = 0
        self.tree.itemClicked.connect(self._on_item)
        self.tree.itemActivated.connect(self._on_activated)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.header)
        lay.addLayout(top)
        lay.addWidget(self.tree, 1)
        self._update_header()

    @property
    def unread_count(self) -> int:
        return self._unread

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        # The pointer moving over the list holds what arrives (add); leaving, the list hidden, or a pointer at rest
        # for HOLD_MS lets it in (a mouse parked over the dock must not freeze the list all day).
        if obj is self.tree.viewport() and event.type() in (QEvent.Type.Enter, QEvent.Type.HoverMove):
            self._pointer_in = True
            self._hold_timer.start()
        elif obj is self.tree.viewport() and event.type() in (QEvent.Type.Leave, QEvent.Type.Hide):
            self._hold_timer.stop()
            self._let_in()
        # A new width changes how lines wrap: ask every row its height again (once per width change). Checked as
        # the list is shown and before each paint too, not only on a resize: a dock closed and opened again came
        # back at another width, and the scroll bar brought by what arrived meanwhile narrowed the list as it was
        # shown with no resize event; the rows kept heights measured at the wider width, and a heading wrapped in
        # three lines drew its fourth under the next entry. A layout scheduled in a paint runs before the rows
        # are drawn (QTreeView lays out what is pending first).
        kind = event.type()
        if obj is self.tree.viewport() and kind in (QEvent.Type.Resize, QEvent.Type.Show, QEvent.Type.Paint):
            width = self.tree.viewport().width()
            if width != self._width:
                self._width = width
                if kind == QEvent.Type.Paint:
                    self.tree.scheduleDelayedItemsLayout()
                else:
                    self.tree.doItemsLayout()
        return super().eventFilter(obj, event)

    def entry_count(self) -> int:
        return len(self._entries) + len(self._held)

    def add(self, n: Notification) -> None:
        """Newest on top (an entry joins its group, which moves to the top); unread until clicked or marked
        read. Bounded (oldest dropped). While the pointer is over the list, what arrives waits (counted as unread
        at once) until it leaves: the rows do not move under a click (a tester's clicks landed on the wrong item
        while fills arrived)."""
        if self._pointer_in:
            self._held.append(n)
            self._set_unread(self._unread + 1)
            return
        self._insert(n)
        self._set_unread(self._unread + 1)

    def _let_in(self) -> None:
        self._pointer_in = False
        self._release_held()

    def _release_held(self) -> None:
        """What arrived while the pointer was over the list, into it now (already counted as unread)."""
        held, self._held = self._held, []
        if not held:
            return
        before = self._unread
        for n in held:
            self._insert(n)
        after, self._unread = self._unread, before  # (entries dropped at the cap took their unread with them)
        self._set_unread(after)

    def _insert(self, n: Notification) -> None:
        entry = QTreeWidgetItem([entry_text(n)])
        entry.setData(0, ROLE_TRADE, n.trade_id)
        entry.setData(0, ROLE_NOTIFICATION, n)
        if n.trade_id:
            entry.setToolTip(0, plain_tooltip("Click to open the trade"))
        if n.group:
            group = self._groups.get(n.group)
            if group is None:
                group = QTreeWidgetItem([""])
                group.setData(0, ROLE_GROUP, n.group)
                group.setData(0, ROLE_TRADE, n.trade_id)
                self._groups[n.group] = group
            else:
                self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(group))
            expanded = group.isExpanded()
            group.insertChild(0, entry)
            self.tree.insertTopLevelItem(0, group)
            group.setExpanded(expanded)
            if n.ends_group:  # the trade finished / the position closed: its next fill starts a new group
                self._groups.pop(n.group, None)
        else:
            self.tree.insertTopLevelItem(0, entry)
        self._entries.append(entry)
        self._mark(entry, True)
        parent = entry.parent()
        if parent is not None:
            self._refresh_group(parent)
        while len(self._entries) > MAX_ITEMS:
            self._drop(self._entries.popleft())

    def groups(self) -> list[QTreeWidgetItem]:
        """The group headers, newest first."""
        items = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        return [g for g in items if g is not None and g.data(0, ROLE_GROUP)]

    def mark_all_read(self) -> None:
        self._release_held()
        for entry in self._entries:
            self._mark(entry, False)
        for group in self.groups():
            self._refresh_group(group)
        self._set_unread(0)

    def clear(self) -> None:
        self._held.clear()
        self.tree.clear()
        self._groups.clear()
        self._entries.clear()
        self._set_unread(0)

    # --- internals ----------------------------------------------------------------------------------------

    def _drop(self, entry: QTreeWidgetItem) -> None:
        if entry.data(0, ROLE_UNREAD):
            self._unread -= 1
        parent = entry.parent()
        if parent is None:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(entry))
            return
        parent.removeChild(entry)
        if parent.childCount() == 0:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(parent))
            key = parent.data(0, ROLE_GROUP)
            if self._groups.get(key) is parent:
                del self._groups[key]
        else:
            self._refresh_group(parent)

    def _refresh_group(self, group: QTreeWidgetItem) -> None:
        """The header: what the group is about, then how many updates and the latest one's time and kind."""
        entries = [group.child(i) for i in range(group.childCount())]
        latest: Notification | None = entries[0].data(0, ROLE_NOTIFICATION) if entries else None  # type: ignore[union-attr]
        if latest is None:
            return
        unread = sum(1 for e in entries if e is not None and e.data(0, ROLE_UNREAD))
        count = len(entries)
        last = " · ".join(x for x in (entry_time(latest.timestamp), KIND_SHORT.get(latest.kind, latest.kind)) if x)
        summary = last if count == 1 else f"{count} updates · latest {last}"
        group.setText(0, f"{latest.subject or latest.title}\n{summary}")
        group.setIcon(0, self._dot(bool(unread)))
        group.setData(0, ROLE_UNREAD, bool(unread))

    def _mark(self, item: QTreeWidgetItem, unread: bool) -> None:
        item.setData(0, ROLE_UNREAD, unread)
        item.setIcon(0, self._dot(unread))

    def _dot(self, unread: bool) -> QIcon:
        if not unread:
            blank = QPixmap(10, 10)
            blank.fill(QColor(0, 0, 0, 0))
            return QIcon(blank)  # the same room as a dot, so the text does not jump when read
        return QIcon(dot_pixmap(self.palette().color(QPalette.ColorRole.Highlight), 10))

    def _read(self, item: QTreeWidgetItem) -> None:
        """Mark an entry, or every entry of a group, read."""
        targets = [item.child(i) for i in range(item.childCount())] if item.data(0, ROLE_GROUP) else [item]
        was = sum(1 for e in targets if e is not None and e.data(0, ROLE_UNREAD))
        for e in targets:
            if e is not None:
                self._mark(e, False)
        group = item if item.data(0, ROLE_GROUP) else item.parent()
        if group is not None:
            self._refresh_group(group)
        if was:
            self._set_unread(self._unread - was)

    def _on_item(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        self._read(item)
        if item.data(0, ROLE_GROUP):
            item.setExpanded(not item.isExpanded())  # a click on the header opens the group
            return
        trade_id = item.data(0, ROLE_TRADE)
        if trade_id:
            self.open_trade.emit(str(trade_id))

    def _on_activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        """Enter / double-click: a group opens its trade too (a click only expands it)."""
        if item.data(0, ROLE_GROUP):
            self._read(item)
            trade_id = item.data(0, ROLE_TRADE)
            if trade_id:
                self.open_trade.emit(str(trade_id))

    def _set_unread(self, n: int) -> None:
        n = max(0, n)
        if n != self._unread:
            self._unread = n
            self.unread_changed.emit(n)
        self._update_header()

    def _update_header(self) -> None:
        # The dock's title already says "Notifications": the header says what is new.
        self.header.setText(f"{self._unread} unread" if self._unread else "Nothing unread")


class NotificationSettingsDialog(QDialog):
    """Per kind: keep in the centre, pop up (with its sound), which sound; quiet hours, close-to-tray.
    ``result_settings()`` after accept."""

    def __init__(
        self, settings: NotifySettings, *, close_to_tray: bool | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Notification settings")
        self._settings = settings
        grid = QGridLayout()
        grid.addWidget(QLabel("Keep in the centre"), 0, 0)
        grid.addWidget(QLabel("Pop up"), 0, 1)
        grid.addWidget(QLabel("Sound (with a pop-up)"), 0, 2)
        self.switches: dict[str, QCheckBox] = {}
        self.popups: dict[str, QCheckBox] = {}
        self.sound_boxes: dict[str, QComboBox] = {}
        for row, kind in enumerate(KINDS, start=1):
            box = QCheckBox(KIND_LABELS[kind])
            box.setChecked(settings.is_enabled(kind))
            popup = QCheckBox()
            popup.setChecked(settings.pops_up(kind))
            popup.setToolTip("Interrupt with a desktop pop-up (and its sound); otherwise it only goes to the "
                             "notification centre")
            combo = QComboBox()
            combo.addItem("None", None)
            for s in SOUNDS:
                combo.addItem(SOUND_LABELS.get(s, s), s)
            idx = combo.findData(settings.sounds.get(kind))
            combo.setCurrentIndex(max(0, idx))
            grid.addWidget(box, row, 0)
            grid.addWidget(popup, row, 1, Qt.AlignmentFlag.AlignHCenter)
            grid.addWidget(combo, row, 2)
            self.switches[kind] = box
            self.popups[kind] = popup
            self.sound_boxes[kind] = combo
            # A kind not kept at all cannot pop up; a kind that does not pop up plays no sound.
            box.toggled.connect(popup.setEnabled)
            popup.toggled.connect(combo.setEnabled)
            popup.setEnabled(box.isChecked())
            combo.setEnabled(popup.isChecked())
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
            s.popup[kind] = self.popups[kind].isChecked()
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
