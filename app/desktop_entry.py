"""How this installation is started, and the freedesktop.org entries that start it.

:func:`launch_command` is the one answer to "what runs Hackatime Desktop here": the
bundle's own executable, or the ``hackatime-desktop`` script of the virtual environment
that is running. The application-menu entry (:func:`install`, ``make install-desktop``,
``hackatime-desktop --install-desktop``) and the Linux login entry (``app.autostart``) are
both written from ``resources/hackatime-desktop.desktop`` with that command. Qt-free.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

APP_ID = "hackatime-desktop"
DESKTOP_FILE = f"{APP_ID}.desktop"
ICON_SIZE = "256x256"  # resources/icons/hackatime-desktop.png
# Characters that make the Desktop Entry spec's Exec key want an argument quoted.
_RESERVED = re.compile(r"[\s\"'\\><~|&;$*?#()`]")


def resources_dir() -> Path:
    """``resources/``: inside the bundle, or at the top of the source checkout."""
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def licences_dir() -> Path:
    """The licence texts: the bundle's ``licences/`` folder, or ``resources/licences`` in a checkout."""
    if getattr(sys, "frozen", False):
        return resources_dir().parent / "licences"
    return resources_dir() / "licences"


def launch_command(executable: str | None = None, frozen: bool | None = None) -> list[str]:
    """The command that starts the tray from this installation (absolute paths)."""
    executable = executable or sys.executable
    if getattr(sys, "frozen", False) if frozen is None else frozen:
        return [str(Path(executable).resolve())]
    scripts = Path(executable).parent  # a venv's bin/ (Scripts\\ on Windows) holds its entry points
    for name in ("hackatime-desktop", "hackatime-desktop.exe"):
        if (scripts / name).is_file():
            # Not resolved: a venv's python is a symlink to the system one, the script is not.
            return [str(Path(os.path.abspath(scripts / name)))]
    return [os.path.abspath(executable), "-m", "app.main"]


def exec_value(command: Sequence[str]) -> str:
    """``command`` as a Desktop Entry ``Exec`` value (quoting and escaping per the spec)."""
    parts = []
    for arg in command:
        arg = arg.replace("%", "%%")
        if _RESERVED.search(arg):
            arg = '"' + re.sub(r'(["`$\\])', r"\\\1", arg) + '"'
        # The value is a string too: its own escape level doubles every backslash.
        parts.append(arg.replace("\\", "\\\\"))
    return " ".join(parts)


def render(command: Sequence[str], extra: Mapping[str, str] | None = None) -> str:
    """The shipped .desktop file with ``Exec`` (and ``TryExec``) pointing at ``command``."""
    template = (resources_dir() / DESKTOP_FILE).read_text(encoding="utf-8")
    lines = []
    for line in template.splitlines():
        if line.startswith(("Exec=", "TryExec=")):
            continue
        lines.append(line)
        if line.strip() == "[Desktop Entry]":
            lines.append(f"Exec={exec_value(command)}")
            lines.append(f"TryExec={command[0]}")
    lines += [f"{key}={value}" for key, value in (extra or {}).items()]
    return "\n".join(lines) + "\n"


def data_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def install(command: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> list[Path]:
    """Put the menu entry and its icon where desktop menus look, for this user; no root."""
    base = data_home(env)
    entry = base / "applications" / DESKTOP_FILE
    icon = base / "icons" / "hicolor" / ICON_SIZE / "apps" / f"{APP_ID}.png"
    entry.parent.mkdir(parents=True, exist_ok=True)
    icon.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(resources_dir() / "icons" / f"{APP_ID}.png", icon)
    _write_atomically(entry, render(command or launch_command()))
    return [entry, icon]


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main() -> int:
    """``--install-desktop``."""
    if sys.platform in ("darwin", "win32"):
        print("hackatime-desktop: --install-desktop is for Linux desktops; nothing to do here", file=sys.stderr)
        return 2
    for path in install():
        print(f"installed {path}")
    # Menus refresh on their own; this only speeds it up where the tool exists.
    tool = shutil.which("update-desktop-database")
    if tool:
        subprocess.run([tool, "-q", str(data_home() / "applications")], check=False, capture_output=True)
    return 0
