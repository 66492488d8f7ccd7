"""GUI test fixtures: offscreen Qt, a drained thread pool per test, and a real agent in-process.

``QT_QPA_PLATFORM=offscreen`` is set here, before any QApplication exists, so the
suite runs without a display. ``packaging/tray-test.sh`` instead sets
``HACKATIME_TRAY_TEST=1`` and an Xvfb display with a real tray (``trayer``); the
tests marked ``tray`` run only then, and every other test is skipped there.
"""

from __future__ import annotations

import os

TRAY_RUN = os.environ.get("HACKATIME_TRAY_TEST") == "1"
if not TRAY_RUN:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"

import datetime as dt  # noqa: E402 - the platform must be chosen before Qt is loaded
import gc  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import QThreadPool  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from agent.contract import STORE_FILE  # noqa: E402
from app.client import AgentClient  # noqa: E402
from app.collector import MainThreadCollector  # noqa: E402
from app.model import AgentModel  # noqa: E402
from app.tasks import TaskRunner  # noqa: E402
from app.tray import TrayApp  # noqa: E402
from app.windows import WindowContext  # noqa: E402
from app.windows.host import WindowHost  # noqa: E402
from tests.conftest import API_KEY  # noqa: E402
from tests.standin import User  # noqa: E402

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
VSCODE_UA = "wakatime/v1.90.0 (linux-6.1.0-x86_64) go1.22.0 vscode/1.90.0 vscode-wakatime/24.0.0"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The root `pytest` run must never need a display: tray tests run only from tray-test.sh,
    # which in turn runs nothing else.
    skip_tray = pytest.mark.skip(reason="needs a real system tray: run packaging/tray-test.sh")
    skip_other = pytest.mark.skip(reason="the tray run only runs tests marked tray")
    for item in items:
        is_tray = item.get_closest_marker("tray") is not None  # a marker, not a keyword: "tray" may name a folder
        if is_tray and not TRAY_RUN:
            item.add_marker(skip_tray)
        elif TRAY_RUN and not is_tray:
            item.add_marker(skip_other)


@pytest.fixture
def app_errors_expected() -> list[logging.LogRecord]:
    """Request this in a test that provokes an error the app only logs."""
    return []


