"""The ``ttmt-monitor`` command line: ``tail``, ``export`` and ``snapshot`` (no Qt; plain asyncio).

Provides :func:`main` (``main(argv) -> int``; ``argv`` starts with the command name, as ``__main__`` passes it)
and :data:`COMMAND_SUMMARIES` (one line per command, for ``ttmt-monitor --help``).

    ttmt-monitor tail [--json] [--account ACCOUNT] [--max-events N] [--last-event-id N]
    ttmt-monitor export trades|signals [--status S] [--symbol S] [--account ACCOUNT] [--channel ID]
                        [--since DATE] [--until DATE] --format csv|json [-o FILE] [--restart] [--offline]
    ttmt-monitor snapshot [--json]
    ttmt-monitor report --since DATE [--until DATE] --format html|pdf -o FILE [--account A ...] [--zone ZONE]
                        (cli_report.py: the statement of issue 18, from the local history, --demo or --source)
    common: --base-url URL, --api-key KEY (else $TTMT_API_KEY, else the key the desktop app saved in the OS
            keyring), --demo (run against an embedded simulator), -q/--quiet (no status lines on stderr)

Output contract (scripts rely on it):
- ``tail --json``: exactly one JSON object per line on stdout per delivered event, in order, deduplicated, with
  ``id``, ``type``, ``timestamp`` and ``data`` (money as exact JSON numbers); a resync prints one line with
  ``"type": "resync"``. Status and errors go to stderr, never to stdout.
- ``tail`` without ``--json``: one readable line per event: local date, time and zone (``2026-06-01 14:03:05
  +02:00``, or ``UTC``), account, trade reference (``trd_…``), symbol, what happened, P&L. Telegram-derived and
  account text is stripped of control characters (no terminal escape injection).
- ``--account`` takes an account label (exact, case-insensitive) or a TTMT account id; a label of several
  accounts, an unknown label or an id of no account of this key: exit 1 with the list of accounts.
- ``--max-events N`` exits 0 after N event lines (resync lines not counted).
- A wait for the API's request budget (2 s or more) is one line on stderr with its length, for every command
  that makes API calls (``tail`` too, except while its stream resyncs: the stream's state line says it then).
- Exit codes: 0 success or Ctrl-C (for ``tail``/``snapshot``); 2 authentication failure (401/403/auth_revoked,
  or no key at all); 1 any other fatal error (bad option, network, server); 130 an interrupted ``export`` (its
  state file stays; rerunning the same command continues) or ``report`` (no file written), with one line.
- ``export`` checks its options (dates, ``--since`` before ``--until``, statuses) before the key is looked up or
  anything is fetched. Trade ``--status`` groups: ``open`` (pending, active, needs_recovery), ``closed`` (the
  closed_* statuses: trades that were open and were closed), ``ended`` (every terminal status, not_filled and
  failed included: what the API calls ``closed``).
- ``export -o FILE`` is resumable and atomic: rows go to ``FILE.partial``; ``FILE.export-state.json`` beside it
  records the filters, the cursor of the next page and the byte length of the partial file after the last
  complete page; a rerun with the same arguments truncates it to that length and continues from the cursor. When
  the export completes the state file is removed and ``FILE.partial`` renamed to FILE: an error never leaves an
  empty or half FILE (nor a partial file when nothing was written). Pages are fetched within the rate limit (the
  client paces on ``X-RateLimit-Remaining``, waits out 429s), and each wait of 2 s or more is one line on stderr.
- ``export --offline`` reads the local history the desktop app keeps for the key on ``--base-url``, else
  ``$TTMT_BASE_URL``, else the API address the desktop app is set to (no network; the key, found as online, only
  picks that key's file): the same columns and JSON; "no local history for <url>" and exit 1 when there is none,
  exit 2 without a key.
- CSV cells that are text and start with ``= + - @`` get a leading ``'`` (spreadsheet formula injection from
  channel names/labels); numbers are written exactly as received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from ttmt_monitor import __version__
from ttmt_monitor.core.formatting import MINUS, format_pl, format_price, format_volume, strip_controls
from ttmt_monitor.core.models import (
    SIGNAL_STATUSES,
    TRADE_OPEN_STATUSES,
    TRADE_STATUSES,
    TRADE_TERMINAL_STATUSES,
    Account,
    BreakevenFailed,
    BreakevenSet,
    Event,
    OrderFilled,
    PositionClosed,
    PositionUpdated,
    Resync,
    Signal,
    TpHit,
    Trade,
    TradeExecuted,
    TradeFinalized,
)

DEFAULT_BASE_URL = "https://app.telegramtometatrader.com/api/v1"
EXIT_OK, EXIT_FATAL, EXIT_AUTH, EXIT_INTERRUPTED = 0, 1, 2, 130
STATE_SUFFIX = ".export-state.json"
PARTIAL_SUFFIX = ".partial"
# 2: the rows go to FILE.partial (renamed to FILE when complete) and the identity holds the --status word.
STATE_VERSION = 2
# A rate-limit wait shorter than this is not worth a line on stderr (pacing between the last few requests of a
# window is a second or two; a 429 or a used-up window is tens of seconds).
WAIT_NOTICE_S = 2.0

# What ``--status`` accepts for trades, beyond the API's own statuses. The API's group word ``closed`` means
# every terminal status, ``not_filled`` and ``failed`` included (trades that never held a position); a trader
# reading "closed" means trades that were open and were closed, so the command line splits the API's group:
CLOSED_TRADE_STATUSES = ("closed_profit", "closed_loss", "closed_breakeven", "closed_timeout_cleanup")
TRADE_STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    "open": TRADE_OPEN_STATUSES,  # pending, active, needs_recovery (the API's ``open``)
    "closed": CLOSED_TRADE_STATUSES,  # were open, now closed (a subset of the API's ``closed``)
    "ended": TRADE_TERMINAL_STATUSES,  # every terminal status (the API's ``closed``)
}
# The API word each group is fetched with; the rows are then narrowed to the group (``closed`` only).
_GROUP_API_WORD = {"open": "open", "closed": "closed", "ended": "closed"}
TRADE_STATUS_HELP = (
    "trade status: one of " + ", ".join(TRADE_STATUSES) + "; or a group: open (pending, active, "
    "needs_recovery), closed (" + ", ".join(CLOSED_TRADE_STATUSES) + ": trades that were open and were "
    "closed), ended (every finished trade: closed plus not_filled and failed)"
)

log = logging.getLogger("ttmt_monitor.cli")


class UsageError(Exception):
    """A bad command line or option value: a clear message, exit 1 (2 is reserved for auth failures)."""


class AuthFailure(Exception):
    """No usable key, or the server refused it: exit 2."""


class _ArgumentError(UsageError):
    """A command line argparse refused: its usage message is printed already; the text is argparse's own."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        # argparse's usage and "PROG: error: MESSAGE", but exit 1: argparse's 2 is our authentication failure.
        with contextlib.suppress(OSError, ValueError):
            self.print_usage(sys.stderr)
        raise _ArgumentError(f"{self.prog}: error: {message}")


