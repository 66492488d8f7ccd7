"""The tray against a real agent (in-process) and the loopback Hackatime stand-in.

Each agent state is produced the way it happens for real — editor heartbeats to
the agent's intake, a server that resets connections or refuses the key, a
pause asked for from the menu, an agent that stops — and the menu, icon and
tooltip are read back from the Qt objects.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QPoint, QThreadPool
from PySide6.QtWidgets import QApplication, QLabel, QSystemTrayIcon
from pytestqt.exceptions import TimeoutError as WaitTimeout

from agent.delivery.pacing import Backoff
from app import main as app_main
from app import state
from app.model import AgentModel
from app.single import SingleInstance
from app.state import IconState, Notice, SyncState
from app.tray import TrayApp
from app.tray_windows import StatusWindow
from tests.gui.conftest import agent_on_damaged_store, coding, post_heartbeats, screenshot
from tests.standin import Fault, User


def open_menu(tray: TrayApp) -> list[str]:
    """What a click on the icon does first: the menu is rebuilt from the latest figures."""
    tray.menu.aboutToShow.emit()
    return tray.menu_texts()


def wait_status(qtbot: Any, model: AgentModel, check: Callable[[dict[str, Any]], bool], timeout: int = 10_000) -> None:
    try:
        qtbot.waitUntil(lambda: model.status is not None and check(model.status), timeout=timeout)
    except WaitTimeout as exc:
        raise WaitTimeout(f"the status never matched; last one: {model.status}") from exc


def dest(status: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = status["destinations"][0]
    return result


def test_synced_and_recording(agent: Any, model: AgentModel, tray: TrayApp, standin: Any, qtbot: Any) -> None:
    post_heartbeats(agent, coding("hackatime-desktop", 30))
    wait_status(qtbot, model, lambda s: s["recording"] and dest(s)["sent"] == 31 and dest(s)["pending"] == 0)
    assert standin.count() == 31
    qtbot.waitUntil(lambda: (model.stats or {}).get("today", {}).get("local_seconds", 0) >= 29 * 60, timeout=10_000)

    texts = open_menu(tray)
    today = model.stats["today"]["total_seconds"]  # type: ignore[index]
    assert texts[0] == f"Today: {state.format_duration(today)}"
    assert "Streak: 1 day" in texts
    assert "All synced · last synced just now" in texts
    for action in ("Sync now", "Pause tracking", "Open dashboard", "Open Hackatime in the browser", "Open log folder"):
        assert action in texts
    assert texts[-1] == "Quit"
    assert tray.icon_state == IconState(SyncState.SYNCED, recording=True)
    assert tray.icon.toolTip().startswith(f"Hackatime · today {state.format_duration(today)}")

    tray.menu.popup(QPoint(40, 40))
    qtbot.waitUntil(tray.menu.isVisible)
    screenshot(tray.menu, "tray-menu")
    tray.menu.hide()


def test_waiting_to_sync_then_sync_now(
    make_agent: Callable[..., Any], make_model: Callable[..., AgentModel], standin: Any, qtbot: Any
) -> None:
    # The agent's first retry comes 1-2 s after a failure: on a loaded machine the status showing
    # the wait could arrive after that retry had already delivered. A retry minutes away holds the
    # state read below until Sync now, as it is after a few failures in a row.
    agent = make_agent(backoff=Backoff(base=600, cap=600))
    model = make_model(agent.config.data_dir)
    model.start()
    tray = TrayApp(model, tray_wait_s=3600)
    standin.inject(Fault.HANG, times=1)  # the server takes the upload and does not answer (yet)
    post_heartbeats(agent, coding("website", 9))
    # queued = pending + in flight (the agent does not announce the moment it claims a batch)
    wait_status(qtbot, model, lambda s: dest(s)["pending"] + dest(s)["in_flight"] == 10)
    texts = open_menu(tray)
    assert "10 heartbeats waiting · last synced never" in texts
    assert tray.icon_state is not None and tray.icon_state.sync is SyncState.WAITING
    assert "10 heartbeats waiting to sync" in tray.icon.toolTip()

    assert standin.wait_until_held()
    standin.release_hangs()  # the held connection is reset: the agent keeps the batch and backs off
    wait_status(qtbot, model, lambda s: dest(s)["pending"] == 10 and dest(s)["backoff_until"] is not None)
    stuck = next(t for t in open_menu(tray) if t.startswith("10 heartbeats waiting · "))
    # the reason it is stuck in words, and when it retries
    assert "Can't reach Hackatime (connection " in stuck and "retrying in" in stuck and "Error" not in stuck

    with qtbot.waitSignal(model.sync_finished, timeout=10_000) as finished:
        tray.find_action("sync-now").trigger()  # type: ignore[union-attr]
    assert finished.args[0]["pending"] == 0
    wait_status(qtbot, model, lambda s: dest(s)["sent"] == 10 and s["online"] is True and dest(s)["pending"] == 0)
    assert standin.count() == 10
    assert "All synced · last synced just now" in open_menu(tray)
    assert tray.icon_state.sync is SyncState.SYNCED
    tray.close()


def test_offline_then_back_online_notifies_with_the_count(
    agent: Any, make_model: Callable[..., AgentModel], standin: Any, qtbot: Any
) -> None:
    # long_offline_s=0: any outage counts as long (the real threshold is 10 minutes of wall time)
    model = make_model(agent.config.data_dir, notifications=state.NotificationTracker(long_offline_s=0))
    model.start()
    tray = TrayApp(model, tray_wait_s=3600)
    notices: list[Notice] = []
    tray.notified.connect(notices.append)
    standin.inject(Fault.CONNECTION_RESET, times=1000)
    post_heartbeats(agent, coding("notes", 4))
    wait_status(qtbot, model, lambda s: s["online"] is False and dest(s)["pending"] == 5)
    texts = open_menu(tray)
    # The server resets connections: it is unreachable, but this computer is not offline.
    assert not any(t.startswith("Offline") for t in texts)
    assert any(t.startswith("5 heartbeats waiting · Can't reach Hackatime (connection reset)") for t in texts)
    assert tray.icon_state is not None and tray.icon_state.sync is SyncState.OFFLINE
    assert "Can't reach Hackatime — heartbeats kept" in tray.icon.toolTip()

    standin.clear_faults()
    with qtbot.waitSignal(tray.notified, timeout=10_000, check_params_cb=lambda n: n.kind == "back-online"):
        model.sync_now()
    assert notices[-1].message == "5 heartbeats delivered to Hackatime."
    assert tray.icon_state.sync is SyncState.SYNCED
    tray.close()


def test_key_rejected(make_agent: Callable[..., Any], make_model: Callable[..., AgentModel], qtbot: Any) -> None:
    agent = make_agent(api_key="00000000-0000-4000-8000-000000000000")  # the stand-in does not know this key
    model = make_model(agent.config.data_dir)
    tray = TrayApp(model, tray_wait_s=3600)
    notices: list[Notice] = []
    tray.notified.connect(notices.append)
    model.start()  # the agent may learn the key is refused from its first stats fetch, before any upload
    post_heartbeats(agent, coding("secret", 2), key="00000000-0000-4000-8000-000000000000")
    wait_status(qtbot, model, lambda s: dest(s)["auth_state"] == "rejected" and dest(s)["pending"] == 3)
    assert [n.kind for n in notices] == ["key-rejected"]  # once, however many statuses say so
    texts = open_menu(tray)
    assert "API key rejected · 3 heartbeats kept until it is fixed" in texts
    assert tray.icon_state is not None and tray.icon_state.sync is SyncState.KEY_REJECTED
    assert "API key rejected" in tray.icon.toolTip()
    tray.close()


def test_pause_and_resume_from_the_menu(model: AgentModel, tray: TrayApp, qtbot: Any) -> None:
    open_menu(tray)
    tray.find_action("pause-30m").trigger()  # type: ignore[union-attr]
    wait_status(qtbot, model, lambda s: s["paused_until"] is not None)
    until = model.status["paused_until"]  # type: ignore[index]
    assert abs(until - (model.clock() + 1800)) < 10
    texts = open_menu(tray)
    assert f"Tracking paused until {state.format_clock(until, model.clock())}" in texts
    assert tray.icon_state == IconState(SyncState.PAUSED)
    assert tray.find_action("resume").isEnabled()  # type: ignore[union-attr]

    tray.find_action("resume").trigger()  # type: ignore[union-attr]
    wait_status(qtbot, model, lambda s: s["paused_until"] is None)
    assert "Pause tracking" in open_menu(tray)
    assert not tray.find_action("resume").isEnabled()  # type: ignore[union-attr]
    assert tray.icon_state is not None and tray.icon_state.sync is SyncState.SYNCED


def test_agent_down_then_back(
    make_agent: Callable[..., Any], make_model: Callable[..., AgentModel], qtbot: Any, tmp_path: Path
) -> None:
    agent = make_agent()
    model = make_model(agent.config.data_dir)
    tray = TrayApp(model, tray_wait_s=3600)
    model.start()
    wait_status(qtbot, model, lambda s: True)
    assert model.available

    agent.stop()
    qtbot.waitUntil(lambda: model.available is False, timeout=10_000)
    texts = open_menu(tray)
    assert "The Hackatime agent is not running" in texts
    assert not tray.find_action("sync-now").isEnabled()  # type: ignore[union-attr]
    assert tray.icon_state == IconState(SyncState.AGENT_DOWN)
    assert "The Hackatime agent is not running" in tray.icon.toolTip()

    # A new agent on the same data dir: new port, same token file; the tray finds it by itself.
    again = make_agent(data_dir=agent.config.data_dir)
    qtbot.waitUntil(lambda: model.available is True, timeout=10_000)
    assert model.status is not None and model.status["started_at"] == again.started_at
    assert "The Hackatime agent is not running" not in open_menu(tray)
    assert tray.find_action("sync-now").isEnabled()  # type: ignore[union-attr]
    tray.close()


def test_goal_reached_notification(
    standin: Any, zone: str, make_agent: Callable[..., Any], make_model: Callable[..., AgentModel], qtbot: Any
) -> None:
    standin.update_user(User(id=1, username="orpheus", timezone=zone, day_goal=30 * 60))
    agent = make_agent()
    model = make_model(agent.config.data_dir)
    tray = TrayApp(model, tray_wait_s=3600)
    model.start()
    post_heartbeats(agent, coding("goal", 10))
    qtbot.waitUntil(lambda: (state.today(model.stats).get("goal") or {}).get("tracked_seconds", 0) > 0, timeout=10_000)
    assert (state.goal_line(model.stats) or "").startswith("Goal: ")
    assert "% of 30 mins goal" in tray.icon.toolTip()
    with qtbot.waitSignal(tray.notified, timeout=15_000, check_params_cb=lambda n: n.kind == "goal-reached"):
        post_heartbeats(agent, coding("goal", 40))
    assert (state.goal_line(model.stats) or "").startswith("Goal reached: ")
    tray.close()


def test_links_open_the_right_places(agent: Any, tray: TrayApp, standin: Any, qtbot: Any) -> None:
    open_menu(tray)
    tray.find_action("open-hackatime").trigger()  # type: ignore[union-attr]
    tray.find_action("open-logs").trigger()  # type: ignore[union-attr]
    urls = [u.toString() for u in tray.opened_urls]  # type: ignore[attr-defined]
    assert urls[0] == standin.url + "/"
    assert urls[1] == Path(agent.config.log_dir).as_uri()
    with qtbot.waitSignal(tray.quit_requested):
        tray.find_action("quit").trigger()  # type: ignore[union-attr]


def test_status_window_where_there_is_no_tray(model: AgentModel, qtbot: Any) -> None:
    tray = TrayApp(model, tray_wait_s=0)  # offscreen has no tray: the fallback opens at once
    tray.start()
    window = tray.status_window
    assert window is not None and window.isVisible()
    assert window.summary.text().startswith("Today: ")
    assert "Nothing to sync yet" in window.sync.text()
    assert all(label.isEnabled() for label in window.findChildren(QLabel))  # read, so never greyed out
    with qtbot.waitSignal(tray.quit_requested):
        window.close()  # no tray to fall back on: closing quits the tray app
    tray.close()


def test_second_instance_brings_the_first_forward(tmp_path: Path, qtbot: Any) -> None:
    first = SingleInstance(tmp_path)
    assert first.acquire()
    first.requested.connect(lambda line, reply: reply(f"opened {line.split()[1]}"))
    second = SingleInstance(tmp_path)
    assert not second.acquire()
    # The second blocks until answered (it is about to exit), so it runs as a process of its own.
    code = (
        "import sys, pathlib; import app; from PySide6.QtCore import QCoreApplication; qapp = QCoreApplication([]);"
        "from app.single import SingleInstance; print(SingleInstance(pathlib.Path(sys.argv[1])).ask('open dashboard'))"
    )
    with subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True) as asker:
        qtbot.waitUntil(lambda: asker.poll() is not None, timeout=30_000)
        assert asker.stdout is not None and asker.stdout.read().strip() == "opened dashboard"
    first.release()
    third = SingleInstance(tmp_path)
    assert third.acquire()
    third.release()


def test_a_later_launch_is_answered_once_its_window_and_page_are_shown(
    model: AgentModel, tray: TrayApp, tmp_path: Path, qtbot: Any
) -> None:
    # What the first tray does with a later launch's request line: the window process shows the
    # window (at the page asked for), and only then is the waiting launch answered.
    session = app_main.Session(
        QApplication.instance(), QThreadPool(), model.runner, model, tray, None, SingleInstance(tmp_path), ()
    )  # type: ignore[arg-type]
    tray.windows.opened.connect(session.window_opened)
    answers: list[str] = []
    with qtbot.waitSignal(tray.windows.opened, timeout=60_000):
        session.request("open dashboard sync", answers.append)
    assert answers == ["opened dashboard sync"] and session.waiting == []
    session.request("open nowhere", answers.append)
    assert answers[-1] == "error unknown request 'open nowhere'"


# What the tray process must not load, for its memory (issue #13's 80 MiB): each stays resident for weeks.
NOT_IN_THE_TRAY = (
    "matplotlib",  # the charts: the window process's
    "numpy",
    "ssl",  # OpenSSL, ~3 MB: the control client speaks plain HTTP on loopback (app.client)
    "_hashlib",  # OpenSSL again (app.single names its socket with zlib checksums)
    "http.client",
    "importlib.metadata",  # and the email parser behind it: the version is a constant (agent.version)
    "zoneinfo",  # and sysconfig: the dashboard's dates only
    "agent.config",  # the wakatime.cfg parser and keyring helpers: agent.dirs finds the dirs
    "app.first_run",  # the welcome window: app.first_run_marker says whether it is due
)


def test_the_tray_starts_without_matplotlib(tmp_path: Path) -> None:
    """The real entry point, as a process: icon first, charts never imported on the way, no sources kept,
    nothing loaded that only the windows or the agent need, and cycles collected on the GUI thread only."""
    code = (
        "import sys, runpy; sys.argv = ['hackatime-desktop', '--data-dir', sys.argv[1], '--no-agent', "
        "'--quit-after-start'];\n"
        "from app.main import main; rc = main();\n"
        "import gc; assert not gc.isenabled(), 'automatic collection left on: it frees Qt objects on any thread'\n"
        f"loaded = [m for m in {NOT_IN_THE_TRAY!r} if m in sys.modules]\n"
        "assert not loaded, f'the tray loaded {loaded}'\n"
        "import linecache; assert not linecache.cache, 'module sources kept in memory (app.binding)'; sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"shown_at"' in done.stdout


def test_refreshes_leave_nothing_behind(model: AgentModel, tray: TrayApp, qtbot: Any) -> None:
    """An hour of refreshes must not pile up Qt objects (the benchmark measures the memory)."""
    open_menu(tray)
    before = len(tray.menu.findChildren(QObject))
    for _ in range(30):
        with qtbot.waitSignal(model.stats_changed, timeout=10_000):
            model.refresh()
        open_menu(tray)
    assert len(tray.menu.findChildren(QObject)) == before
    assert model.runner.pending <= 3  # coalesced: one status, one stats, the long-poll — never a backlog


def test_the_open_menu_stays_open_and_its_entries_change_in_place(
    agent: Any, model: AgentModel, tray: TrayApp, qtbot: Any
) -> None:
    """Opening the menu asks for fresh figures; when they land the same entries get new texts."""
    tray.menu.popup(QPoint(40, 40))
    qtbot.waitUntil(tray.menu.isVisible)
    entries = list(tray.menu.actions())
    before = tray.menu_texts()
    post_heartbeats(agent, coding("hackatime-desktop", 20))
    wait_status(qtbot, model, lambda s: dest(s)["sent"] == 21)
    qtbot.waitUntil(lambda: tray.menu_texts() != before, timeout=10_000)  # the figures arrived while it was open
    assert tray.menu.isVisible()
    assert list(tray.menu.actions()) == entries  # the same entries: nothing was cleared or refilled
    assert tray.menu_texts()[0] == f"Today: {state.today_total_text(model.stats)}"
    tray.menu.hide()


def test_read_lines_are_legible_and_open_the_dashboard(model: AgentModel, tray: TrayApp, qtbot: Any) -> None:
    open_menu(tray)
    for name in ("info-0", "info-1", "sync-0"):
        action = tray.find_action(name)
        assert action is not None and action.isVisible()
        assert action.isEnabled()  # normal text, not greyed to the lowest contrast
    with qtbot.waitSignal(tray.dashboard_opened, timeout=10_000):
        tray.find_action("info-0").trigger()  # type: ignore[union-attr]


def test_a_balloon_click_acts_only_for_the_notice_it_shows(model: AgentModel, tray: TrayApp, qtbot: Any) -> None:
    opened: list[Any] = []
    tray.dashboard_opened.connect(lambda: opened.append("dashboard"))
    tray.icon.messageClicked.emit()  # no balloon showing: nothing happens
    assert opened == [] and tray.opened_urls == []  # type: ignore[attr-defined]

    tray.icon.show()  # offscreen: "shown" without a tray, so notices go to balloons
    tray.notify(Notice("back-online", "Back online", "5 heartbeats delivered to Hackatime."))
    tray.icon.activated.emit(QSystemTrayIcon.ActivationReason.Context)  # a right click on the icon, not the balloon
    tray.icon.messageClicked.emit()
    assert opened == []

    tray.notify(Notice("back-online", "Back online", "5 heartbeats delivered to Hackatime."))
    tray.icon.messageClicked.emit()  # a click on the balloon: its own action, once
    assert opened == ["dashboard"]
    tray.icon.messageClicked.emit()
    assert opened == ["dashboard"] and tray.opened_urls == []  # type: ignore[attr-defined]
    tray.icon.hide()


def test_closing_twice_is_closing_once(model: AgentModel) -> None:
    """Whoever closes the tray first (quit, a test's cleanup), a second close must not fail on deleted parts."""
    tray = TrayApp(model, tray_wait_s=3600)
    tray.close()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # the menu is gone now
    tray.close()
    assert not tray.icon.isVisible()


def test_a_closed_tray_no_longer_hears_the_model(model: AgentModel, qtbot: Any) -> None:
    """The model outlives the tray (a restart, quitting): what it announces after the tray is
    closed must not reach the tray's deleted menu (it did, as an error in the event loop)."""
    tray = TrayApp(model, tray_wait_s=3600)
    shown: list[Notice] = []
    tray.notified.connect(shown.append)
    tray.close()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # the menu is gone now
    model.changed.emit()
    model.notice.emit(Notice("late", "Hackatime", "after the tray closed"))
    model.action_failed.emit("after the tray closed")
    assert shown == []


def test_a_closed_tray_goes_with_its_last_reference(model: AgentModel) -> None:
    """Not left in a reference cycle, where only the cyclic collector frees it (app.collector):
    the trays closed in this file once piled up there, menus, icons and timers with them."""
    gc.collect()  # what earlier tests left in cycles (a dashboard's charts) is not this test's
    tray = TrayApp(model, tray_wait_s=3600)
    tray.close()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # the menu's deleteLater
    gone = weakref.ref(tray)
    del tray
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector would free, kept to be looked at
    try:
        gc.collect()
        in_cycles = [type(o).__name__ for o in gc.garbage if isinstance(o, QObject)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert in_cycles == []
    assert gone() is None


def test_a_store_recovered_from_damage_is_notified_once_and_the_menu_points_to_it(
    make_agent: Callable[..., Any], make_model: Callable[..., AgentModel], tmp_path: Path, qtbot: Any
) -> None:
    data_dir = tmp_path / "damaged"
    agent, stored = agent_on_damaged_store(make_agent, data_dir)
    assert "damaged" in stored["message"]
    model = make_model(data_dir)
    tray = TrayApp(model, tray_wait_s=3600, open_url=[].append)
    shown: list[Notice] = []
    tray.notified.connect(shown.append)
    try:
        model.start()
        wait_status(qtbot, model, lambda s: any(n["id"] == stored["id"] for n in s["notices"]))
        for _ in range(5):  # a refresh every few seconds cannot repeat it
            with qtbot.waitSignal(model.changed, timeout=10_000):
                model.refresh(stats=False)
        popups = [n for n in shown if n.kind == "agent-notice"]
        assert len(popups) == 1
        assert popups[0].message == stored["message"] and popups[0].warning
        assert popups[0].title == "Hackatime agent: problem"

        assert "1 notice from the agent — see Sync" in open_menu(tray)
        line = tray.find_action("agent-notices")
        assert line is not None and line.isVisible() and line.isEnabled()  # readable, not greyed
        with qtbot.waitSignal(tray.dashboard_opened, timeout=10_000):
            line.trigger()
        window = StatusWindow(tray)  # where there is no tray, the status window says it too
        window.refresh()
        assert "1 notice from the agent — see Sync" in window.sync.text()
        window.deleteLater()

        done: list[Any] = []
        model.dismiss_notice(int(stored["id"]), done.append, done.append)
        # The dismiss's answer and the status it brings about may land in either order.
        wait_status(qtbot, model, lambda s: not any(n["id"] is not None for n in s["notices"]))
        qtbot.waitUntil(lambda: done == [None], timeout=10_000)
        assert agent.store.notices() == []
        assert not any("notice" in text for text in open_menu(tray))
        assert [n for n in shown if n.kind == "agent-notice"] == popups  # dismissing shows nothing new
    finally:
        tray.close()
