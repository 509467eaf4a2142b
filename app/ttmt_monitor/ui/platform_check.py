"""Qt's platform plugin, before Qt starts: the missing-library check for X11 and one quieted warning.

Provides :func:`xcb_problem` (None, or the message telling the user what to install), :data:`APT_PACKAGES` /
:data:`APT_COMMAND` (the same line the README's quick start shows and the .deb depends on) and
:func:`quiet_qt_messages`.

Why a check of our own: Qt's xcb platform plugin (the X11 one) links a dozen X helper libraries that a minimal
Linux does not have (``libxcb-cursor0``, ``libxcb-icccm4``, ``libxcb-keysyms1``...). When one is missing, creating
the QApplication prints "Could not load the Qt platform plugin "xcb" in "" even though it was found" and aborts the
process: no exception, nothing we could catch. So before the QApplication exists, when Qt is going to pick xcb
(Linux, ``$DISPLAY`` set, ``QT_QPA_PLATFORM`` unset or ``xcb``, not a Wayland session), the plugin file itself is
loaded with ``dlopen`` as Qt loads it (same file, same RUNPATH, same system search), and a failure becomes one
sentence naming the missing libraries and the ``apt-get`` line. A successful probe leaves the libraries loaded
for Qt, which loads the same ones a moment later.

Standard library only (ctypes): nothing of Qt is imported here, so the check works when Qt would abort.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The libraries libqxcb.so and libQt6XcbQpa.so.6 link (PySide6 6.11, ``readelf -d``) that PySide6 does not ship,
# and the Debian/Ubuntu package of each (``dpkg -S``). libc, libstdc++, libGL, glib and the like are left out:
# nothing that shows an X display lacks them.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11-xcb.so.1": "libx11-xcb1",
}
# What Qt's GUI libraries themselves need from the system (QtGui: EGL, GL, fontconfig, xkbcommon; QtDBus: dbus),
# then the xcb plugin's: one line that makes a minimal Debian/Ubuntu able to show the window.
APT_PACKAGES: tuple[str, ...] = (
    "libegl1", "libgl1", "libfontconfig1", "libxkbcommon0", "libdbus-1-3",
    *dict.fromkeys(XCB_LIBRARIES.values()),
)
APT_COMMAND = "sudo apt-get install " + " ".join(APT_PACKAGES)

# Exactly the warnings that say nothing to a user, by their full text (see quiet_qt_messages).
QUIETED_QT_MESSAGES = frozenset({
    # QPlatformWindow::propagateSizeHints() in the offscreen (and minimal) plugin: those platforms have no window
    # manager to pass size hints to, and every top-level whose minimum size is set (the main window's layout,
    # each dialog) prints it once (9 times in a --smoke-test). xcb, Wayland, Windows and macOS implement it.
    "This plugin does not support propagateSizeHints()",
})
# ... and those that say nothing while a worker thread prints a document (inside ``printing_off_thread``): anywhere
# else they would mean a QObject's timer that does not run (a QObject handed to a worker, which DESIGN forbids).
QUIETED_WORKER_QT_MESSAGES = frozenset({
    # The statement's PDF is printed on an executor thread (a plain Python thread: ui/qloop.py says why), which has
    # no Qt event dispatcher. QTextDocument's layout asks for its timers (incremental layout, size-changed
    # notices) while ``print_`` lays the whole document out anyway: 4 lines per 90-day statement, the PDF complete.
    "QBasicTimer::start: current thread's event dispatcher has already been destroyed",
    "QBasicTimer::start: QBasicTimer can only be used with threads started with QThread",
})


def qt_will_use_xcb(environ: Any = None) -> bool:
    """True when Qt, started now, would load the xcb plugin (and abort if it cannot)."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "").strip()
    if platform:
        # "xcb;wayland" and the like: Qt falls back by itself. "xcb:option=..." is still xcb.
        return ";" not in platform and platform.split(":", 1)[0] == "xcb"
    if not env.get("DISPLAY"):
        return False  # no X display: Qt would say so itself
    # Qt 6 picks its Wayland plugin on a Wayland session.
    return not (env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE", "").lower() == "wayland")


def xcb_plugin_path(environ: Any = None) -> Path | None:
    """The xcb plugin file Qt would load, in Qt's order: ``$QT_QPA_PLATFORM_PLUGIN_PATH``, then each
    ``$QT_PLUGIN_PATH`` entry's ``platforms/``, then PySide6's own; None when none is found."""
    env = os.environ if environ is None else environ
    folders: list[Path] = []
    if env.get("QT_QPA_PLATFORM_PLUGIN_PATH"):
        folders.append(Path(env["QT_QPA_PLATFORM_PLUGIN_PATH"]))
    folders += [Path(p) / "platforms" for p in env.get("QT_PLUGIN_PATH", "").split(os.pathsep) if p]
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        folders.append(Path(location) / "Qt" / "plugins" / "platforms")
    for folder in folders:
        candidate = folder / "libqxcb.so"
        if candidate.is_file():
            return candidate
    return None


def _load(name: str | Path) -> str | None:
    """None when ``dlopen`` succeeds, else its error text."""
    import ctypes  # here: only Linux with an X display pays for it

    try:
        ctypes.CDLL(str(name), mode=os.RTLD_LAZY)
    except OSError as exc:
        return str(exc)
    return None


def missing_xcb_libraries() -> list[str]:
    """Which of :data:`XCB_LIBRARIES` the system's loader cannot find (sonames)."""
    return [name for name in XCB_LIBRARIES if _load(name) is not None]


def xcb_problem(environ: Any = None, plugin: Path | None = None) -> str | None:
    """The message for the user when Qt is about to use xcb and its plugin cannot load; else None.

    ``plugin``: the plugin file to try (default: the one Qt would load, :func:`xcb_plugin_path`). None also when
    Qt will not use xcb or no plugin file is found (Qt then says what it says)."""
    env = os.environ if environ is None else environ
    if not qt_will_use_xcb(env):
        return None
    path = plugin or xcb_plugin_path(env)
    if path is None:
        return None
    failure = _load(path)
    if failure is None:
        return None
    missing = missing_xcb_libraries()
    first = failure.split(":", 1)[0].strip()  # the loader names the first library it could not find
    if first.startswith(_X_LIBRARY_PREFIXES) and first not in missing:
        missing.insert(0, first)
    if not missing:
        # Not an X library (a Qt library laid out differently in a frozen bundle, say): we cannot tell, so we
        # leave it to Qt rather than refuse a start that might work.
        return None
    names = ", ".join(missing)
    return (
        f"ttmt-monitor: the window cannot open: Qt's X11 (xcb) platform plugin needs libraries that are not "
        f"installed ({names}).\n"
        f"On Debian or Ubuntu install them with:\n  {APT_COMMAND}\n"
        "On other systems install the packages that provide those libraries. (Or run the command line, "
        "`ttmt-monitor --help`, which needs no window.)"
    )


_X_LIBRARY_PREFIXES = ("libxcb", "libxkbcommon", "libX11")

_handler: Any = None  # kept referenced: Qt holds only a raw pointer to the Python callable
_printing = threading.local()  # .active: this thread prints a document off the GUI thread (printing_off_thread)


@contextlib.contextmanager
def printing_off_thread() -> Iterator[None]:
    """Around a document printed on a worker thread (the statement's PDF): its layout's timer warnings are dropped
    there (:data:`QUIETED_WORKER_QT_MESSAGES`), and only there and then."""
    if threading.current_thread() is threading.main_thread():
        yield
        return
    _printing.active = True
    try:
        yield
    finally:
        _printing.active = False


def quiet_qt_messages() -> None:
    """Drop the Qt warnings in :data:`QUIETED_QT_MESSAGES` (matched by their whole text), and those in
    :data:`QUIETED_WORKER_QT_MESSAGES` printed by a worker thread inside :func:`printing_off_thread`; every other
    message goes on as before (to the previous handler, else to stderr formatted as Qt's default handler does).

    A message handler rather than ``QT_LOGGING_RULES``: the warning is in Qt's ``default`` category, and a rule
    for that category would silence every other uncategorised warning too."""
    global _handler
    if _handler is not None:
        return
    from PySide6.QtCore import qFormatLogMessage, qInstallMessageHandler

    previous: Any = None

    def handler(mode: Any, context: Any, message: str) -> None:
        if message in QUIETED_QT_MESSAGES or (
                message in QUIETED_WORKER_QT_MESSAGES and getattr(_printing, "active", False)):
            return
        if previous is not None:
            previous(mode, context, message)
            return
        try:
            sys.stderr.write(qFormatLogMessage(mode, context, message) + "\n")
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass

    _handler = handler
    previous = qInstallMessageHandler(handler)
