"""Risk limits per account in the window (issue 18): what the user sets, the bars in the Accounts table, and the
notifications when a limit's use crosses a threshold.

Provides:
- :class:`LimitPrefs` — one account's limits as the user set them (daily loss in % or an amount, from the day's
  starting balance, equity or the higher of the two; max drawdown static or trailing; profit target; the firm's
  reset hour and IANA zone; thresholds; the account size, which for an account that reports no balance (TTMT) is
  the starting balance the estimate builds on). :func:`load_limits` / :func:`save_limits` keep them in QSettings
  (JSON under ``risk/limits``; no secrets). ``prefs.config()`` is the core's :class:`~ttmt_monitor.core.analytics.
  LimitConfig`.
- :class:`RiskBoard` — evaluates every account with limits through ``core.analytics.evaluate`` when the desk
  moves (:class:`~ttmt_monitor.ui.analytics_feed.AnalyticsFeed`), keeps each account's ``EquityWatch`` (day-start
  and peak equity) and one ``ThresholdTracker`` (each threshold once per account, limit and trading day), and
  emits ``crossed(Notification)`` for the app's notifier (kind ``risk_limit``). ``cell(row_key, name)`` gives a
  table cell: its plain text ("212.40 of 500.00 USD left"), tooltip, fraction and level.
- :class:`LimitBarDelegate` — paints such a cell: the text in the level's colour over a thin bar of the room used.
- :class:`RiskLimitsDialog` — the non-modal dialog to set one account's limits (with a "prop account" preset).

No money is computed here: every figure is the core's ``LimitUse``; this module only words and draws it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QRect, QSettings, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QComboBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from ..core import analytics as an, formatting as fmt
from ..core.notify import Notification
from . import theme
from .analytics_feed import analytics_key
from .offloop import Follow

log = logging.getLogger(__name__)

SETTINGS_KEY = "risk/limits"
LIMIT_TITLES = {an.DAILY_LOSS: "Daily loss", an.MAX_DRAWDOWN: "Max drawdown", an.PROFIT_TARGET: "Profit target"}
WARN_FRACTION = 0.8  # a loss limit at or past 80 % used is drawn as a warning


# --- what the user sets -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitPrefs:
    """One account's limits as set in the dialog. Money as exact decimal strings (JSON keeps them exact)."""

    account_size: str = ""              # the initial balance; for TTMT the starting balance (estimated)
    daily_value: str = ""               # "" = no daily loss limit
    daily_unit: str = "pct"             # "pct" | "amount"
    daily_basis: str = "balance"        # "balance" | "equity" | "higher"
    drawdown_value: str = ""
    drawdown_unit: str = "pct"
    drawdown_mode: str = "static"       # "static" | "trailing"
    target_value: str = ""
    target_unit: str = "pct"
    reset_hour: int = 0
    zone: str = "UTC"
    thresholds: tuple[int, ...] = an.risk.DEFAULT_THRESHOLDS

    @staticmethod
    def _dec(text: str) -> Decimal | None:
        text = (text or "").strip().replace(",", "").replace(" ", "")
        if not text:
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"not a number: {text!r}") from None
        if not value.is_finite() or value < 0:
            raise ValueError(f"not a positive number: {text!r}")
        return value

    @property
    def size(self) -> Decimal | None:
        return self._dec(self.account_size)

    def is_empty(self) -> bool:
        return not (self.daily_value.strip() or self.drawdown_value.strip() or self.target_value.strip())

    def config(self) -> an.LimitConfig:
        """The core's configuration (raises ValueError for a bad number or zone)."""
        daily, dd, target = self._dec(self.daily_value), self._dec(self.drawdown_value), self._dec(self.target_value)
        return an.LimitConfig(
            initial_balance=self.size,
            daily_loss_pct=daily if self.daily_unit == "pct" else None,
            daily_loss_amount=daily if self.daily_unit == "amount" else None,
            daily_basis=self.daily_basis, daily_pct_of="initial" if self.size is not None else "day_start",
            max_drawdown_pct=dd if self.drawdown_unit == "pct" else None,
            max_drawdown_amount=dd if self.drawdown_unit == "amount" else None,
            drawdown_mode=self.drawdown_mode,
            profit_target_pct=target if self.target_unit == "pct" else None,
            profit_target_amount=target if self.target_unit == "amount" else None,
            reset_hour=self.reset_hour, zone=self.zone, thresholds=tuple(self.thresholds))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["thresholds"] = list(self.thresholds)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> LimitPrefs | None:
        if not isinstance(data, dict):
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            if "thresholds" in known:
                known["thresholds"] = tuple(sorted({int(t) for t in known["thresholds"] if 0 < int(t) <= 1000}))
            prefs = cls(**known)
            prefs.config()  # a value that no longer parses (a zone gone from tzdata) drops the entry
            return prefs
        except (TypeError, ValueError, KeyError):
            return None


