"""The statement as files: the PDF opens (poppler's pdftotext reads it) and carries the figures of the period
asked for; ``ttmt-monitor report`` writes it from a neutral source's snapshot and from TTMT's local history,
checks its options before anything is read, and never leaves a half file."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from _replace import replace
from test_analytics import deal, utc
from ttmt_monitor import cli
from ttmt_monitor.core import analytics as an
from ttmt_monitor.core.formatting import format_pl
from ttmt_monitor.report import write_statement

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


def pdf_text(path: Path) -> str:
    r = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr  # poppler opened and parsed it
    return r.stdout


@needs_poppler
def test_statement_pdf_opens_and_carries_the_figures(qapp: Any, tmp_path: Path) -> None:
    deals = [deal(1, utc(2026, 5, 4, 8), "100", channel="<b>Gold</b> & Co"),
             deal(2, utc(2026, 5, 5, 8), "-40", channel="<b>Gold</b> & Co"),
             deal(3, utc(2026, 5, 6, 8), "15.25", cur="EUR", channel="FX"),
             deal(4, utc(2026, 6, 2, 8), "4321")]          # outside the period
    st = an.build_statement(deals, since=utc(2026, 5, 1), until=utc(2026, 6, 1), title="May <statement>")
    out = write_statement(st, tmp_path / "may.pdf", "pdf")
    assert out.read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["may.pdf"]    # no .partial left
    text = pdf_text(out)
    assert "May <statement>" in text                   # escaped in HTML, shown as text
    assert "<b>Gold</b> & Co" in text                  # a channel name stays plain text
    for figure in ("+60.00 USD", "+15.25 EUR", "+100.00 USD", "\u221240.00 USD", "2.50", "66.7 %"):
        assert figure in text, figure
    assert "4,321" not in text and "May 2026" in text
    html_out = write_statement(st, tmp_path / "may.html", "html")
    page = html_out.read_text(encoding="utf-8")
    assert "&lt;b&gt;Gold&lt;/b&gt; &amp; Co" in page and "<svg" in page


@needs_poppler
def test_report_command_from_a_sources_snapshot(qapp: Any, toy_kind: Any, tmp_path: Path) -> None:
    """The toy source's demo has one closed deal: B2, +10 EUR on 2026-12-01 10:00 UTC."""
    out = tmp_path / "dec.pdf"
    rc = cli.main(["report", "--demo", "--source", "toycsv", "--since", "2026-12-01", "--until", "2026-12-02",
                   "--format", "pdf", "-o", str(out), "-q"])
    assert rc == 0
    text = pdf_text(out)
    assert "+10.00 EUR" in text and "Closed trades (1)" in text and "B2" in text
    # A period without it: the same file, no trade.
    rc = cli.main(["report", "--demo", "--source", "toycsv", "--since", "2026-12-02", "--until", "2026-12-03",
                   "--format", "pdf", "-o", str(out), "-q"])
    assert rc == 0
    text = pdf_text(out)
    assert "No closed trades in this period" in text and "+10.00 EUR" not in text
    # Prague's 1 December starts at 23:00 UTC on 30 November; --account picks by label.
    html = tmp_path / "dec.html"
    rc = cli.main(["report", "--demo", "--source", "toycsv", "--since", "2026-12-01T11:00", "--zone",
                   "Europe/Prague", "--account", "b2", "--format", "html", "-o", str(html), "-q"])
    assert rc == 0
    page = html.read_text(encoding="utf-8")
    assert "+10.00 EUR" in page and "Europe/Prague" in page and ">A1<" not in page


def test_report_options_are_checked_before_anything_is_read(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "r.pdf"
    cases = [
        (["--since", "2026-13-01"], "--since '2026-13-01' is not a valid date"),
        (["--since", "2026-06-02", "--until", "2026-06-01"], "is not before --until"),
        (["--since", "2026-06-01", "--zone", "Mars/Olympus"], "is not an IANA time zone"),
        (["--since", "2026-06-01", "--format", "docx"], "invalid choice"),
    ]
    for extra, needle in cases:
        argv = ["report", "--format", "pdf", "-o", str(out), "--base-url", "http://127.0.0.1:9/api/v1", *extra]
        assert cli.main(argv) == 1, extra
        assert needle in capsys.readouterr().err, extra
    assert list(tmp_path.iterdir()) == []


@needs_poppler
def test_report_from_ttmt_local_history_has_the_figures_of_the_period(
        qapp: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from test_integration_history import fill_store
    from ttmt_monitor.core.local_history import iter_stored_trades
    from ttmt_monitor.core.store import DATA_DIR_ENV, Store
    from ttmt_monitor.sim.runner import SimulatorThread
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    data_dir = tmp_path / "data"
    with SimulatorThread(seed=3, history_days=3, engine_running=False) as sim:
        base_url, key = sim.base_url, sim.api_key
        asyncio.run(fill_store(sim, data_dir))
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))
    monkeypatch.delenv("TTMT_BASE_URL", raising=False)
    # The reference: the same period computed through the API from the same store.
    store = Store.open_existing(base_url, key, data_dir=data_dir, codec=CODEC)
    assert store is not None
    try:
        history = an.from_ttmt_trades(iter_stored_trades(store, {"status": "closed"}), "ttmt")
    finally:
        store.close(flush=False)
    assert history, "the simulator made no closed trades"
    until = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    since = until - timedelta(days=2)
    expected = an.build_statement(history, since=since, until=until)
    assert expected.trades and len(expected.trades) < len(history)   # the period cuts the history
    out = tmp_path / "ttmt.pdf"
    rc = cli.main(["report", "--since", since.date().isoformat(), "--until", until.date().isoformat(),
                   "--format", "pdf", "-o", str(out), "--base-url", base_url, "--api-key", key, "-q"])
    assert rc == 0
    text = pdf_text(out)
    assert f"Closed trades ({len(expected.trades)})" in text
    for cur, m in expected.summary.items():
        assert format_pl(m.net, cur) in text, (cur, m.net)
        assert format_pl(expected.best[cur].profit, cur) in text
    outside = [h for h in history if h.closed_at < since and h.reference]
    if outside:
        assert (outside[0].reference or "") not in text
    assert sum(m.trades for m in expected.summary.values()) == len(expected.trades)