@pytest.fixture(autouse=True)
def _no_app_errors(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The app logs what it contains (callbacks, Qt overrides) instead of raising: a logged error fails the test."""
    yield
    if "app_errors_expected" in request.fixturenames:
        return
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith("app")]
    assert not errors, "the app logged errors:\n" + "\n".join(caplog.text.splitlines()[-40:])


@pytest.fixture(scope="package", autouse=True)
def collector(qapp: QApplication) -> Iterator[MainThreadCollector]:
    """As in the app's processes (app.collector): cycles are collected on the GUI thread only.

    Without it a pool thread, the in-process agent's or the stand-in's threads collected
    closed trays' menus and closed dashboards' charts, freeing Qt objects off their thread.
    """
    collector = MainThreadCollector(qapp)
    yield collector
    collector.stop()
    gc.collect()


@pytest.fixture
def pool(qapp: QApplication) -> Iterator[QThreadPool]:
    """A pool of its own per test; a task still running at the end fails the test."""
    threads = QThreadPool()
    threads.setMaxThreadCount(4)
    threads.setExpiryTimeout(0)  # idle workers exit at once, so nothing outlives the test
    yield threads
    drained = threads.waitForDone(10_000)
    assert drained, "background tasks still running at teardown"
    qapp.processEvents()  # deliver the last queued results before the runner goes away


@pytest.fixture
def runner(pool: QThreadPool) -> TaskRunner:
    return TaskRunner(pool)


def noon_zone(now: float) -> str:
    """An IANA zone where it is about noon now, so "today" never splits a test's activity at midnight."""
    offset = 12 - dt.datetime.fromtimestamp(now, dt.UTC).hour  # hours ahead of UTC
    if offset > 12:
        offset -= 24
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")  # POSIX sign: Etc/GMT-5 is UTC+5


@pytest.fixture
def zone(standin: Any) -> str:
    """The stand-in account's time zone (the agent's stats follow the profile's zone)."""
    name = noon_zone(time.time())
    standin.update_user(User(id=1, username="orpheus", timezone=name))
    return name


@pytest.fixture
def make_agent(standin: Any, zone: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start real agents in-process against the stand-in; all are stopped at teardown."""
    from agent.config import Flags, load_config
    from agent.daemon import Agent

    started: list[Any] = []

    def make(data_dir: Path | None = None, api_key: str | None = API_KEY, **kw: Any) -> Any:
        flags = Flags(data_dir=data_dir or tmp_path / "data", port=0, api_url=standin.api_url, api_key=api_key)
        config = load_config(flags, env={})
        agent = Agent(config, synchronous="NORMAL", pacing=False, watch=False, **kw).start()
        started.append(agent)
        return agent

    yield make
    for agent in started:
        agent.stop()


@pytest.fixture
def agent(make_agent: Callable[..., Any]) -> Any:
    return make_agent()


@pytest.fixture
def make_model(runner: TaskRunner, pool: QThreadPool, qapp: QApplication) -> Iterator[Callable[..., AgentModel]]:
    models: list[AgentModel] = []

    def make(data_dir: Path, **kw: Any) -> AgentModel:
        kw.setdefault("down_interval_s", 0.2)
        kw.setdefault("stats_min_gap_s", 0.3)  # the real 5 s throttle would only slow the tests down
        model = AgentModel(AgentClient(data_dir), runner, **kw)
        models.append(model)
        return model

    yield make
    for model in models:
        model.stop()  # aborts the long-poll: the pool drains at once
    # Drained while the models (and the runner they hold) are still referenced here, so none of
    # them is let go of last by a pool thread's job, where freeing a Qt object crashes.
    assert pool.waitForDone(10_000), "background tasks still running at teardown"
    qapp.processEvents()


@pytest.fixture
def model(agent: Any, make_model: Callable[..., AgentModel], qtbot: Any) -> AgentModel:
    """A started model, with its first status and stats already in."""
    m = make_model(agent.config.data_dir)
    m.start()
    qtbot.waitUntil(lambda: m.status is not None and m.stats is not None, timeout=10_000)
    return m


@pytest.fixture
def tray(model: AgentModel, qtbot: Any) -> Iterator[TrayApp]:
    opened: list[Any] = []
    # open_url is injected: QDesktopServices would launch a real browser or file manager.
    t = TrayApp(model, tray_wait_s=3600, open_url=opened.append)
    t.opened_urls = opened  # type: ignore[attr-defined]
    yield t
    t.close()


@pytest.fixture
def host(model: AgentModel, tmp_path: Path) -> Iterator[WindowHost]:
    """The window process's host, in this process: the windows as the window process builds them."""
    context = WindowContext(model=model, data_dir=tmp_path, log_dir=tmp_path / "logs", config_dir=tmp_path)
    h = WindowHost(context, keep_alive_s=3600)
    yield h
    h.close()


def local_midnight(now: float, zone: str) -> float:
    """The start of today in ``zone``."""
    from zoneinfo import ZoneInfo

    day = dt.datetime.fromtimestamp(now, ZoneInfo(zone)).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


@pytest.fixture
def history(standin: Any, zone: str) -> None:
    """What Hackatime already holds before the agent starts (another computer's coding)."""
    now = time.time()
    midnight = local_midnight(now, zone)
    earlier = coding("website", 40, end=midnight - 3600, language="TypeScript") + coding(
        "hackatime-desktop", 20, end=now - 600
    )
    answer = standin.ingest_direct(json.dumps(earlier).encode(), API_KEY)
    assert answer.status == 201


def post_heartbeats(agent: Any, heartbeats: list[dict[str, Any]], key: str = API_KEY) -> dict[str, Any]:
    """What an editor plugin does: a bulk POST to the agent's local intake."""
    request = urllib.request.Request(
        agent.intake_url + "/users/current/heartbeats.bulk",
        data=json.dumps(heartbeats).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", "User-Agent": VSCODE_UA},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def coding(project: str, minutes: int, *, end: float | None = None, language: str = "Python") -> list[dict[str, Any]]:
    """A heartbeat a minute for ``minutes`` minutes, ending at ``end`` (default: now)."""
    end = time.time() - 5 if end is None else end
    start = end - minutes * 60
    return [
        {
            "entity": f"/home/orpheus/{project}/src/file{i % 4}.py",
            "type": "file",
            "time": start + i * 60,
            "project": project,
            "language": language,
            "category": "coding",
            "is_write": i % 5 == 0,
        }
        for i in range(minutes + 1)
    ]


def agent_on_damaged_store(make_agent: Callable[..., Any], data_dir: Path) -> tuple[Any, dict[str, Any]]:
    """A real agent started on a store file that is no database any more (a disk fault, an
    interrupted copy): it moves the file aside, starts a fresh store and stores one notice saying
    so. The agent and that notice."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / STORE_FILE).write_bytes(b"\xde\xad\xbe\xef" * 1024)
    agent = make_agent(data_dir)
    [stored] = agent.store.notices()
    return agent, stored


def wait_exposed(qtbot: Any, widget: QWidget, timeout: int = 5000) -> None:
    """Until the window system shows the widget's window (mapped, and painted on the next paint)."""
    qtbot.waitUntil(lambda: widget.windowHandle() is not None and widget.windowHandle().isExposed(), timeout=timeout)


def screenshot(widget: QWidget, name: str) -> Path:
    """Save a widget as CI keeps it (artifacts/screenshots/)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert widget.grab().save(str(path)), f"could not write {path}"
    return path
