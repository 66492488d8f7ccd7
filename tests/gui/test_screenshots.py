"""Screenshots of every state a person meets, on a real X display with a tray and a window manager.

Run by packaging/screenshots.sh (only these) and by packaging/tray-test.sh (with the
real-tray test), so CI keeps a fresh set in artifacts/screenshots/: the menu and
its tooltip in each state, and every dashboard tab, light and dark, at 1366×768
(maximised beside the panel) and 860 px wide. Each shot also checks what it shows.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QToolTip, QWidget

from agent.delivery.pacing import Backoff
from app import state, theme
from app.dashboard import DashboardWindow
from app.model import AgentModel
from app.supervisor import AgentSupervisor
from app.tray import TrayApp
from app.windows import WindowContext
from app.windows.host import WindowHost
from tests.conftest import API_KEY
from tests.gui.conftest import SCREENSHOTS, coding, post_heartbeats
from tests.gui.test_real_tray import click_icon, viewable
from tests.standin import Fault, User

ROOT = Path(__file__).resolve().parents[2]
THEMES = (("light", Qt.ColorScheme.Light), ("dark", Qt.ColorScheme.Dark))
TABS = ("overview", "projects", "year", "sync")


def grab(region: QRect, name: str) -> Path:
    """What the X server shows in ``region`` (menus and tooltips included), as a PNG."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    screen = QGuiApplication.primaryScreen().geometry()
    r = region.intersected(screen)
    crop = f"{r.width()}x{r.height()}+{r.x()}+{r.y()}"
    subprocess.run(["import", "-window", "root", "-crop", crop, "+repage", str(path)], check=True, timeout=30)
    return path


def grab_shown(qtbot: Any, widget: QWidget, region: Callable[[], QRect], name: str) -> Path:
    """Grab ``region()`` once X shows ``widget`` in it as Qt draws it now (nine in ten pixels alike).

    A grab taken the moment Qt calls a popup visible can catch the screen before X has
    mapped or painted it (a tooltip shot came out as the bare root window). Qt's drawing and
    the region are taken again at each try: fresh figures may change the texts meanwhile.
    """
    shots: list[Path] = []

    def alike(a: QColor, b: QColor) -> bool:
        return max(abs(a.red() - b.red()), abs(a.green() - b.green()), abs(a.blue() - b.blue())) <= 16

    def painted() -> bool:
        # The window Qt maps for it (a tooltip's QWidget.winId() named another window).
        handle = widget.windowHandle()
        if handle is None or not viewable(int(handle.winId())):
            return False
        drawn = widget.grab().toImage()
        scale = drawn.devicePixelRatio()
        where = region()
        offset = widget.geometry().topLeft() - where.intersected(QGuiApplication.primaryScreen().geometry()).topLeft()
        points = [QPoint(x, y) for x in range(0, widget.width(), 3) for y in range(0, widget.height(), 3)]
        shots.append(grab(where, name))
        shown = QImage(str(shots[-1]))
        same = sum(alike(shown.pixelColor(offset + p), drawn.pixelColor(p * scale)) for p in points)
        return same >= 0.9 * len(points)

    qtbot.waitUntil(painted, timeout=10_000)
    return shots[-1]


