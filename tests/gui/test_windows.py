"""Windows in their own process: the tray asks, the window process shows, and the tray survives its death.

The window processes here are real ones (``python -m app.main --window NAME``)
talking to the real agent of the test; the tray side is the real launcher.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from PySide6.QtWidgets import QLabel

from app.dashboard import DashboardWindow
from app.model import AgentModel
from app.single import SingleInstance
from app.tray import TrayApp
from app.windows import WINDOWS, WindowContext
from app.windows.host import WindowHost
from tests.gui.conftest import wait_exposed

START_MS = 60_000  # a cold window process on a busy machine


def window_processes(data_dir: Path) -> list[int]:
    """Every window process running for this data dir, whoever started it."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "--window" in cmdline and str(data_dir) in cmdline:
            found.append(proc.info["pid"])
    return found


def run_app(*args: str) -> subprocess.CompletedProcess[str]:
    """``hackatime-desktop ARGS`` as a person runs it from a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "app.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        check=False,
    )


@pytest.fixture
def started(tray: TrayApp) -> list[int]:
    """The pids of the window processes the tray starts."""
    pids: list[int] = []
    tray.windows.started.connect(pids.append)
    return pids


def test_the_tray_never_imports_the_charts_library(agent: Any) -> None:
    """Start, open and close every window, an hour of refreshes: the tray holds no matplotlib, no numpy."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.gui.tray_cycle", str(agent.config.data_dir)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["windows"] == sorted(WINDOWS)
    assert result["heavy"] == []
    assert not window_processes(agent.config.data_dir), "the tray's window process outlived it"


def test_two_requests_give_one_window_process(
    agent: Any, tray: TrayApp, started: list[int], qtbot: Any, tmp_path: Path
) -> None:
    data_dir = agent.config.data_dir
    with qtbot.waitSignal(tray.windows.opened, timeout=START_MS):
        tray.open_dashboard()
        tray.open_dashboard()  # a double click, or the menu right after a click
    assert len(started) == 1
    assert window_processes(data_dir) == started

    # A second launch from a terminal shows the window in the running process and exits.
    second = run_app("--window", "dashboard", "--data-dir", str(data_dir))
    assert second.returncode == 0, second.stdout + second.stderr
    assert window_processes(data_dir) == started

    # And so does a second tray: it asks the first, which asks the window process.
    first_tray = SingleInstance(data_dir, role="tray")
    assert first_tray.acquire()
    try:
        first_tray.requested.connect(lambda line, reply: (tray.open_window(line.split()[1]), reply("opened dashboard")))
        # Run, not waited on: the first answers from this test's event loop.
        command = [sys.executable, "-m", "app.main", "--data-dir", str(data_dir)]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as second_tray:
            qtbot.waitUntil(lambda: second_tray.poll() is not None, timeout=START_MS)
            assert second_tray.stdout is not None
            assert "its dashboard was brought forward" in second_tray.stdout.read()
        assert second_tray.returncode == 0
    finally:
        first_tray.release()
    with qtbot.waitSignal(tray.windows.opened, timeout=START_MS):
        tray.open_dashboard()
    assert len(started) == 1 and window_processes(data_dir) == started


def test_a_killed_window_process_leaves_the_tray_up_and_says_so(
    agent: Any, tray: TrayApp, started: list[int], qtbot: Any
) -> None:
    with qtbot.waitSignal(tray.windows.opened, timeout=START_MS):
        tray.open_dashboard()
    first = started[0]
    tray.icon.show()  # offscreen: "shown" without a tray, so the notice goes to a balloon

    with qtbot.waitSignal(tray.notified, timeout=10_000) as notified:
        os.kill(first, signal.SIGKILL)
    notice = notified.args[0]
    assert notice.kind == "window-crashed" and notice.warning
    assert notice.message.startswith("The dashboard closed unexpectedly")
    assert not tray.windows.running and started == [first]  # nothing restarted it
    assert "Open dashboard" in tray.menu_texts()  # the tray is still there

    tray.icon.messageClicked.emit()  # a click on the notice opens the window process's log
    assert tray.opened_urls[-1].toLocalFile() == str(tray.windows.log_path)  # type: ignore[attr-defined]
    tray.icon.hide()

    with qtbot.waitSignal(tray.windows.opened, timeout=START_MS):
        tray.open_dashboard()  # the user asks again: a new window process
    assert len(started) == 2 and started[1] != first
    assert window_processes(agent.config.data_dir) == [started[1]]


