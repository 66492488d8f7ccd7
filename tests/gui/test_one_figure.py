"""One computation per figure: today's total and the goal's percentage read the same in the
tooltip, the menu and the dashboard, in each state the tray can be in."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from app import state
from app.dashboard import DashboardWindow
from app.model import AgentModel
from app.tray import TrayApp
from app.windows import WindowContext
from app.windows.host import WindowHost
from tests.gui.conftest import coding, post_heartbeats, wait_exposed
from tests.standin import Fault, User


def figures(tray: TrayApp, window: DashboardWindow) -> dict[str, dict[str, str | None]]:
    """Today's total and the goal's percentage as each view writes them."""
    tray.menu.aboutToShow.emit()
    menu = tray.menu_texts()
    tip = tray.icon.toolTip()
    window.refresh_view()

    def percent(text: str | None) -> str | None:
        found = re.search(r"(\d+) ?%", text or "")
        return found.group(1) if found else None

    goal_line = next((t for t in menu if t.startswith("Goal")), None)
    return {
        "today": {
            "menu": menu[0].removeprefix("Today: "),
            "tooltip": tip.split("\n")[0].removeprefix("Hackatime · today ").split(" · ")[0],
            "dashboard": window.today_total.text(),
        },
        "goal": {
            "menu": percent(goal_line),
            "tooltip": percent(tip),
            "dashboard": percent(window.goal_label.text()),
            "ring": None if window.goal_ring.percent is None else str(window.goal_ring.percent),
        },
    }


def test_the_same_figure_reads_the_same_everywhere_in_each_state(
    standin: Any, zone: str, make_agent: Callable[..., Any], make_model: Callable[..., AgentModel],
    qtbot: Any, tmp_path: Any,
) -> None:  # fmt: skip
    standin.update_user(User(id=1, username="orpheus", timezone=zone, day_goal=3 * 3600))
    agent = make_agent()
    model = make_model(agent.config.data_dir)
    tray = TrayApp(model, tray_wait_s=3600)
    host = WindowHost(
        WindowContext(model=model, data_dir=tmp_path, log_dir=tmp_path / "logs", config_dir=tmp_path), keep_alive_s=3600
    )
    window = host.open("dashboard")
    assert isinstance(window, DashboardWindow)
    wait_exposed(qtbot, window)
    model.start()
    try:
        seen: list[dict[str, dict[str, str | None]]] = []

        def check(label: str) -> None:
            got = figures(tray, window)
            for name, views in got.items():
                assert len(set(views.values())) == 1, (label, name, views)  # one string in every view
            assert got["today"]["menu"] == state.format_duration(model.stats["today"]["total_seconds"])  # type: ignore[index]
            assert got["goal"]["menu"] == str(state.goal_percent(model.stats))
            seen.append(got)

        # Synced: this computer's work has reached Hackatime and its figure.
        post_heartbeats(agent, coding("hackatime-desktop", 37))
        qtbot.waitUntil(lambda: (state.goal_percent(model.stats) or 0) > 0, timeout=20_000)
        qtbot.waitUntil(lambda: model.status is not None and model.status["destinations"][0]["sent"] == 38)
        check("synced")

        # Waiting: new work the server holds on to; today includes it, the views agree on it.
        standin.inject(Fault.HANG, times=1)
        post_heartbeats(agent, coding("website", 23, end=time.time() - 38 * 60, language="TypeScript"))
        qtbot.waitUntil(
            lambda: model.status is not None and model.status["destinations"][0]["in_flight"] == 24, timeout=20_000
        )
        model.refresh()
        qtbot.waitUntil(lambda: model.stats["today"]["local_seconds"] >= 59 * 60, timeout=20_000)  # type: ignore[index]
        check("waiting")
        # Work still on its way is never called synced, in the menu, the tooltip or the dashboard.
        tray.menu.aboutToShow.emit()
        shown = [*tray.menu_texts(), tray.icon.toolTip(), window.sync_summary.text()]
        assert not any("All synced" in text for text in shown), shown
        assert any("waiting" in text for text in tray.menu_texts()), tray.menu_texts()
        assert standin.wait_until_held()
        standin.release_hangs()

        # The agent stops: the last figures stay, still one string each.
        agent.stop()
        qtbot.waitUntil(lambda: model.available is False, timeout=10_000)
        check("agent down")
        assert seen[0]["goal"]["menu"] != seen[1]["goal"]["menu"]  # the figures moved, and moved together
    finally:
        tray.close()
        host.close()
