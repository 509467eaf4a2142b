"""``ttmt-monitor report``: the statement (issue 18) as HTML or PDF, without the window.

    ttmt-monitor report --since DATE [--until DATE] --format html|pdf -o FILE [--account A ...] [--zone ZONE]
                        [--title TEXT] [--source NAME | --demo] [--base-url URL] [--api-key KEY] [-q]

Where the history comes from:
- default (TTMT): the local history store the desktop app keeps for the key on the base URL (the path of
  ``export --offline``: no network; the key only picks that key's file);
- ``--demo``: an embedded TTMT simulator with a week of history, read over its REST API;
- ``--source NAME``: a configured neutral source's snapshot (its recent closed deals and its accounts' balance
  and equity) plus the older deals the desktop app kept for those accounts (``core.deal_history``);
  ``--demo --source KIND`` runs that kind's simulator.

Dates: ``--since`` inclusive, ``--until`` exclusive (default: now); a date alone is midnight in ``--zone`` (default
UTC), a date-time without an offset is in ``--zone``. The file is written as ``FILE.partial`` and renamed when
complete. Exit codes as the other commands: 0 done, 1 bad option or no history, 2 no key / refused key, 130
Ctrl-C (no file written).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .core import analytics as an
from .core.models import Account as TtmtAccount

TTMT_SOURCE_ID = "ttmt"


def add_parser(sub: Any, common: argparse.ArgumentParser, summary: str) -> None:
    p = sub.add_parser("report", parents=[common], help=summary, description=summary + ". History: the local "
                       "TTMT history (as export --offline), --demo (a simulator), or --source NAME (a configured "
                       "source's recent closed deals).")
    p.add_argument("--since", required=True, metavar="DATE", help="first day (inclusive), e.g. 2026-05-01")
    p.add_argument("--until", default=None, metavar="DATE", help="end (exclusive), e.g. 2026-06-01; default now")
    p.add_argument("--format", choices=("html", "pdf"), required=True)
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    p.add_argument("--account", action="append", default=None, metavar="ACCOUNT",
                   help="only this account (label or id; repeat for several); default every account")
    p.add_argument("--zone", default="UTC", metavar="ZONE", help="IANA time zone of the dates, the calendar and "
                   "the times shown (default UTC), e.g. Europe/Prague")
    p.add_argument("--title", default="Trading statement", help="the statement's title")


def parse_date(option: str, value: str, zone: ZoneInfo, usage_error: type[Exception]) -> datetime:
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise usage_error(f"{option} {value!r} is not a valid date; use an ISO-8601 date or date-time, e.g. "
                          "2026-05-01 or 2026-05-01T08:00:00+02:00") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=zone)


def _pick(wanted: Sequence[str] | None, accounts: Sequence[an.StatementAccount], ids: dict[str, str],
          usage_error: type[Exception]) -> list[an.StatementAccount] | None:
    """The accounts ``--account`` names (label, case-insensitive, or id); None: every account."""
    if not wanted:
        return None
    out: list[an.StatementAccount] = []
    for text in wanted:
        w = text.strip().casefold()
        hits = [a for a in accounts if ids.get(a.key, "").casefold() == w or a.key.casefold() == w]
        if not hits:
            hits = [a for a in accounts if a.label.strip().casefold() == w]
        if len(hits) != 1:
            names = "\n".join(f"  {a.label}  ({ids.get(a.key, a.key)})" for a in accounts) or "  (none)"
            what = "is the label of several accounts; pass an id" if hits else "matches no account"
            raise usage_error(f"--account {text!r} {what}; the accounts are:\n{names}")
        out.extend(h for h in hits if h not in out)
    return out


def _ttmt_accounts(accounts: Sequence[TtmtAccount]) -> tuple[list[an.StatementAccount], dict[str, str]]:
    rows = [an.StatementAccount(key=f"{TTMT_SOURCE_ID}|{a.account_id}", label=a.label or a.account_id,
                                source="TTMT", currency=a.currency or None) for a in accounts]
    return rows, {f"{TTMT_SOURCE_ID}|{a.account_id}": a.account_id for a in accounts}


def _from_store(args: argparse.Namespace, status: Callable[[str], None], cli: Any,
                ) -> tuple[list[an.HistoryDeal], list[an.StatementAccount], dict[str, str]]:
    from .core.local_history import iter_stored_trades
    from .core.store import Store, StoreError, store_path
    from .sources.ttmt.store_codec import CODEC

    base_url = cli.offline_base_url(args)
    try:
        key = cli.resolve_key(args, base_url, status)
    except cli.AuthFailure:
        raise cli.AuthFailure("report reads the local history of an API key: pass --api-key, set TTMT_API_KEY, "
                              "or save the key in the desktop app (or use --demo / --source NAME)") from None
    try:
        store = Store.open_existing(base_url, key, codec=CODEC)
    except StoreError as exc:
        raise cli.UsageError(str(exc)) from None
    if store is None:
        status(f"(looked for {store_path(base_url, key)})")
        raise cli.UsageError(f"no local history for {base_url} with this key: run the desktop app connected to it "
                             "first (it keeps the history), or use --demo / --source NAME")
    try:
        for message in store.messages:
            status(message)
        accounts, ids = _ttmt_accounts(store.accounts())
        deals = an.from_ttmt_trades(iter_stored_trades(store, {"status": "closed"}), TTMT_SOURCE_ID)
    finally:
        store.close(flush=False)
    return deals, accounts, ids


def _from_demo(args: argparse.Namespace, status: Callable[[str], None], cli: Any, since: datetime,
               ) -> tuple[list[an.HistoryDeal], list[an.StatementAccount], dict[str, str]]:
    session = cli.Session(args, status)
    try:
        session.open()

        async def fetch() -> tuple[Any, list[Any]]:
            try:
                client = session.client
                accounts = await client.accounts()
                # Trades are filtered by creation date server-side: a month's margin keeps a long trade that
                # closed in the period; the close date decides below.
                trades = [t async for t in client.iter_trades(status="closed", after_date=since - timedelta(days=31))]
                return accounts, trades
            finally:
                await session.aclose()

        accounts, trades = asyncio.run(fetch())
    finally:
        session.close_sim()
    rows, ids = _ttmt_accounts(accounts)
    return an.from_ttmt_trades(trades, TTMT_SOURCE_ID), rows, ids


def _from_source(args: argparse.Namespace, cli: Any,
                 ) -> tuple[list[an.HistoryDeal], list[an.StatementAccount], dict[str, str]]:
    from . import cli_sources

    try:
        with cli_sources.resolve(args.source, bool(args.demo)) as (kind, config, secrets):
            source = kind.create(config, secrets)

            async def fetch() -> Any:
                try:
                    return await source.snapshot()
                finally:
                    await source.aclose()

            snap = asyncio.run(fetch())
            label = source.label
            kept = [] if args.demo else _kept_deals(kind, config, source.id, snap.accounts)
    except cli_sources.SourceNotFound as exc:
        raise cli.UsageError(str(exc)) from None
    names = {a.key: a.label for a in snap.accounts}
    reported = {d.key for d in snap.closed}  # the source's own report of a deal wins over the kept copy
    closed = [*snap.closed, *(d for d in kept if d.key not in reported)]
    rows = [an.StatementAccount(key=a.key, label=a.label, source=label, currency=a.currency, balance=a.balance,
                                equity=a.equity, equity_computed=a.equity_computed) for a in snap.accounts]
    ids = {a.key: a.native_id for a in snap.accounts}
    deals = [an.from_deal(d, source_label=label, account_label=names.get(d.account_key, d.account_key))
             for d in closed]
    return deals, rows, ids


def _kept_deals(kind: Any, config: Any, source_id: str, accounts: Sequence[Any]) -> list[Any]:
    """The closed deals the desktop app kept for this source's accounts (``core.deal_history``: older than the
    source's own window), or none when it keeps none or has no file yet (never created here)."""
    from .core.deal_history import FILE_NAME, DealHistory, history_scope
    from .core.paths import default_data_dir
    from .domain import split_key

    if not kind.history_scope:
        return []
    folder = default_data_dir() / "history"
    if not (folder / FILE_NAME).exists():
        return []
    scope = history_scope(config.kind, config.settings, kind.history_scope)
    history = DealHistory.open(folder)
    try:
        return history.load(scope, source_id, [split_key(a.key)[1] for a in accounts])
    finally:
        history.close()