def prop_account_prefs(size: str, zone: str = "Europe/Prague") -> LimitPrefs:
    """The "prop account" preset (mirrors ``core.analytics.prop_preset``): 5 % daily loss and 10 % max drawdown
    of the account size, the day's loss from the higher of the day-start balance and equity, a 10 % target."""
    return LimitPrefs(account_size=size, daily_value="5", daily_unit="pct", daily_basis="higher",
                      drawdown_value="10", drawdown_unit="pct", drawdown_mode="static", target_value="10",
                      target_unit="pct", reset_hour=0, zone=zone)


def load_limits(store: QSettings | None = None) -> dict[str, LimitPrefs]:
    """Every account's limits, by Accounts-table row key (broken entries are dropped)."""
    store = store or QSettings()
    raw = store.value(SETTINGS_KEY, "")
    try:
        data = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {}
    out: dict[str, LimitPrefs] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            prefs = LimitPrefs.from_dict(value)
            if isinstance(key, str) and prefs is not None:
                out[key] = prefs
    return out


def save_limits(limits: dict[str, LimitPrefs], store: QSettings | None = None) -> None:
    store = store or QSettings()
    store.setValue(SETTINGS_KEY, json.dumps({k: v.to_dict() for k, v in limits.items() if not v.is_empty()},
                                            sort_keys=True))


NOTIFIED_KEY = "risk/notified"
NOTIFIED_DAYS = 3  # trading days older than this many days before today are pruned


def notified_key(account_key: str, limit: str, day: date) -> str:
    return f"{account_key}#{limit}#{day.isoformat()}"


