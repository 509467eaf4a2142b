#!/usr/bin/env bash
# Build the Linux artefacts from a clean checkout:
#   dist/ttmt-monitor-<version>-linux-<arch>.tar.gz   (the PyInstaller onedir bundle; extract and run ./ttmt-monitor/ttmt-monitor)
#   dist/ttmt-monitor_<version>_<debarch>.deb         (installs to /opt/ttmt-monitor with a menu entry and /usr/bin/ttmt-monitor)
# Uses its own build venv (build/bundle-venv) so the developer venv is untouched.
# Options: MEASURE_EXCLUDES=1 also builds without the excludes and prints what they save.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' app/ttmt_monitor/__init__.py)
ARCH=$(uname -m)
case "$ARCH" in x86_64) DEBARCH=amd64 ;; aarch64) DEBARCH=arm64 ;; *) DEBARCH=$ARCH ;; esac

VENV=build/bundle-venv
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q . "pyinstaller>=6.10,<7"

build() {  # $1 = dist dir, $2 = work dir
  "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN --distpath "$1" --workpath "$2" packaging/ttmt-monitor.spec
}
build build/dist build/work
BUNDLE=build/dist/ttmt-monitor
size_kb=$(du -sk "$BUNDLE" | cut -f1)
echo "bundle: $BUNDLE ($((size_kb / 1024)) MiB unpacked)"

if [ "${MEASURE_EXCLUDES:-0}" = "1" ]; then
  TTMT_NO_EXCLUDES=1 build build/dist-noexcl build/work-noexcl
  full_kb=$(du -sk build/dist-noexcl/ttmt-monitor | cut -f1)
  echo "excludes save: $(((full_kb - size_kb) / 1024)) MiB ($((full_kb / 1024)) MiB without them)"
fi

mkdir -p dist
TARBALL=dist/ttmt-monitor-$VERSION-linux-$ARCH.tar.gz
tar -C build/dist -czf "$TARBALL" ttmt-monitor
echo "built $TARBALL ($(du -h "$TARBALL" | cut -f1))"

# .deb: /opt/ttmt-monitor (the bundle), /usr/bin/ttmt-monitor (symlink), a desktop entry and an icon.
PKG=build/deb/ttmt-monitor_${VERSION}_$DEBARCH
rm -rf "$PKG"
mkdir -p "$PKG/DEBIAN" "$PKG/opt" "$PKG/usr/bin" "$PKG/usr/share/applications" "$PKG/usr/share/icons/hicolor/256x256/apps"
cp -a "$BUNDLE" "$PKG/opt/ttmt-monitor"
ln -s /opt/ttmt-monitor/ttmt-monitor "$PKG/usr/bin/ttmt-monitor"
if [ -f resources/icons/ttmt-monitor-256.png ]; then
  cp resources/icons/ttmt-monitor-256.png "$PKG/usr/share/icons/hicolor/256x256/apps/ttmt-monitor.png"
fi
cat > "$PKG/usr/share/applications/ttmt-monitor.desktop" <<DESKTOP
[Desktop Entry]
Type=Application
Name=TTMT Monitor
Comment=Live trading desk for TTMT (Telegram to MetaTrader)
Exec=/opt/ttmt-monitor/ttmt-monitor
Icon=ttmt-monitor
Categories=Office;Finance;
Terminal=false
DESKTOP
installed_kb=$(du -sk "$PKG" | cut -f1)
# What Qt's GUI and its X11 (xcb) platform plugin need from the system: the list the app prints when the plugin
# cannot load and the README's quick start shows (app/ttmt_monitor/ui/platform_check.py APT_PACKAGES).
DEPENDS=$(PYTHONPATH=app "$VENV/bin/python" -c \
  'from ttmt_monitor.ui.platform_check import APT_PACKAGES; print(", ".join(APT_PACKAGES))')
cat > "$PKG/DEBIAN/control" <<CONTROL
Package: ttmt-monitor
Version: $VERSION
Section: misc
Priority: optional
Architecture: $DEBARCH
Installed-Size: $installed_kb
Depends: $DEPENDS
Maintainer: ttmt-monitor developers <noreply@example.invalid>
Description: Read-only live trading desk for TTMT accounts
 Accounts, signals, trades and open positions from the TTMT API, live from its
 event stream, with P&L charts and desktop notifications. Never places a trade.
CONTROL
DEB=dist/ttmt-monitor_${VERSION}_$DEBARCH.deb
dpkg-deb --root-owner-group --build "$PKG" "$DEB" >/dev/null
echo "built $DEB ($(du -h "$DEB" | cut -f1))"
