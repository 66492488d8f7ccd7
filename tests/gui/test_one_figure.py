"""One computation per figure: today's total and the goal's percentage read the same in the
tooltip, the menu and the dashboard, in each state the tray can be in."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from agent.delivery.pacing import Backoff
from app import state
from app.dashboard import RANGES, DashboardWindow
from app.model import AgentModel
from app.tray import TrayApp
from app.windows import WindowContext
from app.windows.host import WindowHost
from tests.gui.conftest import coding, post_heartbeats, wait_exposed
from tests.standin import Fault, User


def figures(tray: TrayApp, window: DashboardWindow) -> dict[str, dict[str, Any]]:
    """Each figure as each view writes it: today's total, the goal's percentage, the streak and the sync lines.

    Read at one moment of the model's clock, so "retrying in 26 s" cannot tick between two views.
    """
    model, clock = tray.model, tray.model.clock
    moment = clock()
    model.clock = lambda: moment
    try:
        model.changed.emit()  # every view redraws from the same figures at this moment
        tray.menu.aboutToShow.emit()
        menu = tray.menu_texts()
        tip = tray.icon.toolTip()
        window.refresh_view()
    finally:
        model.clock = clock

    def percent(text: str | None) -> str | None:
        found = re.search(r"(\d+) ?%", text or "")
        return found.group(1) if found else None

    goal_line = next((t for t in menu if t.startswith("Goal")), None)
    streak_line = next((t for t in menu if t.startswith("Streak: ")), "")
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
        "streak": {"menu": streak_line.removeprefix("Streak: "), "dashboard": window.streak_label.text()},
        "sync": {"menu": tuple(lines(tray, "sync")), "dashboard": tuple(window.sync_summary.text().split("\n"))},
    }


def lines(tray: TrayApp, section: str) -> list[str]:
    """The texts of the menu's entries of one section ("sync-0", "sync-1", … or "project-0", …)."""
    shown = [a for a in tray.menu.actions() if re.fullmatch(rf"{section}-\d+", a.objectName()) and a.isVisible()]
    return [a.text().strip() for a in shown]


def todays_projects_agree(tray: TrayApp, window: DashboardWindow) -> bool:
    """Today's projects in the menu are the dashboard's Projects table for Today, name by name."""
    tray.menu.aboutToShow.emit()
    menu = lines(tray, "project")
    rows = sorted(window.projects_model.rows, key=lambda r: -float(r.get("total_seconds") or 0))
    table = [f"{r['name']} · {state.format_duration(r.get('total_seconds'))}" for r in rows[: state.TOP_PROJECTS]]
    return bool(menu) and window.projects_model.rows is not None and sorted(menu) == sorted(table)


def test_the_same_figure_reads_the_same_everywhere_in_each_state(
    standin: Any, zone: str, make_agent: Callable[..., Any], make_model: Callable[..., AgentModel],
    qtbot: Any, tmp_path: Any,
) -> None:  # fmt: skip
    standin.update_user(User(id=1, username="orpheus", timezone=zone, day_goal=3 * 3600))
    agent = make_agent(backoff=Backoff(base=600, cap=600))  # "retrying in 10 min": a state that stays while read
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
        seen: list[dict[str, dict[str, Any]]] = []
        window.range_box.setCurrentIndex([key for key, _ in RANGES].index("today"))  # the menu's projects are today's

        def check(label: str) -> None:
            got = figures(tray, window)
            for name, views in got.items():
                assert len(set(views.values())) == 1, (label, name, views)  # one string in every view
            assert got["today"]["menu"] == state.format_duration(model.stats["today"]["total_seconds"])  # type: ignore[index]
            assert got["goal"]["menu"] == str(state.goal_percent(model.stats))
            assert got["streak"]["menu"]  # shown, not left out
            if model.available:  # the table is asked of the agent: only while it answers
                qtbot.waitUntil(lambda: todays_projects_agree(tray, window), timeout=20_000)
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

        # Can't reach Hackatime: the held upload is reset and so is every retry; the agent backs off.
        standin.inject(Fault.CONNECTION_RESET, times=1000)
        standin.release_hangs()
        qtbot.waitUntil(
            lambda: model.status is not None and model.status["destinations"][0]["backoff_until"] is not None,
            timeout=20_000,
        )
        check("can't reach")
        error = window.dest_table.item(0, 6).text()  # the Sync tab's "Last error", in the menu's words
        assert error.startswith("Can't reach Hackatime (connection reset)"), error
        assert not any(raw in error for raw in ("Error:", "Errno", "network error")), error
        assert any("Can't reach Hackatime (connection reset) · retrying" in line for line in lines(tray, "sync"))
        standin.clear_faults()

        # The agent stops: the last figures stay, still one string each.
        agent.stop()
        qtbot.waitUntil(lambda: model.available is False, timeout=10_000)
        check("agent down")
        assert seen[0]["goal"]["menu"] != seen[1]["goal"]["menu"]
        assert len(seen) == 4  # the figures moved, and moved together
    finally:
        tray.close()
        host.close()