class Shooter:
    def __init__(self, qtbot: Any, qapp: QApplication) -> None:
        self.qtbot, self.qapp = qtbot, qapp
        self.trays: list[TrayApp] = []  # closed at teardown, whatever failed: a stray icon would stay docked

    def docked(self, tray: TrayApp) -> None:
        self.trays.append(tray)
        tray.start()
        screen = QGuiApplication.primaryScreen().geometry()
        where = tray.icon.geometry
        try:
            self.qtbot.waitUntil(
                lambda: tray.icon.isVisible() and where().top() < 40 and where().right() > screen.width() - 200,
                timeout=10_000,
            )
        except Exception as exc:
            raise AssertionError(f"not docked: visible={tray.icon.isVisible()} at {where()}") from exc

    def menu(self, tray: TrayApp, name: str) -> list[str]:
        """A real right click on the icon, the menu grabbed with the icon, then closed with Escape."""
        click_icon(self.qtbot, tray, 3)
        self.qtbot.waitUntil(lambda: tray.menu.isVisible() and viewable(int(tray.menu.winId())), timeout=10_000)
        self.qtbot.waitUntil(lambda: not tray.model._status_busy and not tray.model._stats_busy, timeout=10_000)
        texts = tray.menu_texts()
        around = tray.icon.geometry()
        grab_shown(
            self.qtbot, tray.menu, lambda: tray.menu.geometry().united(around).adjusted(-8, -4, 8, 8), f"menu-{name}"
        )
        subprocess.run(["xdotool", "key", "Escape"], check=True, timeout=10)
        self.qtbot.waitUntil(lambda: not tray.menu.isVisible(), timeout=5_000)
        return texts

    def tooltip(self, tray: TrayApp, name: str) -> str:
        """The icon's tooltip where Qt puts it for a tray icon (below it), grabbed from the screen.

        Shown with QToolTip, the widget Qt itself uses for a tray icon's hover; under
        Xvfb the hover delay does not reliably fire for the embedded icon.
        """
        where = tray.icon.geometry()
        # Kept up for a minute: on a loaded machine the grab may take longer than its usual few seconds.
        QToolTip.showText(where.bottomLeft(), tray.icon.toolTip(), None, QRect(), 60_000)
        self.qtbot.waitUntil(QToolTip.isVisible, timeout=10_000)
        self.qapp.processEvents()
        tip = QToolTip.text()
        label = next(w for w in QApplication.topLevelWidgets() if w.inherits("QTipLabel") and w.isVisible())
        grab_shown(self.qtbot, label, lambda: label.geometry().united(where).adjusted(-8, -4, 8, 8), f"tooltip-{name}")
        QToolTip.hideText()
        self.qtbot.waitUntil(lambda: not QToolTip.isVisible(), timeout=10_000)
        return tip

    def state(self, tray: TrayApp, name: str) -> list[str]:
        """Menu and tooltip of one state, in both themes; the menu's texts (light) for checks."""
        texts: list[str] = []
        for theme_name, scheme in THEMES:
            theme.apply(self.qapp, scheme)
            shown = self.menu(tray, f"{name}-{theme_name}")
            texts = texts or shown
            assert _words(shown) == _words(texts)  # a theme changes colours, never words
            tip = self.tooltip(tray, f"{name}-{theme_name}")
            assert tip == tray.icon.toolTip()
            for text in [*shown, tip]:  # "Hackatime", capitalised; "hackatime-desktop" is a project's own name
                assert not re.search(r"\bhackatime\b(?!-)", text), text
        theme.apply(self.qapp, Qt.ColorScheme.Light)
        return texts


def _words(texts: list[str]) -> list[str]:
    """The texts without their numbers (a countdown moves on between two shots)."""
    return [re.sub(r"\d+", "#", t) for t in texts]


@pytest.fixture
def shooter(qtbot: Any, qapp: QApplication) -> Iterator[Shooter]:
    assert QGuiApplication.platformName() == "xcb"
    qtbot.waitUntil(QSystemTrayIcon.isSystemTrayAvailable, timeout=10_000)
    shooter = Shooter(qtbot, qapp)
    yield shooter
    for tray in shooter.trays:
        tray.close()
    theme.apply(qapp, Qt.ColorScheme.Light)


def wait_status(qtbot: Any, model: AgentModel, check: Callable[[dict[str, Any]], bool]) -> None:
    qtbot.waitUntil(lambda: model.status is not None and check(model.status["destinations"][0]), timeout=20_000)


