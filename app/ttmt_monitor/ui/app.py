"""Start-up and shutdown of the desktop app on the qasync loop: ``main(argv)`` for ``ttmt-monitor [options]``.

Options: ``--demo`` (start the simulator in a child process and connect to it), ``--base-url URL``,
``--screenshot FILE`` and ``--quit-after SECONDS`` (wait until the tables have data and live events arrived, save
the window as PNG, exit 0), ``--smoke-test`` (the same without a file: used by the installer test), ``--tab NAME``,
``--utc``.

Order of things: the Qt application and the qasync loop; the simulator (``--demo``, started in an executor so the
loop never waits on it) or the key from the OS keyring, else the key dialog (shown and awaited, never exec());
the single-instance guard per base URL + key; the window; the controller's snapshot, then the stream. On close:
stop the stream, close the client, terminate the simulator. Every failure becomes a message and an exit code,
never a traceback.

The every-day start (a TTMT key known to the head start, its local history on disk, no other source configured,
not headless) builds, shows and paints its window BEFORE the qasync loop (and asyncio) exist: the guard, the
controller and the window are made the same way, the first frame shows the local history, and the run then takes
that window over on the loop (``_paint_first_frame``; issue 16: ~20 ms of imports the first frame does not need).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from .lazy import lazy_module

if TYPE_CHECKING:
    import asyncio

    from .early import EarlyStart
else:  # imported on first use: the every-day start paints its first frame before asyncio is imported
    asyncio = lazy_module("asyncio")

log = logging.getLogger("ttmt_monitor")
START_GC_GRACE_MS = 5000  # the cyclic collector's first timed pass (ui/gc_guard.py)

TAB_NAMES = ("accounts", "positions", "trades", "signals", "pnl", "orders", "deals", "calendar",
             "channels")  # = settings.TABS
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_OTHER_INSTANCE = 0, 1, 2, 3
LISTEN_AFTER_PAINT_MS = 250  # the single-instance guard takes raise requests this long after the first paint,
LISTEN_LATEST_MS = 1000  # or this long after the start, whichever comes first
FIRST_FRAME_WAIT_MS = 1000  # the every-day start waits at most this long for its first paint before the loop runs
# and this long for the head start's read of the local history, for that paint (it takes ~40 ms of CPU; on a slow
# disk the window shows without it rather than later, and the start-up fills it as on the loop's way)
FIRST_SCREEN_WAIT_S = 0.3
# and this long for the key (from the keyring, read by the head start: ~10 ms; a keyring that asks to be unlocked
# takes the loop's way, as a first run does)
FIRST_KEY_WAIT_S = 0.5
NO_TTMT_INSTANCE = "no-ttmt"  # the single-instance guard's "key" of a desk without TTMT (not a secret)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ttmt-monitor", description="A read-only live trading desk for TTMT.")
    parser.add_argument("--demo", action="store_true",
                        help="start the built-in simulators (TTMT, Tradovate, MetaApi, MT4 manager) and show them: "
                             "a living desk with no account")
    parser.add_argument("--base-url", metavar="URL", help="TTMT API base URL (remembered in the settings)")
    parser.add_argument("--screenshot", metavar="FILE", help="save the window as PNG once it shows live data, exit")
    parser.add_argument("--quit-after", metavar="SECONDS", type=float,
                        help="quit after this many seconds (with --screenshot/--smoke-test: the longest wait)")
    parser.add_argument("--smoke-test", action="store_true",
                        help="start, load data, render, exit 0 (non-zero with a message on failure)")
    parser.add_argument("--tab", choices=TAB_NAMES, help="the tab to show first")
    parser.add_argument("--utc", action="store_true", help="show times in UTC")
    parser.add_argument("--no-ttmt", action="store_true",
                        help="start without TTMT: only the sources of File → Sources… (with --demo: their "
                             "simulators)")
    # For benchmarks/ui_live.py: print "startup-ready <unix time>" once the window has painted its first data
    # from the API, then quit.
    parser.add_argument("--report-startup", action="store_true", help=argparse.SUPPRESS)
    return parser


class Connection:
    """Who the desk of one window talks to. (Plain classes here and in _StopState, not dataclasses: ~0.3-0.5 ms each
    to create, on every start's way to its first paint; issue 16.)"""

    __slots__ = ("api_key", "base_url", "demo", "history_dir", "sources")

    def __init__(self, base_url: str, api_key: str | None, demo: bool, sources: tuple[Any, ...] = (),
                 history_dir: Any = None) -> None:
        self.base_url = base_url
        # A secret: never in a repr (logs, tracebacks). None: no TTMT, the desk runs with the other sources only.
        self.api_key = api_key
        self.demo = demo
        # The neutral sources beside TTMT: (registry.SourceKind, SourceConfig, secrets) each; secrets never in a repr.
        self.sources = sources
        # The demo's local history: a directory of its own, removed when the demo ends (None: no local history
        # for the demo; the user's own data directory otherwise).
        self.history_dir = history_dir

    def __repr__(self) -> str:
        return f"Connection(base_url={self.base_url!r}, demo={self.demo!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Connection):
            return NotImplemented
        return (self.base_url, self.api_key, self.demo, self.sources, self.history_dir) == (
            other.base_url, other.api_key, other.demo, other.sources, other.history_dir)

    __hash__ = None  # type: ignore[assignment]  # (mutable, as the dataclass was)


def _start_demo_sources(stack: contextlib.ExitStack, seed: int) -> list[tuple[Any, Any, Any]]:
    """Start every registered kind's simulator but TTMT's (run in a thread: each start blocks until its server
    listens). A kind whose simulator fails is logged and left out: the demo shows the others."""
    from ..sources import registry

    out = []
    for name in registry.kinds():
        if name == "ttmt":
            continue
        try:
            kind = registry.get(name)
            if kind.demo is None:
                continue
            demo = stack.enter_context(kind.demo(seed))
        except Exception as exc:  # noqa: BLE001
            log.warning("the %s demo simulator did not start: %s", name, exc)
            continue
        out.append((kind, demo.config, demo.secrets))
    return out


def main(argv: list[str] | None = None, early: EarlyStart | None = None) -> int:
    """``ttmt-monitor [options]``. ``early``: the head start ``ui.early.begin`` made before this module (and
    asyncio) was imported; made here when the caller did not."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage message already
        code = int(exc.code or 0) if isinstance(exc.code, int) else 1
        return 1 if code == 2 else code  # a usage error is 1: 2 is the documented authentication failure
    # Pin the binding again before qasync is imported (it picks the first Qt binding it finds otherwise).
    os.environ.setdefault("QT_API", "pyside6")
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from .early import SEND_WAIT_S, begin
    from .pyside_tax import skip_source_scan
    from .settings import AppSettings, init_application_names

    skip_source_scan()  # (done already when the entry point began the early start)

    if early is None:
        early = begin(argv)
    init_application_names()
    settings = AppSettings()
    if early is not None:
        early.wait_sent(SEND_WAIT_S)  # the start-up requests leave before QtWidgets' import holds the GIL

    from PySide6.QtWidgets import QApplication

    from . import theme

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "ttmt-monitor"])
    # The loop, not Qt, decides when we are done: closing the window must not stop the loop under the shutdown
    # coroutine (stream and client still have to close, the simulator to terminate).
    app.setQuitOnLastWindowClosed(False)
    if args.utc:
        settings.utc_override = True
    try:
        theme.apply_theme(app, settings.theme)
    except Exception:  # noqa: BLE001 - the default look is fine
        log.debug("theme not applied", exc_info=True)
    # The store's writer thread and executors allocate too: keep cyclic GC (which may free Qt objects) on this thread.
    from .gc_guard import MainThreadGarbageCollector

    # The first pass after the start-up (the desk collects once itself after its first paint with data).
    collector = MainThreadGarbageCollector(parent=app, first_ms=START_GC_GRACE_MS)
    first: _Desk | int | None = None
    try:
        # The every-day start's window, painted before asyncio and qasync are imported (see _paint_first_frame).
        first = _paint_first_frame(args, settings, early)
        if isinstance(first, int):
            return first
        built = first
        return run_qasync(app, lambda: run(args, settings, early, built), stop_signals=True)
    except (KeyboardInterrupt, asyncio.CancelledError):  # stopped (Ctrl-C…) before the window existed, or headless
        headless = bool(args.screenshot or args.smoke_test or args.report_startup)
        return 128 + _STOP.signum if headless and _STOP.signum else EXIT_OK
    except Exception as exc:  # noqa: BLE001 - last resort: a message, not a traceback
        print(f"ttmt-monitor: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if isinstance(first, _Desk) and not first.taken:  # built before the loop, and no run took it over
            first.discard()
        _stop_noting_signals()
        collector.stop()


def _paint_first_frame(args: argparse.Namespace, settings: Any, early: EarlyStart | None) -> _Desk | int | None:
    """The every-day start of a TTMT desk (its key known to the head start, its local history on disk, no other
    source configured): the window built, shown and painted, with the history when the head start has read it,
    BEFORE asyncio and qasync are imported (~20 ms of imports, ssl, socket, selectors and subprocess with them,
    that the first frame does not need; issue 16). Nothing of the desk runs on a loop before that paint: its
    start-up waits for the paint anyway (DeskController._first_cache_paint). The run then takes the desk over on
    the loop (_run_window's ``built``) and the start-up goes on as before.

    None: not such a start (a first run, the demo, no key yet, other sources, a headless run): the loop's own
    way (_run_window). An exit code: another copy runs for this key. A stop signal meanwhile is noted and acted
    on once the loop runs (_note_stop_signals)."""
    if early is None or args.demo or args.no_ttmt or args.screenshot or args.smoke_test:
        return None
    base_url = args.base_url or settings.base_url
    if early.base_url != base_url:
        return None
    from .source_config import load_sources

    try:
        configured = load_sources(settings)
    except Exception:  # noqa: BLE001 - unreadable source settings: the loop's way reads (and reports) them
        log.debug("source settings not read", exc_info=True)
        return None
    if any(c.enabled for c in configured):  # their hub and secrets belong on the loop
        return None
    # From here to the loop, a stop signal is noted and acted on once the loop runs (the loop's way had the loop
    # handle them all along).
    _note_stop_signals()
    key = early.key_now(FIRST_KEY_WAIT_S)
    if key is None or _STOP.pending is not None:
        return None
    cached = early.take_cached(base_url, key)
    if cached is None:  # a first run (the prefetch is on its way: the window is built on the loop beside it)
        return None
    connection = Connection(base_url, key, demo=False)
    desk = _open_desk(connection, early.take_prefetch(base_url, key), cached)
    if isinstance(desk, int):
        return desk
    try:
        desk.controller.note_starting()  # the first frame says "connecting", as on the loop's way
        _build_window(desk, args, settings, configured)
        desk.window.hold_after_paint_setup()  # the hub, notifier, analytics: on the loop
        _wait_for_first_screen(cached)
        _show_cache_if_read(desk)
        _show_first_frame(desk.window)
    except BaseException:
        desk.discard()
        raise
    return desk


def _show_first_frame(window: Any) -> None:
    """Show ``window`` and run Qt's own event loop until its first paint pass is over (a zero timer after the
    paint, as the start-up report notes it), at most FIRST_FRAME_WAIT_MS, or until a stop signal."""
    from PySide6.QtCore import QEventLoop, QTimer

    local = QEventLoop()
    connected = [True]

    def painted() -> None:
        if connected:
            connected.clear()
            window.painted.disconnect(painted)
        QTimer.singleShot(0, local.quit)

    window.painted.connect(painted)
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(local.quit)
    deadline.start(FIRST_FRAME_WAIT_MS)
    _NOTE_ENDS.append(local)
    window.show()
    try:
        if _STOP.pending is None:
            # No user input yet: what it would start (F5, a trade's detail, an export) needs the loop, which runs
            # right after this paint and gets the input then.
            local.exec(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
    finally:
        _NOTE_ENDS.clear()
    deadline.stop()
    if connected:  # (no paint within the wait)
        connected.clear()
        window.painted.disconnect(painted)


# Stop signals before the loop handles them (the every-day start's first frame): (signum, previous handler) each.
_NOTED_SIGNALS: list[tuple[int, Any]] = []
_NOTE_ENDS: list[Any] = []  # the local event loop a noted signal ends (the wait for the first paint), while it runs


def _note_stop_signals() -> None:
    """Until the loop takes stop signals over (_handle_stop_signals): the first one is noted in ``_STOP.pending``
    (and ends the wait for the first paint, when it runs); the loop then acts on it as on one received later. A
    signal the process was told to ignore (``nohup``) stays ignored."""
    import signal

    if _NOTED_SIGNALS:
        return

    def note(signum: int, _frame: Any) -> None:
        if _STOP.pending is None:
            _STOP.pending = signum
        for local in _NOTE_ENDS:
            local.quit()

    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        previous = signal.getsignal(signum)
        if previous is signal.SIG_IGN:
            continue
        try:
            signal.signal(signum, note)
        except (ValueError, OSError):  # not the main thread, or a platform without it
            continue
        _NOTED_SIGNALS.append((signum, previous))


def _stop_noting_signals() -> None:
    """The handlers before _note_stop_signals back, where the loop has not replaced them (and taken them back)."""
    import signal

    while _NOTED_SIGNALS:
        signum, previous = _NOTED_SIGNALS.pop()
        current = signal.getsignal(signum)
        if getattr(current, "__name__", "") == "note" and previous is not None:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signum, previous)
    _STOP.pending = None


# What a stop signal (Ctrl-C, a logout's or kill's SIGTERM, a closed terminal's SIGHUP) does: close the window of
# the run, as File → Quit does (stream, history, saved layout): _run_window puts that in _STOP_HANDLERS while its
# window is up (a headless run's: end the run). Before any window, the run is cancelled; between two windows (Key →
# Replace key…) or while one is closing, nothing more is needed: the run sees _STOP.signum and ends.
_STOP_HANDLERS: list[Any] = []
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class _StopState:
    def __init__(self) -> None:
        self.signum: int | None = None  # the first stop signal received
        self.pending: int | None = None  # one received before the loop handled them (_note_stop_signals)
        self.windows_made = 0
        self.cancel_run: Any = None  # the run's task.cancel


_STOP = _StopState()


def _handle_stop_signals(loop: Any, task: Any) -> list[int]:
    """Close the desk cleanly on a stop signal, through the loop (asyncio's signal handling wakes the Qt loop
    through its self-pipe: a plain Python handler would wait for the next Python code to run, and Ctrl-C then
    raised KeyboardInterrupt inside some callback and left the app running). One clean shutdown per run: a
    further SIGTERM or SIGHUP (a logout sends both) changes nothing; Ctrl-C pressed twice leaves at once. A signal
    the process was told to ignore (``nohup``) stays ignored. Returns the signals handled (none on Windows, where
    asyncio cannot)."""
    import signal

    _STOP.signum, _STOP.windows_made, _STOP.cancel_run = None, 0, task.cancel
    # One noted before the loop ran (_note_stop_signals): acted on below; the handlers before those come back first
    # (the loop replaces them where it can; where it cannot, the signal keeps its default action, as always).
    pending, _STOP.pending = _STOP.pending, None
    _stop_noting_signals()

    def stop(signum: int) -> None:
        if _STOP.signum is not None:
            if signum == _STOP.signum == signal.SIGINT:  # Ctrl-C twice: the user wants out now
                os._exit(128 + signum)
            return  # the clean shutdown is under way
        _STOP.signum = signum
        if _STOP_HANDLERS:
            try:
                _STOP_HANDLERS[-1]()
            except RuntimeError:  # its window is already gone: the run is ending anyway
                pass
        elif not _STOP.windows_made:
            task.cancel()
        with contextlib.suppress(OSError, ValueError):  # a hung-up terminal's stderr must not stop the shutdown
            print(f"ttmt-monitor: {signal.Signals(signum).name}: closing", file=sys.stderr, flush=True)

    handled = []
    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None or signal.getsignal(signum) is signal.SIG_IGN:
            continue
        try:
            loop.add_signal_handler(signum, stop, signum)
        except (NotImplementedError, RuntimeError, ValueError, OSError) as exc:
            # Windows' loops have no signal handling (NotImplementedError); a loop not in the main thread
            # (ValueError/RuntimeError) cannot take them either: the signal keeps its default action there.
            log.debug("stop signal %s not handled: %s", name, exc)
            continue
        handled.append(signum)
    if pending is not None:  # received while the first frame was painted, before the loop ran: acted on now
        if pending in handled:
            loop.call_soon(stop, pending)
        else:
            loop.call_soon(task.cancel)
    return handled


def run_qasync(app: Any, make: Any, timeout: float | None = None, *, stop_signals: bool = False) -> Any:
    """Run the coroutine ``make()`` on a fresh qasync loop over ``app`` and return its result.

    qasync's ``run_forever`` is Qt's exec and never installs asyncio's async-generator hooks, so an abandoned
    async generator (httpx's response streams) would be finalised by the garbage collector with no loop running
    ("no running event loop", and on Python 3.11 worse). We install the loop's own hooks for the run and
    finalise what is left with ``shutdown_asyncgens`` before the loop closes. ``stop_signals``: Ctrl-C, SIGTERM and
    SIGHUP close the desk cleanly (the app's own run; see _handle_stop_signals); a run they cancel before its
    window exists raises ``asyncio.CancelledError``.
    """
    from .qloop import new_qasync_loop

    loop = new_qasync_loop(app)
    asyncio.set_event_loop(loop)
    old_hooks = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=loop._asyncgen_firstiter_hook,  # noqa: SLF001 - asyncio's own hooks
                           finalizer=loop._asyncgen_finalizer_hook)  # noqa: SLF001
    handled: list[int] = []
    try:
        with loop:
            try:
                coro = make() if timeout is None else asyncio.wait_for(make(), timeout)
                task = asyncio.ensure_future(coro)
                if stop_signals:
                    handled = _handle_stop_signals(loop, task)
                return loop.run_until_complete(task)
            finally:
                for signum in handled:
                    loop.remove_signal_handler(signum)
                if stop_signals:
                    _STOP.cancel_run = None
                _cancel_leftovers(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        sys.set_asyncgen_hooks(*old_hooks)
        asyncio.set_event_loop(None)


# How long the tasks still running when the run ends get to finish their cancellation (asyncio.run waits without a
# bound; a quit must not hang on one that ignores it).
LEFTOVER_CANCEL_S = 2.0


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still running when the run ends, and let them unwind, as ``asyncio.run`` does: before, a
    history page still being fetched at quit (the P&L chart's load, under the API's rate limit) left its async
    generators suspended mid-``await``, and ``shutdown_asyncgens`` logged one "aclose(): asynchronous generator is
    already running" error for each of them."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not pending:
        return
    for task in pending:
        task.cancel()
    done, late = loop.run_until_complete(asyncio.wait(pending, timeout=LEFTOVER_CANCEL_S))
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.debug("a task ended with an error while the desk closed", exc_info=task.exception())
    if late:
        log.warning("%d task(s) did not stop within %.0f s of closing", len(late), LEFTOVER_CANCEL_S)


async def _check_key(base_url: str, key: str) -> None:
    """The key dialog's check: GET /accounts with the candidate key (raises the client's typed error)."""
    from ..sources import registry

    async with registry.desk_parts("ttmt").make_client(base_url, key) as client:
        await client.accounts()


async def _ask_key(base_url: str, parent: Any = None, *, offer_without: bool = False) -> str | None:
    """Show the key dialog and wait for it; store the key in the keyring when the user chose to. None: cancelled;
    "" (only with ``offer_without``): the user does not use TTMT."""
    from .. import keystore
    from .key_dialog import ask_for_key

    loop = asyncio.get_running_loop()
    keyring_ok = await loop.run_in_executor(None, keystore.keyring_available)
    result = await ask_for_key(parent, base_url, lambda key: _check_key(base_url, key), keyring_ok,
                               offer_without=offer_without)
    if result is None:
        return None
    if result.without_ttmt:
        return ""
    if result.remember:
        try:
            await loop.run_in_executor(None, keystore.save_key, base_url, result.key)
        except keystore.KeyringUnavailable as exc:
            log.warning("the key is kept for this run only: %s", exc)
    return result.key


async def _load_key(base_url: str) -> str | None:
    """The key for ``base_url`` from the environment or the keyring, off the loop (None: none usable)."""
    from .early import key_from_env, key_from_keyring

    return key_from_env() or await asyncio.get_running_loop().run_in_executor(None, key_from_keyring, base_url)


def _starts_without_ttmt(settings: Any) -> bool:
    """No TTMT key, and no need to ask for one: the user said they do not use TTMT (the key dialog's second way,
    remembered), or other sources are configured (File → Sources…)."""
    if settings.without_ttmt:
        return True
    from .source_config import load_sources

    try:
        return any(c.enabled for c in load_sources(settings))
    except Exception:  # noqa: BLE001 - unreadable source settings: ask for the key as before
        log.debug("source settings not read", exc_info=True)
        return False


def _when_emitted(signal: Any) -> asyncio.Future[None]:
    """A future the next emission of a Qt signal completes, to await without a nested event loop. Connected now,
    not in a task's first step (a quick emission would beat that step and be missed); disconnected once the
    future is done or cancelled."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done(*_: Any) -> None:
        if not future.done():
            future.set_result(None)

    def disconnect(_: Any) -> None:
        with contextlib.suppress(RuntimeError, TypeError):
            signal.disconnect(done)

    signal.connect(done)
    future.add_done_callback(disconnect)
    return future


async def run(args: argparse.Namespace, settings: Any, early: EarlyStart | None = None,
              first: _Desk | None = None) -> int:
    """The app's life on the loop. Returns the process exit code. ``first``: the window main() painted before the
    loop ran (_paint_first_frame), for the run's first connection."""
    headless = bool(args.screenshot or args.smoke_test)
    loop = asyncio.get_running_loop()
    sim = None
    demo_stack = contextlib.ExitStack()
    connection: Connection | None
    try:
        if first is not None:
            if args.base_url:
                settings.base_url = args.base_url
            connection = first.connection
        elif args.demo and args.no_ttmt:
            # The other kinds' simulators only: the desk as a trader without TTMT sees it.
            # (No local history: TTMT's is the only one a demo keeps. Key → Add TTMT key… then adds the user's
            # real key at the real address, whose history must not go to a directory deleted at the end.)
            connection = Connection(settings.base_url, None, demo=True,
                                    sources=tuple(await loop.run_in_executor(None, _start_demo_sources,
                                                                             demo_stack, 1)))
        elif args.demo:
            # Every other registered kind's simulator too, started while TTMT's starts (each in its own thread).
            demo_task = loop.run_in_executor(None, _start_demo_sources, demo_stack, 1)
            from ..sim.runner import start_subprocess

            t0 = time.monotonic()
            try:
                sim = await loop.run_in_executor(None, start_subprocess)
            except Exception as exc:  # noqa: BLE001
                print(f"ttmt-monitor: the demo simulator did not start: {exc}", file=sys.stderr)
                return EXIT_FAILED
            log.info("simulator started in %.1f s", time.monotonic() - t0)
            connection = Connection(sim.base_url, sim.api_key, demo=True, sources=tuple(await demo_task),
                                    history_dir=_demo_history_dir(demo_stack))
        else:
            base_url = args.base_url or settings.base_url
            if args.base_url:
                settings.base_url = args.base_url
            key: str | None = None
            if not args.no_ttmt:
                if early is not None and early.base_url == base_url:
                    key = await early.key()
                else:
                    key = await _load_key(base_url)
            if key is None and not args.no_ttmt and not _starts_without_ttmt(settings):
                if headless:
                    print("ttmt-monitor: no API key is stored for " + base_url + " and no other source is "
                          "configured; start with --demo to try the simulators", file=sys.stderr)
                    return EXIT_USAGE
                key = await _ask_key(base_url, offer_without=True)
                if key is None:
                    return EXIT_OK  # the user cancelled: nothing to do
                if not key:  # "I don't use TTMT": the desk with the other sources, and no key dialog next time
                    settings.without_ttmt = True
                    key = None
            connection = Connection(base_url, key, demo=False)
        while connection is not None:
            prefetch = cached = None
            built, first = first, None
            if built is None and early is not None and connection.api_key is not None:
                prefetch = early.take_prefetch(connection.base_url, connection.api_key)
                cached = early.take_cached(connection.base_url, connection.api_key)
            outcome = await _run_window(args, settings, connection, headless, prefetch, cached, built)
            if isinstance(outcome, int):
                return outcome
            if _STOP.signum is not None:  # stopped while the window was closing for the new key
                return EXIT_OK
            connection = outcome  # a replaced key: run again with it
        return EXIT_OK
    finally:
        if sim is not None:
            await loop.run_in_executor(None, sim.terminate)
        await loop.run_in_executor(None, demo_stack.close)


DEMO_DIR_PREFIX = "ttmt-monitor-demo-"
DEMO_DIR_STALE_S = 12 * 3600.0  # a demo directory none of whose files changed for this long: a demo that was killed


def _demo_history_dir(stack: contextlib.ExitStack) -> Any:
    """The demo's local history of TTMT: a new directory that ``stack`` removes when the demo ends. The demo's desk
    then is a real desk's (its Trades and Signals read from the store, every trade of the history, not the API's
    first page), while the simulator's made-up history is never mixed with the user's own, nor kept. The
    directories of demos that were killed (nothing removed them) go when the next demo starts."""
    import tempfile
    from pathlib import Path

    _remove_stale_demo_dirs(Path(tempfile.gettempdir()))
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=DEMO_DIR_PREFIX,
                                                                ignore_cleanup_errors=True)))


