"""File → Sources…: add, edit, enable/disable and remove the sources the desk reads, of any registered kind.

Provides ``SourcesDialog`` (the list) and ``SourceForm`` (the add/edit form, built from the kind's ``Setting`` list).

Every change is applied at once: the list is saved in the settings (``source_config.save_sources``, no secret),
the secrets go to the OS keyring through the shared ``SourceSecrets`` (or stay in memory for this run when there is
no usable keyring, said plainly), and ``sources_changed(list[SourceConfig])`` is emitted with the whole new list.
The dialogs are non-blocking (``open()``/``show()``, never ``exec()``); keyring calls run in the asyncio loop's
executor when one is running (qasync), so a slow D-Bus or keychain prompt does not freeze the desk.
Every text that may come from a service (the health sentences) or from the user is set as plain text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..sources import registry
from ..sources.base import SourceConfig
from ..sources.registry import Setting, SourceKind
from .settings import AppSettings
from .source_config import (
    SourceSecrets,
    load_sources,
    name_problem,
    new_source_id,
    save_sources,
    secret_names,
)
from .theme import is_dark, pl_color, style_widget
from .widgets import ReadOnlyTable, plain_label, plain_tooltip

__all__ = ["SourceForm", "SourcesDialog"]

log = logging.getLogger(__name__)

UNCHANGED = "(unchanged)"
_INT_MIN, _INT_MAX = -2_147_483_647, 2_147_483_647
COLUMNS = ("Name", "Kind", "Enabled", "Health")
# Kinds not offered by Add… unless the caller names them: TTMT is still set up through its key dialog (ui/app.py,
# keystore.load_key per base URL); offering it here too would give one service two ways in.
NOT_ADDABLE_BY_DEFAULT = frozenset({"ttmt"})


def _kind_or_none(kind: str) -> SourceKind | None:
    try:
        return registry.get(kind)
    except KeyError:
        return None
    except Exception:  # a kind whose module fails to import must not take the dialog down with it
        log.exception("Source kind %r could not be loaded", kind)
        return None


def _show_problem(label: QLabel, text: str) -> None:
    label.setText(text)
    label.setStyleSheet(f"color: {pl_color(-1, 'green_up', is_dark(label.palette())).name()};")
    label.setVisible(bool(text))


def _with_hint(widget: QWidget, hint: QLabel) -> QWidget:
    """``widget`` with ``hint`` right under it in one form cell (a form row of its own would add a row gap)."""
    cell = QWidget()
    column = QVBoxLayout(cell)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(2)
    column.addWidget(widget)
    column.addWidget(hint)
    return cell


class _FitScroll(QScrollArea):
    """A scroll area that asks for its content's full height (up to ``cap``): a short form shows without a scroll
    bar and without a gap, a long one scrolls instead of growing past a 768-pixel screen."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self._cap = cap

    def sizeHint(self) -> QSize:
        inner = self.widget()
        if inner is None:
            return super().sizeHint()
        wanted = inner.sizeHint()
        frame = 2 * self.frameWidth()
        return QSize(wanted.width() + frame, min(wanted.height() + frame, self._cap))

    def minimumSizeHint(self) -> QSize:
        return QSize(super().minimumSizeHint().width(), min(self.sizeHint().height(), 120))


class _Field:
    """One setting's editor: the widget that takes focus, and how to read and check its value."""

    def __init__(self, setting: Setting, editor: QWidget, focus: QWidget, read: Callable[[], Any]) -> None:
        self.setting = setting
        self.editor = editor    # what goes in the form row (a line edit, or a line edit + Browse…)
        self.focus = focus      # what gets the focus when the value is missing
        self.read = read


