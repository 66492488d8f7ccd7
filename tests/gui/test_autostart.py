"""Starting at login and the menu entry: written and removed for real on Linux, by the commands a
person runs; the macOS plist and the Windows Run-key value checked as what would be written."""

from __future__ import annotations

import configparser
import os
import plistlib
import subprocess
import sys
from pathlib import Path

import pytest

from app import autostart, desktop_entry

SCRIPTS = Path(sys.executable).parent


def desktop(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "cfg"), XDG_DATA_HOME=str(home / "data"))
    env["QT_QPA_PLATFORM"] = "offscreen"
    return subprocess.run(
        [str(SCRIPTS / "hackatime-desktop"), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def read_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def exec_argv(value: str) -> list[str]:
    """An Exec value read back the way the Desktop Entry spec says a launcher reads it."""
    text = value.replace("\\\\", "\\")  # the string level first: \\\\ is one backslash
    argv: list[str] = []
    current: str | None = None
    quoted = False
    i = 0
    while i < len(text):
        char = text[i]
        if quoted and char == "\\" and text[i + 1] in '"`$\\':
            current, i = (current or "") + text[i + 1], i + 2
            continue
        if char == '"':
            quoted, current = not quoted, current or ""
        elif char == " " and not quoted:
            if current is not None:
                argv.append(current)
            current = None
        else:
            current = (current or "") + char
        i += 1
    if current is not None:
        argv.append(current)
    return [arg.replace("%%", "%") for arg in argv]


@pytest.mark.skipif(sys.platform != "linux", reason="XDG autostart is Linux's")
def test_autostart_on_writes_an_entry_that_starts_this_venv_and_off_removes_it(tmp_path: Path) -> None:
    entry = tmp_path / "cfg" / "autostart" / "hackatime-desktop.desktop"
    on = desktop("--autostart", "on", home=tmp_path)
    assert on.returncode == 0, on.stderr
    assert str(entry) in on.stdout
    fields = read_entry(entry)
    argv = exec_argv(fields["Exec"])
    # The venv that is running, by its own entry point (not the system python it links to).
    assert argv == [os.path.abspath(SCRIPTS / "hackatime-desktop")]
    assert fields["TryExec"] == argv[0]
    assert fields["Type"] == "Application" and fields["X-GNOME-Autostart-enabled"] == "true"
    # What the login session would run answers: it is this installation.
    started = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=60, check=True)
    assert started.stdout.startswith("hackatime-desktop ")

    off = desktop("--autostart", "off", home=tmp_path)
    assert off.returncode == 0, off.stderr
    assert not entry.exists()
    assert desktop("--autostart", "off", home=tmp_path).returncode == 0  # already off: still fine


def test_is_enabled_follows_the_file_and_a_desktop_turning_it_off(tmp_path: Path) -> None:
    target = autostart.XdgAutostart(tmp_path)
    assert not target.enabled()
    target.enable(["/opt/hackatime desktop/hackatime-desktop"])
    assert target.enabled()
    # GNOME's "Startup Applications" switches an entry off by editing it, not by removing it.
    target.path.write_text(target.path.read_text().replace("Autostart-enabled=true", "Autostart-enabled=false"))
    assert not target.enabled()
    target.disable()
    assert not target.path.exists()


def test_exec_value_quotes_what_the_spec_reserves() -> None:
    argv = ["/home/ana/My Apps/hackatime-desktop", "--data-dir", '/tmp/a"b$c\\d', "100%"]
    value = desktop_entry.exec_value(argv)
    assert value == ('"/home/ana/My Apps/hackatime-desktop" --data-dir "/tmp/a\\\\"b\\\\$c\\\\\\\\d" 100%%')
    assert exec_argv(value) == argv


def test_launch_command_of_a_bundle_is_its_own_executable(tmp_path: Path) -> None:
    exe = tmp_path / "hackatime-desktop" / "hackatime-desktop"
    exe.parent.mkdir()
    exe.write_text("")
    assert desktop_entry.launch_command(str(exe), frozen=True) == [str(exe.resolve())]
    # A python with no entry point beside it (a checkout run with `python -m`): the module.
    bare = tmp_path / "python3"
    assert desktop_entry.launch_command(str(bare), frozen=False) == [str(bare), "-m", "app.main"]


def test_macos_launch_agent_plist(tmp_path: Path) -> None:
    agent = autostart.LaunchAgent(tmp_path)
    where = agent.enable(["/Applications/Hackatime Desktop.app/Contents/MacOS/hackatime-desktop"])
    path = tmp_path / "Library" / "LaunchAgents" / "com.hackclub.hackatime-desktop.plist"
    assert where == str(path) and agent.enabled()
    assert plistlib.loads(path.read_bytes()) == {
        "Label": "com.hackclub.hackatime-desktop",
        "ProgramArguments": ["/Applications/Hackatime Desktop.app/Contents/MacOS/hackatime-desktop"],
        "RunAtLoad": True,
        "KeepAlive": False,
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",
    }
    agent.disable()
    assert not path.exists() and not agent.enabled()


class RunKeyValues:
    """The values under HKCU\\...\\Run, as the registry would hold them."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {"OneDrive": r'"C:\Program Files\OneDrive\OneDrive.exe" /background'}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


def test_windows_run_key_value() -> None:
    registry = RunKeyValues()
    run_key = autostart.RunKey(registry)
    where = run_key.enable([r"C:\Users\Ana Lee\AppData\Local\Hackatime Desktop\hackatime-desktop.exe"])
    assert where == r"HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Run\Hackatime Desktop"
    assert registry.values["Hackatime Desktop"] == (
        r'"C:\Users\Ana Lee\AppData\Local\Hackatime Desktop\hackatime-desktop.exe"'
    )
    assert run_key.enabled()
    run_key.disable()
    assert not run_key.enabled()
    assert list(registry.values) == ["OneDrive"]  # someone else's entry is left alone


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG menu entry is Linux's")
def test_install_desktop_puts_the_entry_and_icon_where_menus_look(tmp_path: Path) -> None:
    done = desktop("--install-desktop", home=tmp_path)
    assert done.returncode == 0, done.stderr
    entry = tmp_path / "data" / "applications" / "hackatime-desktop.desktop"
    icon = tmp_path / "data" / "icons" / "hicolor" / "256x256" / "apps" / "hackatime-desktop.png"
    fields = read_entry(entry)
    assert exec_argv(fields["Exec"]) == [os.path.abspath(SCRIPTS / "hackatime-desktop")]
    assert fields["Icon"] == "hackatime-desktop" and fields["Name"] == "Hackatime Desktop"
    assert icon.read_bytes() == (desktop_entry.resources_dir() / "icons" / "hackatime-desktop.png").read_bytes()
    assert "X-GNOME-Autostart-enabled" not in fields


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG menu entry is Linux's")
def test_make_install_desktop_installs_the_entry_and_icon_in_the_users_home(tmp_path: Path) -> None:
    """The README's command, through the Makefile: this venv (its install stamp taken as done,
    so nothing is reinstalled), writing only under the user's own data folder."""
    venv = Path(sys.prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "MAKE"))}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"), QT_QPA_PLATFORM="offscreen")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        ["make", "-s", "-C", str(root), f"VENV={venv}", "-o", str(venv / ".installed"), "install-desktop"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # update-desktop-database, where installed, refreshes the menu's cache beside the entry.
    made = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "mimeinfo.cache"]
    written = sorted(str(p.relative_to(tmp_path)) for p in made)
    assert written == [
        "data/applications/hackatime-desktop.desktop",
        "data/icons/hicolor/256x256/apps/hackatime-desktop.png",
    ]
    assert exec_argv(read_entry(tmp_path / written[0])["Exec"]) == [os.path.abspath(SCRIPTS / "hackatime-desktop")]


def test_each_system_gets_its_own_kind_of_login_entry(tmp_path: Path) -> None:
    mac = autostart.for_this_system("darwin")
    assert isinstance(mac, autostart.LaunchAgent) and mac.path.parent == Path.home() / "Library" / "LaunchAgents"
    linux = autostart.for_this_system("linux", {"XDG_CONFIG_HOME": str(tmp_path)})
    assert isinstance(linux, autostart.XdgAutostart)
    assert linux.path == tmp_path / "autostart" / "hackatime-desktop.desktop"
    default = autostart.for_this_system("linux", {})
    assert isinstance(default, autostart.XdgAutostart) and default.config_home == Path.home() / ".config"