def _remove_stale_demo_dirs(temp: Any, now: float | None = None) -> None:
    """Remove this user's demo directories in ``temp`` whose newest file is older than DEMO_DIR_STALE_S (a running
    demo's store writes as its market moves). Another user's (a shared /tmp) and links are left alone; symbolic
    links inside are removed, never followed (``shutil.rmtree``)."""
    import shutil

    now = time.time() if now is None else now
    me = os.getuid() if hasattr(os, "getuid") else None
    try:
        found = list(temp.glob(DEMO_DIR_PREFIX + "*"))
    except OSError:
        return
    for folder in found:
        try:
            info = folder.lstat()
            if folder.is_symlink() or (me is not None and info.st_uid != me):
                continue
            newest = max((p.lstat().st_mtime for p in folder.rglob("*")), default=info.st_mtime)
            if now - newest > DEMO_DIR_STALE_S:
                shutil.rmtree(folder, ignore_errors=True)
                if not folder.exists():
                    log.info("removed %s, left by a demo that did not end", folder.name)
        except OSError:
            continue


def history_store_factory(connection: Connection, data_dir: Any = None) -> Any:
    """How the desk of ``connection`` opens its local history: the file of THIS key (never another key's, even on
    the same API; Key → Replace key… gets a new Connection and so its own file). The demo's goes in its own
    directory (``connection.history_dir``, removed when the demo ends; None there: no local history); None without
    TTMT (no TTMT history)."""
    if connection.api_key is None or (connection.demo and connection.history_dir is None):
        return None
    if connection.demo:
        data_dir = connection.history_dir
    api_key = connection.api_key

    def store_factory() -> Any:
        # The store keeps objects in its own format; what arrives as TTMT wire JSON (and files of older releases,
        # converted when opened) is decoded by TTMT's codec. Core imports no source, so the opener names the codec
        # (TTMT's desk parts hold it).
        from ..core.store import Store
        from ..sources import registry

        codec = registry.desk_parts("ttmt").store_codec()
        # check=False: the integrity check (reading every page, ~0.1 s at 10k trades) would sit between the start
        # and the delta sync; the desk runs it after its first paint with data (DeskController._check_store).
        return Store.open(connection.base_url, api_key, data_dir=data_dir, codec=codec, check=False)

    return store_factory


