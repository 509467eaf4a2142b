"""Tests of core/formatting.py: the number, price, volume and time conventions of the desk (pure, no Qt)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given, strategies as st

from ttmt_monitor.core.formatting import (
    MINUS,
    currency_precision,
    format_age,
    format_contracts,
    format_money,
    format_pl,
    format_price,
    format_time,
    format_volume,
    pl_sign,
    status_label,
    symbol_digits,
    zone_label,
    zone_short,
)


def test_money_uses_currency_precision_and_grouping():
    assert format_money(D("1234.5"), "USD") == "1,234.50 USD"
    assert format_money(D("1234.567"), "EUR") == "1,234.57 EUR"
    assert format_money(D("123456.7"), "JPY") == "123,457 JPY"
    assert format_money(D("-12"), "eur") == f"{MINUS}12.00 EUR"
    assert format_money(D("1.2345"), "KWD") == "1.234 KWD"  # half-even
    assert format_money(D("5"), None) == "5.00"


def test_pl_has_explicit_sign_and_unsigned_zero():
    assert format_pl(D("1234.5"), "USD") == "+1,234.50 USD"
    assert format_pl(D("-12"), "EUR") == f"{MINUS}12.00 EUR"
    assert format_pl(D("0"), "USD") == "0.00 USD"
    # Rounds to zero: neither sign nor colour.
    assert format_pl(D("-0.004"), "USD") == "0.00 USD"
    assert pl_sign(D("-0.004"), "USD") == 0
    assert pl_sign(D("-0.004")) == 0
    assert pl_sign(D("-0.005")) == 0  # half-even: -0.00
    assert pl_sign(D("-0.006")) == -1
    assert pl_sign(D("0.4"), "JPY") == 0
    assert pl_sign(D("7"), "USD") == 1
    assert pl_sign(None) == 0


def test_none_and_garbage_give_text_not_exceptions():
    for fn in (format_money, format_pl):
        assert fn(None, "USD") == ""
        assert fn("not a number", "USD") == ""
    assert format_price(None, "XAUUSD") == ""
    assert format_volume(None) == ""
    assert format_time(None) == ""
    assert format_age(None) == ""
    assert format_money(D("NaN"), "USD") == "NaN USD"
    assert format_price(D("Infinity"), "EURUSD") == "Infinity"


def test_money_never_uses_binary_float_values():
    # 0.1 + 0.2 as floats is 0.30000000000000004; formatting must see the decimal the server meant.
    assert format_money(0.1 + 0.2, "USD") == "0.30 USD"
    # float 2.675 is 2.67499999..., Decimal('2.675') rounds half-even to 2.68
    assert format_money(2.675, "USD") == "2.68 USD"


@pytest.mark.parametrize(
    ("symbol", "digits"),
    [
        ("XAUUSD", 2), ("EURUSD", 5), ("GBPJPY", 3), ("US30", 1), ("BTCUSD", 2), ("XAUUSD.m", 2),
        ("EURUSDm", 5), ("#US30", 1), ("xauusd", 2), ("AUDCAD", 5), ("CADJPY.pro", 3), ("EURUSD-ECN", 5),
        ("FOOBAR", None), ("", None), (None, None), ("...", None),
    ],
)
def test_symbol_digits(symbol, digits):
    assert symbol_digits(symbol) == digits


def test_price_uses_symbol_digits_else_its_own_decimals():
    assert format_price(D("2345.6"), "XAUUSD") == "2345.60"
    assert format_price(D("1.0845"), "EURUSD") == "1.08450"
    assert format_price(D("187.1234"), "GBPJPY") == "187.123"
    assert format_price(D("39123.46"), "US30") == "39123.5"
    assert format_price(D("1.08450"), "UNKNOWN") == "1.08450"
    assert format_price(D("1E+2"), None) == "100"
    assert format_price(D("-1.5"), None) == f"{MINUS}1.5"


def test_volume_in_lots():
    assert format_volume(D("0.1")) == "0.10"
    assert format_volume(D("1")) == "1.00"
    assert format_volume(D("0.001")) == "0.001"
    assert format_volume(D("1E+1")) == "10.00"


def test_volume_in_contracts():
    assert [format_contracts(v) for v in (D("2"), D("2.00"), D("1.50"), D("1E+1"), D("0.000"), D("-3"))] == [
        "2", "2", "1.5", "10", "0", "\u22123"]
    assert format_contracts(None) == "" and format_contracts(D("NaN")) == "NaN"
    assert format_volume("0.05") == "0.05"


def test_currency_precision():
    assert currency_precision("JPY") == 0
    assert currency_precision("jpy") == 0
    assert currency_precision("USD") == 2
    assert currency_precision(None) == 2
    assert currency_precision("XYZ") == 2


def test_time_local_and_utc():
    moment = datetime(2026, 11, 23, 14, 5, 3, 250000, tzinfo=UTC)
    assert format_time(moment, utc=True) == "2026-11-23 14:05:03"
    local = moment.astimezone()
    assert format_time(moment) == local.strftime("%Y-%m-%d %H:%M:%S")
    # Another zone in, UTC out.
    plus2 = moment.astimezone(timezone(timedelta(hours=2)))
    assert format_time(plus2, utc=True) == "2026-11-23 14:05:03"
    # A naive datetime is taken as UTC (the domain's promise), not as local time.
    assert format_time(datetime(2026, 11, 23, 14, 5, 3), utc=True) == "2026-11-23 14:05:03"


def test_zone_label(monkeypatch):
    assert zone_label(utc=True) == "UTC"
    label = zone_label(utc=False)
    assert label  # something is always shown
    offset = datetime.now().astimezone().utcoffset()
    if offset:
        assert "UTC" in label


@pytest.mark.skipif(not hasattr(__import__("time"), "tzset"), reason="the TZ variable is how POSIX sets a zone")
def test_zone_short_fits_a_column_header(monkeypatch):
    """A time column's header names its zone briefly ("Opened (JST)"): the full label, "JST, UTC+09:00", was
    wider than the time under it. A zone without an abbreviation reads as its offset. POSIX TZ strings: no tzdata
    needed."""
    import time

    expected = {"JST-9": ("JST", "JST, UTC+09:00"), "<+0530>-5:30": ("UTC+5:30", "UTC+05:30"),
                "<-03>+3": ("UTC\u22123", "UTC\u221203:00"), "UTC0": ("UTC", "UTC"),
                "<+00>0": ("UTC", "UTC"), "CET-1": ("CET", "CET, UTC+01:00")}
    try:
        for tz, (short, full) in expected.items():
            monkeypatch.setenv("TZ", tz)
            time.tzset()
            assert (zone_short(utc=False), zone_label(utc=False)) == (short, full), tz
            assert zone_short(utc=True) == "UTC"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_age():
    assert format_age(3.9) == "3 s ago"
    assert format_age(0) == "0 s ago"
    assert format_age(-5) == "0 s ago"
    assert format_age(125) == "2 min ago"
    assert format_age(7200) == "2 h ago"
    assert format_age(3 * 86400 + 5) == "3 d ago"
    assert format_age(float("nan")) == ""


@given(st.decimals(min_value=D("-1e12"), max_value=D("1e12"), allow_nan=False, places=4))
def test_pl_text_agrees_with_sign(value):
    text = format_pl(value, "USD")
    sign = pl_sign(value, "USD")
    assert text.endswith(" USD")
    if sign > 0:
        assert text.startswith("+")
    elif sign < 0:
        assert text.startswith(MINUS)
    else:
        assert text == "0.00 USD"
    # The number shown is the value rounded half-even to cents.
    shown = D(text[:-4].lstrip("+").replace(MINUS, "-").replace(",", ""))
    assert shown == value.quantize(D("0.01"))


def test_status_words_read_as_a_trader_reads_them():
    assert status_label("closed_profit") == "Closed (profit)"
    assert status_label("closed_timeout_cleanup") == "Closed (timeout)"
    assert status_label("partial_closed") == "Partly closed"
    assert status_label("ACTIVE") == "Active"  # the decoder keeps known words in the contract's case; be lenient
    assert status_label("on_hold") == "On hold"  # unknown to the contract: shown as received, never dropped
    assert status_label(None) == "" and status_label("") == ""
    assert status_label("DEPLOY_FAILED") == "Deploy failed"  # a service in upper case reads like the others
    assert status_label("DEPLOYED") == status_label("deployed") == "Deployed"


def test_a_learnt_symbols_digits_pad_its_prices_and_never_round_a_finer_one():
    from ttmt_monitor.core import formatting
    from ttmt_monitor.core.formatting import format_price, learn_symbol_digits

    assert format_price(D("21505.0"), "QQZ9") == "21505.0"  # unknown: the decimals it was sent with
    try:
        learn_symbol_digits("QQZ9", 2)  # (what Tradovate's source tells from a 0.25 tick)
        assert format_price(D("21505.0"), "QQZ9") == "21505.00"
        assert format_price(D("21501.25"), "QQZ9") == "21501.25"
        assert format_price(D("6052.5625"), "QQZ9") == "6052.5625"  # an average entry stays exact
        # ... to two decimals past the symbol's: an average of thirds has no end (a column cut it "21508.083…")
        assert format_price(D("21508.08333333"), "QQZ9") == "21508.0833"
        assert format_price(D("-68.55666666"), "QQZ9") == "\u221268.5567"
        learn_symbol_digits("XAUUSD", 5)  # a symbol the desk knows keeps its digits
        assert format_price(D("2345.6"), "XAUUSD") == "2345.60"
    finally:
        formatting._LEARNT_DIGITS.pop("QQZ9", None)  # (process-wide: later tests start without it)