# ---------------------------------------------------------------------------------------------------------------
# argument parsing


#: One line per command, for ``ttmt-monitor --help`` (``__main__``) and each command's own help.
COMMAND_SUMMARIES = {
    "tail": "print live events as they happen (readable lines, or JSON lines with --json)",
    "export": "export trade or signal history as CSV or JSON (resumable; --offline reads the local history)",
    "snapshot": "print the accounts, open positions and active trades now",
    "report": "write a statement (P&L curve, calendar, channels, trades) as HTML or PDF (--format)",
    "sim": "run the built-in TTMT simulator (a local test server with a demo key)",
}
ACCOUNT_HELP = ("only this account: its label as the readable output shows it (case-insensitive) or its TTMT "
                "account id")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--base-url", default=None, help=f"TTMT API root (default {DEFAULT_BASE_URL}, "
                        "or $TTMT_BASE_URL)")
    common.add_argument("--api-key", default=None, help="API key (prefer $TTMT_API_KEY or the keyring: a key on "
                        "the command line is visible to other local users)")
    common.add_argument("--demo", action="store_true", help="run against an embedded simulator (no key needed)")
    common.add_argument("-q", "--quiet", action="store_true", help="no status lines on stderr")
    # --source for the commands that take it (export reads TTMT's history only: see export's hidden --source).
    sourced = _Parser(add_help=False, parents=[common])
    sourced.add_argument("--source", default=None, metavar="NAME",
                         help="a configured source by name (File → Sources… in the app); with --demo, a kind: "
                              "tradovate, metaapi, mt4manager (default: TTMT)")

    parser = _Parser(prog="ttmt-monitor", description="TTMT trading desk: command line.")
    parser.add_argument("--version", action="version", version=f"ttmt-monitor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    tail = sub.add_parser("tail", parents=[sourced], help=COMMAND_SUMMARIES["tail"],
                          description=COMMAND_SUMMARIES["tail"] + ". Readable lines: date, time and zone, "
                          "account, trade reference, symbol, what happened, P&L.")
    tail.add_argument("--json", action="store_true", help="one JSON object per line per event")
    tail.add_argument("--account", default=None, metavar="ACCOUNT", help=ACCOUNT_HELP + " (TTMT; not with --source)")
    tail.add_argument("--max-events", type=_non_negative_int, default=None, metavar="N",
                      help="exit 0 after N event lines (resync lines not counted)")
    tail.add_argument("--last-event-id", type=_non_negative_int, default=None, metavar="N",
                      help="resume after this event id (replays what the server still buffers; TTMT, not with "
                      "--source)")

    export = sub.add_parser("export", parents=[common], help=COMMAND_SUMMARIES["export"],
                            description=COMMAND_SUMMARIES["export"] + ".")
    export.add_argument("what", choices=("trades", "signals"))
    export.add_argument("--status", default=None,
                        help=TRADE_STATUS_HELP + ". Signals: " + ", ".join(SIGNAL_STATUSES))
    export.add_argument("--symbol", default=None, help="symbol filter (trades only)")
    export.add_argument("--account", default=None, metavar="ACCOUNT", help=ACCOUNT_HELP)
    export.add_argument("--channel", default=None, metavar="ID", help="channel id filter")
    export.add_argument("--since", default=None, metavar="DATE",
                        help="from this ISO-8601 date or date-time, inclusive (e.g. 2026-06-01 or "
                        "2026-06-01T08:00Z)")
    export.add_argument("--until", default=None, metavar="DATE",
                        help="up to this ISO-8601 date or date-time, exclusive; must be after --since")
    export.add_argument("--format", choices=("csv", "json"), required=True)
    export.add_argument("-o", "--output", default=None, metavar="FILE", help="write here (resumable); else stdout")
    export.add_argument("--restart", action="store_true", help="ignore an unfinished export's state and start over")
    export.add_argument("--page-size", type=_page_size, default=100, help=argparse.SUPPRESS)
    export.add_argument("--offline", action="store_true",
                        help="read the local history the desktop app keeps (for --base-url, else "
                        "$TTMT_BASE_URL, else the API address the desktop app uses; no network). The key is "
                        "still needed: each key has its own history, and the key only picks that file (it is "
                        "sent nowhere)")
    # Not in the help: export reads TTMT's history only; accepted so that main can say so (not "unrecognized").
    export.add_argument("--source", default=None, help=argparse.SUPPRESS)

    from ttmt_monitor.cli_report import add_parser as add_report_parser

    add_report_parser(sub, sourced, COMMAND_SUMMARIES["report"])
    snap = sub.add_parser("snapshot", parents=[sourced], help=COMMAND_SUMMARIES["snapshot"],
                          description=COMMAND_SUMMARIES["snapshot"] + ".")
    snap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    return parser


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _page_size(text: str) -> int:
    value = _non_negative_int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("page size must be 1-100")
    return value


# ---------------------------------------------------------------------------------------------------------------
# output helpers


#: Untrusted text for a terminal line: control characters (incl. ESC and bidi overrides) and newlines out (the
#: statement's HTML/PDF strips the same ones: ``core.formatting.strip_controls``).
clean = strip_controls


