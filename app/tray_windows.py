"""The two small windows the tray process shows itself: the status window where there is no
system tray, and the dialog for another agent port when the agent's is taken.

Apart from :mod:`app.tray`, which imports this module only when one of them is needed:
most desktops have a tray and most ports are free, and every widget class a module
touches stays initialised, and resident, in a process that runs for weeks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QCloseEvent, QPalette
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import APP_TITLE, icons
from .binding import contained
from .state import Notice

if TYPE_CHECKING:
    from .tray import TrayApp

INTAKE_PATH = "/api/hackatime/v1"  # where editors' api_url points on the agent


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
        # Quieter than the figures, yet readable: a disabled label is greyed to the lowest contrast.
        note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout.addWidget(note)
        self.resize(380, 200)

    def refresh(self) -> None:
        view = self.tray.model.menu_view(self.tray.agent_problem())
        current = self.tray.model.icon_state()
        self.state_icon.setPixmap(icons.icon(current).pixmap(32, 32))
        lines = list(view.info) + [f"    {p}" for p in view.projects]
        self.summary.setText("\n".join(lines))
        self.sync.setText("\n".join(view.sync + ([view.notices] if view.notices else [])))
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


class PortDialog(QDialog):
    """Another port for the agent, and what it means for the editors."""

    def __init__(self, current: int) -> None:
        super().__init__()
        self.setObjectName("port-dialog")
        self.setWindowTitle(f"{APP_TITLE} — Agent port")
        layout = QVBoxLayout(self)
        self.spin = QSpinBox()
        self.spin.setRange(1024, 65535)
        self.spin.setValue(current + 1 if current < 65535 else 1024)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.spin.valueChanged.connect(self._explain)
        layout.addWidget(QLabel(f"Port {current} is taken by another program. Start the agent on port:"))
        layout.addWidget(self.spin)
        layout.addWidget(self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._explain()

    def _explain(self) -> None:
        self.note.setText(
            "Editors send their heartbeats to the agent's port: set api_url in ~/.wakatime.cfg to "
            f"http://127.0.0.1:{self.port()}{INTAKE_PATH} as well, or they keep sending to the old port."
        )

    def port(self) -> int:
        return int(self.spin.value())