@pytest.mark.tray
@pytest.mark.screenshots
def test_menu_and_tooltip_in_each_state_and_every_dashboard_tab(
    standin: Any, zone: str, history: None, make_agent: Callable[..., Any], make_model: Callable[..., AgentModel],
    shooter: Shooter, qtbot: Any, qapp: QApplication, tmp_path: Path,
) -> None:  # fmt: skip
    standin.update_user(User(id=1, username="orpheus", timezone=zone, day_goal=2 * 3600))
    # A failed upload is retried in 10 minutes, not 1-2 s: "Can't reach … · retrying in 10 min" stays
    # what it is while both themes are shot (Sync now ends it).
    agent = make_agent(backoff=Backoff(base=600, cap=600))
    model = make_model(agent.config.data_dir)
    model.start()
    post_heartbeats(agent, coding("hackatime-desktop", 35))
    wait_status(qtbot, model, lambda d: d["sent"] == 36)
    qtbot.waitUntil(lambda: state.goal_percent(model.stats) is not None, timeout=20_000)
    tray = TrayApp(model, open_url=lambda _url: None)
    shooter.docked(tray)

    texts = shooter.state(tray, "synced")
    assert texts[0].startswith("Today: ") and texts[1].startswith("Goal: ")
    assert any(t.startswith("All synced") for t in texts)

    # Every dashboard tab, light and dark, maximised on 1366×768 beside the panel and 860 px wide:
    # the window process's host, in this process (the real-tray test opens the real one).
    host = WindowHost(
        WindowContext(model=model, data_dir=tmp_path, log_dir=tmp_path / "logs", config_dir=tmp_path),
        keep_alive_s=3600,
    )
    window = host.open("dashboard")
    assert isinstance(window, DashboardWindow)
    qtbot.waitUntil(lambda: window.charts_loaded, timeout=30_000)
    for theme_name, scheme in THEMES:
        theme.apply(qapp, scheme)
        for size in ("1366x768", "860"):
            if size == "860":
                window.showNormal()
                window.resize(860, 640)
            else:
                window.showMaximized()
            qtbot.waitUntil(lambda: window.isVisible() and window.windowHandle().isExposed(), timeout=10_000)
            for index, tab in enumerate(TABS):
                window.tabs.setCurrentIndex(index)
                if tab == "projects":
                    qtbot.waitUntil(lambda: window.projects_model.rowCount() > 0, timeout=10_000)
                if tab == "sync":
                    qtbot.waitUntil(lambda: window.dest_table.rowCount() > 0, timeout=10_000)
                qapp.processEvents()
                assert window.grab().save(str(SCREENSHOTS / f"dashboard-{tab}-{theme_name}-{size}.png"))
    theme.apply(qapp, Qt.ColorScheme.Light)
    host.close()

    # Waiting: the server takes an upload and does not answer yet.
    standin.inject(Fault.HANG, times=1)
    post_heartbeats(agent, coding("website", 9, language="TypeScript"))
    wait_status(qtbot, model, lambda d: d["pending"] + d["in_flight"] == 10)
    assert any("10 heartbeats waiting" in t for t in shooter.state(tray, "waiting"))

    # Can't reach Hackatime: the held connection is reset, the agent backs off.
    assert standin.wait_until_held()
    standin.inject(Fault.CONNECTION_RESET, times=1000)
    standin.release_hangs()
    wait_status(qtbot, model, lambda d: d["pending"] == 10 and d["backoff_until"] is not None)
    assert any("Can't reach Hackatime (connection" in t for t in shooter.state(tray, "cant-reach"))
    standin.clear_faults()
    model.sync_now()
    wait_status(qtbot, model, lambda d: d["pending"] == 0 and d["sent"] == 46)

    # Paused from the menu.
    tray.pause(state.PauseChoice.HOUR)
    qtbot.waitUntil(lambda: bool(model.status and model.status.get("paused_until")), timeout=10_000)
    assert any(t.startswith("Tracking paused until ") for t in shooter.state(tray, "paused"))
    tray.resume()
    qtbot.waitUntil(lambda: bool(model.status and not model.status.get("paused_until")), timeout=10_000)

    # The agent stops.
    agent.stop()
    qtbot.waitUntil(lambda: model.available is False, timeout=10_000)
    assert "The Hackatime agent is not running" in shooter.state(tray, "agent-down")
    tray.close()


