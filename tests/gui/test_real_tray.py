"""The one test that needs a real system tray: run by packaging/tray-test.sh under Xvfb with trayer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

from app.model import AgentModel
from app.tray import TrayApp
from tests.gui.conftest import SCREENSHOTS, coding, post_heartbeats, wait_exposed


def icon_widget(tray: TrayApp) -> QWidget | None:
    """The window Qt embedded into the tray (XEmbed): where a click on the icon lands."""
    where = tray.icon.geometry()
    for widget in QApplication.topLevelWidgets():
        if widget.isVisible() and QRect(widget.mapToGlobal(widget.rect().topLeft()), widget.size()) == where:
            return widget
    return None


def grab_screen(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    screen = QGuiApplication.primaryScreen()
    assert screen.grabWindow(0).save(str(path))
    return path


@pytest.mark.tray
def test_real_tray_icon_menu_and_dashboard(history: None, agent: Any, model: AgentModel, qtbot: Any) -> None:
    assert QGuiApplication.platformName() == "xcb"
    qtbot.waitUntil(QSystemTrayIcon.isSystemTrayAvailable, timeout=10_000)  # trayer owns the tray selection
    post_heartbeats(agent, coding("hackatime-desktop", 25))
    qtbot.waitUntil(lambda: bool(model.status and model.status["destinations"][0]["sent"] == 26), timeout=10_000)

    tray = TrayApp(model)
    tray.start()
    screen = QGuiApplication.primaryScreen().geometry()

    def docked() -> bool:  # embedded by trayer, which sits in the top right corner
        where = tray.icon.geometry()
        return tray.icon.isVisible() and where.top() < 40 and where.right() > screen.width() - 200

    qtbot.waitUntil(docked, timeout=10_000)
    assert tray.status_window is None  # a tray was found: no fallback window
    widget = icon_widget(tray)
    assert widget is not None, "the tray icon's window was not found"
    assert "Hackatime · today" in tray.icon.toolTip()

    # A right click on the icon opens the menu, built fresh from the agent's figures.
    QTest.mouseClick(widget, Qt.MouseButton.RightButton)
    wait_exposed(qtbot, tray.menu)
    tray.menu.repaint()  # painted now, before the screen is grabbed
    texts = tray.menu_texts()
    assert texts[0].startswith("Today: ") and "All synced · last synced just now" in texts
    grab_screen("real-tray-menu")
    tray.menu.hide()

    # A left click opens the dashboard.
    with qtbot.waitSignal(tray.dashboard_opened, timeout=10_000):
        QTest.mouseClick(widget, Qt.MouseButton.LeftButton)
    assert tray.dashboard is not None
    wait_exposed(qtbot, tray.dashboard)
    qtbot.waitUntil(lambda: bool(tray.dashboard and tray.dashboard.week_chart.series), timeout=10_000)
    tray.dashboard.repaint()
    grab_screen("real-tray-dashboard")
    tray.close()