class _Desk:
    """One window + controller for one key while they are being set up (see _open_desk, _build_window). ``taken``:
    a run (_run_window) owns them and closes them; a desk built before the loop that no run took is closed by
    main (discard)."""

    def __init__(self, connection: Connection, guard: Any, listen_latest: Any, controller: Any) -> None:
        self.connection = connection
        self.guard = guard
        self.listen_latest = listen_latest
        self.controller = controller
        self.window: Any = None
        self.painted: list[float] = []  # --report-startup: the first paint with the API's data,
        self.cache_painted: list[float] = []  # and with the local history
        self.closed_early: list[bool] = []  # closed while the start-up was still loading
        self.taken = False

    def discard(self) -> None:
        """Close what was built, when no run took it over (a stop before the loop ran, a failed import)."""
        import shiboken6

        self.listen_latest.stop()
        window, controller = self.window, self.controller
        if window is not None and shiboken6.isValid(window):
            if window.isVisible():
                window.quit()
            shiboken6.delete(window)
        self.guard.release()
        if shiboken6.isValid(controller):
            shiboken6.delete(controller)


def _open_desk(connection: Connection, prefetch: Any = None, cached: Any = None) -> _Desk | int:
    """The single-instance guard and the controller of one window (nothing on the loop yet). An exit code when
    another copy runs for this key."""
    from .controller import DeskController
    from .single_instance import SingleInstance

    ttmt = connection.api_key is not None
    guard = SingleInstance(connection.base_url,
                           connection.api_key if connection.api_key is not None else NO_TTMT_INSTANCE)
    # The raise requests of later copies are taken once the window has painted (the socket needs QtNetwork, which
    # the first frame does not); who runs is settled now, by a lock file.
    if not guard.acquire(listen=False):
        shown = ("its window was brought to the front" if guard.raised else
                 "its window did not answer (it may still be starting)")
        message = (f"TTMT Monitor is already running for this API key; {shown}. "
                   "(The server allows one live stream per key.)" if ttmt else
                   f"TTMT Monitor is already running without TTMT; {shown}.")
        print(f"ttmt-monitor: {message}", file=sys.stderr)
        return EXIT_OTHER_INSTANCE
    from PySide6.QtCore import QTimer

    # At the latest this long after the start, whether or not the window has painted by then (a slow start, a
    # window that does not paint): a copy started later knocks for 3 s.
    listen_latest = QTimer()
    listen_latest.setSingleShot(True)
    listen_latest.timeout.connect(guard.listen)
    listen_latest.start(LISTEN_LATEST_MS)
    controller: Any
    if connection.api_key is not None:
        controller = DeskController(connection.base_url, connection.api_key,
                                    store_factory=history_store_factory(connection), prefetch=prefetch, cached=cached)
    else:
        # No TTMT: the same surface without a connection (see ui/no_ttmt.py: the window and the neutral sources'
        # bridge keep using its models and signals; nothing to guard one by one).
        from .no_ttmt import NoTTMTController

        controller = NoTTMTController()
    return _Desk(connection, guard, listen_latest, controller)