def load_notified(store: QSettings | None = None, today: date | None = None) -> dict[str, list[int]]:
    """The thresholds already notified per (account, limit, trading day), recent days only (no secrets: account
    keys, limit names, dates and percentages)."""
    store = store or QSettings()
    raw = store.value(NOTIFIED_KEY, "")
    try:
        data = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {}
    oldest = (today or datetime.now(UTC).date()) - timedelta(days=NOTIFIED_DAYS)
    out: dict[str, list[int]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            try:
                day = date.fromisoformat(str(key).rsplit("#", 1)[1])
                thresholds = sorted({int(t) for t in value})
            except (IndexError, ValueError, TypeError):
                continue
            if day >= oldest:
                out[key] = thresholds
    return out


def save_notified(notified: dict[str, list[int]], store: QSettings | None = None, today: date | None = None) -> None:
    """Keep what was notified, pruning the days older than ``NOTIFIED_DAYS``."""
    store = store or QSettings()
    oldest = (today or datetime.now(UTC).date()) - timedelta(days=NOTIFIED_DAYS)
    for key in [k for k in notified if date.fromisoformat(k.rsplit("#", 1)[1]) < oldest]:
        del notified[key]
    store.setValue(NOTIFIED_KEY, json.dumps(notified, sort_keys=True))


# --- evaluating and wording ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitCell:
    """What one limit cell of the Accounts table shows."""

    name: str
    text: str          # "212.40 of 500.00 USD left"
    tooltip: str       # "Daily loss: 212.40 of 500.00 USD left (287.60 used; equity floor 99,500.00 USD)"
    fraction: float    # 0..1 (more when breached), the bar's length
    level: str         # theme.LIMIT_LEVELS


def limit_level(use: an.LimitUse) -> str:
    if use.name == an.PROFIT_TARGET:
        return "ok"  # a target reached is good news, never a warning colour
    if use.breached:
        return "breached"
    return "warn" if use.fraction >= WARN_FRACTION else "ok"


def describe(use: an.LimitUse) -> LimitCell:
    """Words for one ``LimitUse`` (plain text; the money as the core computed it, formatted per currency)."""
    cur = use.currency
    title = LIMIT_TITLES.get(use.name, use.name)
    est = " (estimated)" if use.estimated else ""
    # The cell says the one figure that matters, short enough for its column (accounts_model.LIMIT_WIDTH, 160 px:
    # three of them beside the balance on a 1366 px screen; the whole sentence made each 225 px and pushed Balance
    # and Equity off); the bar shows the share used, the tooltip the whole sentence.
    if use.name == an.PROFIT_TARGET:
        made = fmt.format_money(use.used, cur) if use.used >= 0 else fmt.format_pl(use.used, cur)
        sentence = f"{_bare(made, cur)} of {fmt.format_money(use.limit, cur)} made"
        text = f"{made} made"
        if use.breached:
            sentence = f"reached: {made} of {fmt.format_money(use.limit, cur)}"
            text = "reached"
        tip = f"{title}: {sentence}; balance to reach {fmt.format_money(use.level, cur)}{est}"
        fraction = max(0.0, use.fraction)
    else:
        room = use.room
        number = _bare(fmt.format_money(room, cur), cur)  # "212.40 of 500.00 USD left": the currency once
        bare_limit = fmt.format_money(use.limit, cur)
        if use.breached:
            sentence = f"breached by {fmt.format_money(-room, cur)} ({bare_limit} limit)"
            text = f"over by {fmt.format_money(-room, cur)}"
        else:
            sentence = f"{number} of {bare_limit} left"
            text = f"{fmt.format_money(room, cur)} left"
        tip = (f"{title}: {sentence} ({fmt.format_money(use.used, cur)} used; equity floor "
               f"{fmt.format_money(use.level, cur)}){est}")
        fraction = max(0.0, use.fraction)
    return LimitCell(use.name, text + (" *" if use.estimated else ""), tip, fraction, limit_level(use))


def _bare(text: str, currency: str) -> str:
    """A formatted amount without its currency code (when the same code follows in the sentence)."""
    return text.removesuffix(f" {currency}") if currency else text


def crossing_notification(c: an.Crossing, account_label: str) -> Notification:
    """The notification of a threshold crossed (plain text: the label may come from a service)."""
    title = LIMIT_TITLES.get(c.limit, c.limit)
    room = fmt.format_money(c.room, c.currency)
    # Past the limit the room is negative: "over by 23.00 USD", as the limit's cell says it ("−23.00 USD left"
    # read as money still to lose, in the one message that says the limit is gone).
    left = f"over by {fmt.format_money(-c.room, c.currency)}" if c.room < 0 else f"{room} left"
    if c.limit == an.PROFIT_TARGET:
        head = f"{title} {c.threshold} % reached"
        body = f"{account_label}: {fmt.format_money(-c.room, c.currency) if c.room < 0 else room} to go"
        if c.room <= 0:
            body = f"{account_label}: the profit target is reached"
    elif c.threshold >= 100:
        head = f"{title} limit reached"
        body = f"{account_label}: {c.fraction * 100:.0f} % of the limit used ({left})"
    else:
        head = f"{title} {c.threshold} % used"
        body = f"{account_label}: {left} of the limit" if c.room >= 0 else f"{account_label}: {left}"
    return Notification(head, body, "risk_limit", account_id=c.account_key)


class RiskBoard(QObject):
    """Every account's limits evaluated against the desk; ``updated`` after each pass, ``crossed`` per threshold."""

    updated = Signal()
    crossed = Signal(object)  # Notification

    def __init__(self, feed: Any, store: QSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.feed = feed
        self.store = store
        self.limits: dict[str, LimitPrefs] = load_limits(store)
        self.risks: dict[str, an.AccountRisk] = {}
        self.errors: dict[str, str] = {}
        self._watches: dict[str, an.EquityWatch] = {}
        self._trackers: dict[tuple[int, ...], an.ThresholdTracker] = {}
        self._cells: dict[tuple[str, str], LimitCell] = {}
        self.follow = Follow("risk limits", lambda deals, pause: an.RiskLedger.build(deals, pause), self.refresh)
        read = getattr(feed.controller, "realized_read", None)  # TTMT's closes before today, read for a limit
        if read is not None:
            read.connect(self.refresh)  # (a bound method: disconnected when the board goes)
        self._notified = load_notified(store)  # (account, limit, trading day) -> thresholds notified
        feed.changed.connect(self.refresh)

    # --- settings ---------------------------------------------------------------------------------------------

    def prefs_for(self, row_key: str) -> LimitPrefs | None:
        return self.limits.get(row_key)

    def set_limits(self, row_key: str, prefs: LimitPrefs | None) -> None:
        """Set (or clear, with None or an empty one) an account's limits, save them and re-evaluate now."""
        if prefs is None or prefs.is_empty():
            self.limits.pop(row_key, None)
        else:
            prefs.config()  # raises ValueError before anything is stored
            self.limits[row_key] = prefs
        self._watches.pop(row_key, None)
        save_limits(self.limits, self.store)
        self.refresh()

    # --- evaluation ---------------------------------------------------------------------------------------------

    def refresh(self, now: datetime | None = None) -> None:
        """Evaluate every account with limits, on the loop, from running per-account aggregates of the history
        (``core.analytics.ledger.RiskLedger``, kept current by the feed's changes: an evaluation costs today's
        deals, not the account's whole history); the aggregate is built afresh off the loop only at the start
        (or after a reset), and the accounts are evaluated when it is ready. Crossings and cells are applied at
        once."""
        now = now or datetime.now(UTC)
        rows = {r.account_id: r for r in self.feed.controller.accounts_model.objects()}
        ledger = self.follow.current(self.feed) if self.limits else an.RiskLedger()
        if ledger is None:
            return  # built off the loop: refresh() runs again when it is ready
        done: dict[str, tuple[an.AccountRisk, an.LimitConfig, str]] = {}
        errors: dict[str, str] = {}
        realized_by_start: dict[datetime, Any] = {}
        for row_key, prefs in self.limits.items():
            row = rows.get(row_key)
            if row is None:
                continue
            try:
                config = prefs.config()
                key = analytics_key(row_key)
                currency = row.currency
                if row.balance is not None:
                    money = an.AccountMoney(currency, row.balance, row.equity)
                elif row.open_pl is None and row.realized_today is None:
                    # Another source's account it cannot read (a MetaApi account not deployed): an estimate from
                    # the account size alone would show the whole room left, which nothing says.
                    errors[row_key] = "Its source reports nothing of this account now (not deployed?): no figures."
                    continue
                elif config.initial_balance is not None:
                    money = ledger.estimated_money(config.initial_balance, key, currency, row.open_pl)
                else:
                    errors[row_key] = "Set the account size (starting balance): the source reports none."
                    continue
                watch = self._watches.get(row_key)
                if watch is None or watch.config != config:
                    watch = self._watches[row_key] = an.EquityWatch(config)
                if not money.estimated:
                    watch.observe(now, money.equity)  # day-start and peak equity: only of reported figures
                realized = None
                if money.estimated and "|" not in row_key:  # TTMT's: today's P&L by position, as the desk counts it
                    start = an.day_bounds(an.trading_day(now, config.zone, config.reset_hour, config.reset_minute),
                                          config.zone, config.reset_hour, config.reset_minute)[0]
                    if start not in realized_by_start:
                        realized_by_start[start] = self._realized_since(start)
                    got = realized_by_start[start]
                    if isinstance(got, str):  # still being read: the last figures stand (the closed trades' would
                        # read, and notify, what is not so: 87.17 used where nothing was)
                        if row_key in self.risks:
                            done[row_key] = (self.risks[row_key], config, row.account.label)
                        continue
                    amount = got.get(row_key) if isinstance(got, dict) else None
                    realized = (start, amount) if amount is not None else None
                risk = ledger.evaluate(config, account_key=key, currency=currency, now=now, money=money,
                                       day_start_equity=watch.day_start_equity, peak_equity=watch.peak_equity,
                                       day_start_equity_at=watch.day_start_equity_at, realized_since=realized)
            except Exception as exc:  # noqa: BLE001 - one account's odd figures must not stop the others
                log.warning("risk limits of an account not evaluated: %s", type(exc).__name__)
                errors[row_key] = str(exc)
                continue
            done[row_key] = (risk, config, row.account.label)
        self._apply(errors, done, {})

    def _realized_since(self, start: datetime) -> Any:
        """TTMT's accounts' P&L realized since ``start`` by position (``DeskController.realized_since``: a dict,
        "reading", or None: the closed trades' figure stands in)."""
        read = getattr(self.feed.controller, "realized_since", None)
        try:
            return read(start) if read is not None else None
        except Exception:  # noqa: BLE001 - the closed deals' figure stands in, as before
            log.warning("realized P&L since a limit's day start not read", exc_info=True)
            return None

    def _apply(self, errors: dict[str, str], done: dict[str, tuple[an.AccountRisk, an.LimitConfig, str]],
               failed: dict[str, str]) -> None:
        for row_key in list(self.errors):
            if row_key in done or row_key not in self.limits:
                self.errors.pop(row_key)
        self.errors.update(errors)
        self.errors.update(failed)
        risks: dict[str, an.AccountRisk] = {}
        crossings: list[tuple[an.Crossing, str]] = []
        notified = False
        for row_key, (risk, config, label) in done.items():
            risks[row_key] = risk
            tracker = self._trackers.setdefault(config.thresholds, an.ThresholdTracker(config.thresholds))
            for use in risk.limits():  # what an earlier run already notified today is not notified again
                before = self._notified.get(notified_key(risk.account_key, use.name, risk.day))
                if before:
                    tracker.seed(risk.account_key, use.name, risk.day, before)
            for c in tracker.feed(risk):
                crossings.append((c, label))
                key = notified_key(c.account_key, c.limit, c.day)
                self._notified[key] = sorted(set(self._notified.get(key, ())) | {
                    t for t in config.thresholds if t <= c.threshold})
                notified = True
        if notified:
            save_notified(self._notified, self.store)
        self.risks = risks
        self._cells = {(k, use.name): describe(use) for k, risk in risks.items() for use in risk.limits()}
        self.updated.emit()
        for c, label in crossings:
            self.crossed.emit(crossing_notification(c, label))

    def cell(self, row_key: str, name: str) -> LimitCell | None:
        return self._cells.get((row_key, name))

    def label_text(self, row_key: str) -> str:
        """All of an account's limits on one line (tooltips, the dialog)."""
        risk = self.risks.get(row_key)
        if risk is None:
            return ""
        return "; ".join(f"{LIMIT_TITLES[u.name]}: {describe(u).text}" for u in risk.limits())


# --- the Accounts table's bars -------------------------------------------------------------------------------


class LimitBarDelegate(QStyledItemDelegate):
    """A limit cell: its text in the level's colour (green/orange/red; blue for "ok" in the colour-blind
    scheme) and under it a thin bar of how much of the limit is used. Plain text only."""

    BAR_HEIGHT = 4

    def __init__(self, view: Any, board: RiskBoard, name: str, scheme: Any) -> None:
        super().__init__(view)
        self._view = view
        self._board = board
        self._name = name
        self._scheme = scheme  # () -> the P&L scheme in force

    def _cell(self, index: QModelIndex | QPersistentModelIndex) -> LimitCell | None:
        key = index.data(Qt.ItemDataRole.UserRole + 3)  # table_base.KEY_ROLE
        return self._board.cell(key, self._name) if isinstance(key, str) else None

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        cell = self._cell(index)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)  # background, selection
        if cell is None:
            return
        dark = theme.is_dark(QApplication.palette())
        colour = theme.limit_color(cell.level, dark, self._scheme())
        rect: QRect = option.rect.adjusted(4, 1, -4, -(self.BAR_HEIGHT + 2))
        painter.save()
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        pen = option.palette.color(QPalette.ColorRole.HighlightedText) if selected else colour
        painter.setPen(pen)
        text = painter.fontMetrics().elidedText(cell.text, Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), text)
        bar = QRect(option.rect.left() + 4, option.rect.bottom() - self.BAR_HEIGHT - 1,
                    option.rect.width() - 8, self.BAR_HEIGHT)
        track = QColor(theme.STALE_COLOR(dark))
        track.setAlpha(70)
        painter.fillRect(bar, track)
        filled = QRect(bar)
        filled.setWidth(max(1, int(bar.width() * min(cell.fraction, 1.0))) if cell.fraction > 0 else 0)
        if filled.width():
            painter.fillRect(filled, colour)
        painter.restore()


