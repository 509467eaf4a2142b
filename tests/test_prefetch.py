"""The start-up fast path (sources/ttmt/prefetch.py, ui/early.py): its one-GET reader (h11 on a socket) on hostile
answers, its bounds (size, total deadline), the
head start the entry point makes before the GUI is imported, and a first run end to end (the desk shows the API's
lists, then keeps them in a new local history file)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ttmt_monitor.core.paths import store_path
from ttmt_monitor.sources.ttmt import prefetch as pf
from ttmt_monitor.sources.ttmt.client import TTMTClient

OK = b"HTTP/1.1 200 OK\r\n"


def test_content_length_body():
    response = OK + b"Content-Length: 7\r\nContent-Type: application/json\r\n\r\n{\"a\":1}"
    assert pf._parse_response(response) == b'{"a":1}'


def test_body_until_close_without_length():
    assert pf._parse_response(OK + b"Content-Type: application/json\r\n\r\n[1,2]") == b"[1,2]"


def test_chunked_body_with_extensions_and_trailers():
    raw = OK + b"Transfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: y\r\n\r\n"
    assert pf._parse_response(raw) == b'{"a":1}'


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}",  # any status but 200: the client's business
    b"HTTP/1.1 304 Not Modified\r\n\r\n",
    OK + b"Content-Length: 10\r\n\r\n{}",  # truncated
    OK + b"Content-Length: 1\r\n\r\n{}",  # longer than announced
    # Two different lengths. (The same length twice is one header to h11, as RFC 9110 §8.6 allows.)
    OK + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    OK + b"Content-Length: +2\r\n\r\n{}",
    OK + b"Content-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}",  # never asked for
    OK + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    OK + b"Transfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n",  # int(.., 16) would take these
    OK + b"Transfer-Encoding: chunked\r\n\r\n+2\r\n{}\r\n0\r\n\r\n",
    OK + b"Transfer-Encoding: chunked\r\n\r\n1_0\r\n{}\r\n0\r\n\r\n",
    OK + b"Transfer-Encoding: chunked\r\n\r\n5\r\n{}\r\n0\r\n\r\n",  # truncated chunk
    OK + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n",  # no last chunk
    OK + b"Bad Header Line\r\n\r\n{}",
    OK + b" Content-Length: 2\r\n\r\n{}",  # obsolete line folding
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",  # no end of headers
    b"SSH-2.0-OpenSSH\r\n\r\n",
])
def test_odd_answers_are_refused(raw):
    with pytest.raises(ValueError):
        pf._parse_response(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=60))
def test_hostile_bytes_only_ever_raise_value_error(head, body):
    for raw in (head, OK + head, OK + b"Transfer-Encoding: chunked\r\n\r\n" + head + body):
        try:
            pf._parse_response(raw)
        except ValueError:
            pass


@pytest.mark.parametrize("answer", [
    OK + b"Content-Length: 7\r\n\r\n{\"a\":1}",
    OK + b"Transfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n",
])
def test_a_server_that_keeps_the_connection_open_does_not_cost_the_timeout(answer):
    """Some servers and proxies ignore ``Connection: close``: the body is complete when Content-Length bytes or
    the last chunk are in, and the reader stops there instead of waiting for the timeout."""
    import socket
    import threading
    import time

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    release = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(answer[:20])
        time.sleep(0.05)  # the answer in two parts
        conn.sendall(answer[20:])
        release.wait(10)  # ... and the connection left open
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        body = pf._http_get("http", "127.0.0.1", port, "/api/v1/accounts", {"Accept": "application/json"}, 5)
        assert body == b'{"a":1}' and time.monotonic() - started < 2
    finally:
        release.set()
        thread.join(5)
        listener.close()


def _one_answer_server(answer_parts, gap: float = 0.0):
    """A loopback server that sends ``answer_parts`` (with ``gap`` s between them) to one client, then holds the
    connection open until released. Returns (port, release, close)."""
    import socket
    import threading
    import time

    listener = socket.create_server(("127.0.0.1", 0))
    release = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        try:
            for part in answer_parts:
                conn.sendall(part)
                if gap and release.wait(gap):
                    break
            release.wait(20)
        except OSError:
            pass
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close() -> None:
        release.set()
        thread.join(5)
        listener.close()

    return listener.getsockname()[1], close, time


def test_a_body_over_the_cap_is_left_to_the_client():
    """The client's bound (limits.MAX_BODY; here a small one) holds on the fast path too: reading stops there."""
    port, close, _ = _one_answer_server([OK + b"Content-Length: 5000\r\n\r\n" + b"x" * 5000])
    try:
        with pytest.raises(ValueError, match="over 1000 bytes"):
            pf._http_get("http", "127.0.0.1", port, "/api/v1/accounts", {}, 5, max_body=1000)
    finally:
        close()


