"""Signed in with Hackatime, the dashboard's all-time projects say which are archived on the server."""

from __future__ import annotations

import time
from typing import Any

from app.dashboard import RANGES, DashboardWindow
from app.model import AgentModel
from app.windows.host import WindowHost
from tests.conftest import API_KEY
from tests.gui.conftest import wait_exposed
from tests.standin import User


def test_all_time_projects_mark_the_archived_ones_once_signed_in(
    standin: Any, zone: str, agent: Any, model: AgentModel, host: WindowHost, qtbot: Any
) -> None:
    orpheus = User(id=1, username="orpheus", timezone=zone, archived_projects=("arcade",))
    standin.update_user(orpheus)
    now = time.time()
    beats = [
        {"time": now - 86400 * days - i * 60, "entity": f"/src/{project}/{i}.py", "project": project}
        for days, project in ((2, "arcade"), (1, "website"))
        for i in range(20)
    ]
    standin.seed(beats, API_KEY)
    agent.sign_in(standin.oauth_token(orpheus))
    agent.refresh_stats()

    window = host.open("dashboard")
    assert isinstance(window, DashboardWindow)
    wait_exposed(qtbot, window)
    window.tabs.setCurrentIndex(1)
    window.range_box.setCurrentIndex([key for key, _ in RANGES].index("all"))
    shown = lambda: {  # noqa: E731 - read again on every look
        window.projects_model.index(row, 0).data() for row in range(window.projects_model.rowCount())
    }
    qtbot.waitUntil(lambda: shown() == {"arcade (archived)", "website"}, timeout=20_000)
