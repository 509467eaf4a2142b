"""The MT Access simulator in a background thread with its own event loop (tests and ``--demo``).

:class:`Mt4SimulatorThread` makes a private CA with ``trustme`` (in memory), writes the CA certificate (and,
when the server asks for client certificates, a client certificate and key) as PEM files into a temporary
folder that lives as long as the simulator, and serves ``wss://127.0.0.1:<port>/`` with a server certificate
from that CA. Nothing is added to any system trust store: a client trusts this CA only by being given
``ca_file``.

Fault switches are methods here, each applied in the simulator's loop before it returns: ``link_down()`` /
``link_up()`` (``connection`` events), ``drop_sockets()``, ``set_password()``, ``set_protocol()``, ``pause()``
/ ``resume()`` of the market, ``step(n)`` / ``act(n)`` to move it by hand. ``truth(...)`` is the neutral
snapshot of what the server holds; ``write_attempts`` and ``calls`` are what clients asked for.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from ...domain import Snapshot
from ..loopthread import LoopThread
from .model import Market
from .server import PROTOCOL_VERSION, Mt4AccessServer
from .truth import truth_snapshot

DEMO_MT4_SERVER = "mt4.sim-broker.test:443"
DEMO_LOGIN = 1001
DEMO_PASSWORD = "sim-manager-pass"  # the simulator's own made-up credential (demo only)


class Mt4SimulatorThread(LoopThread):
    """A whole MT Access simulator on its own loop in a daemon thread. Use as a context manager."""

    thread_name = "mt4-simulator"
    what = "the MT4 simulator"
    join_timeout = 15.0

    def __init__(self, seed: int = 1, *, server_timezone: str = "Europe/Athens", utc_offset_hours: float | None = None,
                 protocol: str = PROTOCOL_VERSION,
                 running: bool = True, step_interval: float = 0.25, ping_interval: float | None = 5.0,
                 require_client_cert: bool = False, clients: int = 9, action_rate: float = 0.35,
                 clock: Callable[[], float] = time.time, start_timeout: float = 30.0) -> None:
        super().__init__()
        self.seed = seed
        # The trade server's clock: an IANA zone (daylight saving, as brokers run it), or a fixed offset if given.
        self.server_timezone = server_timezone if utc_offset_hours is None else f"{utc_offset_hours:+g}"
        self.zone: tzinfo = (ZoneInfo(server_timezone) if utc_offset_hours is None
                             else timezone(timedelta(hours=utc_offset_hours)))
        self.protocol = protocol
        self._running = running
        self._step_interval = step_interval
        self._ping_interval = ping_interval
        self.require_client_cert = require_client_cert
        self._clients = clients
        self._action_rate = action_rate
        self._clock = clock
        self._start_timeout = start_timeout
        self.mt4_server = DEMO_MT4_SERVER
        self.login = DEMO_LOGIN
        self.password = DEMO_PASSWORD
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ca_file = ""
        self.client_cert_file = ""
        self.client_key_file = ""
        self.port = 0
        self.server: Mt4AccessServer | None = None

    # ---- where it is ---------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"wss://127.0.0.1:{self.port}/"

    @property
    def market(self) -> Market:
        assert self.server is not None, "start the simulator first"
        return self.server.market

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> Mt4SimulatorThread:
        import trustme

        self._tmp = tempfile.TemporaryDirectory(prefix="mt4sim-")
        folder = Path(self._tmp.name)
        ca = trustme.CA(organization_name="ttmt-monitor MT4 simulator (demo only)")
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        if self.require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ca.configure_trust(ctx)
            client = ca.issue_cert("manager@sim-broker.test")
            self.client_cert_file = str(folder / "client.pem")
            self.client_key_file = str(folder / "client.key")
            client.cert_chain_pems[0].write_to_path(self.client_cert_file)
            client.private_key_pem.write_to_path(self.client_key_file)
        self.ca_file = str(folder / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        self._ssl = ctx
        self._start_thread(self._start_timeout)
        return self


    async def _run(self) -> None:
        self._stop = asyncio.Event()
        market = Market(self.seed, utc_offset=self.zone, clock=self._clock, action_rate=self._action_rate)
        market.populate(clients=self._clients)
        self.server = Mt4AccessServer(market, mt4_server=self.mt4_server, login=self.login, password=self.password,
                                      ssl_context=self._ssl, protocol=self.protocol, ping_interval=self._ping_interval,
                                      step_interval=self._step_interval, running=self._running)
        self.port = await self.server.start()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.stop()

    def stop(self) -> None:
        super().stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Mt4SimulatorThread:
        return self.start()



    # ---- fault switches and driving ------------------------------------------------------------------------
    def _srv(self) -> Mt4AccessServer:
        assert self.server is not None, "start the simulator first"
        return self.server

    def pause(self) -> None:
        self.call(self._srv().pause)

    def resume(self) -> None:
        self.call(self._srv().resume)

    def link_down(self) -> None:
        self.call(self._srv().set_link, False)

    def link_up(self) -> None:
        self.call(self._srv().set_link, True)

    def link_blip(self, seconds: float = 0.5) -> None:
        """The MT4 link drops now and comes back after ``seconds`` (by itself, in the simulator's loop)."""
        def run() -> None:
            srv = self._srv()
            srv.set_link(False)
            asyncio.get_running_loop().call_later(seconds, srv.set_link, True)
        self.call(run)

    def trade_records_on_tick(self, on: bool) -> None:
        """Whether a tick is followed by the repriced trade records (off: only the tick, as some servers do)."""
        self.call(setattr, self.market, "trade_on_tick", on)

    def drop_sockets(self) -> None:
        self.call(self._srv().drop_sockets)

    def set_password(self, password: str) -> None:
        self.call(self._srv().set_password, password)

    def set_protocol(self, protocol: str) -> None:
        self.call(self._srv().set_protocol, protocol)

    def step(self, n: int = 1) -> None:
        """``n`` market steps (prices move; sometimes a client acts), now, in the simulator's loop."""
        def run() -> None:
            for _ in range(n):
                self.market.step()
        self.call(run)

    def act(self, n: int = 1) -> list[str]:
        """``n`` client/broker actions (open, modify, close, …), now. Returns what happened."""
        return self.call(lambda: [self.market.act() for _ in range(n)])

    @property
    def write_attempts(self) -> list[str]:
        return self.call(lambda: list(self._srv().write_attempts))

    @property
    def calls(self) -> list[str]:
        return self.call(lambda: list(self._srv().calls))

    def session_count(self) -> int:
        return self.call(lambda: len(self._srv().sessions))

    def truth(self, source_id: str, *, groups: tuple[str, ...] = (), logins: frozenset[int] = frozenset(),
              history_from: int = 0) -> Snapshot:
        """What the server holds, as the neutral snapshot a source watching ``groups``/``logins`` should
        show."""
        return self.call(lambda: truth_snapshot(self.market.books, source_id, groups=groups, logins=logins,
                                                history_from=history_from))
