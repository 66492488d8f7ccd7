"""The agent's stored notices in the tray: the menu's line leads to the Sync tab, and a notice pops up once.

A store damaged on disk is how the agent comes to store a notice for real
(conftest.agent_on_damaged_store); the dashboard is shown by a real window process
started by the tray's launcher, which says the tab it shows in its log (``--timing``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from app import shown_notices
from app.dashboard import DashboardWindow
from app.model import AgentModel
from app.state import Notice, NotificationTracker
from app.tray import TrayApp
from app.windows.host import WindowHost
from tests.gui.conftest import agent_on_damaged_store
from tests.gui.test_tray import open_menu, wait_status
from tests.gui.test_windows import START_MS, run_app, window_processes


def listed(stored: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    return lambda status: any(n["id"] == stored["id"] for n in status["notices"])


def popups(shown: list[Notice]) -> list[str]:
    return [n.message for n in shown if n.kind == "agent-notice"]


def shown_tab(tray: TrayApp) -> str:
    """The tab the window process last said its dashboard shows (its ``--timing`` lines in window.log)."""
    lines = tray.windows.log_path.read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith('{"event"')]
    tab: str = [e for e in events if e["event"] == "opened" and e["window"] == "dashboard"][-1]["tab"]
    return tab


def test_the_notices_line_opens_the_dashboard_at_its_sync_tab(
    make_agent: Callable[..., Any], make_model: Callable[..., AgentModel], tmp_path: Path, qtbot: Any
) -> None:
    data_dir = tmp_path / "damaged"
    _, stored = agent_on_damaged_store(make_agent, data_dir)
    model = make_model(data_dir)
    model.start()
    wait_status(qtbot, model, listed(stored))
    tray = TrayApp(model, tray_wait_s=3600, open_url=[].append)
    tray.windows.extra_args.append("--timing")  # the window process says which tab it shows
    try:
        assert "1 notice from the agent — see Sync" in open_menu(tray)
        line = tray.find_action("agent-notices")
        assert line is not None

        # No window process yet: the one started shows the Sync tab, asked on its command line too.
        with qtbot.waitSignal(tray.windows.opened, timeout=START_MS) as opened:
            line.trigger()
        assert opened.args == ["dashboard"]
        assert shown_tab(tray) == "sync"
        [pid] = window_processes(data_dir)
        command = psutil.Process(pid).cmdline()
        assert command[command.index("--page") + 1] == "sync"

        # Every other way to the dashboard leaves it on the tab it shows.
        with qtbot.waitSignal(tray.windows.opened, timeout=START_MS):
            tray.open_dashboard()
        assert shown_tab(tray) == "sync"

        # A launch from a terminal can name a tab as well; the running window process shows it.
        other = run_app("--window", "dashboard", "--page", "overview", "--data-dir", str(data_dir))
        assert other.returncode == 0, other.stdout + other.stderr
        assert shown_tab(tray) == "overview"

        # The dashboard open at another tab: the line brings it to the Sync tab.
        with qtbot.waitSignal(tray.windows.opened, timeout=START_MS):
            line.trigger()
        assert shown_tab(tray) == "sync"

        # So does a click on the notice's own balloon.
        assert run_app("--window", "dashboard", "--page", "overview", "--data-dir", str(data_dir)).returncode == 0
        assert shown_tab(tray) == "overview"
        tray.icon.show()  # offscreen: "shown" without a tray, so notices go to balloons
        tray.notify(Notice("agent-notice", "Hackatime Desktop", stored["message"]))
        with qtbot.waitSignal(tray.windows.opened, timeout=START_MS):
            tray.icon.messageClicked.emit()
        tray.icon.hide()
        assert shown_tab(tray) == "sync"
        assert window_processes(data_dir) == [pid]
    finally:
        tray.close()


def test_the_window_process_shows_the_page_asked_for(host: WindowHost, qtbot: Any) -> None:
    answers: list[str] = []
    with qtbot.waitSignal(host.opened, timeout=10_000):
        host.handle("open dashboard", answers.append)
    window = host.windows["dashboard"]
    assert isinstance(window, DashboardWindow)
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Overview"
    sync_page = window.dead_table.parentWidget()

    with qtbot.waitSignal(host.opened, timeout=10_000):
        host.handle("open dashboard sync", answers.append)
    assert window.tabs.currentWidget() is sync_page
    with qtbot.waitSignal(host.opened, timeout=10_000):
        host.handle("open dashboard", answers.append)  # the plain request: the tab it shows
    with qtbot.waitSignal(host.opened, timeout=10_000):
        host.handle("open dashboard weather", answers.append)  # no such tab: shown as it is
    assert window.tabs.currentWidget() is sync_page
    host.handle("close dashboard sync", answers.append)
    assert answers == [
        "opened dashboard",
        "opened dashboard sync",
        "opened dashboard",
        "opened dashboard weather",
        "error unknown request 'close dashboard sync'",
    ]


def test_a_notice_shown_once_does_not_pop_up_again_after_a_restart(
    make_agent: Callable[..., Any], make_model: Callable[..., AgentModel], tmp_path: Path, qtbot: Any
) -> None:
    data_dir = tmp_path / "damaged"
    agent, stored = agent_on_damaged_store(make_agent, data_dir)

    def start_tray(check: Callable[[dict[str, Any]], bool]) -> tuple[AgentModel, TrayApp, list[Notice]]:
        # The tray's model, as app.main makes it: a data dir given, its config dir is the data dir.
        model = make_model(data_dir, notices_dir=data_dir)
        tray = TrayApp(model, tray_wait_s=3600, open_url=[].append)
        shown: list[Notice] = []
        tray.notified.connect(shown.append)
        model.start()
        wait_status(qtbot, model, check)
        return model, tray, shown

    model, tray, shown = start_tray(listed(stored))
    assert popups(shown) == [stored["message"]]
    tray.close()
    model.stop()

    # Started again: not popped up again, yet still pointed to until it is dismissed.
    model, tray, shown = start_tray(listed(stored))
    try:
        assert popups(shown) == []
        assert "1 notice from the agent — see Sync" in open_menu(tray)

        # A notice the tray has not shown yet still pops up.
        with agent.store.transaction() as conn:
            conn.execute(
                "INSERT INTO notices(time, level, message) VALUES (?, 'warning', 'Something new.')", (time.time(),)
            )
        [_, new] = agent.store.notices()
        model.refresh(stats=False)
        wait_status(qtbot, model, listed(new))
        assert popups(shown) == ["Something new."]

        # Only what the agent still lists is kept: the dismissed one is forgotten.
        done: list[Any] = []
        model.dismiss_notice(int(stored["id"]), done.append, done.append)
        wait_status(qtbot, model, lambda s: not listed(stored)(s))
        qtbot.waitUntil(lambda: done == [None], timeout=10_000)
        assert shown_notices.load(data_dir) == {(new["id"], new["time"])}
        assert popups(shown) == ["Something new."]
    finally:
        tray.close()


def test_a_store_started_afresh_numbering_its_notices_from_1_again_is_still_heard() -> None:
    """A recovered store's first notice has id 1, as the old store's first had: the time tells them apart."""
    old = {"id": 1, "time": 1_700_000_000.25, "level": "error", "message": "An old one, not dismissed."}
    new = {"id": 1, "time": 1_700_086_400.5, "level": "error", "message": "The local database was damaged."}
    tracker = NotificationTracker(shown_notices={(1, old["time"])})  # as the last run left it
    assert tracker.on_status({"notices": [old]}, 0.0) == []
    assert [n.message for n in tracker.on_status({"notices": [new]}, 1.0)] == [new["message"]]
    assert tracker.shown_notices == {(1, new["time"])}  # the old one is no longer listed: forgotten
