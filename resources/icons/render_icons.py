"""Render ttmt-monitor.svg to the PNG sizes the installers and window managers want (run after editing the SVG):

    QT_QPA_PLATFORM=offscreen python resources/icons/render_icons.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

SIZES = (16, 32, 48, 64, 128, 256, 512)


def main() -> int:
    app = QGuiApplication(sys.argv[:1])  # noqa: F841 - painting needs an application object
    folder = Path(__file__).resolve().parent
    renderer = QSvgRenderer(str(folder / "ttmt-monitor.svg"))
    if not renderer.isValid():
        print("ttmt-monitor.svg did not parse", file=sys.stderr)
        return 1
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        image.save(str(folder / f"ttmt-monitor-{size}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
