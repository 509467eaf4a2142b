; Inno Setup script: a per-user installer (no admin rights) with a Start-menu shortcut and an uninstaller.
; Built by packaging/build_windows.ps1, which passes /DAppVersion=<version from ttmt_monitor.__version__>
; and /DSourceDir=<the PyInstaller onedir folder>.
#ifndef AppVersion
  #error AppVersion must be defined (build_windows.ps1 passes it)
#endif
#ifndef SourceDir
  #define SourceDir "..\build\dist\ttmt-monitor"
#endif

[Setup]
AppId={{6B8E1F0C-4D2A-4C55-9B0E-7A1D3C5F9E21}
AppName=TTMT Monitor
AppVersion={#AppVersion}
AppPublisher=ttmt-monitor developers
DefaultDirName={localappdata}\Programs\TTMT Monitor
DefaultGroupName=TTMT Monitor
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
OutputDir=..\dist
OutputBaseFilename=ttmt-monitor-{#AppVersion}-windows-setup
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
UninstallDisplayIcon={app}\ttmt-monitor.exe
ArchitecturesInstallIn64BitMode=x64compatible

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\TTMT Monitor"; Filename: "{app}\ttmt-monitor.exe"
Name: "{group}\TTMT Monitor (demo)"; Filename: "{app}\ttmt-monitor.exe"; Parameters: "--demo"
Name: "{group}\Uninstall TTMT Monitor"; Filename: "{uninstallexe}"
Name: "{userdesktop}\TTMT Monitor"; Filename: "{app}\ttmt-monitor.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\ttmt-monitor.exe"; Description: "{cm:LaunchProgram,TTMT Monitor}"; Flags: nowait postinstall skipifsilent