# --- the dialog -------------------------------------------------------------------------------------------------


def _zones() -> list[str]:
    try:
        return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
    except Exception:  # noqa: BLE001 - no tzdata: the user types a name
        return []


class RiskLimitsDialog(QDialog):
    """Set one account's limits (non-modal: ``show()``; OK emits ``accepted_prefs(row_key, prefs)``)."""

    accepted_prefs = Signal(str, object)

    def __init__(self, row_key: str, label: str, currency: str, *, reports_balance: bool,
                 prefs: LimitPrefs | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row_key = row_key
        self.setWindowTitle("Risk limits")
        self.setModal(False)
        prefs = prefs or LimitPrefs(zone=_local_zone())
        layout = QVBoxLayout(self)
        heading = QLabel(f"{label} ({currency})")
        heading.setTextFormat(Qt.TextFormat.PlainText)  # an account label is service data
        font = heading.font()
        font.setBold(True)
        heading.setFont(font)
        layout.addWidget(heading)
        form = QFormLayout()
        layout.addLayout(form)

        self.preset_button = QPushButton("Prop account preset (5 % daily, 10 % max)")
        self.preset_button.clicked.connect(self.apply_preset)
        form.addRow("", self.preset_button)

        self.size_edit = QLineEdit(prefs.account_size)
        self.size_edit.setPlaceholderText("e.g. 100000")
        size_title = "Account size" if reports_balance else "Starting balance"
        if not reports_balance:
            self.size_edit.setToolTip("This source reports no balance: the balance is estimated from this "
                                      "starting balance plus the realized and open P&L the desk knows.")
        form.addRow(f"{size_title} ({currency})", self.size_edit)
        if not reports_balance:
            note = QLabel("Balance and equity of this account are estimated (marked *).")
            note.setTextFormat(Qt.TextFormat.PlainText)
            form.addRow("", note)

        self.daily_edit, self.daily_unit = self._value_row(form, "Daily loss", prefs.daily_value, prefs.daily_unit,
                                                           currency)
        self.daily_basis = QComboBox()
        for key, text in (("balance", "day's starting balance"), ("equity", "day's starting equity"),
                          ("higher", "higher of the two")):
            self.daily_basis.addItem(text, key)
        self.daily_basis.setCurrentIndex(max(0, self.daily_basis.findData(prefs.daily_basis)))
        form.addRow("Daily loss counted from", self.daily_basis)

        self.drawdown_edit, self.drawdown_unit = self._value_row(form, "Max drawdown", prefs.drawdown_value,
                                                                 prefs.drawdown_unit, currency)
        self.drawdown_mode = QComboBox()
        self.drawdown_mode.addItem("static (from the account size)", "static")
        self.drawdown_mode.addItem("trailing (from the highest balance/equity)", "trailing")
        self.drawdown_mode.setCurrentIndex(max(0, self.drawdown_mode.findData(prefs.drawdown_mode)))
        form.addRow("Drawdown", self.drawdown_mode)
        self.target_edit, self.target_unit = self._value_row(form, "Profit target", prefs.target_value,
                                                             prefs.target_unit, currency)

        reset = QHBoxLayout()
        self.reset_hour = QSpinBox()
        self.reset_hour.setRange(0, 23)
        self.reset_hour.setSuffix(":00")
        self.reset_hour.setValue(prefs.reset_hour)
        self.zone_edit = QLineEdit(prefs.zone)
        zones = _zones()
        if zones:
            completer = QCompleter(zones, self.zone_edit)
            completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
            completer.setFilterMode(Qt.MatchFlag.MatchContains)
            self.zone_edit.setCompleter(completer)
        reset.addWidget(self.reset_hour)
        reset.addWidget(QLabel("in"))
        reset.addWidget(self.zone_edit, 1)
        form.addRow("Day resets at", reset)

        self.thresholds_edit = QLineEdit(", ".join(str(t) for t in prefs.thresholds))
        self.thresholds_edit.setToolTip("Percent of a limit used at which to notify, once each per day")
        form.addRow("Notify at (% used)", self.thresholds_edit)

        self.error_label = QLabel("")
        self.error_label.setTextFormat(Qt.TextFormat.PlainText)
        self.error_label.setStyleSheet("color: palette(bright-text);")
        layout.addWidget(self.error_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.Reset)
        buttons.button(QDialogButtonBox.StandardButton.Reset).setText("Clear limits")
        buttons.button(QDialogButtonBox.StandardButton.Reset).clicked.connect(self._clear)
        buttons.accepted.connect(self._ok)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        layout.addWidget(buttons)

    def _value_row(self, form: QFormLayout, title: str, value: str, unit: str,
                   currency: str) -> tuple[QLineEdit, QButtonGroup]:
        row = QHBoxLayout()
        edit = QLineEdit(value)
        edit.setPlaceholderText("none")
        pct, amount = QRadioButton("%"), QRadioButton(currency or "amount")
        group = QButtonGroup(self)
        group.addButton(pct, 0)
        group.addButton(amount, 1)
        (amount if unit == "amount" else pct).setChecked(True)
        row.addWidget(edit, 1)
        row.addWidget(pct)
        row.addWidget(amount)
        form.addRow(title, row)
        return edit, group

    @staticmethod
    def _unit(group: QButtonGroup) -> str:
        return "amount" if group.checkedId() == 1 else "pct"

    def prefs(self) -> LimitPrefs:
        """What the fields say (raises ValueError with a sentence for the user)."""
        zone = self.zone_edit.text().strip() or "UTC"
        try:
            ZoneInfo(zone)
        except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError for odd names
            raise ValueError(f"Unknown time zone: {zone} (use an IANA name such as Europe/Prague)") from None
        try:
            thresholds = tuple(sorted({int(t) for t in self.thresholds_edit.text().replace(";", ",").split(",")
                                       if t.strip()}))
        except ValueError:
            raise ValueError("Thresholds are whole percentages, e.g. 50, 80, 100") from None
        if any(not 0 < t <= 1000 for t in thresholds):
            raise ValueError("Thresholds are between 1 and 1000 %")
        prefs = LimitPrefs(
            account_size=self.size_edit.text().strip(), daily_value=self.daily_edit.text().strip(),
            daily_unit=self._unit(self.daily_unit), daily_basis=self.daily_basis.currentData(),
            drawdown_value=self.drawdown_edit.text().strip(), drawdown_unit=self._unit(self.drawdown_unit),
            drawdown_mode=self.drawdown_mode.currentData(), target_value=self.target_edit.text().strip(),
            target_unit=self._unit(self.target_unit), reset_hour=self.reset_hour.value(), zone=zone,
            thresholds=thresholds or an.risk.DEFAULT_THRESHOLDS)
        config = prefs.config()  # numbers checked
        needs_size = (prefs.drawdown_value and prefs.drawdown_unit == "pct") or (
            prefs.target_value and prefs.target_unit == "pct")
        if needs_size and config.initial_balance is None:
            raise ValueError("A drawdown or target in % needs the account size")
        return prefs

    def apply_preset(self) -> None:
        preset = prop_account_prefs(self.size_edit.text().strip(), self.zone_edit.text().strip() or "Europe/Prague")
        self.daily_edit.setText(preset.daily_value)
        self.daily_unit.button(0).setChecked(True)
        self.daily_basis.setCurrentIndex(self.daily_basis.findData(preset.daily_basis))
        self.drawdown_edit.setText(preset.drawdown_value)
        self.drawdown_unit.button(0).setChecked(True)
        self.drawdown_mode.setCurrentIndex(self.drawdown_mode.findData(preset.drawdown_mode))
        self.target_edit.setText(preset.target_value)
        self.target_unit.button(0).setChecked(True)
        self.reset_hour.setValue(preset.reset_hour)
        self.zone_edit.setText(preset.zone)

    def _clear(self) -> None:
        self.accepted_prefs.emit(self.row_key, None)
        self.accept()

    def _ok(self) -> None:
        try:
            prefs = self.prefs()
        except ValueError as exc:
            self.error_label.setText(str(exc))
            return
        self.accepted_prefs.emit(self.row_key, prefs)
        self.accept()


_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu", "UCT", "Etc/UCT"})


def _local_zone() -> str:
    """The computer's IANA zone name (tzlocal), when its clock agrees with the local time now; else a fixed
    offset's ("Etc/GMT-1" is UTC+1, POSIX's sign), else UTC. (``datetime.now().astimezone()`` names no zone: its
    tzinfo is a bare offset, and taking "UTC" from it put every desk's Calendar on UTC days.)"""
    from zoneinfo import ZoneInfo

    now = datetime.now().astimezone()
    try:
        from tzlocal import get_localzone_name

        name = get_localzone_name()
        if name and ZoneInfo(name).utcoffset(now.replace(tzinfo=None)) == now.utcoffset():
            return "UTC" if name in _UTC_NAMES else str(name)  # (the Calendar says "Days in UTC", not "Etc/UTC")
    except Exception:  # noqa: BLE001 - an unknown or odd zone: the offset below
        log.debug("the local time zone has no usable name", exc_info=True)
    offset = now.utcoffset()
    hours, rest = divmod(int(offset.total_seconds()) if offset is not None else 0, 3600)
    if rest == 0 and -14 <= hours <= 12:
        return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"
    return "UTC"


__all__ = ["LimitBarDelegate", "LimitCell", "LimitPrefs", "RiskBoard", "RiskLimitsDialog", "crossing_notification",
           "describe", "load_limits", "prop_account_prefs", "save_limits"]