class SourceForm(QDialog):
    """The form for a new source (``editing=None``: a kind picker on top) or for an existing one (kind fixed).

    On OK with valid input it closes Accepted; ``result_config`` then holds the ``SourceConfig`` (a new id for a new
    source, the same id when editing) and ``result_secrets`` the secrets the user typed (a secret left empty when
    editing is not in it: the stored one is kept). ``take_result()`` hands both over and clears the fields.
    """

    def __init__(self, kinds: Sequence[SourceKind], configs: Sequence[SourceConfig], *,
                 editing: SourceConfig | None = None, keyring_ok: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        style_widget(self)
        self._kinds = list(kinds)
        self._configs = list(configs)
        self._editing = editing
        self._fields: dict[str, _Field] = {}
        self._suggested_name = ""
        self.result_config: SourceConfig | None = None
        self.result_secrets: dict[str, str] = {}
        self.file_dialog: QFileDialog | None = None
        self.setWindowTitle(f"Edit source “{editing.name}”" if editing else "Add a source")
        self.setMinimumWidth(520)

        self.kind_combo = QComboBox()
        self.kind_combo.setAccessibleName("Kind of source")
        for kind in self._kinds:
            self.kind_combo.addItem(kind.title, kind.kind)
        self.description = plain_label("", wrap=True, selectable=False)
        self.description.setObjectName("KindDescription")

        self.name_edit = QLineEdit()
        self.name_edit.setAccessibleName("Name")
        self.name_edit.setMaxLength(80)
        self.name_hint = plain_label("What the desk calls this source; each source needs its own name.",
                                     wrap=True, selectable=False)
        self.name_hint.setEnabled(False)  # greyed: a hint, not content

        top = QFormLayout()
        top.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        if editing is None:
            top.addRow(self._buddy("&Kind:", self.kind_combo), _with_hint(self.kind_combo, self.description))
        else:
            top.addRow(plain_label("Kind:", selectable=False),
                       _with_hint(plain_label(self._title(editing.kind)), self.description))
        top.addRow(self._buddy("&Name:", self.name_edit), _with_hint(self.name_edit, self.name_hint))

        # The kind's own settings, in a scroll area: a kind with many settings still fits a 1366×768 screen.
        self.settings_box = QWidget()
        self.settings_form = QFormLayout(self.settings_box)
        self.settings_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.settings_form.setContentsMargins(0, 0, 0, 0)
        self.settings_scroll = _FitScroll(cap=420)
        self.settings_scroll.setWidgetResizable(True)
        self.settings_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.settings_scroll.setWidget(self.settings_box)

        self.required_note = plain_label("* required", selectable=False)
        self.required_note.setEnabled(False)
        self.keyring_note = plain_label(
            "No system keyring is available: passwords and keys you enter here are kept in memory for this run "
            "only, and asked for again next time.", wrap=True, selectable=False)
        self.keyring_note.setVisible(not keyring_ok)
        self.error_label = plain_label("", wrap=True)
        self.error_label.setObjectName("FormError")
        self.error_label.hide()

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Save" if editing else "Add")
        self.ok_button.setDefault(True)
        self.buttons.accepted.connect(self._on_ok)
        self.buttons.rejected.connect(self.reject)

        # Rows added to a shown dialog are shown a loop turn later (Qt queues it), so they take no room yet when
        # _build ends: the size is taken again then (a child timer: it dies with the form).
        self._refit = QTimer(self)
        self._refit.setSingleShot(True)
        self._refit.setInterval(0)
        self._refit.timeout.connect(self._fit)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        layout.addWidget(line)
        layout.addWidget(self.settings_scroll, 1)
        layout.addWidget(self.required_note)
        layout.addWidget(self.keyring_note)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        if editing is not None:
            self.name_edit.setText(editing.name)
            self._build(_kind_or_none(editing.kind), editing)
        else:
            self.kind_combo.currentIndexChanged.connect(self._on_kind)
            self._on_kind(self.kind_combo.currentIndex())
        self.name_edit.textChanged.connect(lambda _t: self.error_label.hide())
        (self.kind_combo if editing is None else self.name_edit).setFocus()

    # --- building -------------------------------------------------------------------------------------------

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._fit()  # the first size was guessed before the wrapped hints knew their width

    def _buddy(self, text: str, widget: QWidget) -> QLabel:
        label = QLabel(text)  # our own fixed text with an & mnemonic: not from a service
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setBuddy(widget)
        return label

    def _title(self, kind: str) -> str:
        found = _kind_or_none(kind)
        return found.title if found else f"{kind} (not available in this version)"

    def current_kind(self) -> SourceKind | None:
        if self._editing is not None:
            return _kind_or_none(self._editing.kind)
        index = self.kind_combo.currentIndex()
        return self._kinds[index] if 0 <= index < len(self._kinds) else None

    def _unique_name(self, title: str) -> str:
        taken = {c.name.strip().casefold() for c in self._configs}
        name, n = title, 2
        while name.casefold() in taken:
            name, n = f"{title} {n}", n + 1
        return name

    def _on_kind(self, _index: int) -> None:
        kind = self.current_kind()
        # Follow the kind with the suggested name until the user typed one of their own.
        if kind is not None and self.name_edit.text() in ("", self._suggested_name):
            self._suggested_name = self._unique_name(kind.title)
            self.name_edit.setText(self._suggested_name)
        self._build(kind, None)

    def _build(self, kind: SourceKind | None, editing: SourceConfig | None) -> None:
        while self.settings_form.rowCount():
            self.settings_form.removeRow(0)
        self._fields.clear()
        self.error_label.hide()
        self.description.setText(kind.description if kind else "")
        self.description.setVisible(bool(kind and kind.description))
        if kind is None:
            self.settings_form.addRow(plain_label("This kind of source is not available in this version.", wrap=True))
            self.ok_button.setEnabled(editing is not None)  # a rename is still fine
            return
        self.ok_button.setEnabled(True)
        values = dict(editing.settings) if editing else {}
        previous: QWidget = self.name_edit
        for setting in kind.settings:
            field = self._make_field(setting, values.get(setting.name, setting.default), editing is not None)
            self._fields[setting.name] = field
            # A label's "&" is literal ("Open P&L refresh…"): the label is a buddy, and Qt would read it as a mnemonic.
            text = f"{setting.label.replace('&', '&&')}{' *' if setting.required else ''}:"
            if setting.type == "bool":
                text = ""  # the checkbox carries the label itself
            label = self._buddy(text, field.focus) if text else QLabel("")
            cell = field.editor
            if setting.help:
                field.editor.setToolTip(setting.help)
                hint = plain_label(setting.help, wrap=True, selectable=False)
                hint.setEnabled(False)  # greyed: a hint, not content
                cell = _with_hint(field.editor, hint)
            self.settings_form.addRow(label, cell)
            QWidget.setTabOrder(previous, field.focus)
            previous = field.focus
        if not kind.settings:
            self.settings_form.addRow(plain_label("This kind has no settings.", selectable=False))
        self.required_note.setVisible(any(s.required for s in kind.settings))
        self._fit()
        if self.isVisible():
            self._refit.start()

    def _make_field(self, setting: Setting, value: Any, editing: bool) -> _Field:
        kind = setting.type
        if kind == "secret":
            edit = QLineEdit()
            edit.setEchoMode(QLineEdit.EchoMode.Password)
            edit.setInputMethodHints(Qt.InputMethodHint.ImhSensitiveData | Qt.InputMethodHint.ImhNoPredictiveText
                                     | Qt.InputMethodHint.ImhNoAutoUppercase)
            # Editing: the stored secret is never read back into the form; empty keeps it.
            edit.setPlaceholderText(UNCHANGED if editing else "")
            edit.setAccessibleName(setting.label)
            edit.textChanged.connect(lambda _t: self.error_label.hide())
            # A long token is easier to check when it can be seen (off again for every new form).
            reveal = QToolButton()
            reveal.setText("Show")
            reveal.setCheckable(True)
            reveal.setAccessibleName(f"Show {setting.label}")
            reveal.toggled.connect(lambda on: edit.setEchoMode(
                QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password))
            row = QWidget()
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            line.addWidget(edit, 1)
            line.addWidget(reveal)
            return _Field(setting, row, edit, edit.text)
        if kind == "choice":
            combo = QComboBox()
            combo.setAccessibleName(setting.label)
            for choice in setting.choices:
                combo.addItem(str(choice), choice)
            index = combo.findData(value)
            combo.setCurrentIndex(max(index, 0))
            return _Field(setting, combo, combo, combo.currentData)
        if kind == "bool":
            box = QCheckBox(setting.label.replace("&", "&&"))
            box.setChecked(bool(value) if not isinstance(value, str) else value.lower() in ("1", "true", "yes"))
            return _Field(setting, box, box, box.isChecked)
        if kind == "int":
            spin = QSpinBox()
            spin.setRange(_INT_MIN, _INT_MAX)
            spin.setAccessibleName(setting.label)
            try:
                spin.setValue(int(value) if value is not None else 0)
            except (TypeError, ValueError):
                spin.setValue(0)
            return _Field(setting, spin, spin, spin.value)
        edit = QLineEdit()
        edit.setAccessibleName(setting.label)
        edit.setText("" if value is None else str(value))
        edit.textChanged.connect(lambda _t: self.error_label.hide())
        if kind == "path":
            row = QWidget()
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            line.addWidget(edit, 1)
            browse = QPushButton("Browse…")
            browse.setAccessibleName(f"Browse for {setting.label}")
            browse.clicked.connect(lambda: self._browse(setting, edit))
            line.addWidget(browse)
            return _Field(setting, row, edit, lambda: edit.text().strip())
        return _Field(setting, edit, edit, lambda: edit.text().strip())

    def _browse(self, setting: Setting, edit: QLineEdit) -> None:
        dialog = QFileDialog(self, f"Choose: {setting.label}", edit.text().strip())
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(edit.setText)
        dialog.finished.connect(lambda _c: dialog.deleteLater())
        self.file_dialog = dialog
        dialog.open()  # non-blocking, like every dialog here

    def _fit(self) -> None:
        # The rows changed (another kind, or a message appeared): take the height they need, no more than the
        # screen gives (the scroll area caps the settings part).
        # The settings' own layout first: a scroll area does not pass its content's size on, so the dialog's layout
        # kept the rows' height from before they were shown (none) and a change of kind shrank the dialog to its
        # top, the new kind's settings squeezed to nothing (seen by a tester: 593x203 px).
        inner = self.settings_scroll.widget()
        inner_layout = inner.layout() if inner is not None else None
        if inner_layout is not None:
            inner_layout.activate()
        self.settings_scroll.updateGeometry()
        layout = self.layout()
        if layout is not None:
            layout.invalidate()
            layout.activate()
        available = self.screen().availableGeometry() if self.screen() else None
        # Wide enough for the settings' widest row (Tradovate's needed 580 px of 498: a sideways scroll bar), never
        # narrower than the user made it, nor wider than the screen.
        scroll = self.settings_scroll
        extra = 2 * scroll.frameWidth() + scroll.verticalScrollBar().sizeHint().width()
        content = inner.minimumSizeHint().width() + extra if inner is not None else 0
        width = max(self.width(), min(self.width() - scroll.width() + content,
                                      (available.width() if available else 1366) - 40))
        # Wrapped hints make the height depend on the width: ask for the height at the width it will have.
        needed = self.heightForWidth(width) if self.hasHeightForWidth() else -1
        if needed <= 0:
            needed = self.sizeHint().height()
        screen = available.height() if available else 768
        if self.isVisible() and (needed != self.height() or width != self.width()):
            self.resize(width, min(needed, screen - 40))

    # --- reading / checking -----------------------------------------------------------------------------------

    def problems(self) -> list[tuple[str, QWidget]]:
        """What stops the form from being saved: (a plain sentence, the widget to fix), in form order."""
        found: list[tuple[str, QWidget]] = []
        own = self._editing.id if self._editing else None
        problem = name_problem(self.name_edit.text(), self._configs, own)
        if problem:
            found.append((problem, self.name_edit))
        missing: list[tuple[str, QWidget]] = []
        for field in self._fields.values():
            setting = field.setting
            if not setting.required or setting.type in ("bool", "int"):
                continue
            value = field.read()
            if setting.type == "secret" and self._editing is not None:
                continue  # empty keeps the stored secret
            if value is None or (isinstance(value, str) and not value.strip()):
                missing.append((setting.label, field.focus))
        if missing:
            found.append(("Please fill in: " + ", ".join(label for label, _w in missing) + ".", missing[0][1]))
        return found

    def _on_ok(self) -> None:
        kind = self.current_kind()
        if kind is None and self._editing is None:
            return
        problems = self.problems()
        if problems:
            _show_problem(self.error_label, " ".join(text for text, _w in problems))
            self._fit()
            problems[0][1].setFocus()
            return
        values: dict[str, Any] = dict(self._editing.settings) if self._editing else {}
        typed: dict[str, str] = {}
        for name, field in self._fields.items():
            value = field.read()
            if field.setting.secret:
                values.pop(name, None)  # never in the config
                if value:
                    typed[name] = value
            else:
                values[name] = value
        name = self.name_edit.text().strip()
        if self._editing is not None:
            config = SourceConfig(id=self._editing.id, kind=self._editing.kind, name=name, settings=values,
                                  enabled=self._editing.enabled)
        else:
            assert kind is not None
            config = SourceConfig(id=new_source_id(kind.kind, (c.id for c in self._configs)), kind=kind.kind,
                                  name=name, settings=values, enabled=True)
        self.result_config = config
        self.result_secrets = typed
        self.accept()

    def take_result(self) -> tuple[SourceConfig | None, dict[str, str]]:
        """The accepted config and typed secrets; clears the secret fields so the form holds no secret after."""
        secrets, self.result_secrets = self.result_secrets, {}
        for field in self._fields.values():
            if field.setting.secret and isinstance(field.focus, QLineEdit):
                field.focus.clear()
        return self.result_config, secrets


class SourcesDialog(QDialog):
    """The list of configured sources with Add…, Edit…, Enable/Disable and Remove.

    ``settings``: the app's ``AppSettings`` (the list is read from and saved to it). ``secrets``: the app's one
    ``SourceSecrets``. ``kinds``: which registered kinds Add… offers (default: ``registry.kinds()`` except
    ``NOT_ADDABLE_BY_DEFAULT``, i.e. TTMT, which keeps its own key dialog for now).
    Emits ``sources_changed(list[SourceConfig])`` after every applied change (secrets already stored).
    ``set_health(source_id, text)`` shows a health sentence for a source (its ``SourceConfig.id``).
    """

    sources_changed = Signal(list)

    def __init__(self, settings: AppSettings, secrets: SourceSecrets, parent: QWidget | None = None, *,
                 kinds: Sequence[str] | None = None) -> None:
        super().__init__(parent)
        style_widget(self)
        self._settings = settings
        self._secrets = secrets
        self._kind_names = (list(kinds) if kinds is not None
                            else [k for k in registry.kinds() if k not in NOT_ADDABLE_BY_DEFAULT])
        self._configs: list[SourceConfig] = load_sources(settings)
        self._health: dict[str, str] = {}
        self._busy = False
        self.form: SourceForm | None = None
        self.confirm_box: QMessageBox | None = None
        self.setWindowTitle("Sources")
        self.resize(780, 400)

        intro = plain_label(
            "The services the desk reads from. It only reads: it never places, changes or closes a trade.",
            wrap=True, selectable=False)
        self.keyring_note = plain_label(
            "No system keyring is available: passwords and keys are kept in memory for this run only.",
            wrap=True, selectable=False)
        self.keyring_note.setVisible(not secrets.keyring_ok)

        self.table = ReadOnlyTable(COLUMNS)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setTabKeyNavigation(False)  # Tab leaves the table for the buttons
        self.table.setAccessibleName("Configured sources")
        self.table.installEventFilter(self)
        self.table.doubleClicked.connect(lambda _i: self.edit_selected())
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.empty_label = plain_label("No sources yet. Press Add… to add one.", selectable=False)
        # Sources the desk runs that are not in this list (the demo's simulators): said, so an empty list beside
        # three live sources in the status bar does not read as if they were missing (set_unlisted).
        self.unlisted_label = plain_label("", wrap=True, selectable=False)
        self.unlisted_label.hide()

        self.add_button = QPushButton("&Add…")
        self.edit_button = QPushButton("&Edit…")
        self.toggle_button = QPushButton("&Disable")
        self.remove_button = QPushButton("&Remove")
        # MetaApi only: put an MT4/MT5 account on the MetaApi account list (ui/metaapi_onboarding.py).
        self.onboard_button = QPushButton("Add &MetaTrader account…")
        self.onboard_button.setToolTip("Add an MT4/MT5 account to the selected MetaApi source's account list.")
        self.onboarding: QDialog | None = None
        for button in (self.add_button, self.edit_button, self.toggle_button, self.remove_button,
                       self.onboard_button):
            button.setAutoDefault(False)  # Enter in the list edits; it does not press a button
        self.add_button.clicked.connect(self.add_source)
        self.edit_button.clicked.connect(self.edit_selected)
        self.toggle_button.clicked.connect(self.toggle_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        self.onboard_button.clicked.connect(self.onboard_selected)
        side = QVBoxLayout()
        for button in (self.add_button, self.edit_button, self.toggle_button, self.remove_button,
                       self.onboard_button):
            side.addWidget(button)
        side.addStretch(1)

        self.message_label = plain_label("", wrap=True)
        self.message_label.setObjectName("SourcesMessage")
        self.message_label.hide()

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.close_button = self.buttons.button(QDialogButtonBox.StandardButton.Close)
        self.close_button.setAutoDefault(False)
        self.buttons.rejected.connect(self.reject)

        middle = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(self.table, 1)
        left.addWidget(self.empty_label)
        left.addWidget(self.unlisted_label)
        middle.addLayout(left, 1)
        middle.addLayout(side)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.keyring_note)
        layout.addLayout(middle, 1)
        layout.addWidget(self.message_label)
        layout.addWidget(self.buttons)

        QShortcut(QKeySequence(QKeySequence.StandardKey.New), self, self.add_source)
        QShortcut(QKeySequence(Qt.Key.Key_Insert), self, self.add_source)
        self._refresh()
        if self._configs:
            self.table.selectRow(0)
        self.table.setFocus()

    # --- state the caller reads or updates ---------------------------------------------------------------------

    def configs(self) -> list[SourceConfig]:
        return list(self._configs)

    @property
    def busy(self) -> bool:
        """True while a keyring call of the last change is running."""
        return self._busy

    def set_health(self, source_id: str, text: str) -> None:
        """Show ``text`` (plain, e.g. "Live" or "Login refused: …") in the Health column of ``source_id``."""
        self._health[source_id] = text
        for row, config in enumerate(self._configs):
            if config.id == source_id:
                item = self.table.item(row, 3)
                if item is not None:
                    item.setText(text)
                    item.setToolTip(plain_tooltip(text))

    def selected(self) -> SourceConfig | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        row = rows[0].row()
        return self._configs[row] if 0 <= row < len(self._configs) else None

    def select(self, source_id: str) -> None:
        for row, config in enumerate(self._configs):
            if config.id == source_id:
                self.table.selectRow(row)
                return

    def set_unlisted(self, names: Sequence[str]) -> None:
        """Name the sources the desk runs for this session only, which this list does not hold (the demo's
        simulated sources: made by ``--demo``, never saved), or none."""
        self.unlisted_label.setText("Running for this session only, not kept in your settings: " + ", ".join(names)
                                    + "." if names else "")
        self.unlisted_label.setVisible(bool(names))
        self.empty_label.setText("None of your own yet. Press Add… to add one." if names
                                 else "No sources yet. Press Add… to add one.")

    def _refresh(self, select: str | None = None) -> None:
        current = self.selected()
        keep = select or (current.id if current is not None else None)
        rows = []
        for config in self._configs:
            kind = _kind_or_none(config.kind)
            title = kind.title if kind else f"{config.kind} (not available)"
            rows.append([config.name, title, "Yes" if config.enabled else "No",
                         self._health.get(config.id, "" if config.enabled else "Disabled")])
        self.table.set_rows(rows)
        for row in range(self.table.rowCount()):
            health = self.table.item(row, 3)
            if health is not None:
                health.setToolTip(plain_tooltip(health.text()))
        # A handful of rows: fitting the columns to their text is cheap here (unlike the live tables).
        header = self.table.horizontalHeader()
        for column, widest in ((0, 260), (1, 220), (2, 90)):
            self.table.resizeColumnToContents(column)
            header.resizeSection(column, min(max(header.sectionSize(column) + 12, 70), widest))
        self.empty_label.setVisible(not self._configs)
        if keep:
            self.select(keep)
        self._update_buttons()

    def _update_buttons(self) -> None:
        current = self.selected()
        idle = not self._busy
        # Only the names here: importing a built-in kind (its client, its simulator) waits until Add… is pressed.
        self.add_button.setEnabled(idle and bool(self._kind_names))
        self.edit_button.setEnabled(idle and current is not None)
        self.toggle_button.setEnabled(idle and current is not None)
        self.remove_button.setEnabled(idle and current is not None)
        self.onboard_button.setEnabled(idle and current is not None and registry.can_onboard(current.kind))
        self.close_button.setEnabled(idle)
        self.toggle_button.setText("&Enable" if current is not None and not current.enabled else "&Disable")

    def _addable(self) -> list[SourceKind]:
        found = []
        for name in self._kind_names:
            kind = _kind_or_none(name)
            if kind is not None:
                found.append(kind)
        return found

    def _say(self, text: str, problem: bool = False) -> None:
        if problem:
            _show_problem(self.message_label, text)
        else:
            self.message_label.setStyleSheet("")
            self.message_label.setText(text)
            self.message_label.setVisible(bool(text))

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._update_buttons()

    def _apply(self, configs: list[SourceConfig], select: str | None = None) -> None:
        self._configs = configs
        save_sources(self._settings, configs)
        self._refresh(select)

    def _emit(self) -> None:
        self.sources_changed.emit(list(self._configs))

    def _run_blocking(self, call: Callable[[], str | None], done: Callable[[str | None], None]) -> None:
        """Run a keyring call off the Qt loop when an asyncio loop runs (qasync), else here; then ``done``."""
        self._set_busy(True)

        def finish(result: str | None) -> None:
            self._set_busy(False)
            done(result)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            try:
                result = call()
            except Exception as exc:  # noqa: BLE001 - a broken backend becomes a sentence
                result = f"The system keyring failed ({type(exc).__name__})."
            finish(result)
            return
        future = loop.run_in_executor(None, call)

        def landed(fut: asyncio.Future) -> None:
            import shiboken6

            if not shiboken6.isValid(self):
                return
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001
                result = f"The system keyring failed ({type(exc).__name__})."
            finish(result)

        future.add_done_callback(landed)

    # --- actions -------------------------------------------------------------------------------------------------

    def add_source(self) -> None:
        if self._busy or self.form is not None:
            return
        kinds = self._addable()
        if not kinds:
            self._say("No kind of source can be added in this version.", problem=True)
            return
        self._open_form(SourceForm(kinds, self._configs, keyring_ok=self._secrets.keyring_ok, parent=self))

    def edit_selected(self) -> None:
        current = self.selected()
        if self._busy or self.form is not None or current is None:
            return
        self._open_form(SourceForm(self._addable(), self._configs, editing=current,
                                   keyring_ok=self._secrets.keyring_ok, parent=self))

    def onboard_selected(self) -> None:
        """Open "Add MetaTrader account…" for the selected source whose kind can add accounts (MetaApi), through
        the kind's ``onboarding`` capability (sources/onboarding.py) with that source's secrets."""
        current = self.selected()
        if self._busy or current is None or not registry.can_onboard(current.kind):
            return
        if self.onboarding is not None:
            self.onboarding.raise_()
            self.onboarding.activateWindow()
            return
        from ..sources.onboarding import Unavailable
        from .metaapi_onboarding import OnboardingDialog

        kind = registry.get(current.kind)
        if kind.onboarding is None:
            return
        secrets = {name: self._secrets.get(current.id, name) or "" for name in kind.secret_names()}
        try:
            open_client = kind.onboarding(current, secrets)
        except Unavailable as exc:
            self._say(str(exc), problem=True)
            return
        dialog = OnboardingDialog(open_client, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.onboarding = dialog

        def gone() -> None:
            if self.onboarding is dialog:
                self.onboarding = None
        dialog.destroyed.connect(lambda *_: gone())
        dialog.finished.connect(lambda *_: gone())
        dialog.show()

    def _open_form(self, form: SourceForm) -> None:
        self.form = form
        form.finished.connect(self._on_form_finished)
        form.open()

    def _on_form_finished(self, code: int) -> None:
        form, self.form = self.form, None
        if form is None:
            return
        config, typed = form.take_result()
        form.deleteLater()
        if code != QDialog.DialogCode.Accepted or config is None:
            return
        configs = list(self._configs)
        for index, existing in enumerate(configs):
            if existing.id == config.id:
                configs[index] = config
                verb = "Saved"
                break
        else:
            configs.append(config)
            verb = "Added"
        self._apply(configs, select=config.id)

        def stored(problem: str | None) -> None:
            self.keyring_note.setVisible(not self._secrets.keyring_ok)  # a failed write turns it off for the run
            if problem:
                self._say(f"{verb} “{config.name}”. {problem}", problem=True)
            else:
                self._say(f"{verb} “{config.name}”.")
            self._emit()

        if typed:
            self._run_blocking(lambda: self._secrets.store(config.id, typed), stored)
        else:
            stored(None)

    def toggle_selected(self) -> None:
        current = self.selected()
        if self._busy or current is None:
            return
        changed = SourceConfig(id=current.id, kind=current.kind, name=current.name, settings=dict(current.settings),
                               enabled=not current.enabled)
        self._apply([changed if c.id == current.id else c for c in self._configs], select=current.id)
        self._say(f"“{current.name}” is {'enabled' if changed.enabled else 'disabled'}.")
        self._emit()

    def remove_selected(self) -> None:
        current = self.selected()
        if self._busy or current is None or self.confirm_box is not None:
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Remove source",
                          f"Remove the source “{current.name}”?", parent=self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setInformativeText("Its stored credentials (passwords, keys, tokens) are forgotten too: "
                               "to add it again you will need to enter them again.")
        remove = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        self.confirm_box = box

        def answered(_code: int) -> None:
            self.confirm_box = None
            confirmed = box.clickedButton() is remove
            box.deleteLater()
            if confirmed:
                self._remove(current)

        box.finished.connect(answered)
        box.open()

    def _remove(self, config: SourceConfig) -> None:
        self._health.pop(config.id, None)
        self._apply([c for c in self._configs if c.id != config.id])
        names = secret_names(config.kind)
        if not names and _kind_or_none(config.kind) is None:
            self._say(f"Removed “{config.name}”. Its kind is not available in this version, so any credentials "
                      "it stored could not be found to forget.", problem=True)
            self._emit()
            return

        def forgotten(problem: str | None) -> None:
            if problem:
                self._say(f"Removed “{config.name}”. {problem}", problem=True)
            else:
                self._say(f"Removed “{config.name}” and forgot its stored credentials.")
            self._emit()

        self._run_blocking(lambda: self._secrets.forget(config.id, names), forgotten)

    # --- keyboard and closing -------------------------------------------------------------------------------

    def eventFilter(self, watched: Any, event: Any) -> bool:
        # The list's own keys: Enter edits, Delete removes, Space enables/disables (the view would eat Space).
        if watched is self.table and event.type() == QEvent.Type.KeyPress and not event.modifiers() & ~(
                Qt.KeyboardModifier.KeypadModifier):
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.edit_selected()
                return True
            if key == Qt.Key.Key_Delete:
                self.remove_selected()
                return True
            if key == Qt.Key.Key_Space:
                self.toggle_selected()
                return True
        return super().eventFilter(watched, event)

    def reject(self) -> None:
        if self._busy:
            return  # a keyring call is running: its result still has to be saved and announced
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._busy:
            event.ignore()
            return
        super().closeEvent(event)
