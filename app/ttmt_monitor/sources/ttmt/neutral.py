"""TTMT's objects as the desk's neutral entities (``domain/``): what the TTMT Source gives the shared core.

TTMT reports accounts without balance or equity and positions without swap or commission: those stay None.
Its trades, signals and TP ladders are TTMT's own (capabilities ``signals`` and ``tp_levels``) and are not neutral
entities; its closed history reaches the neutral view as closed trade deals only through the TTMT desk's own path.
"""

from __future__ import annotations

from decimal import Decimal

from ...core import models as m
from ...domain import Account, Position, Snapshot, make_key


def account(source_id: str, a: m.Account) -> Account:
    return Account(key=make_key(source_id, a.account_id), source=source_id, native_id=a.account_id, label=a.label,
                   currency=a.currency or None, account_type=a.type or None, state=a.state or None)


def position(source_id: str, p: m.Position) -> Position | None:
    """An open or partly closed position; None for one that is closed (or has no account: nothing to file under)."""
    if p.status not in m.POSITION_OPEN_STATUSES or p.account_id is None:
        return None
    extra: tuple[tuple[str, str], ...] = ()
    if p.trade_id:
        extra += (("trade", p.trade_id),)
    if p.tp_level:
        extra += (("tp_level", str(p.tp_level)),)
    return Position(
        key=make_key(source_id, p.id), source=source_id, account_key=make_key(source_id, p.account_id),
        native_id=p.id, symbol=p.symbol or "", side=p.direction or "",
        volume=p.volume if p.volume is not None else Decimal(0),
        open_price=p.entry_price, current_price=p.current_price, stop_loss=p.stop_loss, take_profit=p.take_profit,
        profit=p.unrealized_pl, currency=p.currency, opened_at=p.opened_at, extra=extra)


def snapshot(source_id: str, snap: m.Snapshot) -> Snapshot:
    positions = tuple(x for x in (position(source_id, p) for p in snap.positions) if x is not None)
    return Snapshot(accounts=tuple(account(source_id, a) for a in snap.accounts), positions=positions,
                    taken_at=snap.taken_at)
