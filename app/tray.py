"""The tray icon, its menu and notifications (the status window used where there is no tray,
and the port dialog, are in :mod:`app.tray_windows`, imported when first shown).

All wording comes from :mod:`app.state`; this module only maps it onto Qt objects.
The menu's entries are made once; opening the menu fills their texts from the
model's latest figures and asks for fresh ones. When those land while the menu is
open, only the texts change: clearing and refilling an open QMenu closes it.
Lines that are read rather than clicked are ordinary entries, not disabled ones
(disabled is greyed to the lowest contrast); clicking one opens the dashboard.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

from . import APP_TITLE, icons, state, theme
from .model import AgentModel
from .state import Notice, PauseChoice
from .windows.launcher import WindowLauncher

if TYPE_CHECKING:
    from PySide6.QtWidgets import QMessageBox

    from .supervisor import AgentSupervisor
    from .tray_windows import PortDialog, StatusWindow

log = logging.getLogger(__name__)

TRAY_WAIT_S = 10.0  # aw-qt waits 10 s for a tray that appears late at login (aw-qt#97)
TRAY_POLL_MS = 500
TRAY_LATE_POLL_MS = 5000  # after the status window opened: still look for a tray, slowly
MESSAGE_MS = 8000
INFO_SLOTS = 3  # today, goal, streak
SYNC_SLOTS = 6  # a line per destination plus what needs attention; more would not be read
NOTICES_PAGE = "sync"  # the dashboard's tab where the agent's notices are listed and dismissed

PAUSE_LABELS = {
    PauseChoice.HALF_HOUR: "For 30 minutes",
    PauseChoice.HOUR: "For 1 hour",
    PauseChoice.TOMORROW: "Until tomorrow",
}


class TrayApp(QObject):
    notified = Signal(object)  # every Notice shown, whether as a tray message or in the status window
    quit_requested = Signal()
    dashboard_opened = Signal()  # asked for; the window process shows it (windows.opened says when)

    def __init__(
        self,
        model: AgentModel,
        *,
        supervisor: AgentSupervisor | None = None,
        windows: WindowLauncher | None = None,
        tray_wait_s: float = TRAY_WAIT_S,
        open_url: Callable[[QUrl], object] = QDesktopServices.openUrl,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.supervisor = supervisor
        self.tray_wait_s = tray_wait_s
        self.open_url = open_url
        # Every window is in the window process (app.windows); the tray only asks for them.
        data_dir = model.client.data_dir
        self.windows = windows or WindowLauncher(data_dir, data_dir / "logs", data_dir_arg=data_dir)
        self.windows.setParent(self)
        self.windows.notice.connect(self.notify)
        self.status_window: StatusWindow | None = None
        self._icon_state: state.IconState | None = None
        self._balloon: Notice | None = None  # the notice in the balloon now, the only one a click acts for
        self._balloon_age = QElapsedTimer()
        self._web_url = state.DEFAULT_WEB_URL
        self.port_dialog: PortDialog | None = None
        self._waited_ms = 0
        self._closed = False

        app = QApplication.instance()
        if isinstance(app, QApplication):
            theme.follow(app)  # the menu is drawn by Qt: it follows the system's light or dark too
        self.icon = QSystemTrayIcon(self)
        self.menu = QMenu()
        self.menu.setObjectName("tray-menu")
        # Created once and refilled: a submenu made by addMenu(title) on every rebuild
        # would outlive clear() (it is a child of the menu) and pile up.
        self.pause_menu = QMenu("Pause tracking", self.menu)
        self.pause_menu.setObjectName("pause-menu")
        self.menu.aboutToShow.connect(self._menu_opening)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.icon.messageClicked.connect(self._message_clicked)
        self._tray_timer = QTimer(self)
        self._tray_timer.timeout.connect(self._look_for_tray)

        # Every connection to the model and the supervisor, which outlive a closed tray: close()
        # undoes them, else a change announced after it reaches a menu already deleted. Kept by
        # the slots' names: bound methods kept here would hold the tray in a reference cycle,
        # left to the cyclic collector rather than freed with its last reference.
        self._connections = [
            (model.changed, "_update"),
            (model.notice, "notify"),
            (model.action_failed, "_action_failed"),
        ]
        if supervisor is not None:
            self._connections += [(supervisor.notice, "notify"), (supervisor.problem_changed, "_update")]
            model.availability_changed.connect(supervisor.agent_answers)
        for signal, slot in self._connections:
            signal.connect(getattr(self, slot))
        self._build_menu()
        self._update()

    # ---- start-up: a tray, or a window where there is none ----------------------------

    def start(self) -> None:
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.icon.show()
            return
        if self.tray_wait_s <= 0:
            self._open_status_window()
        self._tray_timer.start(TRAY_POLL_MS)

    def _look_for_tray(self) -> None:
        if QSystemTrayIcon.isSystemTrayAvailable():
            self._tray_timer.stop()
            self.icon.show()
            return
        self._waited_ms += self._tray_timer.interval()
        if self.status_window is None and self._waited_ms >= self.tray_wait_s * 1000:
            log.warning("no system tray after %.0f s; showing the status window instead", self.tray_wait_s)
            self._open_status_window()
            self._tray_timer.setInterval(TRAY_LATE_POLL_MS)

    def _open_status_window(self) -> None:
        if self.status_window is None:
            from .tray_windows import StatusWindow  # here: most desktops have a tray, and never need it

            self.status_window = StatusWindow(self)
        self.status_window.refresh()
        self.status_window.show()

    # ---- icon and tooltip -------------------------------------------------------------

    def agent_problem(self) -> str | None:
        """What keeps the agent from running, in a sentence; None when nothing does (or nobody supervises it)."""
        return self.supervisor.problem if self.supervisor is not None else None

    def _action_failed(self, text: str) -> None:
        self.notify(Notice("action-failed", APP_TITLE, text, warning=True))

    def _update(self) -> None:
        current = self.model.icon_state()
        if current != self._icon_state:
            self._icon_state = current
            self.icon.setIcon(icons.icon(current))
        self.icon.setToolTip(self.model.tooltip(self.agent_problem()))
        if self.menu.isVisible():
            self.update_menu()
        if self.status_window is not None:
            self.status_window.refresh()

    @property
    def icon_state(self) -> state.IconState | None:
        return self._icon_state

    # ---- the menu ---------------------------------------------------------------------

    def _menu_opening(self) -> None:
        self.update_menu()
        self.model.refresh()

    def _build_menu(self) -> None:
        """Every entry the menu can show, made once; :meth:`update_menu` sets texts and visibility."""
        menu = self.menu
        self._info = [self._action(menu, "", f"info-{i}", self.open_dashboard) for i in range(INFO_SLOTS)]
        self._projects = [
            self._action(menu, "", f"project-{i}", self.open_dashboard) for i in range(state.TOP_PROJECTS)
        ]
        menu.addSeparator()
        self._sync = [self._action(menu, "", f"sync-{i}", self.open_dashboard) for i in range(SYNC_SLOTS)]
        # The agent's notices are listed, and dismissed, on the dashboard's Sync tab: the line opens it there.
        self._notices = self._action(menu, "", "agent-notices", lambda: self.open_dashboard(NOTICES_PAGE))
        self._retry = self._action(menu, "Retry starting the agent", "agent-retry", self.retry_agent)
        self._port = self._action(menu, "Use another port…", "agent-port", self.choose_port)
        self._sync_now = self._action(menu, "Sync now", "sync-now", self.model.sync_now)
        pause = self.pause_menu
        menu.addMenu(pause)
        pause.menuAction().setObjectName("pause-menu")
        for choice, label in PAUSE_LABELS.items():
            self._action(pause, label, f"pause-{choice.value}", self._pauser(choice))
        pause.addSeparator()
        self._resume = self._action(pause, "Resume tracking", "resume", self.resume)
        menu.addSeparator()
        self._action(menu, "Open dashboard", "open-dashboard", self.open_dashboard)
        self._action(menu, "Settings…", "open-settings", lambda: self.open_window("settings"))
        self._action(menu, "Import history…", "open-import", lambda: self.open_window("import"))
        self._action(menu, "Open Hackatime in the browser", "open-hackatime", self.open_website)
        self._logs = self._action(menu, "Open log folder", "open-logs", self.open_log_folder)
        menu.addSeparator()
        self._action(menu, "About Hackatime Desktop", "about", self.show_about)
        self._action(menu, "Quit", "quit", self.quit_requested.emit)

    def update_menu(self) -> None:
        """Put the latest figures into the menu's entries, in place (the menu may be open)."""
        view = self.model.menu_view(self.agent_problem())
        _fill(self._info, view.info)
        _fill(self._projects, [f"    {line}" for line in view.projects])
        _fill(self._sync, view.sync)
        _fill([self._notices], [view.notices] if view.notices else [])
        refusal = self.supervisor.refusal if self.supervisor is not None else None
        stuck = self.model.available is not True and self.agent_problem() is not None
        self._retry.setVisible(stuck)
        self._port.setVisible(stuck and refusal is not None and refusal.kind == "port-in-use")
        self._sync_now.setEnabled(view.can_act and not view.syncing)
        # The submenu keeps its title: the sync lines above already say "Tracking paused until …".
        self.pause_menu.setEnabled(view.can_act)
        self._resume.setEnabled(view.paused)
        self._web_url = view.web_url
        self._logs.setEnabled(self._log_dir() is not None)

    def _action(self, menu: QMenu, text: str, name: str, slot: Callable[[], object]) -> QAction:
        action = menu.addAction(text)
        action.setObjectName(name)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def find_action(self, name: str) -> QAction | None:
        """The menu action with this object name, submenus included (tests, screenshots)."""
        stack = [self.menu]
        while stack:
            menu = stack.pop()
            for action in menu.actions():
                if action.objectName() == name:
                    return action
                sub = action.menu()
                if isinstance(sub, QMenu):
                    stack.append(sub)
        return None

    def menu_texts(self) -> list[str]:
        """The entries a person sees, top to bottom."""
        return [a.text() for a in self.menu.actions() if a.isVisible() and not a.isSeparator()]

    # ---- actions ----------------------------------------------------------------------

    def _pauser(self, choice: PauseChoice) -> Callable[[], None]:
        return lambda: self.pause(choice)

    def pause(self, choice: PauseChoice) -> None:
        self.model.pause(state.pause_until(choice, self.model.clock()))

    def resume(self) -> None:
        self.model.pause(None)

    def _log_dir(self) -> Path | None:
        if self.model.status and self.model.status.get("log_dir"):
            return Path(self.model.status["log_dir"])
        if self.supervisor is not None:
            return self.supervisor.log_dir
        return None

    def open_website(self) -> None:
        self.open_url(QUrl(self._web_url))

    def show_about(self) -> QMessageBox:
        """Not modal: a tray app must keep answering while the box is open."""
        from PySide6.QtWidgets import QMessageBox

        from agent import __version__

        from .desktop_entry import licences_dir

        box = QMessageBox(QMessageBox.Icon.NoIcon, "About Hackatime Desktop", "")
        box.setObjectName("about")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(state.about_text(__version__, QUrl.fromLocalFile(str(licences_dir())).toString()))
        box.setIconPixmap(icons.app_icon().pixmap(64, 64))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setModal(False)
        box.show()
        self.about_box = box  # without a Qt parent, the Python reference is what keeps it alive
        return box

    def open_log_folder(self) -> None:
        folder = self._log_dir()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            self.open_url(QUrl.fromLocalFile(str(folder)))

    def retry_agent(self) -> None:
        if self.supervisor is not None:
            self.supervisor.retry()

    def choose_port(self) -> None:
        """Ask for another port for the agent (non-blocking); on OK it is kept and the agent restarted."""
        if self.supervisor is None:
            return
        if self.port_dialog is None:
            from .tray_windows import PortDialog  # here: needed only when the agent's port is taken

            self.port_dialog = PortDialog(self.supervisor.port())
            self.port_dialog.accepted.connect(self._port_chosen)
        self.port_dialog.show()
        self.port_dialog.raise_()
        self.port_dialog.activateWindow()

    def _port_chosen(self) -> None:
        if self.supervisor is not None and self.port_dialog is not None:
            self.supervisor.use_port(self.port_dialog.port())

    def open_dashboard(self, page: str | None = None) -> None:
        """``page``: the tab to show ("sync"); None leaves an open dashboard on the tab it shows."""
        self.open_window("dashboard", page)
        self.dashboard_opened.emit()

    def open_window(self, name: str, page: str | None = None) -> None:
        self.windows.open(name, page)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        # A click opens the dashboard, the menu is on the right button. On macOS a click
        # already opens the menu (and reports Trigger too), so only a double click counts there.
        opens = {QSystemTrayIcon.ActivationReason.DoubleClick}
        if sys.platform != "darwin":
            opens.add(QSystemTrayIcon.ActivationReason.Trigger)
        if reason is QSystemTrayIcon.ActivationReason.Context:
            self._balloon = None  # the icon was clicked, not the balloon: nothing may act for it now
        if reason in opens:
            self.open_dashboard()

    # ---- notifications ----------------------------------------------------------------

    def notify(self, notice: Notice) -> None:
        status = self.model.status  # the agent keeps the switch (Settings, System tab)
        if self.icon.isVisible() and (status is None or status.get("notifications", True)):
            kind = QSystemTrayIcon.MessageIcon.Warning if notice.warning else QSystemTrayIcon.MessageIcon.Information
            self.icon.showMessage(notice.title, notice.message, kind, MESSAGE_MS)
            self._balloon = notice
            self._balloon_age.start()
        if self.status_window is not None:
            self.status_window.show_notice(notice)
        log.info("notification: %s — %s", notice.title, notice.message)
        self.notified.emit(notice)

    def _message_clicked(self) -> None:
        """A click on the balloon: act for the notice it shows, once, and only while it shows.

        Some tray hosts report a click on a balloon that has already gone, or one that
        landed on the icon or its menu; with nothing showing there is nothing to act for.
        """
        notice, self._balloon = self._balloon, None
        if notice is None or self._balloon_age.elapsed() > MESSAGE_MS or self.menu.isVisible():
            return
        if notice.kind in ("agent-crashed", "agent-gave-up") and self.supervisor is not None:
            self.open_url(QUrl.fromLocalFile(str(self.supervisor.console_log)))
        elif notice.kind == "agent-refused":
            pass  # the menu holds its actions (Retry, another port); the click just dismisses it
        elif notice.kind == "window-crashed":
            self.open_url(QUrl.fromLocalFile(str(self.windows.log_path)))
        elif notice.kind == "agent-notice":
            self.open_dashboard(NOTICES_PAGE)
        else:
            self.open_dashboard()

    # ---- shutdown ---------------------------------------------------------------------

    def close(self) -> None:
        """Hide the icon and let go of every window; once (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True
        for signal, slot in self._connections:
            signal.disconnect(getattr(self, slot))
        self._tray_timer.stop()
        self.icon.hide()
        self.windows.close()
        if self.status_window is not None:
            self.status_window.close()
            self.status_window.deleteLater()
            self.status_window = None
        if self.port_dialog is not None:
            self.port_dialog.close()
            self.port_dialog.deleteLater()
            self.port_dialog = None
        self.menu.deleteLater()


def _fill(actions: list[QAction], lines: list[str]) -> None:
    """Show ``lines`` in the first entries of ``actions`` and hide the rest; texts change in place."""
    for i, action in enumerate(actions):
        shown = i < len(lines)
        if shown and action.text() != lines[i]:
            action.setText(lines[i])
        action.setVisible(shown)