@pytest.mark.tray
@pytest.mark.screenshots
def test_menu_when_the_key_is_rejected_or_the_port_is_taken(
    standin: Any, zone: str, make_agent: Callable[..., Any], make_model: Callable[..., AgentModel],
    shooter: Shooter, qtbot: Any, tmp_path: Path,
) -> None:  # fmt: skip
    bad = "00000000-0000-4000-8000-000000000000"
    agent = make_agent(api_key=bad)
    model = make_model(agent.config.data_dir)
    model.start()
    post_heartbeats(agent, coding("secret", 3), key=bad)
    wait_status(qtbot, model, lambda d: d["auth_state"] == "rejected")
    tray = TrayApp(model, open_url=lambda _url: None)
    shooter.docked(tray)
    assert any(t.startswith("API key rejected") for t in shooter.state(tray, "key-rejected"))
    tray.close()
    model.stop()
    agent.stop()

    # Another program holds the agent's port: the real agent refuses, the tray says so.
    data = tmp_path / "port-data"
    data.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        (data / "settings.json").write_text(json.dumps({"port": taken.getsockname()[1]}))
        command = [sys.executable, "-m", "agent", "--data-dir", str(data), "run", "--no-watch",
                   "--api-url", standin.api_url]  # fmt: skip
        env = {**os.environ, "WAKATIME_API_KEY": API_KEY, "WAKATIME_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
        refused = make_model(data)
        sup = AgentSupervisor(
            tmp_path / "logs", command, env=env, agent_available=lambda: refused.available,
            settings=data / "settings.json",
        )  # fmt: skip
        refused.availability_changed.connect(lambda up: None if up else sup.ensure_running())
        tray = TrayApp(refused, supervisor=sup, open_url=lambda _url: None)
        with qtbot.waitSignal(sup.problem_changed, timeout=20_000):
            refused.start()
        shooter.docked(tray)
        texts = shooter.state(tray, "port-in-use")
        assert any("is in use by" in t for t in texts) and "Use another port…" in texts
        tray.close()
        sup.terminate()


SETTINGS_TABS = ("account", "tracking", "editors", "agent", "system")


@pytest.mark.tray
@pytest.mark.screenshots
def test_the_settings_and_import_windows_light_and_dark(
    agent: Any, model: AgentModel, shooter: Shooter, qtbot: Any, qapp: QApplication, tmp_path: Path
) -> None:
    """Every settings tab; the import window before and after an import; light and dark."""
    from app.import_window import ImportWindow
    from app.settings_window import SettingsWindow
    from tests.exports import exported, write_export

    host = WindowHost(
        WindowContext(model=model, data_dir=tmp_path, log_dir=tmp_path / "logs", config_dir=tmp_path),
        keep_alive_s=3600,
    )
    try:
        settings = host.open("settings")
        assert isinstance(settings, SettingsWindow)
        qtbot.waitUntil(settings.is_ready, timeout=30_000)
        importer = host.open("import")
        assert isinstance(importer, ImportWindow)
        for theme_name, scheme in THEMES:
            theme.apply(qapp, scheme)
            for index, tab in enumerate(SETTINGS_TABS):
                settings.tabs.setCurrentIndex(index)
                assert settings.tabs.tabText(index).lower() == tab
                qapp.processEvents()
                assert settings.grab().save(str(SCREENSHOTS / f"settings-{tab}-{theme_name}.png"))
            qtbot.waitUntil(lambda: importer.isVisible() and importer.windowHandle().isExposed(), timeout=10_000)
            qapp.processEvents()
            assert importer.grab().save(str(SCREENSHOTS / f"import-idle-{theme_name}.png"))

        export = write_export(tmp_path / "wakatime.json.gz", "wakatime", exported("wakatime", 3_000), gz=True)
        with qtbot.waitSignal(importer.finished, timeout=120_000) as finished:
            importer.start(str(export))
        assert finished.args[0]["state"] == "done"
        assert importer.summary.text().startswith("Done: 3,000 new heartbeats")
        for theme_name, scheme in THEMES:
            theme.apply(qapp, scheme)
            qapp.processEvents()
            assert importer.grab().save(str(SCREENSHOTS / f"import-done-{theme_name}.png"))
    finally:
        theme.apply(qapp, Qt.ColorScheme.Light)
        host.close()