def _build_window(desk: _Desk, args: argparse.Namespace, settings: Any, configured: Any = None) -> None:
    """The window of ``desk``, wired to its controller; not filled (_show_cache_if_read) nor shown yet."""
    from PySide6.QtCore import QTimer

    from .main_window import MainWindow

    connection, controller, guard = desk.connection, desk.controller, desk.guard
    if configured is None:
        from .source_config import load_sources

        configured = load_sources(settings)

    def make_hub() -> Any:
        """The neutral sources' hub: the demo's simulators or the user's sources (File → Sources…), and the closed
        deals' local history."""
        from .desk import SourceHub

        hub = SourceHub()
        if not connection.demo:  # the demo's simulated deals are not a trader's history (its sources have no
            # configuration, the key of a history's scope: they stay in memory)
            from ..core.deal_history import DealHistory
            from ..core.paths import default_data_dir

            hub.attach_history(lambda: DealHistory.open(default_data_dir() / "history"))
        for kind, config, secrets in connection.sources:
            try:
                hub.add(kind.create(config, secrets))
            except Exception as exc:  # noqa: BLE001 - one source that cannot start must not stop the desk
                log.warning("source %s could not start: %s", config.name, exc)
        return hub

    title_suffix = "demo (simulator)" if connection.demo else ""
    if connection.sources or connection.api_key is None or any(c.enabled for c in configured):
        window = MainWindow(controller, settings, title_suffix=title_suffix, hub=make_hub())
    else:
        # TTMT alone: the hub (no source yet, the closed deals' history) is made after the window's first paint.
        window = MainWindow(controller, settings, title_suffix=title_suffix, hub_factory=make_hub)
    desk.window = window
    if any(c.enabled for c in configured):  # the user's sources (File → Sources…), their secrets read off the loop
        asyncio.ensure_future(window.apply_sources(configured))
    guard.raise_requested.connect(lambda: (window.showNormal(), window.raise_(), window.activateWindow()))

    def listen_after_first_paint() -> None:
        window.painted.disconnect(listen_after_first_paint)
        # Not in this paint pass (the window paints before its children) nor right behind it, where the first
        # data's paint and the after-load work come first: a copy started meanwhile knocks until it is heard.
        QTimer.singleShot(LISTEN_AFTER_PAINT_MS, guard.listen)

    window.painted.connect(listen_after_first_paint)
    if args.tab:
        window.select_tab(args.tab)
    if args.report_startup:
        painted, cache_painted = desk.painted, desk.cache_painted

        def on_paint() -> None:
            # The window's first paint with the API's data (or with its local history): noted when that paint
            # pass is over (a zero timer runs after the children have painted), as benchmarks/bare_window.py does.
            for into, shown in ((painted, controller.started), (cache_painted, controller.showing_cache)):
                if shown and not into:
                    into.append(0.0)
                    QTimer.singleShot(0, lambda into=into: into.__setitem__(0, time.time()))

        window.painted.connect(on_paint)
    # Closed while the start-up was still loading: ``closed`` fired before anyone waited for it.
    window.closed.connect(lambda: desk.closed_early.append(True))


