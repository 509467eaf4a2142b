"""``ttmt-monitor snapshot|tail --source NAME`` for a kind other than TTMT (the toy CSV kind, registered here)."""

from __future__ import annotations

import json

import pytest

from toy_csv_source import KIND
from ttmt_monitor import cli
from ttmt_monitor.sources import registry


@pytest.fixture
def toy():
    registry.register(KIND)
    yield
    registry.unregister("toycsv")


def test_snapshot_of_a_demo_kind_readable_and_json(toy, capsys):
    assert cli.main(["snapshot", "--demo", "--source", "toycsv"]) == 0
    text = capsys.readouterr().out
    assert "Accounts (2)" in text and "Open positions (2)" in text and "Closed (1)" in text
    assert "ES BUY 2.00 @ 5000.25" in text and "+125.50 USD" in text
    assert "at 2026-12-01 10:00:00 UTC" in text  # a closed deal's time says its zone (`tail`'s are local)
    assert cli.main(["snapshot", "--demo", "--source", "toycsv", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["source"] == "Toy CSV"
    assert {p["symbol"]: p["profit"] for p in doc["positions"]} == {"ES": "125.50", "NQ": "-40"}  # exact strings


def test_tail_of_a_demo_kind(toy, capsys):
    assert cli.main(["tail", "--demo", "--source", "toycsv", "--json", "--max-events", "1"]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line["type"] == "reset" and line["positions"] == 2 and line["source"] == "Toy CSV"


def test_unknown_source_names_the_choices(toy, capsys):
    assert cli.main(["snapshot", "--demo", "--source", "nope"]) == cli.EXIT_FATAL
    err = capsys.readouterr().err
    assert "no source kind 'nope'" in err and "toycsv" in err
    assert cli.main(["export", "trades", "--format", "csv", "--source", "toycsv"]) == cli.EXIT_FATAL
    assert "--source works with tail, snapshot and report" in capsys.readouterr().err


def test_export_help_says_what_export_does(capsys):
    """export --help said --offline needs "no key" (it needs the key: it picks that key's history) and listed
    --source, which export refuses. Now the help says why the key is needed and hides --source; export
    --source still gets the clear refusal, not "unrecognized arguments"."""
    with pytest.raises(SystemExit) as done:
        cli.build_parser().parse_args(["export", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--source" not in text and "no network, no key" not in text
    assert "The key is still needed" in text
    assert cli.main(["export", "signals", "--format", "json", "--offline", "--source", "tradovate"]) == cli.EXIT_FATAL
    assert "export reads TTMT's history only" in capsys.readouterr().err