def test_a_trickling_server_is_cut_at_the_total_deadline():
    """One byte every 0.1 s never trips a per-read timeout; the request's total deadline ends it."""
    answer = OK + b"Content-Length: 1000\r\n\r\n" + b"x" * 1000
    port, close, time = _one_answer_server([answer[i:i + 1] for i in range(len(answer))], gap=0.1)
    try:
        started = time.monotonic()
        with pytest.raises((ValueError, OSError)):
            pf._http_get("http", "127.0.0.1", port, "/api/v1/accounts", {}, 1.0)
        assert time.monotonic() - started < 4  # 1 s deadline, with room for a loaded machine
    finally:
        close()


def test_https_is_verified_and_read_through_tls():
    """The fast path keeps TLS: a chunked answer read through it from a server whose certificate a CA we trust
    signed; the same server is refused against the system's trust store (never an unverified connection)."""
    import socket
    import ssl
    import threading

    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    answer = OK + b"Transfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n"

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(65536)
                    tls.sendall(answer)
            except (ssl.SSLError, OSError):
                pass  # the client refused our certificate

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        assert pf._http_get("https", "127.0.0.1", port, "/api/v1/accounts", {}, 10,
                            ssl_context=client_ctx) == b'{"a":1}'
        with pytest.raises(ssl.SSLError):
            pf._http_get("https", "127.0.0.1", port, "/api/v1/accounts", {}, 10)
    finally:
        thread.join(10)
        listener.close()


@pytest.mark.parametrize(("body", "want"), [
    ({"has_more": True, "next_cursor": "c1"}, (True, "c1")),
    ({"has_more": "true", "next_cursor": "c1"}, (True, "c1")),
    ({"has_more": True, "next_cursor": ""}, (False, None)),  # nothing to ask for: no more
    ({"has_more": True, "next_cursor": 5}, (False, None)),
    ({"has_more": False, "next_cursor": "c1"}, (False, "c1")),
    ([1, 2], (False, None)),
])
def test_every_pager_reads_a_page_envelope_alike(body, want):
    """paging.page_fields: what the client's pages, the open-trades walk and the prefetch's page all read."""
    from ttmt_monitor.sources.ttmt.paging import OpenTradesWalk, page_fields

    assert page_fields(body) == want
    walk = OpenTradesWalk(100)
    assert walk.take([{"id": "t"}], body) is want[0]
    assert walk.params().get("after") == (want[1] if want[0] else None)


def test_the_limits_are_the_clients():
    from ttmt_monitor.sources.ttmt import client, limits

    assert pf.MAX_BODY == client.MAX_BODY == limits.MAX_BODY
    assert client.REQUEST_DEADLINE == limits.REQUEST_DEADLINE


def test_proxies_and_odd_urls_leave_it_to_the_client(monkeypatch):
    assert pf.SnapshotPrefetch.usable("http://127.0.0.1:8000/api/v1")
    for url in ("ftp://x/api", "http://user:pw@host/api", "http://host:99999/api", "http:///api", "http://h/a?x=1"):
        assert not pf.SnapshotPrefetch.usable(url), url
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert not pf.SnapshotPrefetch.usable("https://app.telegramtometatrader.com/api/v1")
    prefetch = pf.SnapshotPrefetch("https://app.telegramtometatrader.com/api/v1", "ttmt_live_" + "A" * 43)
    assert prefetch.result(1) is None and prefetch.wait_sent(0)