def _wait_for_first_screen(cached: Any) -> None:
    """The head start's read of the history, once the window is built (at most FIRST_SCREEN_WAIT_S): asking for it
    starts the read (ui/early.py: not while the window was being built, the two sharing one GIL), and nothing else
    is left to do before the window's first paint meanwhile."""
    from concurrent.futures import Future  # (loaded already: ui/early.py's)

    if isinstance(cached, Future):
        with contextlib.suppress(Exception):
            cached.result(FIRST_SCREEN_WAIT_S)


def _show_cache_if_read(desk: _Desk) -> None:
    """The head start's first screen of the local history into the tables, when it has been read by now."""
    show_cache = getattr(desk.controller, "show_cache_if_read", None)
    if show_cache is not None:
        show_cache()  # the local history in the window's first paint when the head start has read it by now


async def _run_window(args: argparse.Namespace, settings: Any, connection: Connection,
                      headless: bool, prefetch: Any = None, cached: Any = None,
                      built: _Desk | None = None) -> int | Connection | None:
    """One window + controller for one key. Returns an exit code, or the Connection to restart with. ``built``: the
    window main() built and painted before the loop ran (_paint_first_frame), taken over here."""
    if built is None:
        opened = _open_desk(connection, prefetch, cached)
        if isinstance(opened, int):
            return opened
        desk = opened
        desk.taken = True
        # Send the first REST requests before building the window: the server works on them while we construct
        # widgets (cold start to a window with data is the sum of both otherwise).
        start_task = asyncio.ensure_future(desk.controller.start())
        for _ in range(3):
            await asyncio.sleep(0)
        _build_window(desk, args, settings)
        _wait_for_first_screen(cached)  # (a start with other sources too: the history in its first paint as well)
        _show_cache_if_read(desk)
    else:
        desk = built
        desk.taken = True
        start_task = asyncio.ensure_future(desk.controller.start())
        desk.window.release_after_paint_setup()  # the after-paint set-up, held until the loop runs
    window, controller, guard = desk.window, desk.controller, desk.guard
    _STOP.windows_made += 1
    # Ctrl-C, SIGTERM: as File → Quit; a headless run (screenshot, smoke test, start-up report) just ends.
    if (headless or args.report_startup) and _STOP.cancel_run is not None:
        stop_handler = _STOP.cancel_run
    else:
        window_closed: list[bool] = []
        window.closed.connect(lambda: window_closed.append(True))

        def stop_handler() -> None:
            if not window_closed:  # (a window hidden in the tray too; once closed, nothing more to do)
                window.quit()
    _STOP_HANDLERS.append(stop_handler)
    next_connection: list[Connection | None] = []

    async def replace_key() -> None:
        # Without TTMT this is Key → Add TTMT key…: the window restarts with TTMT beside the same sources.
        key = await _ask_key(connection.base_url, window)
        if key:
            settings.without_ttmt = False
            next_connection.append(Connection(connection.base_url, key, connection.demo, connection.sources,
                                              connection.history_dir))
            window.quit()

    async def forget_key() -> None:
        from .. import keystore  # the keyring costs ~0.1 s to import: not on the way to the first window

        try:
            await asyncio.get_running_loop().run_in_executor(None, keystore.forget_key, connection.base_url)
        except keystore.KeyringUnavailable as exc:
            window.status.showMessage(f"The key could not be removed from the keyring: {exc}", 10000)
            return
        window.status.showMessage("The key was removed from the keyring; it is still used until you quit.", 10000)

    window.replace_key_requested.connect(lambda: asyncio.ensure_future(replace_key()))
    window.forget_key_requested.connect(lambda: asyncio.ensure_future(forget_key()))
    painted, cache_painted = desk.painted, desk.cache_painted
    if built is None:
        window.show()
    quit_later: asyncio.TimerHandle | None = None
    closing = _when_emitted(window.closed)  # (a close before this point: desk.closed_early)
    try:
        if not headless and not args.report_startup and not desk.closed_early:
            # A quit while the start-up still loads (it may be waiting out the API's rate limit for a minute) closes
            # the desk now: the process does not linger behind a closed window, holding the single-instance guard.
            await asyncio.wait((start_task, closing), return_when=asyncio.FIRST_COMPLETED)
        if not start_task.done() and desk.closed_early and not headless and not args.report_startup:
            start_task.cancel()
            return next_connection[0] if next_connection else EXIT_OK
        ok = await start_task
        if args.report_startup:
            deadline = time.monotonic() + 10
            while ok and not (painted and painted[0]) and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            print(f"startup-ready {painted[0] if painted else 0:.6f} ok={ok} "
                  f"trades={controller.trades_model.rowCount()} "
                  f"cache={cache_painted[0] if cache_painted else 0:.6f}", flush=True)
            return EXIT_OK if ok else EXIT_FAILED
        if headless:
            return await _capture(args, window, controller, ok)
        if args.quit_after:  # (counted once loaded: a first run lives that long with its data, to write its history)
            quit_later = asyncio.get_running_loop().call_later(args.quit_after, window.quit)
        if not desk.closed_early:
            await closing
        return next_connection[0] if next_connection else EXIT_OK
    finally:
        closing.cancel()
        if quit_later is not None:
            quit_later.cancel()  # (a window closed earlier is deleted below: the timer must not find it)
        if window.isVisible():
            window.quit()
        desk.listen_latest.stop()
        hub = window.hub_if_made
        if hub is not None:
            await hub.aclose()
        await controller.aclose()
        guard.release()
        # Delete the window now: its views show the controller's models, and if the controller were collected
        # first, a late paint or timer of the window would touch deleted models (a crash, not an exception).
        import shiboken6

        # Taken off only now: a stop signal during the closing above finds it, and does nothing more.
        with contextlib.suppress(ValueError):
            _STOP_HANDLERS.remove(stop_handler)
        if shiboken6.isValid(window):
            shiboken6.delete(window)
        if shiboken6.isValid(controller):
            shiboken6.delete(controller)


