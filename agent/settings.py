"""The app's own settings, declared once with their types and defaults.

They live in ``settings.json`` in the platform config dir and sit between the
environment and ``~/.wakatime.cfg`` in the configuration order (design.md).
Runtime state (queues, cursors, cached figures) is kept in the store, never here.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Setting:
    key: str
    type: type
    default: Any
    label: str


SETTINGS: tuple[Setting, ...] = (
    Setting("api_url", str, "", "Hackatime API URL (empty: from ~/.wakatime.cfg, else Hackatime)"),
    Setting("port", int, 0, "Local intake port (0: the default port)"),
    Setting("watch_dirs", list, [], "Folders whose file saves are recorded"),
    Setting("hostname", str, "", "Machine name sent with heartbeats (empty: this computer's name)"),
    Setting("batch_size", int, 100, "Heartbeats per upload request (at most 100)"),
    Setting("pacing", bool, True, "Stay under Hackatime's published rate limits"),
    Setting("exclude", list, [], "Regexes of paths never recorded"),
    Setting("include", list, [], "Regexes of paths always recorded"),
    Setting("hide_file_names", bool, False, "Obfuscate file names before they are stored"),
    Setting("hide_project_names", bool, False, "Obfuscate project names before they are stored"),
    Setting("hide_branch_names", bool, False, "Obfuscate branch names before they are stored"),
    Setting("plaintext_key", str, "", "API key kept in this file because no OS keyring is usable"),
    Setting("oauth_client_id", str, "", "Client id of this app registered at the server's /oauth/applications"),
    Setting("window_keep_alive_s", int, 300, "Seconds the window process stays after its last window closes"),
    Setting("notifications", bool, True, "Show the tray's notifications"),
)
_BY_KEY = {s.key: s for s in SETTINGS}


class SettingsError(ValueError):
    pass


def _check(setting: Setting, value: Any) -> Any:
    # bool is an int subclass: accept it only where a bool is declared.
    if setting.type is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise SettingsError(f"setting {setting.key!r} must be a whole number")
    if setting.type is list and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise SettingsError(f"setting {setting.key!r} must be a list of strings")
    if setting.type is bool and not isinstance(value, bool):
        raise SettingsError(f"setting {setting.key!r} must be true or false")
    if not isinstance(value, setting.type):
        raise SettingsError(f"setting {setting.key!r} must be of type {setting.type.__name__}")
    return value


# Settings the agent keeps for the app without using them itself (the control API's /preferences).
PREFERENCES = ("notifications", "oauth_client_id")


def checked_preferences(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes, each checked (a SettingsError names the first bad one); nothing is saved."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in PREFERENCES:
            raise SettingsError(f"{name!r} is not a preference (one of {', '.join(PREFERENCES)})")
        if name == "oauth_client_id" and isinstance(value, str):
            value = value.strip()
            if any(c.isspace() for c in value) or len(value) > 200:
                raise SettingsError("the OAuth client id is one word, as /oauth/applications shows it")
        out[name] = _check(_BY_KEY[name], value)
    return out


class AppSettings:
    """Typed access to ``settings.json``; unknown keys in the file are kept but ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._values: dict[str, Any] = {}
        self.problem: str | None = None
        if path.exists():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(loaded, dict):
                    raise SettingsError("the file does not hold a JSON object")
                self._values = loaded
            except (OSError, ValueError) as exc:
                # A broken settings file must not stop capture: use defaults and say so.
                self.problem = f"{path.name} could not be read ({exc}); defaults are used"
                self._values = {}

    def get(self, key: str) -> Any:
        setting = _BY_KEY[key]
        if key in self._values:
            try:
                return _check(setting, self._values[key])
            except SettingsError:
                return setting.default
        return setting.default

    def set(self, key: str, value: Any) -> None:
        self.update({key: value})

    def update(self, changes: dict[str, Any]) -> None:
        """Set several at once: all are checked first, then saved in one write (or none is)."""
        for key, value in changes.items():
            if key not in _BY_KEY:
                raise SettingsError(f"unknown setting {key!r}")
            _check(_BY_KEY[key], value)
        self._values.update(changes)
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename so a crash never leaves half a settings file.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".settings-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self._values, fh, indent=2, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