class Status:
    """Status lines on stderr (never stdout), silenced by --quiet."""

    def __init__(self, quiet: bool, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr

    def __call__(self, message: str) -> None:
        if not self.quiet:
            with contextlib.suppress(OSError, ValueError):
                print(f"ttmt-monitor: {message}", file=self.stream, flush=True)


_WAIT_REASONS = {
    "retry-after": "the API answered 429 Too Many Requests",
    "window": "this minute's request budget is used up",
    "pacing": "spreading the last requests of this minute's budget",
}


def announce_rate_limit_waits(client: Any, status: Status, skip: Callable[[], bool] | None = None
                              ) -> Callable[[], None]:
    """Say on stderr, one line per wait of ``WAIT_NOTICE_S`` or more, when ``client`` waits for the API's
    request budget (a 429's Retry-After, or the window used up): every command that makes API calls, so a
    minute's wait never looks like a hang. Silenced by --quiet. Written through ``tqdm.write`` so that an
    export's progress bar, when there is one, is redrawn below the line. Returns the function that stops it
    (``skip()`` true: say nothing of this wait; ``tail`` skips them while its stream resyncs, whose own state
    line then says why it waits)."""

    def on_wait(seconds: float, reason: str) -> None:
        if seconds < WAIT_NOTICE_S or status.quiet or (skip is not None and skip()):
            return
        with contextlib.suppress(OSError, ValueError):
            from tqdm import tqdm

            why = _WAIT_REASONS.get(reason, reason)
            tqdm.write(f"ttmt-monitor: rate limited: waiting {seconds:.0f} s ({why})", file=status.stream)

    client.add_rate_limit_wait_listener(on_wait)
    return lambda: client.remove_rate_limit_wait_listener(on_wait)


def error(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"ttmt-monitor: error: {message}", file=sys.stderr, flush=True)


def _ascii_minus(text: str) -> str:
    return text.replace(MINUS, "-")


def _pl(value: Decimal | None, currency: str | None) -> str:
    return _ascii_minus(format_pl(value, currency)) if value is not None else ""


def when_text(ts: datetime | None) -> str:
    """``2026-06-01 14:03:05 +02:00`` in the local zone, or ``... UTC`` when the local zone is UTC: a line
    copied into a chat or a ticket must say which day and which clock it means."""
    if ts is None:
        return "----------  --:--:--"
    local = ts.astimezone()
    offset = local.utcoffset()
    if not offset:
        zone = "UTC"
    else:
        minutes = int(offset.total_seconds()) // 60
        sign = "+" if minutes >= 0 else "-"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return f"{local:%Y-%m-%d %H:%M:%S} {zone}"


def event_trade_id(event: Event) -> str | None:
    """The id of the trade an event belongs to (None for events about no trade, e.g. a resync)."""
    if isinstance(event, (TradeExecuted, TradeFinalized)):
        return event.trade.id if event.trade is not None else None
    if isinstance(event, OrderFilled):
        return event.order.trade_id if event.order is not None else None
    if isinstance(event, (PositionClosed, PositionUpdated)):
        return event.position.trade_id if event.position is not None else None
    value = getattr(event, "trade_id", None)
    return value if isinstance(value, str) else None


def describe(event: Event, labels: dict[str, str], refs: dict[str, str] | None = None,
             symbols: dict[str, str] | None = None) -> str:
    """One readable line for an event: local date, time and zone, account, trade reference (``trd_…``),
    symbol, what happened, P&L (with its sign). ``refs`` maps trade ids to references (else the id's first 8);
    ``symbols`` trade ids to their symbol (an order fill does not name it)."""
    ts = when_text(event.timestamp)
    account = symbol = what = pl = ""
    if isinstance(event, Resync):
        snap = event.snapshot
        counts = (f"{len(snap.accounts)} accounts, {len(snap.positions)} open positions, {len(snap.trades)} "
                  "active trades") if snap else "no snapshot"
        return f"{ts}  -- resynchronised ({clean(event.reason)}): {counts}"
    trade_id = event_trade_id(event)
    ref = ""
    if isinstance(event, (TradeExecuted, TradeFinalized)) and event.trade is not None:
        t = event.trade
        account, symbol, ref = t.account_label, t.symbol, t.reference or ""
        if isinstance(event, TradeExecuted):
            what = f"trade {t.direction or ''} placed ({clean(t.status)})"
        else:
            what = f"trade finished: {clean(t.status)}"
            pl = _pl(t.realized_pl, t.currency)
    elif isinstance(event, OrderFilled) and event.order is not None:
        o = event.order
        account = o.account_label
        symbol = (symbols or {}).get(o.trade_id or "", "")
        price = o.fill_price if o.fill_price is not None else o.price
        what = (f"order filled {o.direction or ''} {format_volume(o.volume)} @ "
                f"{_ascii_minus(format_price(price, symbol or None))}")
        # A trade's orders are one per TP level, often alike in volume and price: without the level, a fill of
        # each read as the same line repeated (a tester).
        notes = [f"layer {o.layer}"] if o.layer else []
        if o.tp_level:
            target = format_price(o.take_profit, symbol or None) if o.take_profit is not None else ""
            notes.append(f"TP{o.tp_level} {_ascii_minus(target)}".rstrip())
        if notes:
            what += f" ({', '.join(notes)})"
    elif isinstance(event, PositionClosed) and event.position is not None:
        p = event.position
        account, symbol = p.account_label, p.symbol
        reason = f" by {clean(p.close_reason)}" if p.close_reason else ""
        what = (f"position closed{reason} {format_volume(p.volume)} @ "
                f"{_ascii_minus(format_price(p.close_price, p.symbol))}")
        pl = _pl(p.realized_pl, p.currency)
    elif isinstance(event, PositionUpdated) and event.position is not None:
        p = event.position
        account, symbol = p.account_label, p.symbol
        what = (f"position {p.direction or ''} {format_volume(p.volume)} now "
                f"{_ascii_minus(format_price(p.current_price, p.symbol))}")
        pl = _pl(p.unrealized_pl, p.currency)
    elif isinstance(event, TpHit):
        account, symbol = event.account_label, event.symbol
        what = f"TP{event.tp_level} hit @ {_ascii_minus(format_price(event.price, event.symbol))}"
        pl = _pl(event.realized_pl, event.currency)
    elif isinstance(event, BreakevenSet):
        what = f"breakeven: stop loss moved to {_ascii_minus(format_price(event.new_stop_loss, None))}"
    elif isinstance(event, BreakevenFailed):
        what = f"breakeven FAILED: {clean(event.reason)}"
        if event.attempts is not None:
            what += f" (after {event.attempts} attempts)"
    else:
        what = f"{clean(event.type) or 'event'} (not understood; shown raw with --json)"
    if not account:
        account = labels.get(event.account_id or "", "")
    if not ref and trade_id:
        ref = (refs or {}).get(trade_id) or trade_id[:8]
    parts = [ts, clean(account) or "-", clean(ref) or "-", clean(symbol) or "-", what.strip()]
    if pl:
        parts.append(f"P&L {pl}")
    return "  ".join(parts)


# ---------------------------------------------------------------------------------------------------------------
# the key, the client, the demo simulator


def resolve_key(args: argparse.Namespace, base_url: str, status: Status) -> str:
    if args.api_key:
        return args.api_key.strip()
    env = os.environ.get("TTMT_API_KEY", "").strip()
    if env:
        return env
    try:
        from ttmt_monitor import keystore  # guarded: a missing or broken keyring backend must not crash the CLI

        key = keystore.load_key(base_url)
    except Exception as exc:  # noqa: BLE001 - KeyringUnavailable, ImportError, backend errors...
        status(f"could not read the OS keyring ({type(exc).__name__}); pass --api-key or set TTMT_API_KEY")
        key = None
    if key:
        return key
    raise AuthFailure(
        "no API key: pass --api-key, set TTMT_API_KEY, or save the key in the desktop app (OS keyring)"
    )


class Session:
    """Base URL + key (or an embedded simulator for --demo) and the REST client, for one command run."""

    def __init__(self, args: argparse.Namespace, status: Status) -> None:
        self.args = args
        self.status = status
        self.sim: Any = None
        self.client: Any = None
        self.stop_wait_notices: Callable[[], None] = lambda: None

    def open(self) -> None:
        from ttmt_monitor.sources.ttmt.client import TTMTClient

        if self.args.demo:
            from ttmt_monitor.sim.runner import SimulatorThread

            self.status("starting the embedded simulator (--demo)...")
            self.sim = SimulatorThread(seed=7, history_days=7, engine_running=True).start()
            base_url, key = self.sim.base_url, self.sim.api_key
            self.status(f"simulator at {base_url}")
        else:
            base_url = (self.args.base_url or os.environ.get("TTMT_BASE_URL") or DEFAULT_BASE_URL).strip()
            key = resolve_key(self.args, base_url, self.status)
        try:
            self.client = TTMTClient(base_url, key, user_agent="cli")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        self.stop_wait_notices = announce_rate_limit_waits(self.client, self.status)

    async def aclose(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()

    def close_sim(self) -> None:
        if self.sim is not None:
            with contextlib.suppress(Exception):
                self.sim.stop()


# ------------------------------------------------------------------------------------------------------------
# checks made before anything is fetched: accounts by label, statuses, dates

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def _account_choice(account: Account) -> str:
    return f"  {clean(account.label) or '(no label)'}  ({account.account_id})"


def resolve_account(text: str, accounts: Sequence[Account]) -> Account:
    """The account ``--account`` names: an account id, else a label (exact, case-insensitive, surrounding
    spaces ignored; as sent or as printed). No match or more than one: a :class:`UsageError` that lists the
    choices (an id the server does not know would otherwise filter the stream down to nothing, silently and
    forever)."""
    wanted = text.strip()
    for account in accounts:
        if account.account_id.lower() == wanted.lower():
            return account
    folded = wanted.casefold()
    # The label as the service sent it, or as the lines and the error below show it (controls out, tabs and
    # newlines as spaces): a user types what was printed.
    matches = [a for a in accounts if folded in {(a.label or "").strip().casefold(),
                                                 clean(a.label).strip().casefold()}]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"--account {clean(wanted)!r} is the label of {len(matches)} accounts; pass one of "
                         "their ids instead:\n" + "\n".join(_account_choice(a) for a in matches))
    choices = "\n".join(_account_choice(a) for a in accounts) if accounts else "  (this key sees no accounts)"
    what = "matches no account of this key" if _UUID_RE.match(wanted) else "matches no account label or id"
    raise UsageError(f"--account {clean(wanted)!r} {what}; the accounts are:\n{choices}")


def parse_when(option: str, value: str) -> datetime:
    """An ISO-8601 date or date-time for ``--since``/``--until`` (naive = UTC, for comparing the two only: the
    text itself goes to the API as given)."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        detail = str(exc)
        reason = "" if detail.startswith("Invalid isoformat") else f" ({detail})"
        raise UsageError(f"{option} {clean(value)!r} is not a valid date{reason}; use an ISO-8601 date or "
                         "date-time, e.g. 2026-05-01 or 2026-05-01T08:00:00Z") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def check_output_path(text: str) -> None:
    """``-o FILE`` must name a file that can be written: not a directory, in a folder that exists and that we
    may write in (``FILE.partial`` and the export state are created beside it). Checked before anything is
    fetched: found out at the end, a long export was downloaded for nothing. Names the path as the user gave it."""
    path = Path(text)
    if path.is_dir():
        raise UsageError(f"-o {text}: is a directory; give a file name (e.g. {path / 'export.csv'})")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"-o {text}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"-o {text}: cannot create files in the folder {folder} (permission denied)")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"-o {text}: the file is not writable (permission denied)")


def validate_export(args: argparse.Namespace) -> None:
    """Every export option that can be checked without the server, checked before anything is opened or
    fetched (so a typo costs no request and leaves no file). Normalises ``--status`` to lower case."""
    if args.output:
        check_output_path(args.output)
    trades = args.what == "trades"
    if args.symbol is not None and not trades:
        raise UsageError("--symbol filters trades only (the signals list has no symbol filter)")
    if args.status is not None:
        word = args.status.strip().lower()
        valid = (*TRADE_STATUSES, *TRADE_STATUS_GROUPS) if trades else SIGNAL_STATUSES
        if word not in valid:
            groups = ("; groups: open, closed (" + ", ".join(CLOSED_TRADE_STATUSES) + "), ended (every "
                      "finished trade)") if trades else ""
            raise UsageError(f"--status {clean(args.status)!r} is not a {args.what[:-1]} status; choose one "
                             "of: " + ", ".join(TRADE_STATUSES if trades else SIGNAL_STATUSES) + groups)
        args.status = word
    since = parse_when("--since", args.since) if args.since is not None else None
    until = parse_when("--until", args.until) if args.until is not None else None
    if since is not None and until is not None and since >= until:
        raise UsageError(f"--since {clean(args.since)} is not before --until {clean(args.until)} (--since is "
                         "inclusive, --until exclusive): nothing could match")


def keep_row(args: argparse.Namespace) -> Callable[[Any], bool] | None:
    """The narrowing applied to fetched rows: ``--status closed`` is fetched with the API's ``closed`` (every
    terminal status) and keeps only the closed_* ones. None: every row the API returned is wanted."""
    if args.what == "trades" and args.status == "closed":
        return lambda trade: trade.status in CLOSED_TRADE_STATUSES
    return None


# ---------------------------------------------------------------------------------------------------------------
# tail


class _Out:
    """stdout that survives a closed pipe (``tail | head``): writing then means 'stop', not a traceback."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write_lines(self, lines: list[str]) -> None:
        self.stream.write("".join(line + "\n" for line in lines))
        self.stream.flush()  # scripts read line by line: never sit on buffered events


