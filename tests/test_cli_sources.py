"""``ttmt-monitor snapshot|tail --source NAME`` for a kind other than TTMT (the toy CSV kind, registered here)."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time

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


def test_tail_of_a_source_does_not_count_its_resync_line(toy, tmp_path, monkeypatch):
    """--max-events counted the reset (resync) line, though the help says resync lines are not counted: with
    --max-events 1 the command ended on the resync, before any event. Here a row added to the CSV once the
    reset is out is the one event."""
    from toy_csv_source import CSV
    from ttmt_monitor import cli_sources
    from ttmt_monitor.sources.base import SourceConfig

    path = tmp_path / "mine.csv"
    path.write_text(CSV)
    config = SourceConfig(id="mine", kind="toycsv", name="Mine", settings={"path": str(path)})
    monkeypatch.setattr(cli_sources, "configured_sources", lambda: [config])
    monkeypatch.setattr(cli_sources, "load_secrets", lambda _config: {})

    class Stdout(io.StringIO):
        reset = threading.Event()

        def write(self, text: str) -> int:
            if '"type": "reset"' in text:
                self.reset.set()
            return super().write(text)

    out = Stdout()
    monkeypatch.setattr(sys, "stdout", out)

    def add_a_row() -> None:
        out.reset.wait(20)  # bounded; without the reset the command never sees a change and the test fails below
        with path.open("a") as handle:
            handle.write("A1,CL,BUY,3,70.5,12,USD,\n")
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new mtime, even with coarse stamps

    writer = threading.Thread(target=add_a_row, daemon=True)
    writer.start()
    assert cli.main(["tail", "--source", "Mine", "--json", "--max-events", "1"]) == 0
    writer.join(5)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["type"] for line in lines] == ["reset", "upsert"], lines
    assert lines[0]["positions"] == 2 and lines[0]["source"] == "Mine"
    assert lines[1]["symbol"] == "CL"


def test_tail_of_a_source_refuses_ttmt_only_options(toy, capsys):
    """--account and --last-event-id were silently ignored with --source (every account tailed, from now)."""
    for extra in (["--account", "A1"], ["--last-event-id", "5"]):
        assert cli.main(["tail", "--demo", "--source", "toycsv", "--max-events", "1", *extra]) == cli.EXIT_FATAL
        err = capsys.readouterr().err
        assert f"{extra[0]} works with TTMT's own stream only" in err, err


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
