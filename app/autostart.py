"""Start Hackatime Desktop at login: XDG autostart on Linux, a LaunchAgent on macOS, the Run key on Windows.

The settings window's switch and ``hackatime-desktop --autostart on|off`` both call
:func:`set_enabled` / :func:`is_enabled`. What is started is
:func:`app.desktop_entry.launch_command`: the bundle that is running, or the venv's
``hackatime-desktop`` script — so turning it on again after moving the bundle repoints it.
Each platform's writer takes its location as an argument, so the macOS and Windows
variants can be checked on any machine. Qt-free.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import desktop_entry

LAUNCH_AGENT_LABEL = "com.hackclub.hackatime-desktop"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "Hackatime Desktop"


class Autostart(Protocol):
    def enable(self, command: Sequence[str]) -> str:
        """Start ``command`` at login; returns where that is recorded, for the user."""
        ...

    def disable(self) -> str: ...

    def enabled(self) -> bool: ...


def _replace(path: Path, data: bytes) -> str:
    """Write ``path`` whole or not at all (a login must never read half an entry); returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return str(path)


def _remove(path: Path) -> str:
    path.unlink(missing_ok=True)
    return str(path)


@dataclass
class XdgAutostart:
    """``$XDG_CONFIG_HOME/autostart/hackatime-desktop.desktop`` (freedesktop.org Desktop Application Autostart)."""

    config_home: Path

    @property
    def path(self) -> Path:
        return self.config_home / "autostart" / desktop_entry.DESKTOP_FILE

    def enable(self, command: Sequence[str]) -> str:
        # GNOME honours its own key as well; the tray waits for a tray host, so no start delay is needed.
        text = desktop_entry.render(command, {"X-GNOME-Autostart-enabled": "true"})
        return _replace(self.path, text.encode("utf-8"))

    def disable(self) -> str:
        return _remove(self.path)

    def enabled(self) -> bool:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            return False
        # A desktop's own "startup applications" tool turns an entry off by marking it, not removing it.
        lines = {line.strip() for line in text.splitlines()}
        return "Hidden=true" not in lines and "X-GNOME-Autostart-enabled=false" not in lines


@dataclass
class LaunchAgent:
    """``~/Library/LaunchAgents/com.hackclub.hackatime-desktop.plist``; launchd reads it at the next login."""

    home: Path

    @property
    def path(self) -> Path:
        return self.home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"

    @staticmethod
    def document(command: Sequence[str]) -> bytes:
        return plistlib.dumps(
            {
                "Label": LAUNCH_AGENT_LABEL,
                "ProgramArguments": list(command),
                "RunAtLoad": True,
                # Quitting the tray is the user's choice: launchd must not start it again.
                "KeepAlive": False,
                "ProcessType": "Interactive",
                "LimitLoadToSessionType": "Aqua",  # a GUI login, not an ssh session
            }
        )

    def enable(self, command: Sequence[str]) -> str:
        return _replace(self.path, self.document(command))

    def disable(self) -> str:
        return _remove(self.path)

    def enabled(self) -> bool:
        return self.path.is_file()


class Registry(Protocol):
    """The three calls on ``HKEY_CURRENT_USER\\<RUN_KEY>`` the Run-key variant needs."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None: ...


if sys.platform == "win32":  # mypy checks this part for Windows only
    import winreg

    class WinregRunKey:
        """:class:`Registry` on the real ``winreg``."""

        def get(self, name: str) -> str | None:
            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
                    value, _ = winreg.QueryValueEx(key, name)
            except FileNotFoundError:
                return None
            return str(value)

        def set(self, name: str, value: str) -> None:
            with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
                winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)

        def delete(self, name: str) -> None:
            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
                    winreg.DeleteValue(key, name)
            except FileNotFoundError:
                pass


@dataclass
class RunKey:
    """The value ``Hackatime Desktop`` under ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``."""

    registry: Registry

    @staticmethod
    def value(command: Sequence[str]) -> str:
        return subprocess.list2cmdline(list(command))  # Windows' own quoting rules

    def enable(self, command: Sequence[str]) -> str:
        self.registry.set(RUN_VALUE, self.value(command))
        return f"HKEY_CURRENT_USER\\{RUN_KEY}\\{RUN_VALUE}"

    def disable(self) -> str:
        self.registry.delete(RUN_VALUE)
        return f"HKEY_CURRENT_USER\\{RUN_KEY}\\{RUN_VALUE}"

    def enabled(self) -> bool:
        return self.registry.get(RUN_VALUE) is not None


def for_this_system(platform: str | None = None, env: Mapping[str, str] | None = None) -> Autostart:
    platform = platform or sys.platform
    env = os.environ if env is None else env
    if platform == "darwin":
        return LaunchAgent(Path.home())
    if platform == "win32" and sys.platform == "win32":
        return RunKey(WinregRunKey())
    return XdgAutostart(Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config"))


def is_enabled() -> bool:
    """Whether this user's login starts Hackatime Desktop (for the settings window's switch)."""
    return for_this_system().enabled()


def set_enabled(on: bool) -> str:
    """Turn starting at login on (pointing at this installation) or off; returns where it is recorded.

    Raises OSError when the file or registry value cannot be written.
    """
    target = for_this_system()
    return target.enable(desktop_entry.launch_command()) if on else target.disable()


def main(on: bool) -> int:
    """``--autostart on|off``."""
    try:
        where = set_enabled(on)
    except OSError as exc:
        print(f"hackatime-desktop: could not change starting at login: {exc}", file=sys.stderr)
        return 1
    if on:
        print(f"Hackatime Desktop starts at login ({where}): {' '.join(desktop_entry.launch_command())}")
    else:
        print(f"Hackatime Desktop no longer starts at login (removed {where})")
    return 0