async def run_tail(args: argparse.Namespace, session: Session, out: _Out) -> int:
    from ttmt_monitor.sources.ttmt.encode import dumps
    from ttmt_monitor.sources.ttmt.errors import AuthError, ForbiddenError
    from ttmt_monitor.sources.ttmt.stream import ConnectionState, StreamConsumer

    status = session.status
    client = session.client
    labels: dict[str, str] = {}
    refs: dict[str, str] = {}  # trade id -> trd_ reference, for the readable lines
    symbols: dict[str, str] = {}  # trade id -> its symbol (an order fill's line names it)
    account_id: str | None = None
    if args.account is not None:
        # Fetched (not best effort) when an account is named: it must exist before we wait on its events.
        accounts = await client.accounts()
        account = resolve_account(args.account, accounts)
        account_id = account.account_id
        labels = {a.account_id: a.label for a in accounts}
        status(f"only account {clean(account.label)} ({account_id})")
    if not args.json:
        try:
            if not labels:
                labels = {a.account_id: a.label for a in await client.accounts()}
            async for trade in client.iter_trades(status="open"):
                if trade.reference:
                    refs[trade.id] = trade.reference
                if trade.symbol:
                    symbols[trade.id] = trade.symbol
        except (AuthError, ForbiddenError):
            raise
        except Exception as exc:  # noqa: BLE001 - labels and references are a nicety; the stream is the point
            log.debug("accounts/trades for the readable lines failed: %s", exc)

    async def learn_refs(batch: Sequence[Event]) -> None:
        """References for trades first seen in this batch: from the event itself, else one GET per trade."""
        lookups = 0
        for event in batch:
            if isinstance(event, Resync) and event.snapshot is not None:
                refs.update({t.id: t.reference for t in event.snapshot.trades if t.reference})
                symbols.update({t.id: t.symbol for t in event.snapshot.trades if t.symbol})
            trade_id = event_trade_id(event)
            if trade_id is not None and trade_id not in symbols:
                known = getattr(getattr(event, "trade", None) or getattr(event, "position", None), "symbol", None)
                if known:
                    symbols[trade_id] = known
            if trade_id is None or trade_id in refs:
                continue
            trade = getattr(event, "trade", None)
            if trade is not None and trade.reference:
                refs[trade_id] = trade.reference
            elif lookups < 10:  # a bound on requests per batch; the rest show the id's start
                lookups += 1
                try:
                    fetched = await client.trade(trade_id)
                    refs[trade_id] = fetched.reference or trade_id[:8]
                    if fetched.symbol:
                        symbols.setdefault(trade_id, fetched.symbol)
                except (AuthError, ForbiddenError):
                    raise
                except Exception as exc:  # noqa: BLE001 - shown by id then
                    log.debug("trade %s for its reference: %s", trade_id, exc)
                    refs[trade_id] = trade_id[:8]

    def on_state(state: ConnectionState, detail: str) -> None:
        status(f"stream {state.value}" + (f": {detail}" if detail and detail != state.value else ""))

    consumer = StreamConsumer(client, account_id=account_id, last_event_id=args.last_event_id,
                              on_state=on_state)
    # From here the stream's state lines say when (and how long) a resync waits for the rate limit; the readable
    # lines' trade lookups still say so here.
    session.stop_wait_notices()
    session.stop_wait_notices = announce_rate_limit_waits(
        client, status, skip=lambda: consumer.state is ConnectionState.RESYNCING)
    remaining = args.max_events
    if remaining == 0:
        await consumer.aclose()
        return EXIT_OK
    try:
        async for batch in consumer.batches():
            if not args.json:
                await learn_refs(batch)
            lines: list[str] = []
            done = False
            for event in batch:
                lines.append(dumps(event) if args.json else describe(event, labels, refs, symbols))
                if not isinstance(event, Resync) and remaining is not None:
                    remaining -= 1
                    if remaining <= 0:
                        done = True
                        break
            out.write_lines(lines)
            if done:
                return EXIT_OK
    finally:
        await consumer.aclose()
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------
# export


