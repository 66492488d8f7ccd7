"""The notifications switch: off in the settings window, and the tray shows no balloons."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QUrl
from pytestqt.qtbot import QtBot

from app.client import AgentClient
from app.model import AgentModel
from app.settings_window import SettingsWindow
from app.state import Notice
from app.tasks import TaskRunner
from app.tray import TrayApp


@pytest.fixture
def settings_window(qtbot: QtBot, runner: TaskRunner, agent: Any) -> Iterator[SettingsWindow]:
    client = AgentClient(agent.config.data_dir)
    urls: list[QUrl] = []
    window = SettingsWindow(client, runner, open_url=urls.append, config_dir=agent.config.config_dir)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.loaded, timeout=30_000):
        window.show()
    yield window
    client.close()


def balloon_shown(tray: TrayApp) -> bool:
    """A notice, then a click where its balloon would be: only a balloon that showed acts."""
    opened: list[str] = []
    tray.dashboard_opened.connect(lambda: opened.append("dashboard"))
    tray.notify(Notice("back-online", "Back online", "5 heartbeats delivered to Hackatime."))
    tray.icon.messageClicked.emit()
    tray.dashboard_opened.disconnect()
    return opened == ["dashboard"]


def test_switched_off_the_tray_shows_no_balloons(
    qtbot: QtBot, settings_window: SettingsWindow, model: AgentModel, tray: TrayApp
) -> None:
    tray.icon.show()  # offscreen: "shown" without a tray, so notices go to balloons
    qtbot.waitUntil(lambda: model.status is not None, timeout=30_000)
    assert balloon_shown(tray)

    with qtbot.waitSignal(settings_window.applied, timeout=30_000):
        settings_window.notifications_box.setChecked(False)
    # The agent keeps the switch; the tray hears of it with the next status, at once.
    qtbot.waitUntil(lambda: model.status is not None and model.status.get("notifications") is False, timeout=30_000)
    notified: list[Notice] = []
    tray.notified.connect(notified.append)
    assert not balloon_shown(tray)
    assert [n.kind for n in notified] == ["back-online"]  # still logged, and shown where there is no tray

    with qtbot.waitSignal(settings_window.applied, timeout=30_000):
        settings_window.notifications_box.setChecked(True)
    qtbot.waitUntil(lambda: model.status is not None and model.status.get("notifications") is True, timeout=30_000)
    assert balloon_shown(tray)
    tray.icon.hide()
