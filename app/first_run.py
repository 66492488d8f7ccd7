"""The first start: say what is set up already, offer what is missing — once, and change nothing without a yes.

* An existing ``~/.wakatime.cfg`` with a key (a Hackatime user's usual set-up) is picked up
  as it is, and the window says so (the key shown by its last four characters only).
* With no key anywhere (the agent says so: not in the cfg, the keyring or the environment), it
  opens the settings at the key (:class:`app.settings_window.SettingsWindow` shows the Account
  tab, the key field in focus): the one place a key is set — checked with the server, kept in
  the keyring or, where there is none, where the user chooses — or Hackatime's sign-in done.
  The window says so, offers to open them again, and says the key once the agent has it.
* Starting at login is a checkbox, on from the start in the bundle (a person who downloads
  the app and starts it once expects it back at the next login), off in a source checkout.
* Editor plugins can be pointed at the agent in one click (the control API's editor routes,
  as in the settings: the file is backed up first, and Undo puts back exactly what it changed).
* Folders under the home folder that look like projects (Git work trees) are listed, found by
  a bounded search off the GUI thread, all unchecked: only the ones the user checks are
  watched, through the agent's control API.

Shown once per config dir: closing the window in any way counts as done (:mod:`app.first_run_marker`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from agent import contract as C
from agent.config import DEFAULT_PORT, is_self_url, read_wakatime_cfg, wakatime_cfg_path
from agent.secrets import mask

from . import APP_TITLE, autostart, first_run_marker
from .client import AgentClient
from .model import AgentModel

log = logging.getLogger(__name__)

MAX_DEPTH = 4  # ~/code/team/project/.git is three levels down; one more for good measure
MAX_DIRS = 20_000  # folders looked into at most: a second or two on a cold disk
MAX_FOUND = 100
# Never looked into: where projects do not live, or where there are too many folders to walk.
SKIP = frozenset(
    (
        "node_modules", "__pycache__", "venv", "site-packages", "snap", "go", "Library", "AppData",
        "Applications", "Downloads", "Music", "Pictures", "Videos", "Movies", "target", "build", "dist",
    )
)  # fmt: skip


@dataclass(frozen=True)
class ExistingSetup:
    """What ``~/.wakatime.cfg`` already provides (read only; the file is never written here)."""

    cfg_path: Path
    cfg_exists: bool
    key_hint: str | None  # the key as it may be shown: last four characters at most
    routed: bool  # api_url sends editors' heartbeats to this agent already
    problem: str | None = None


def existing_setup(env: Mapping[str, str] | None = None, port: int = DEFAULT_PORT) -> ExistingSetup:
    env = os.environ if env is None else env
    path = wakatime_cfg_path(env)
    cfg, problem = read_wakatime_cfg(path)
    section: Mapping[str, str] = cfg["settings"] if cfg.has_section("settings") else {}
    key = section.get("api_key", "").strip() or None
    api_url = section.get("api_url", "").strip()
    return ExistingSetup(
        cfg_path=path,
        cfg_exists=path.is_file(),
        key_hint=mask(key) if key else ("(from api_key_vault_cmd)" if section.get("api_key_vault_cmd") else None),
        routed=bool(api_url) and is_self_url(api_url.rstrip("/"), port),
        problem=problem,
    )


def start_at_login_by_default(frozen: bool | None = None) -> None:
    """At the bundle's first run, turn starting at login on (the window's checkbox shows it, one click undoes it)."""
    if not (getattr(sys, "frozen", False) if frozen is None else frozen) or autostart.is_enabled():
        return
    try:
        autostart.set_enabled(True)
    except OSError:
        log.warning("could not turn on starting at login", exc_info=True)


def find_projects(home: Path, *, max_depth: int = MAX_DEPTH, max_dirs: int = MAX_DIRS) -> list[Path]:
    """Git work trees under ``home``, breadth first, without following links or entering a project.

    Bounded by depth and by the number of folders looked into, so a huge home folder costs
    the same as a modest one; hidden folders are skipped (``.git`` itself is only tested for).
    """
    found: list[Path] = []
    queue: deque[tuple[Path, int]] = deque([(home, 0)])
    visited = 0
    while queue and visited < max_dirs and len(found) < MAX_FOUND:
        folder, depth = queue.popleft()
        visited += 1
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable: not ours to look into
        if folder != home and any(e.name == ".git" for e in entries):
            found.append(folder)
            continue
        if depth >= max_depth:
            continue
        for entry in sorted(entries, key=lambda e: e.name.lower()):
            if entry.name.startswith(".") or entry.name in SKIP:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    queue.append((Path(entry.path), depth + 1))
            except OSError:
                continue
    return sorted(found, key=lambda p: str(p).lower())


class FirstRunWindow(QDialog):
    # Another window of the window process to show, by name (app.windows): the settings, at the key.
    open_window = Signal(str)
    scanned = Signal(list)  # the project folders found (tests wait on it)
    watched = Signal(list)  # the folders the agent now watches, after "Watch checked folders"
    routing_changed = Signal(dict)  # contract.EditorRouting, after routing the editors or undoing it

    def __init__(
        self,
        model: AgentModel,
        config_dir: Path,
        setup: ExistingSetup,
        home: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("first-run")
        self.setWindowTitle(f"Welcome to {APP_TITLE} Desktop")
        self.model, self.config_dir, self.setup = model, config_dir, setup
        self.home = home or Path.home()
        self._settings_opened = False
        layout = QVBoxLayout(self)

        self.key_label = QLabel(self._key_text())
        self.key_label.setObjectName("key-status")
        self.key_label.setWordWrap(True)
        layout.addWidget(self.key_label)
        self.set_key = QPushButton("Open the settings at the key")
        self.set_key.setObjectName("set-key")
        self.set_key.clicked.connect(self.open_settings_at_key)
        self.set_key.setVisible(False)
        layout.addWidget(self.set_key)
        # A key kept elsewhere (the keyring, WAKATIME_API_KEY), or none at all, shows once the agent says.
        model.changed.connect(self._key_from_agent)

        self.folders_label = QLabel(f"Looking for projects in {self.home} …")
        self.folders_label.setObjectName("folders-status")
        self.folders_label.setWordWrap(True)
        layout.addWidget(self.folders_label)
        self.folders = QListWidget()
        self.folders.setObjectName("folders")
        self.folders.itemChanged.connect(self._checks_changed)
        layout.addWidget(self.folders)
        self.watch_button = QPushButton("Watch checked folders")
        self.watch_button.setObjectName("watch")
        self.watch_button.setEnabled(False)
        self.watch_button.clicked.connect(self.watch_checked)
        layout.addWidget(self.watch_button)

        self.editors_label = QLabel()
        self.editors_label.setObjectName("editors-status")
        self.editors_label.setWordWrap(True)
        layout.addWidget(self.editors_label)
        self.route = QPushButton("Send editors' heartbeats through this app")
        self.route.setObjectName("route")
        self.route.clicked.connect(self.route_editors)
        layout.addWidget(self.route)
        self.undo_route = QPushButton("Undo")
        self.undo_route.setObjectName("undo-route")
        self.undo_route.clicked.connect(self.undo_routing)
        layout.addWidget(self.undo_route)
        self._show_routing(None)

        self.login = QCheckBox(f"Start {APP_TITLE} Desktop when I log in")
        self.login.setObjectName("autostart")
        self.login.setChecked(autostart.is_enabled())
        self.login.toggled.connect(self._set_autostart)
        layout.addWidget(self.login)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(560, 480)

    def _key_text(self) -> str:
        setup = self.setup
        if setup.problem:
            return f"{setup.cfg_path} could not be read ({setup.problem}). Set your API key to start syncing."
        if setup.key_hint is not None:
            routed = " Your editors already send their heartbeats through this app." if setup.routed else ""
            return (
                f"Found your Hackatime set-up in {setup.cfg_path}: its API key ({setup.key_hint}) is used, "
                f"and nothing else needs setting up.{routed}"
            )
        return f"No API key in {setup.cfg_path}; asking the agent whether it has one from elsewhere …"

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._key_from_agent()  # the agent may have answered before the window was shown

    def _key_from_agent(self) -> None:
        """With no key in ~/.wakatime.cfg, the agent's status says whether one is kept elsewhere:
        then it is said; if none is, the settings open at the key (once; the button opens them again)."""
        status = self.model.status
        if self.setup.key_hint is not None or not status or not self.isVisible():
            return
        source = status.get("key_source")
        if source and status.get("api_key") not in (None, "", "(none)"):
            self.key_label.setText(f"Your API key ({status['api_key']}, from {source}) is used; nothing to set up.")
            self.set_key.setVisible(False)
            return
        unreadable = f"{self.setup.cfg_path} could not be read ({self.setup.problem}). " if self.setup.problem else ""
        self.key_label.setText(
            f"{unreadable}No Hackatime API key yet: the settings are open at the key — paste yours there "
            "(Get my key shows it) or sign in with Hackatime. Heartbeats are kept on this computer until then."
        )
        self.set_key.setVisible(True)
        if not self._settings_opened:
            self._settings_opened = True
            # Once this window is up (it may be showing right now), so the settings come on top of it.
            QTimer.singleShot(0, self, self.open_settings_at_key)

    def open_settings_at_key(self) -> None:
        self.open_window.emit("settings")

    # ---- editors ------------------------------------------------------------------------

    def _show_routing(self, routing: C.EditorRouting | None, error: str | None = None) -> None:
        if routing is None and self.setup.routed:
            text, can_route, can_undo = "Your editors already send their heartbeats through this app.", False, False
        elif routing is None:
            where = "Hackatime" if not self.setup.cfg_exists else f"the server in {self.setup.cfg_path}"
            text = (
                f"Your editor plugins send heartbeats straight to {where}. Sent through this app instead, "
                "none is lost offline and the tray counts them at once; the file is backed up first."
            )
            can_route, can_undo = True, False
        else:
            backup = f" (the old file is kept as {routing['backup']})" if routing["backup"] else ""
            text = (
                f"Editors now send their heartbeats to this app at {routing['intake_url']}{backup}."
                if routing["routed"]
                else "Your editors send their heartbeats as before; the file is as it was."
            )
            can_route, can_undo = not routing["routed"], routing["can_undo"]
        self.editors_label.setText(f"{error} {text}" if error else text)
        self.route.setVisible(can_route)
        self.undo_route.setVisible(can_undo)

    def route_editors(self) -> None:
        """Point ``~/.wakatime.cfg`` at the agent's intake (the agent backs the file up first and keeps an Undo)."""
        self.route.setEnabled(False)
        self._editors(C.EDITORS_ROUTE)

    def undo_routing(self) -> None:
        self.undo_route.setEnabled(False)
        self._editors(C.EDITORS_UNDO)

    def _editors(self, route: C.Route) -> None:
        self.model.call(
            lambda client: cast("C.EditorRouting", client.request(route)),
            self._routed,
            self._routing_failed,
            context=self,
        )

    def _routed(self, routing: C.EditorRouting) -> None:
        self.route.setEnabled(True)
        self.undo_route.setEnabled(True)
        self._show_routing(routing)
        self.routing_changed.emit(routing)

    def _routing_failed(self, exc: BaseException) -> None:
        self.route.setEnabled(True)
        self.undo_route.setEnabled(True)
        self._show_routing(None, f"Nothing was changed: {exc}.")

    def _set_autostart(self, on: bool) -> None:
        try:
            autostart.set_enabled(on)
        except OSError as exc:
            self.login.blockSignals(True)
            self.login.setChecked(not on)
            self.login.blockSignals(False)
            self.login.setText(f"Could not change starting at login: {exc}")

    def start_scan(self) -> None:
        home = self.home
        self.model.runner.run(
            lambda: find_projects(home), self._scan_done, self._scan_failed, context=self, name="scan"
        )

    def _scan_done(self, found: list[Path]) -> None:
        self.folders.blockSignals(True)
        for path in found:
            item = QListWidgetItem(str(path))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)  # nothing is watched without a yes
            self.folders.addItem(item)
        self.folders.blockSignals(False)
        if found:
            self.folders_label.setText(
                "These folders look like projects. Check the ones whose file saves should count as coding "
                "time (editors with a WakaTime plugin are recorded anyway):"
            )
        else:
            self.folders_label.setText(
                f"No projects (Git folders) found in {self.home}; add folders later in Settings."
            )
        self.folders.setVisible(bool(found))
        self.watch_button.setVisible(bool(found))
        self.scanned.emit(found)

    def _scan_failed(self, exc: BaseException) -> None:
        self.folders_label.setText(f"Could not look for projects: {exc}")
        self.scanned.emit([])

    def checked(self) -> list[str]:
        items = (self.folders.item(i) for i in range(self.folders.count()))
        return [item.text() for item in items if item.checkState() == Qt.CheckState.Checked]

    def _checks_changed(self, _item: QListWidgetItem) -> None:
        self.watch_button.setEnabled(bool(self.checked()))

    def watch_checked(self) -> None:
        paths = self.checked()
        self.watch_button.setEnabled(False)

        def add_all(client: AgentClient) -> tuple[list[str], list[str]]:
            folders: list[str] = []
            problems: list[str] = []
            for path in paths:
                answer = cast("C.WatchAnswer", client.request(C.WATCH_ADD, {"path": path}))
                folders = list(answer["folders"])
                problem = answer.get("problem")
                if problem:
                    problems.append(f"{path} ({problem['reason']})")
            return folders, problems

        def done(result: tuple[list[str], list[str]]) -> None:
            folders, problems = result
            text = f"Watching {len(paths)} folder{'s' if len(paths) != 1 else ''}."
            if problems:
                text += " Not every part is covered: " + "; ".join(problems) + " (see Status)."
            self.folders_label.setText(text)
            self.watched.emit(folders)

        def failed(exc: BaseException) -> None:
            self.folders_label.setText(f"Could not watch every folder: {exc}")
            self.watch_button.setEnabled(True)

        self.model.call(add_all, done, failed, context=self, refresh_after=True)

    def done(self, result: int) -> None:
        """Every way out (Close, Escape, the title bar's ×) ends here: the first run is over."""
        try:
            first_run_marker.mark_done(self.config_dir)
        except OSError:
            log.warning("could not remember that the first run is done", exc_info=True)
        super().done(result)
