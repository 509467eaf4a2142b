#!/usr/bin/env bash
# Build the macOS app: PyInstaller "TTMT Monitor.app" (shared spec) inside a compressed dmg.
# Needs Python 3.11-3.13 and the Xcode command-line tools (hdiutil ships with macOS).
# Output: dist/ttmt-monitor-<version>-macos.dmg
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' app/ttmt_monitor/__init__.py)
python3 -m venv build/bundle-venv
build/bundle-venv/bin/pip install -q --upgrade pip
# Pillow lets PyInstaller turn the PNG icon into an .icns.
build/bundle-venv/bin/pip install -q . "pyinstaller>=6.10,<7" pillow
build/bundle-venv/bin/pyinstaller --noconfirm --clean --log-level WARN --distpath build/dist --workpath build/work packaging/ttmt-monitor.spec
mkdir -p dist build/dmg
rm -rf build/dmg/*
cp -R "build/dist/TTMT Monitor.app" build/dmg/
ln -s /Applications build/dmg/Applications
hdiutil create -volname "TTMT Monitor" -srcfolder build/dmg -ov -format UDZO "dist/ttmt-monitor-$VERSION-macos.dmg"
echo "built dist/ttmt-monitor-$VERSION-macos.dmg"