def run(args: argparse.Namespace, status: Callable[[str], None]) -> int:
    """The report command (called by ``cli.main``, which maps its exceptions to exit codes)."""
    from . import cli

    try:
        zone = ZoneInfo(args.zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise cli.UsageError(f"--zone {args.zone!r} is not an IANA time zone (e.g. Europe/Prague, UTC)") from None
    since = parse_date("--since", args.since, zone, cli.UsageError)
    until = parse_date("--until", args.until, zone, cli.UsageError) if args.until else datetime.now(UTC)
    if since >= until:
        raise cli.UsageError(f"--since {args.since} is not before --until {args.until or 'now'}: nothing to report")
    cli.check_output_path(args.output)  # before anything is read or fetched
    source = (args.source or "").casefold()
    if source and source != "ttmt":
        deals, accounts, ids = _from_source(args, cli)
    elif args.demo:
        deals, accounts, ids = _from_demo(args, status, cli, since)
    else:
        deals, accounts, ids = _from_store(args, status, cli)
    chosen = _pick(args.account, accounts, ids, cli.UsageError)
    st = an.build_statement(deals, since=since, until=until, zone=args.zone, accounts=chosen or accounts,
                            title=args.title)
    from .report import write_statement

    write_statement(st, args.output, args.format)
    n = len(st.trades)
    status(f"wrote the statement of {n} closed trade{'s' if n != 1 else ''} "
           f"({since.isoformat()} to {until.isoformat()}) to {args.output}")
    return 0