TRADE_COLUMNS = (
    "id", "reference", "created_at", "opened_at", "closed_at", "updated_at", "account_id", "account_label",
    "currency", "channel_id", "channel_name", "signal_id", "symbol", "direction", "status", "entry_price",
    "stop_loss", *(f"tp{i}" for i in range(1, 7)), *(f"tp{i}_hit" for i in range(1, 7)), "volume",
    "realized_pl", "unrealized_pl",
)
SIGNAL_COLUMNS = (
    "id", "received_at", "processed_at", "channel_id", "channel_name", "account_ids", "telegram_message_id",
    "kind", "status", "symbol", "direction", "entry_type", "entry_price", "entry_low", "entry_high", "stop_loss",
    *(f"tp{i}" for i in range(1, 7)), "runner", "skip_reason",
)
_TEXT_RISK = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f"{value:f}" if value.is_finite() else ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        from ttmt_monitor.sources.ttmt.encode import iso

        return iso(value) or ""
    text = str(value)
    if text.startswith(_TEXT_RISK):
        text = "'" + text  # a spreadsheet must show it, not evaluate it
    return text


def trade_row(t: Trade) -> list[str]:
    values = [t.id, t.reference, t.created_at, t.opened_at, t.closed_at, t.updated_at, t.account_id,
              t.account_label, t.currency, t.channel_id, t.channel_name, t.signal_id, t.symbol, t.direction, t.status,
              t.entry_price, t.stop_loss, *t.take_profits[:6], *t.tp_hits[:6], t.volume, t.realized_pl,
              t.unrealized_pl]
    return [_cell(v) for v in values]