def test_a_key_with_a_line_break_is_never_sent(sim_paused):
    """Header injection: the request is refused before it is written, and the fast path steps aside."""
    sim = sim_paused
    with pytest.raises(ValueError, match="control character"):
        pf._http_get("http", "127.0.0.1", sim.port, "/api/v1/accounts",
                     {"Authorization": f"Bearer {sim.api_key}\r\nX-Injected: 1"}, 5)
    assert pf.SnapshotPrefetch(sim.base_url, sim.api_key + "\nX: y").result(15) is None


def test_blocking_result_matches_the_client(sim_paused):
    import asyncio

    sim = sim_paused
    got = pf.SnapshotPrefetch(sim.base_url, sim.api_key).result(15)
    assert got is not None
    snapshot = got[0]

    async def expected():
        async with TTMTClient(sim.base_url, sim.api_key) as client:
            return await client.snapshot()

    want = asyncio.run(expected())
    assert snapshot.accounts == want.accounts
    assert sorted(snapshot.positions, key=lambda p: p.id) == sorted(want.positions, key=lambda p: p.id)
    assert sorted(snapshot.trades, key=lambda t: t.id) == sorted(want.trades, key=lambda t: t.id)
    assert sorted(snapshot.closed_positions, key=lambda p: p.id) == sorted(want.closed_positions, key=lambda p: p.id)


# --- the head start (ui/early.py) ------------------------------------------------------------------------------

@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """The settings and the history in temp dirs (QSettings follows XDG_CONFIG_HOME when first used)."""
    from PySide6.QtCore import QSettings

    monkeypatch.setenv("TTMT_MONITOR_DATA_DIR", str(tmp_path / "data"))
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "config"))
    yield tmp_path


def test_head_start_on_a_first_run_and_not_after(qapp, sim_paused, isolated, monkeypatch):
    from ttmt_monitor.ui.early import begin

    sim = sim_paused
    monkeypatch.setenv("TTMT_API_KEY", sim.api_key)
    assert begin(["--demo"]) is None and begin(["--help"]) is None
    assert begin(["--base", sim.base_url]).base_url == sim.base_url  # abbreviated, as argparse accepts it
    early = begin(["--base-url", sim.base_url])
    assert early is not None and early._done.wait(15)  # noqa: SLF001
    assert early.take_prefetch(sim.base_url + "/other", sim.api_key) is None  # another URL: not for it
    early = begin(["--base-url", sim.base_url])
    assert early is not None and early._done.wait(15), "the head start never finished"  # noqa: SLF001
    prefetch = early.take_prefetch(sim.base_url, sim.api_key)
    assert prefetch is not None and early.take_prefetch(sim.base_url, sim.api_key) is None  # handed over once
    got = prefetch.result(15)
    assert got is not None and got[0].accounts

    path = store_path(sim.base_url, sim.api_key)  # a local history exists now: a delta sync, no head start
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    early = begin([f"--base-url={sim.base_url}"])
    assert early is not None and early._done.wait(15), "the head start never finished"  # noqa: SLF001
    assert early.take_prefetch(sim.base_url, sim.api_key) is None
    assert early._key == sim.api_key  # noqa: SLF001