def test_the_window_process_exits_after_its_keep_alive(agent: Any, tray: TrayApp, qtbot: Any) -> None:
    data_dir = agent.config.data_dir
    (data_dir / "settings.json").write_text(json.dumps({"window_keep_alive_s": 1}))  # the data dir holds its settings
    notices: list[Any] = []
    tray.notified.connect(notices.append)
    with qtbot.waitSignal(tray.windows.opened, timeout=START_MS):
        tray.open_dashboard()
    assert window_processes(data_dir)
    with qtbot.waitSignal(tray.windows.closed, timeout=10_000):
        tray.windows.close_window("dashboard")
    with qtbot.waitSignal(tray.windows.exited, timeout=20_000) as exited:
        pass  # the keep-alive runs out in the window process
    assert exited.args == [0, False]
    assert not window_processes(data_dir) and not notices


def test_the_dashboard_shows_its_figures_before_its_charts(host: WindowHost, model: AgentModel, qtbot: Any) -> None:
    with qtbot.waitSignal(host.opened, timeout=10_000):
        window = host.open("dashboard")
    assert isinstance(window, DashboardWindow) and window.windowTitle() == "Hackatime — Dashboard"
    # Shown with today, goal, streak and sync; the charts' places held until their library is in.
    assert window.is_ready() and not window.charts_loaded
    assert window.today_total.text() != "—" and window.sync_summary.text()
    placeholder = window.findChild(QLabel, "week-placeholder")
    assert placeholder is not None and placeholder.isVisible()
    wait_exposed(qtbot, window)
    qtbot.waitUntil(lambda: window.charts_loaded, timeout=30_000)
    qtbot.waitUntil(window.week_chart.isVisible, timeout=5000)  # Qt shows a widget added to a layout on its next pass
    assert window.week_chart.days == model.stats["last_7_days"]["days"]  # type: ignore[index]
    qtbot.waitUntil(lambda: window.findChild(QLabel, "week-placeholder") is None, timeout=5000)


def test_a_closed_window_is_kept_for_the_keep_alive(host: WindowHost, qtbot: Any) -> None:
    window = host.open("dashboard")
    qtbot.waitUntil(lambda: window.charts_loaded, timeout=30_000)
    window.close()
    qtbot.waitUntil(host.keep_alive.isActive, timeout=5000)  # counting down: nothing is shown
    assert host.open("dashboard") is window  # shown again at once, charts and all
    assert not host.keep_alive.isActive()
    with qtbot.waitSignal(host.expired, timeout=5000):
        host.keep_alive.setInterval(0)
        window.close()


def test_without_an_agent_the_dashboard_opens_and_says_so(
    make_model: Callable[..., AgentModel], qtbot: Any, tmp_path: Path
) -> None:
    model = make_model(tmp_path / "nobody-here")
    model.start()
    qtbot.waitUntil(lambda: model.available is False, timeout=10_000)
    host = WindowHost(WindowContext(model, tmp_path, tmp_path / "logs", tmp_path), keep_alive_s=3600)
    with qtbot.waitSignal(host.opened, timeout=10_000):  # answered: the tray is not left waiting
        window = host.open("dashboard")
    assert isinstance(window, DashboardWindow)
    assert window.banner.isVisible() and window.banner.text().startswith("The Hackatime agent is not running")
    wait_exposed(qtbot, window)
    qtbot.waitUntil(lambda: window.charts_loaded, timeout=30_000)  # the charts come in all the same, empty
    host.close()


def test_a_window_process_that_dies_at_start_is_not_started_again(
    agent: Any, tray: TrayApp, started: list[int], qtbot: Any
) -> None:
    """A broken installation: the window process exits with an error before it listens. One notice, one try."""
    notices: list[Any] = []
    tray.notified.connect(notices.append)
    tray.windows.extra_args.append("--no-such-option")  # its command line parser refuses it and exits with 2
    with qtbot.waitSignal(tray.windows.exited, timeout=START_MS) as exited:
        tray.open_dashboard()
    assert exited.args == [2, True]
    assert [n.kind for n in notices] == ["window-crashed"]
    assert len(started) == 1 and not tray.windows.running and not tray.windows.busy  # nothing left to retry
    assert "unrecognized arguments: --no-such-option" in tray.windows.log_path.read_text()