def signal_row(s: Signal) -> list[str]:
    values = [s.id, s.received_at, s.processed_at, s.channel_id, s.channel_name, ";".join(s.account_ids),
              s.telegram_message_id, s.kind, s.status, s.symbol, s.direction, s.entry_type, s.entry_price,
              s.entry_low, s.entry_high, s.stop_loss, *s.take_profits[:6], s.runner, s.skip_reason]
    return [_cell(v) for v in values]


def _csv_line(row: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    return buf.getvalue()


class ExportState:
    """The resumable part of an export: where to continue and how much of the file is complete."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        self.path = path
        self.identity = identity
        self.cursor: str | None = None
        self.offset = 0
        self.count = 0
        self.started = False

    def load(self) -> bool:
        """True when a matching unfinished export was found (then cursor/offset/count are set)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as exc:
            raise UsageError(f"the export state file {self.path} is unreadable ({exc}); rerun with --restart") from None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise UsageError(f"{self.path} is not an export state this version understands; rerun with --restart")
        if data.get("identity") != self.identity:
            raise UsageError(
                f"an unfinished export with different arguments owns {self.path.name}; rerun it with the same "
                "arguments to continue, or add --restart to start over"
            )
        cursor, offset, count = data.get("cursor"), data.get("offset"), data.get("count")
        if not (cursor is None or isinstance(cursor, str)) or not isinstance(offset, int) or not isinstance(count, int):
            raise UsageError(f"{self.path} is damaged; rerun with --restart")
        self.cursor, self.offset, self.count, self.started = cursor, offset, count, True
        return True

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        payload = {"version": STATE_VERSION, "identity": self.identity, "cursor": self.cursor,
                   "offset": self.offset, "count": self.count}
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(tmp, self.path)  # atomic: a crash leaves the old state or the new one, never half

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def export_filters(args: argparse.Namespace) -> dict[str, Any]:
    """The export's filters by their API names (status, symbol, account_id, channel_id, after_date,
    before_date): the same keys for the REST listing and the local history (``core.local_history.iter_stored_*``).
    ``--status`` groups become the API word they are fetched with (see :func:`keep_row`); ``args.account``
    must already be an account id (:func:`resolve_account`)."""
    trades = args.what == "trades"
    if args.symbol is not None and not trades:
        raise UsageError("--symbol filters trades only (the signals list has no symbol filter)")
    filters: dict[str, Any] = {}
    for option, name in (("status", "status"), ("account", "account_id"), ("channel", "channel_id"),
                         ("since", "after_date"), ("until", "before_date")):
        value = getattr(args, option)
        if value is not None:
            filters[name] = value
    if trades and filters.get("status") in _GROUP_API_WORD:
        filters["status"] = _GROUP_API_WORD[filters["status"]]
    if trades and args.symbol is not None:
        filters["symbol"] = args.symbol
    return filters


def remembered_base_url() -> str | None:
    """The API address the desktop app uses (its QSettings ``connection/base_url``), or None when it has none
    or it cannot be read. Read through QtCore's QSettings, the app's own store and format on every platform (an
    INI file on Linux, the registry on Windows, a plist on macOS): QtCore only, no GUI; importing QtCore is the
    cost (0.1-0.6 s), paid only by ``export --offline`` without an address."""
    try:
        from PySide6.QtCore import QSettings

        from ttmt_monitor.ui.settings import APP, ORG

        value = QSettings(ORG, APP).value("connection/base_url")
    except Exception as exc:  # noqa: BLE001 - no Qt, an unreadable file...: the default address then
        log.debug("the desktop app's settings could not be read: %s", exc)
        return None
    return value.strip() if isinstance(value, str) and value.strip() else None


def offline_base_url(args: argparse.Namespace) -> str:
    """--base-url, else $TTMT_BASE_URL, else the address the desktop app remembers (its local history is kept
    under it), else the default API address."""
    given = args.base_url or os.environ.get("TTMT_BASE_URL")
    return (given or remembered_base_url() or DEFAULT_BASE_URL).strip()


def run_export_offline(args: argparse.Namespace, stdout: TextIO, status: Status) -> int:
    """``export --offline``: the same CSV/JSON as the online export, read from the local history store the
    desktop app keeps for the key on the base URL (``core.local_history.iter_stored_*``). No network; the key
    (--api-key, $TTMT_API_KEY or the keyring, as online) is needed only to find THAT key's history: each key has
    its own file, named by a one-way hash, and without a key no history is guessed (another user's might be
    the one found). The
    output file is written beside its name and renamed when complete (reading local history is fast, so
    there is nothing to resume: an interrupted export leaves the previous file, never half a document)."""
    from ttmt_monitor.core.local_history import iter_stored_signals, iter_stored_trades
    from ttmt_monitor.core.store import Store, StoreError, store_path
    from ttmt_monitor.sources.ttmt.encode import dumps, to_wire
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    if args.demo:
        raise UsageError("--offline reads the local history of a real connection; the demo keeps none")
    validate_export(args)
    base_url = offline_base_url(args)
    try:
        key = resolve_key(args, base_url, status)
    except AuthFailure:
        raise AuthFailure("export --offline needs the API key to find that key's local history (each key has its "
                          "own; the key is not sent anywhere): pass --api-key, set TTMT_API_KEY, or save the key "
                          "in the desktop app (OS keyring)") from None
    try:
        store = Store.open_existing(base_url, key, codec=CODEC)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    if store is None:
        status(f"(looked for {store_path(base_url, key)})")
        raise UsageError(f"no local history for {base_url} with this key: run the desktop app connected to it "
                         "with this key first "
                         "(it keeps the history), or export without --offline")
    for message in store.messages:  # e.g. a damaged file was moved aside: the user must know why it is empty
        status(message)
    if args.account is not None:
        try:
            args.account = resolve_account(args.account, store.accounts()).account_id
        except BaseException:
            store.close(flush=False)
            raise
    filters = export_filters(args)
    keep = keep_row(args)
    trades = args.what == "trades"
    columns = TRADE_COLUMNS if trades else SIGNAL_COLUMNS
    row = trade_row if trades else signal_row
    is_json = args.format == "json"
    out_path = Path(args.output) if args.output else None
    tmp_path = out_path.with_name(out_path.name + PARTIAL_SUFFIX) if out_path is not None else None
    count = 0
    try:
        data_as_of = store.data_as_of
        items = iter_stored_trades(store, filters) if trades else iter_stored_signals(store, filters)
        if keep is not None:
            items = filter(keep, items)
        try:
            target: TextIO = open(tmp_path, "w", encoding="utf-8", newline="") if tmp_path else stdout  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"cannot write {out_path}: {exc.strerror or exc}") from None
        try:
            target.write("[" if is_json else _csv_line(columns))
            chunk: list[str] = []
            for item in items:
                if is_json:
                    chunk.append(("\n" if count == 0 else ",\n") + dumps(to_wire(item)))
                else:
                    chunk.append(_csv_line(row(item)))
                count += 1
                if len(chunk) >= 500:  # write in slices: flat memory for a long history
                    target.write("".join(chunk))
                    chunk = []
            target.write("".join(chunk))
            if is_json:
                target.write("\n]\n" if count else "]\n")
            target.flush()
        finally:
            if target is not stdout:
                target.close()
        if tmp_path is not None and out_path is not None:
            os.replace(tmp_path, out_path)
    except BaseException:
        if tmp_path is not None:
            with contextlib.suppress(OSError):
                tmp_path.unlink()
        raise
    finally:
        store.close(flush=False)
    as_of = f" (local history as of {data_as_of.isoformat(timespec='seconds')})" if data_as_of else ""
    status(f"exported {count} {args.what} offline{as_of}" + (f" to {args.output}" if args.output else ""))
    return EXIT_OK