async def _capture(args: argparse.Namespace, window: Any, controller: Any, loaded: bool) -> int:
    """--screenshot / --smoke-test: wait for data and live events (bounded), render, save, report."""
    if not loaded:
        print(f"ttmt-monitor: loading failed: {controller.connection_detail}", file=sys.stderr)
        return EXIT_FAILED
    limit = args.quit_after if args.quit_after else 60.0
    deadline = time.monotonic() + limit
    hub = getattr(window, "hub", None)
    ttmt = getattr(controller, "has_ttmt", True)
    if not ttmt and (hub is None or not hub.sources()):
        print("ttmt-monitor: no source to show: TTMT is off and no other source is configured (File → Sources…)",
              file=sys.stderr)
        return EXIT_FAILED

    def data_in() -> bool:  # without TTMT: the other sources' accounts (they have no TTMT trades)
        return controller.accounts_model.rowCount() > 0 and (not ttmt or controller.trades_model.rowCount() > 0)

    while time.monotonic() < deadline:
        if data_in() and (controller.live_events > 0 or not ttmt):
            break
        await asyncio.sleep(0.2)
    has_data = data_in()
    live = controller.live_events > 0
    sources_text = ""
    if hub is not None and hub.sources():
        # The neutral sources too: each one live (or said why not) within what is left of the limit.
        def all_live() -> bool:
            return all((h := hub.health(s.id)) is not None and h.state.is_current for s in hub.sources())
        while time.monotonic() < deadline and not all_live():
            await asyncio.sleep(0.2)
        states = []
        for s in hub.sources():
            h = hub.health(s.id)
            states.append(f"{s.label}={h.state if h else '?'}")
            if h is not None and not h.state.is_current:
                print(f"ttmt-monitor: {s.label} is not live: {h.sentence}", file=sys.stderr)
        sources_text = " sources: " + ", ".join(states)
        if not ttmt:
            live, has_data = all_live(), data_in()
    await asyncio.sleep(0.3)  # one more tick and paint with the last batch in
    pixmap = window.grab()
    if pixmap.isNull():
        print("ttmt-monitor: the window did not render", file=sys.stderr)
        return EXIT_FAILED
    if args.screenshot:
        if not pixmap.save(args.screenshot, "PNG"):
            print(f"ttmt-monitor: could not write {args.screenshot}", file=sys.stderr)
            return EXIT_FAILED
    summary = (f"accounts={controller.accounts_model.rowCount()} positions={controller.positions_model.rowCount()} "
               f"trades={controller.trades_model.rowCount()} signals={controller.signals_model.rowCount()} "
               f"events={controller.live_events} state={controller.connection_state}{sources_text}")
    if not has_data or not live:
        what = ("no data in the tables" if not has_data else
                "no live events arrived" if ttmt else "not every source is live")
        print(f"ttmt-monitor: {what} within {limit:g} s ({summary})", file=sys.stderr)
        return EXIT_FAILED
    print(f"ttmt-monitor: ok ({summary})")
    return EXIT_OK
