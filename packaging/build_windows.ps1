# Build the Windows installer: PyInstaller onedir bundle (shared spec) + Inno Setup per-user installer.
# Needs Python 3.11-3.13 and Inno Setup 6 (iscc.exe on PATH, e.g. `choco install innosetup`).
# Output: dist\ttmt-monitor-<version>-windows-setup.exe
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")
$version = (Select-String -Path app\ttmt_monitor\__init__.py -Pattern '__version__ = "(.+)"').Matches[0].Groups[1].Value
python -m venv build\bundle-venv
& build\bundle-venv\Scripts\python.exe -m pip install -q --upgrade pip
# Pillow lets PyInstaller turn the PNG icon into an .ico.
& build\bundle-venv\Scripts\python.exe -m pip install -q . "pyinstaller>=6.10,<7" pillow
& build\bundle-venv\Scripts\pyinstaller.exe --noconfirm --clean --log-level WARN --distpath build\dist --workpath build\work packaging\ttmt-monitor.spec
if ($LASTEXITCODE -ne 0) { throw "pyinstaller failed" }
iscc.exe "/DAppVersion=$version" "/DSourceDir=$((Resolve-Path build\dist\ttmt-monitor).Path)" packaging\ttmt-monitor.iss
if ($LASTEXITCODE -ne 0) { throw "iscc failed" }
Write-Host "built dist\ttmt-monitor-$version-windows-setup.exe"