@needs_poppler
def test_statement_pdf_from_a_worker_thread(qapp: Any, tmp_path: Path) -> None:
    """The window prints in an executor (a long statement takes seconds): QTextDocument and QPdfWriter are
    reentrant, so a worker thread writes the same document."""
    import threading

    st = an.build_statement([deal(1, utc(2026, 5, 4, 8), "12.5")], since=utc(2026, 5, 1), until=utc(2026, 6, 1))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            write_statement(st, tmp_path / "t.pdf", "pdf")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive() and errors == []
    assert "+12.50 USD" in pdf_text(tmp_path / "t.pdf")


def test_report_from_a_source_adds_the_deals_the_app_kept(tmp_path: Path, monkeypatch: Any) -> None:
    """``--source NAME`` reads the source's snapshot plus the older deals the desktop app kept for the accounts it
    lists (core.deal_history), and never creates that file."""

    from toy_csv_source import KIND
    from ttmt_monitor import cli_report
    from ttmt_monitor.core.deal_history import DealHistory, history_scope
    from ttmt_monitor.core.store import DATA_DIR_ENV
    from ttmt_monitor.domain import Account, ClosedDeal
    from ttmt_monitor.sources.base import SourceConfig

    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    kind = replace(KIND, history_scope=("path",))
    config = SourceConfig(id="x", kind="toycsv", name="Toy", settings={"path": "/data/a.csv"})
    accounts = [Account(key="toycsv:x|A1", source="toycsv:x", native_id="A1", label="A1")]
    assert cli_report._kept_deals(kind, config, "toycsv:x", accounts) == []
    assert not (tmp_path / "history").exists()
    old = ClosedDeal(key="toycsv:x|A1/d9", source="toycsv:x", account_key="toycsv:x|A1", native_id="d9",
                     closed_at=utc(2026, 1, 5, 9), profit=D("7.25"), currency="USD")
    other = replace(old, key="toycsv:x|B2/d1", account_key="toycsv:x|B2", native_id="d1")
    history = DealHistory.open(tmp_path / "history")
    try:
        history.save(history_scope("toycsv", config.settings, ("path",)), [old, other])
    finally:
        history.close()
    kept = cli_report._kept_deals(kind, config, "toycsv:x", accounts)
    assert [(d.key, d.profit) for d in kept] == [("toycsv:x|A1/d9", D("7.25"))]    # B2 is not listed now
    elsewhere = SourceConfig(id="x", kind="toycsv", name="Toy", settings={"path": "/data/b.csv"})
    assert cli_report._kept_deals(kind, elsewhere, "toycsv:x", accounts) == []


def test_only_a_computed_equity_is_marked_and_as_computed() -> None:
    """An MT4 manager account's equity is the desk's (balance + credit + floating), its balance the server's: the
    statement marked both "(estimated)"."""
    mt4 = an.StatementAccount("mt4|1", "Anna (1)", "MT4 manager", "USD", balance=D("24983.16"),
                              equity=D("24970.10"), equity_computed=True)
    other = an.StatementAccount("tv|2", "DEMO2", "Tradovate", "USD", balance=D("50000"), equity=D("50100"))
    st = an.build_statement([], since=utc(2026, 5, 1), until=utc(2026, 6, 1), accounts=[mt4, other])
    page = an.render_html(st)
    assert "24,983.16 USD</td>" in page and "24,970.10 USD (computed)</td>" in page
    assert "50,100.00 USD</td>" in page and "estimated" not in page


def test_an_empty_month_of_the_statement_says_so() -> None:
    deals = [deal(1, utc(2026, 5, 4, 8), "100"), deal(2, utc(2026, 7, 6, 8), "-40")]  # June: nothing closed
    page = an.render_html(an.build_statement(deals, since=utc(2026, 5, 1), until=utc(2026, 8, 1)))
    assert page.count("Month: no closed trades") == 1 and "Month: 0 " not in page
    assert "Month: +100.00 USD &middot; 1 trade</p>" in page


def test_statement_strips_control_and_bidi_characters_from_service_strings(tmp_path: Path) -> None:
    """A label with a terminal escape and a right-to-left override (U+202E) showed reversed in the PDF: the
    statement only HTML-escaped service strings, where the terminal output strips these characters."""
    hostile = "Red\x1b[31mANSI\x1b[0m\u202eLive\u2066x\u2069\x85"
    deals = [deal(1, utc(2026, 5, 4, 8), "100", acct=f"sim|{hostile}", channel="Gold\u202dVIP\x07",
                  symbol="XAU\u202bUSD")]
    st = an.build_statement(deals, since=utc(2026, 5, 1), until=utc(2026, 6, 1), title="May\u202e statement\x1b")
    page = write_statement(st, tmp_path / "may.html", "html").read_text(encoding="utf-8")
    bad = [ch for ch in page if (ord(ch) < 0x20 and ch not in "\n\t\r") or 0x7F <= ord(ch) <= 0x9F
           or 0x202A <= ord(ch) <= 0x202E or 0x2066 <= ord(ch) <= 0x2069]
    assert bad == [], sorted({hex(ord(ch)) for ch in bad})
    for shown in ("Red[31mANSI[0mLivex", "GoldVIP", "XAUUSD", "May statement"):
        assert shown in page, shown