async def run_export(args: argparse.Namespace, session: Session, stdout: TextIO) -> int:
    """The online export. With ``-o FILE`` the rows go to ``FILE.partial`` (with its resumable state beside
    FILE) and FILE appears, whole, only when the export completes: an error or Ctrl-C never leaves an empty or
    half FILE, and an older FILE stays until it is replaced."""
    from tqdm import tqdm

    from ttmt_monitor.sources.ttmt.encode import dumps, to_wire

    client = session.client  # (its rate-limit waits are announced by Session.open: announce_rate_limit_waits)
    if args.account is not None:
        args.account = resolve_account(args.account, await client.accounts()).account_id
    trades = args.what == "trades"
    filters = export_filters(args)
    keep = keep_row(args)
    columns = TRADE_COLUMNS if trades else SIGNAL_COLUMNS
    row = trade_row if trades else signal_row
    pages: Callable[..., Any] = client.iter_trade_pages if trades else client.iter_signal_pages
    is_json = args.format == "json"

    state: ExportState | None = None
    out_path = partial_path = None
    resumed = False
    if args.output:
        out_path = Path(args.output)
        partial_path = out_path.with_name(out_path.name + PARTIAL_SUFFIX)
        identity = {"what": args.what, "format": args.format, "filters": filters, "status": args.status,
                    "page_size": args.page_size, "base_url": client.base_url if not args.demo else "demo"}
        state = ExportState(out_path.with_name(out_path.name + STATE_SUFFIX), identity)
        if args.restart:
            state.remove()
        resumed = state.load()
        if resumed:
            if not partial_path.exists() or partial_path.stat().st_size < state.offset:
                raise UsageError(f"{partial_path} is missing or shorter than its export state says; rerun "
                                 "with --restart")
            session.status(f"resuming the export into {out_path} after {state.count} {args.what}")
    target: TextIO | None = None if partial_path is not None else stdout

    def open_target() -> TextIO:
        # Opened when the first page is in: a request that fails at once leaves no file at all.
        assert partial_path is not None
        try:
            opened = open(partial_path, "r+" if resumed else "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"cannot write {partial_path}: {exc.strerror or exc}") from None
        if resumed and state is not None:
            opened.truncate(state.offset)  # drop a page written after the last saved state (a crash mid-page)
            opened.seek(state.offset)
        return opened

    count = state.count if state else 0
    first_item = count == 0
    progress = tqdm(desc=f"export {args.what}", unit=f" {args.what}", initial=count, file=sys.stderr,
                    disable=None if not args.quiet else True, dynamic_ncols=True)
    try:
        # The header goes out with the first page, so a request that fails at once leaves no half document.
        header = "" if (state and state.started) else ("[" if is_json else _csv_line(columns))
        cursor = state.cursor if state else None
        kwargs = dict(filters)
        if cursor is not None:
            kwargs["after"] = cursor
        finished = state is not None and state.started and cursor is None and state.count > 0
        if not finished:
            async for page in pages(page_size=args.page_size, **kwargs):
                items = page.items if keep is None else [item for item in page.items if keep(item)]
                chunk: list[str] = []
                for item in items:
                    if is_json:
                        chunk.append(("\n" if first_item else ",\n") + dumps(to_wire(item)))
                    else:
                        chunk.append(_csv_line(row(item)))
                    first_item = False
                if target is None:
                    target = open_target()
                target.write(header + "".join(chunk))
                header = ""
                count += len(items)
                progress.update(len(items))
                if state is not None:
                    target.flush()
                    os.fsync(target.fileno())  # the rows are on disk before the state says so
                    state.cursor = page.next_cursor if page.has_more else None
                    state.offset = target.tell()
                    state.count = count
                    state.started = True
                    state.save()
        if target is None:
            target = open_target()
        if is_json:
            target.write(header + ("\n]\n" if count else "]\n"))
        elif header:
            target.write(header)
        target.flush()
    except BaseException as exc:
        if target is not None and target is not stdout:
            target.close()
            target = None
        if state is not None and partial_path is not None:
            if state.started:
                # Ctrl-C reaches this coroutine as the CancelledError asyncio.run turns it into (then main says
                # "interrupted; run the same command again" once): one message, not two.
                if not isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
                    session.status(f"the export stopped after {count} {args.what}; run the same command again "
                                   f"to continue it ({partial_path.name} and its state are kept), or add "
                                   "--restart")
            else:  # nothing worth resuming: leave nothing behind
                state.remove()
                with contextlib.suppress(OSError):
                    partial_path.unlink()
        raise
    finally:
        progress.close()
        if target is not None and target is not stdout:
            target.close()
    if state is not None and out_path is not None and partial_path is not None:
        try:
            os.replace(partial_path, out_path)  # FILE appears whole, or not at all
        except OSError as exc:
            # The rows stay in FILE.partial and its state stays too: a rerun finishes without fetching again.
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}; the rows are kept in "
                             f"{partial_path}: run the same command again once {args.output} can be written") from None
        state.remove()  # only now: the export is in FILE
    session.status(f"exported {count} {args.what}" + (f" to {args.output}" if args.output else ""))
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------
# snapshot