def test_first_run_shows_the_api_lists_then_keeps_them(sim, tmp_path):
    """The app as a user starts it with a key (here from $TTMT_API_KEY) and no history yet: it reports its first
    paint with data, and a run long enough to settle leaves a history file holding what the desk showed."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path / "home"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), TTMT_MONITOR_DATA_DIR=str(tmp_path / "data"),
               TTMT_API_KEY=sim.api_key)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ttmt_monitor", "--base-url", sim.base_url, *args], env=env,
                              capture_output=True, text=True, timeout=90)

    proc = run("--report-startup")
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("startup-ready "))
    assert "ok=True" in line and float(line.split()[1]) > 0 and int(line.split("trades=")[1].split()[0]) > 0
    proc = run("--smoke-test", "--quit-after", "30")
    assert proc.returncode == 0, proc.stderr[-2000:]
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    data_dir = Path(env["TTMT_MONITOR_DATA_DIR"])
    with Store.open_existing(sim.base_url, sim.api_key, data_dir=data_dir, codec=CODEC) as store:
        counts = store.counts()
        assert counts["accounts"] > 0 and counts["trades"] > 0, counts
        assert store.data_as_of is not None
    for text in (proc.stdout, proc.stderr):
        assert sim.api_key not in text and "Traceback" not in text
    # The next start paints the local history (read by the head start) before the API's fresh lists.
    proc = run("--report-startup")
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("startup-ready "))
    fresh, cache = float(line.split()[1]), float(line.split("cache=")[1].split()[0])
    assert 0 < cache <= fresh, line


def test_peek_reads_a_history_file_without_touching_it(tmp_path):
    """Store.peek / sync.peek_cached: the same first screen as load_cached, and nothing created, migrated or moved
    aside (the file may belong to another running copy of the app)."""
    import sqlite3

    from ttmt_monitor.core.local_history import load_cached
    from ttmt_monitor.core.models import Account
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC
    from ttmt_monitor.sources.ttmt.sync import peek_cached

    url = "http://127.0.0.1:9/api/v1"
    key = "ttmt_live_" + "p" * 43
    path = store_path(url, key, tmp_path)
    assert Store.peek(path, codec=CODEC) is None and peek_cached(url, key, data_dir=tmp_path) is None
    assert not path.exists()  # nothing created
    with Store.open(url, key, data_dir=tmp_path, codec=CODEC) as store:
        assert peek_cached(url, key, data_dir=tmp_path) is None  # empty: nothing worth showing
        store.put_accounts([Account("a1", "Live", "live", "USD", "deployed", True)])
        store.flush_sync()
        want = load_cached(store)
    got = peek_cached(url, key, data_dir=tmp_path)
    assert got is not None and got.accounts == want.accounts and got.store is None
    before = path.read_bytes()
    peeked = Store.peek(path, codec=CODEC)
    assert peeked is not None and peeked.counts()["accounts"] == 1
    with pytest.raises(sqlite3.OperationalError):  # read-only: a write is refused
        peeked._read.execute("DELETE FROM accounts")  # noqa: SLF001
    peeked.close()
    assert path.read_bytes() == before
    with sqlite3.connect(path) as conn:  # written by a newer app: not for us to read
        conn.execute("PRAGMA user_version = 999")
    assert Store.peek(path, codec=CODEC) is None and peek_cached(url, key, data_dir=tmp_path) is None
    foreign = tmp_path / "other.sqlite3"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE x (y)")
    assert Store.peek(foreign, codec=CODEC) is None and foreign.exists()


def test_a_rejected_key_spends_no_request_on_the_history_page(sim_paused, monkeypatch):
    """When the snapshot's lists fail (here a 401), the client loads everything itself: the prefetch does not
    also ask for the newest trades page (the API allows 30 requests a minute)."""
    import asyncio

    sim = sim_paused
    calls: list[str] = []
    real_get = pf._http_get

    def counting_get(scheme, host, port, target, headers, timeout, on_sent=None):  # a spy: the real GET runs
        calls.append(target)
        return real_get(scheme, host, port, target, headers, timeout, on_sent)

    monkeypatch.setattr(pf, "_http_get", counting_get)
    wrong = sim.api_key[:-4] + ("AAAA" if not sim.api_key.endswith("AAAA") else "BBBB")
    prefetch = pf.SnapshotPrefetch(sim.base_url, wrong)
    assert prefetch.result(15) is None
    assert asyncio.run(prefetch.page()) is None
    assert len(calls) == 3 and not any("limit=100" in c and "status=open" not in c for c in calls), calls


def test_a_result_already_here_is_taken_without_a_trip_through_the_loop():
    """The app builds its window while the lists are decoded; if they are in by the time it asks, the models fill
    at once: a trip through the loop would let the window paint once more, empty (measured: ~15 ms a paint)."""
    import asyncio

    async def main() -> tuple[object, list[str], object, object]:
        ran: list[str] = []
        slot = pf._Slot()
        slot.set("lists")
        asyncio.get_running_loop().call_soon(ran.append, "loop turned")
        got = await slot.wait(1.0)
        seen_then = list(ran)
        failed = pf._Slot()
        failed._future.set_exception(RuntimeError("boom"))  # never raised to the caller: it loads by itself
        pending = pf._Slot()  # nothing comes: the wait ends at its timeout with None
        return got, seen_then, await failed.wait(1.0), await pending.wait(0.05)

    got, seen_then, failed, pending = asyncio.run(main())
    assert got == "lists" and seen_then == []
    assert failed is None and pending is None
