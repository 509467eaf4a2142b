"""Each failure the MT4 manager source can meet gives a clear sentence and loses nothing: bad credentials (at
start and revoked while running), an untrusted certificate, a missing client certificate, the wrong protocol
generation either way, a dead MT4 link, bad settings; the password never reaches a log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
import trustme

from mt4_support import SOURCE_ID, WATCH_GROUPS, make_source
from source_contract import Consumer, normalize, wait_for
from ttmt_monitor.domain import HealthState
from ttmt_monitor.sim.mt4manager.runner import Mt4SimulatorThread
from ttmt_monitor.sources.base import AuthError
from ttmt_monitor.sources.mt4manager.source import Mt4ManagerSource


@pytest.fixture(scope="module")
def sim() -> Iterator[Mt4SimulatorThread]:
    with Mt4SimulatorThread(seed=9, step_interval=0.1) as running:
        yield running


async def final_health(source: Mt4ManagerSource, timeout: float = 20.0) -> list:
    """Run ``changes()`` until it ends (it must, for these failures); every batch."""
    batches = []

    async def run() -> None:
        async for batch in source.changes():
            batches.append(batch)
    await asyncio.wait_for(run(), timeout)
    return batches


def ends_with_auth_error(source: Mt4ManagerSource, *words: str) -> str:
    batches = asyncio.run(final_health(source))
    health = source.health()
    assert health.state is HealthState.AUTH_ERROR, health
    assert batches and batches[-1][-1].health == health, "the last batch carries the AUTH_ERROR"
    for word in words:
        assert word.lower() in health.sentence.lower(), health.sentence
    assert "File → Sources" in health.sentence, "the sentence says where to fix it"
    return health.sentence


def test_bad_password_stops_with_a_sentence(sim: Mt4SimulatorThread, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "definitely-wrong-Pa55"
    sentence = ends_with_auth_error(make_source(sim, password=secret), "refused", "password")
    assert secret not in caplog.text and sim.password not in caplog.text and secret not in sentence
    with pytest.raises(AuthError, match="refused"):
        asyncio.run(make_source(sim, password=secret).snapshot())


def test_wrong_login_and_wrong_server(sim: Mt4SimulatorThread) -> None:
    ends_with_auth_error(make_source(sim, login=4242), "refused")
    ends_with_auth_error(make_source(sim, mt4_server="elsewhere:443"), "refused")


def test_untrusted_certificate(sim: Mt4SimulatorThread, tmp_path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    ends_with_auth_error(make_source(sim, ca_file=str(other)), "certificate", "not trusted", "CA file")
    # no CA file at all: the system store does not know the simulator's CA either
    ends_with_auth_error(make_source(sim, ca_file=""), "not trusted")


def test_missing_ca_file_is_a_setting_problem(sim: Mt4SimulatorThread, tmp_path) -> None:
    ends_with_auth_error(make_source(sim, ca_file=str(tmp_path / "nope.pem")), "missing", "nope.pem")


def test_client_certificate_asked_for() -> None:
    with Mt4SimulatorThread(seed=3, running=False, require_client_cert=True) as strict:
        ends_with_auth_error(make_source(strict, client_cert="", client_key=""), "client certificate")
        snap = asyncio.run(make_source(strict).snapshot())
        assert snap.accounts, "with the certificate and key set, it reads"


def test_wrong_protocol_generation_either_way(sim: Mt4SimulatorThread) -> None:
    ends_with_auth_error(make_source(sim, protocol="connect"), "MT Access 1.00", "Protocol")
    with Mt4SimulatorThread(seed=3, running=False, protocol="connect") as early:
        ends_with_auth_error(make_source(early), "early MT Remote", "Protocol")
        ok = asyncio.run(make_source(early, protocol="connect").snapshot())
        assert ok.accounts
        ends_with_auth_error(make_source(early, protocol="connect", password="bad"), "refused", "password")


@pytest.mark.parametrize(("override", "words"), [
    ({"url": "https://example.test"}, ("wss://",)),
    ({"server_timezone": "Riga"}, ("time zone",)),
    ({"protocol": "2.0"}, ("protocol",)),
])
def test_bad_settings_say_what_to_fix(sim: Mt4SimulatorThread, override, words) -> None:
    ends_with_auth_error(make_source(sim, **override), *words)


def test_no_password_stored(sim: Mt4SimulatorThread) -> None:
    ends_with_auth_error(make_source(sim, password=""), "password")


def test_dead_mt4_link_at_start_then_back() -> None:
    """The socket opens but MT4 is unreachable: DEGRADED with a sentence, then LIVE with data once it is
    back."""
    with Mt4SimulatorThread(seed=4, running=False) as down:
        down.link_down()

        async def main() -> None:
            consumer = Consumer(make_source(down)).start()
            try:
                await wait_for(lambda: consumer.source.health().state is HealthState.DEGRADED, 20, "DEGRADED")
                assert "lost its link to the MT4 server" in consumer.source.health().sentence
                down.link_up()
                await wait_for(lambda: consumer.source.health().state is HealthState.LIVE, 20, "LIVE")
                assert consumer.state.snapshot_of(SOURCE_ID).accounts
            finally:
                await consumer.stop()
        asyncio.run(main())


def test_password_revoked_while_running_keeps_the_figures(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with Mt4SimulatorThread(seed=6, step_interval=0.05) as live:
        async def main() -> None:
            consumer = Consumer(make_source(live)).start()
            try:
                await wait_for(lambda: consumer.source.health().state is HealthState.LIVE, 20, "LIVE")
                live.pause()
                await wait_for(lambda: normalize(consumer.state.snapshot_of(SOURCE_ID))
                               == normalize(live.truth(SOURCE_ID, groups=WATCH_GROUPS)), 20, "the desk at rest")
                before = consumer.state.snapshot_of(SOURCE_ID)
                live.set_password("rotated-by-the-broker")
                await wait_for(lambda: consumer.source.health().state is HealthState.AUTH_ERROR, 20, "AUTH_ERROR")
                assert "refused" in consumer.source.health().sentence
                await wait_for(lambda: consumer._task is not None and consumer._task.done(), 10, "the stream to end")
                assert consumer.state.snapshot_of(SOURCE_ID) == before, "nothing lost"
            finally:
                await consumer.stop()
        asyncio.run(main())
        assert "rotated-by-the-broker" not in caplog.text and live.password not in caplog.text


def test_socket_drop_reconnects_and_rereads(sim: Mt4SimulatorThread) -> None:
    async def main() -> None:
        consumer = Consumer(make_source(sim)).start()
        try:
            await wait_for(lambda: consumer.resets >= 1 and consumer.source.health().state is HealthState.LIVE, 20,
                           "LIVE")
            sim.drop_sockets()
            await wait_for(lambda: HealthState.RECONNECTING in consumer.health_seen, 20, "RECONNECTING")
            await wait_for(lambda: consumer.resets >= 2 and consumer.source.health().state is HealthState.LIVE, 20,
                           "a re-read after reconnecting")
        finally:
            await consumer.stop()
    asyncio.run(main())
    assert sim.write_attempts == []


def test_a_login_that_is_not_a_number_is_a_setting_problem(sim: Mt4SimulatorThread) -> None:
    ends_with_auth_error(make_source(sim, login="manager"), "login")
