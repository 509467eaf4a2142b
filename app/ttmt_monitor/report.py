"""The statement as a PDF: the HTML of ``core.analytics.statement`` printed by Qt (QtGui + QtSvg, no widgets;
works on the offscreen platform, so the command line needs no display).

- :func:`statement_pdf` writes a :class:`~ttmt_monitor.core.analytics.Statement` to a PDF file (A4, portrait).
- :func:`write_statement` writes HTML or PDF atomically (``FILE.partial``, then a rename: an error never leaves a
  half file), what File -> Export statement... and ``ttmt-monitor report`` both call.
- :func:`ensure_gui_app` makes an offscreen QGuiApplication when none exists (Qt needs one for fonts).

Qt's rich text renders no inline SVG, so each P&L curve is rendered with QSvgRenderer into an image at print
resolution and handed to the document as a resource (``curve_image_name``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from .core.analytics import Statement, curve_image_name, curve_svgs, render_html

PARTIAL_SUFFIX = ".partial"
FORMATS = ("html", "pdf")
PAGE_WIDTH = 1000  # layout width of a page, in document pixels
_app: Any = None  # the QGuiApplication we made, kept alive for the process


def ensure_gui_app() -> Any:
    """The running QGuiApplication (the window's), or a new offscreen one for a process without a window."""
    global _app
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance()
    if app is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        with contextlib.suppress(ImportError):
            from .ui.platform_check import quiet_qt_messages

            quiet_qt_messages()
        app = _app = QGuiApplication(["ttmt-monitor-report"])
    return app


def _svg_image(svg: str, width: int, height: int, scale: float) -> Any:
    from PySide6.QtCore import QByteArray, QRectF
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    image = QImage(int(width * scale), int(height * scale), QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter, QRectF(0, 0, image.width(), image.height()))
    finally:
        painter.end()
    return image


def statement_pdf(st: Statement, path: str | os.PathLike[str]) -> None:
    """Print the statement to ``path`` as a PDF (overwrites it)."""
    from PySide6.QtCore import QMarginsF, QSizeF, QUrl
    from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter, QTextDocument

    from .core.analytics.statement import CURVE_SIZE

    ensure_gui_app()
    doc = QTextDocument()
    doc.setDocumentMargin(0)
    # Lay the document out on a page PAGE_WIDTH px wide (A4's proportions): print_ then scales the paginated
    # document to the paper, so a wide table fits the way it fits a 1000 px window, instead of breaking words.
    doc.setPageSize(QSizeF(PAGE_WIDTH, PAGE_WIDTH * 297 / 210 * 0.985))
    w, h = CURVE_SIZE
    for cur, svg in curve_svgs(st).items():
        doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(curve_image_name(cur)),
                        _svg_image(svg, w, h, 3.0))
    doc.setHtml(render_html(st, inline_svg=False))
    writer = QPdfWriter(os.fspath(path))
    writer.setTitle(st.title)
    writer.setCreator("ttmt-monitor")
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                     QMarginsF(12, 12, 12, 12), QPageLayout.Unit.Millimeter))
    from .ui.platform_check import printing_off_thread

    with printing_off_thread():  # (the layout's timer warnings, harmless here: ui/platform_check.py)
        doc.print_(writer)


def write_statement(st: Statement, path: str | os.PathLike[str], fmt: str) -> Path:
    """Write the statement as ``fmt`` ("html" or "pdf") to ``path`` atomically; returns the path."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be html or pdf, not {fmt!r}")
    out = Path(path)
    tmp = out.with_name(out.name + PARTIAL_SUFFIX)
    try:
        if fmt == "html":
            tmp.write_text(render_html(st), encoding="utf-8")
        else:
            statement_pdf(st, tmp)
            if not tmp.exists() or tmp.stat().st_size == 0:
                raise OSError(f"Qt wrote no PDF to {tmp}")
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return out