async def run_snapshot(args: argparse.Namespace, session: Session, out: _Out) -> int:
    from ttmt_monitor.sources.ttmt.encode import dumps

    snap = await session.client.snapshot()
    if args.json:
        out.write_lines([dumps(snap)])
        return EXIT_OK
    labels = {a.account_id: a.label for a in snap.accounts}
    lines = [f"Accounts ({len(snap.accounts)}):"]
    for a in snap.accounts:
        lines.append(f"  {clean(a.label)}  {clean(a.type)} {clean(a.currency)}  {clean(a.state)}"
                     + ("" if a.is_active else "  (inactive)"))
    lines.append(f"Active trades ({len(snap.trades)}):")
    for t in snap.trades:
        lines.append(f"  {clean(t.reference)}  {clean(t.account_label or labels.get(t.account_id or '', ''))}  "
                     f"{clean(t.symbol)} {t.direction or ''}  {clean(t.status)}  {format_volume(t.volume)} lots  "
                     f"P&L {_pl(t.realized_pl, t.currency)} realized, {_pl(t.unrealized_pl, t.currency)} open")
    lines.append(f"Open positions ({len(snap.positions)}):")
    for p in snap.positions:
        lines.append(f"  {clean(p.account_label)}  {clean(p.symbol)} {p.direction or ''} "
                     f"{format_volume(p.volume)} @ {_ascii_minus(format_price(p.entry_price, p.symbol))} -> "
                     f"{_ascii_minus(format_price(p.current_price, p.symbol))}  P&L {_pl(p.unrealized_pl, p.currency)}")
    out.write_lines(lines)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------
# main


async def _dispatch(args: argparse.Namespace, session: Session, out: _Out) -> int:
    try:
        if args.command == "tail":
            return await run_tail(args, session, out)
        if args.command == "export":
            return await run_export(args, session, out.stream)
        return await run_snapshot(args, session, out)
    finally:
        await session.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (never raises, never prints a traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=os.environ.get("TTMT_LOG_LEVEL", "WARNING").upper(), stream=sys.stderr,
                        format="ttmt-monitor: %(levelname)s %(name)s: %(message)s")
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # (a TextIOWrapper's; a replaced stream may lack it)
        with contextlib.suppress(ValueError):
            if reconfigure is not None:
                reconfigure(errors="replace")  # a cp1252 pipe must not crash us
    try:
        args = build_parser().parse_args(argv)
    except _ArgumentError as exc:
        with contextlib.suppress(OSError, ValueError):
            print(str(exc), file=sys.stderr, flush=True)
        return EXIT_FATAL
    except UsageError as exc:
        error(str(exc))
        return EXIT_FATAL
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    status = Status(args.quiet)
    session = Session(args, status)
    out = _Out(sys.stdout)
    from ttmt_monitor.sources.ttmt.errors import AuthError, ForbiddenError, TTMTError

    try:
        if args.command == "report":
            from ttmt_monitor import cli_report

            return cli_report.run(args, status)
        source = getattr(args, "source", None)
        if source and source.casefold() != "ttmt":
            if args.command == "export":
                raise UsageError("export reads TTMT's history only; --source works with tail, snapshot and report")
            if args.command == "tail":
                # TTMT's stream options: a source's changes have no event ids, and --account is not applied to
                # them; said before the source starts, rather than tailing everything silently.
                for option, value in (("--account", args.account), ("--last-event-id", args.last_event_id)):
                    if value is not None:
                        raise UsageError(f"{option} works with TTMT's own stream only; tail --source "
                                         f"{clean(source)} shows every account of the source and has no event ids "
                                         "to resume from")
            from ttmt_monitor import cli_sources

            try:
                return cli_sources.run(args, out.stream, status)
            except cli_sources.SourceNotFound as exc:
                raise UsageError(str(exc)) from None
        if args.command == "export" and args.offline:
            return run_export_offline(args, out.stream, status)  # no client, no network
        if args.command == "export":
            validate_export(args)  # before the key, the simulator or any request
        session.open()
        return asyncio.run(_dispatch(args, session, out))
    except KeyboardInterrupt:
        if args.command == "export":
            status("interrupted; run the same command again to continue the export")
            return EXIT_INTERRUPTED
        if args.command == "report":  # no statement was written: a script must not take that for success
            status(f"interrupted; {args.output} was not written")
            return EXIT_INTERRUPTED
        return EXIT_OK  # tail and snapshot: Ctrl-C is how they are stopped
    except BrokenPipeError:
        # The reader went away (tail | head): that is how a pipeline ends, not an error.
        with contextlib.suppress(Exception):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (AuthError, ForbiddenError) as exc:
        error(f"{exc.message} — check the API key (and that API access is enabled for the account)")
        return EXIT_AUTH
    except AuthFailure as exc:
        error(str(exc))
        return EXIT_AUTH
    except UsageError as exc:
        error(str(exc))
        return EXIT_FATAL
    except TTMTError as exc:
        error(exc.message)
        return EXIT_FATAL
    except OSError as exc:
        error(f"{exc.strerror or exc}" + (f": {exc.filename}" if getattr(exc, "filename", None) else ""))
        return EXIT_FATAL
    except Exception as exc:  # noqa: BLE001 - the user gets a message, never a traceback
        log.debug("unexpected failure", exc_info=True)
        error(f"unexpected {type(exc).__name__}: {exc}")
        return EXIT_FATAL
    finally:
        session.close_sim()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
