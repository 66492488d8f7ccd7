"""The tray icon, its menu, notifications, and the status window used where there is no tray.

All wording comes from :mod:`app.state`; this module only maps it onto Qt objects.
The menu is rebuilt each time it opens (Vorta's ``aboutToShow`` pattern) from the
model's latest figures, and a refresh is asked for at the same moment; if the
answer lands while the menu is open, the menu is rebuilt in place.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSystemTrayIcon,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import APP_TITLE, icons, memory, state
from .binding import contained
from .model import AgentModel
from .state import Notice, PauseChoice

if TYPE_CHECKING:
    from .dashboard import DashboardWindow
    from .supervisor import AgentSupervisor

log = logging.getLogger(__name__)

TRAY_WAIT_S = 10.0  # aw-qt waits 10 s for a tray that appears late at login (aw-qt#97)
TRAY_POLL_MS = 500
TRAY_LATE_POLL_MS = 5000  # after the status window opened: still look for a tray, slowly
MESSAGE_MS = 8000

PAUSE_LABELS = {
    PauseChoice.HALF_HOUR: "For 30 minutes",
    PauseChoice.HOUR: "For 1 hour",
    PauseChoice.TOMORROW: "Until tomorrow",
}


class TrayApp(QObject):
    notified = Signal(object)  # every Notice shown, whether as a tray message or in the status window
    quit_requested = Signal()
    dashboard_opened = Signal()
    dashboard_freed = Signal()  # a closed dashboard was deleted and its memory handed back

    def __init__(
        self,
        model: AgentModel,
        *,
        supervisor: AgentSupervisor | None = None,
        tray_wait_s: float = TRAY_WAIT_S,
        open_url: Callable[[QUrl], object] = QDesktopServices.openUrl,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.supervisor = supervisor
        self.tray_wait_s = tray_wait_s
        self.open_url = open_url
        self.dashboard: DashboardWindow | None = None
        self.status_window: StatusWindow | None = None
        self._icon_state: state.IconState | None = None
        self._last_notice: Notice | None = None
        self._waited_ms = 0

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

        model.changed.connect(self._update)
        model.notice.connect(self.notify)
        model.action_failed.connect(lambda text: self.notify(Notice("action-failed", APP_TITLE, text, warning=True)))
        if supervisor is not None:
            supervisor.notice.connect(self.notify)
        self._update()
        self.rebuild_menu()

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
            self.status_window = StatusWindow(self)
        self.status_window.refresh()
        self.status_window.show()

    # ---- icon and tooltip -------------------------------------------------------------

    def _update(self) -> None:
        current = self.model.icon_state()
        if current != self._icon_state:
            self._icon_state = current
            self.icon.setIcon(icons.icon(current))
        self.icon.setToolTip(self.model.tooltip())
        if self.menu.isVisible():
            self.rebuild_menu()
        if self.status_window is not None:
            self.status_window.refresh()

    @property
    def icon_state(self) -> state.IconState | None:
        return self._icon_state

    # ---- the menu ---------------------------------------------------------------------

    def _menu_opening(self) -> None:
        self.rebuild_menu()
        self.model.refresh()

    def rebuild_menu(self) -> None:
        view = self.model.menu_view()
        menu = self.menu
        menu.clear()

        def info(text: str, name: str) -> None:
            action = menu.addAction(text)
            action.setObjectName(name)
            action.setEnabled(False)  # read-only lines: greyed like every tray app's status lines

        for i, line in enumerate(view.info):
            info(line, f"info-{i}")
        for i, line in enumerate(view.projects):
            info(f"    {line}", f"project-{i}")
        menu.addSeparator()
        for i, line in enumerate(view.sync):
            info(line, f"sync-{i}")

        sync = self._action(menu, "Sync now", "sync-now", self.model.sync_now)
        sync.setEnabled(view.can_act and not view.syncing)

        title = "Pause tracking"
        if view.paused and self.model.status:
            until = float(self.model.status.get("paused_until") or 0)
            title = f"Tracking paused until {state.format_clock(until, self.model.clock())}"
        pause = self.pause_menu
        pause.clear()
        pause.setTitle(title)
        menu.addMenu(pause)
        pause.menuAction().setObjectName("pause-menu")
        pause.setEnabled(view.can_act)
        for choice, label in PAUSE_LABELS.items():
            self._action(pause, label, f"pause-{choice.value}", self._pauser(choice))
        pause.addSeparator()
        resume = self._action(pause, "Resume tracking", "resume", self.resume)
        resume.setEnabled(view.paused)

        menu.addSeparator()
        self._action(menu, "Open dashboard", "open-dashboard", self.open_dashboard)
        self._action(menu, "Open Hackatime in the browser", "open-hackatime", lambda: self.open_url(QUrl(view.web_url)))
        logs = self._action(menu, "Open log folder", "open-logs", self.open_log_folder)
        logs.setEnabled(self._log_dir() is not None)
        menu.addSeparator()
        self._action(menu, "Quit", "quit", self.quit_requested.emit)

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
        return [a.text() for a in self.menu.actions() if not a.isSeparator()]

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

    def open_log_folder(self) -> None:
        folder = self._log_dir()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            self.open_url(QUrl.fromLocalFile(str(folder)))

    def open_dashboard(self) -> DashboardWindow:
        if self.dashboard is None:
            # Imported here: the dashboard pulls in matplotlib, which the tray alone never needs.
            from .dashboard import DashboardWindow

            self.dashboard = DashboardWindow(self.model)
            self.dashboard.closed.connect(self._dashboard_closed)
        self.dashboard.present()
        self.dashboard_opened.emit()
        return self.dashboard

    def _dashboard_closed(self) -> None:
        """Free the window and its charts: the tray idles for hours between looks at the dashboard.

        Reopening builds it again, within the open budget once matplotlib is imported
        (the warm-up does that); kept hidden instead, it would hold ~20 MB for nothing.
        Once Qt has deleted it, the memory it used goes back to the system (:mod:`app.memory`).
        """
        if self.dashboard is not None:
            self.dashboard.destroyed.connect(self._dashboard_destroyed)
            self.dashboard.deleteLater()
            self.dashboard = None

    def _dashboard_destroyed(self) -> None:
        # On the next pass of the loop: not inside the window's destructor.
        QTimer.singleShot(0, self._release_memory)

    def _release_memory(self) -> None:
        memory.release()
        self.dashboard_freed.emit()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        # A click opens the dashboard, the menu is on the right button. On macOS a click
        # already opens the menu (and reports Trigger too), so only a double click counts there.
        opens = {QSystemTrayIcon.ActivationReason.DoubleClick}
        if sys.platform != "darwin":
            opens.add(QSystemTrayIcon.ActivationReason.Trigger)
        if reason in opens:
            self.open_dashboard()

    # ---- notifications ----------------------------------------------------------------

    def notify(self, notice: Notice) -> None:
        self._last_notice = notice
        if self.icon.isVisible():
            kind = QSystemTrayIcon.MessageIcon.Warning if notice.warning else QSystemTrayIcon.MessageIcon.Information
            self.icon.showMessage(notice.title, notice.message, kind, MESSAGE_MS)
        if self.status_window is not None:
            self.status_window.show_notice(notice)
        log.info("notification: %s — %s", notice.title, notice.message)
        self.notified.emit(notice)

    def _message_clicked(self) -> None:
        notice = self._last_notice
        if notice is not None and notice.kind in ("agent-crashed", "agent-gave-up") and self.supervisor is not None:
            self.open_url(QUrl.fromLocalFile(str(self.supervisor.console_log)))
        else:
            self.open_dashboard()

    # ---- shutdown ---------------------------------------------------------------------

    def close(self) -> None:
        self._tray_timer.stop()
        self.icon.hide()
        if self.dashboard is not None:
            self.dashboard.close()  # its closed signal lets _dashboard_closed free it
        if self.status_window is not None:
            self.status_window.close()
            self.status_window.deleteLater()
            self.status_window = None
        self.menu.deleteLater()


class StatusWindow(QWidget):
    """What the tray menu shows, as a small window, for desktops without a tray (plain GNOME)."""

    def __init__(self, tray: TrayApp) -> None:
        super().__init__()
        self.tray = tray
        self.setObjectName("status-window")
        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(icons.app_icon())
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.state_icon = QLabel()
        top.addWidget(self.state_icon)
        self.summary = QLabel()
        self.summary.setObjectName("summary")
        top.addWidget(self.summary, 1)
        layout.addLayout(top)
        self.sync = QLabel()
        self.sync.setObjectName("sync")
        self.sync.setWordWrap(True)
        layout.addWidget(self.sync)
        self.notice = QLabel()
        self.notice.setObjectName("notice")
        self.notice.setWordWrap(True)
        self.notice.hide()
        layout.addWidget(self.notice)
        buttons = QHBoxLayout()
        self.sync_button = QPushButton("Sync now")
        self.sync_button.clicked.connect(tray.model.sync_now)
        buttons.addWidget(self.sync_button)
        dashboard = QPushButton("Open dashboard")
        dashboard.clicked.connect(tray.open_dashboard)
        buttons.addWidget(dashboard)
        more = QToolButton()
        more.setText("More")
        # The tray's own menu: same entries, same code, nothing to keep in step.
        more.setMenu(tray.menu)
        more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        buttons.addWidget(more)
        layout.addLayout(buttons)
        note = QLabel("No system tray was found. Closing this window quits the tray app; the agent keeps recording.")
        note.setWordWrap(True)
        note.setEnabled(False)
        layout.addWidget(note)
        self.resize(380, 200)

    def refresh(self) -> None:
        view = self.tray.model.menu_view()
        current = self.tray.model.icon_state()
        self.state_icon.setPixmap(icons.icon(current).pixmap(32, 32))
        lines = list(view.info) + [f"    {p}" for p in view.projects]
        self.summary.setText("\n".join(lines))
        self.sync.setText("\n".join(view.sync))
        self.sync_button.setEnabled(view.can_act and not view.syncing)

    def show_notice(self, notice: Notice) -> None:
        self.notice.setText(f"<b>{notice.title}</b><br>{notice.message}")
        self.notice.show()

    @contained
    def closeEvent(self, event: QCloseEvent) -> None:
        if self.tray.icon.isVisible():
            event.accept()  # the tray appeared meanwhile: closing just hides the window
            return
        event.accept()
        self.tray.quit_requested.emit()
