"""An agent that cannot start: the tray says why in one sentence and offers what fixes it.

Real agent processes, started by the real supervisor: one finds its port taken by
another program, one finds another agent holding its data folder. Neither refusal
counts towards the crash loop, and each offers its actions in the menu.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.lock import InstanceLock
from app.dashboard import DashboardWindow
from app.model import AgentModel
from app.state import Notice
from app.supervisor import AgentSupervisor
from app.tray import TrayApp
from app.windows import WindowContext
from app.windows.host import WindowHost
from tests.conftest import API_KEY

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program (this test) listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def start_tray(standin: Any, tmp_path: Path, make_model: Callable[..., AgentModel]) -> tuple[Any, ...]:
    """The tray's own start-up path with a real agent command, its port kept in settings.json."""
    data = tmp_path / "data"
    command = [
        sys.executable,
        "-m",
        "agent",
        "--data-dir",
        str(data),
        "run",
        "--no-watch",
        "--api-url",
        standin.api_url,
    ]
    env = {**os.environ, "WAKATIME_API_KEY": API_KEY, "WAKATIME_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    model = make_model(data)
    sup = AgentSupervisor(
        tmp_path / "logs",
        command,
        env=env,
        agent_available=lambda: model.available,
        settings=data / "settings.json",  # an explicit data dir keeps its settings inside
    )
    model.availability_changed.connect(lambda up: None if up else sup.ensure_running())
    tray = TrayApp(model, supervisor=sup, tray_wait_s=3600, open_url=lambda _url: None)
    notices: list[Notice] = []
    sup.notice.connect(notices.append)
    return data, model, sup, tray, notices


def test_port_in_use_says_by_whom_and_offers_another_port(
    standin: Any, tmp_path: Path, make_model: Callable[..., AgentModel], taken_port: int, qtbot: Any
) -> None:
    data, model, sup, tray, notices = start_tray(standin, tmp_path, make_model)
    data.mkdir(parents=True)
    (data / "settings.json").write_text(json.dumps({"port": taken_port}))
    try:
        with qtbot.waitSignal(sup.problem_changed, timeout=20_000):
            model.start()
        tray.menu.aboutToShow.emit()
        texts = tray.menu_texts()
        sentence = f"The Hackatime agent cannot start: port {taken_port} on 127.0.0.1 is in use by "
        assert any(t.startswith(sentence) for t in texts), texts
        assert f"(pid {os.getpid()})" in sup.problem  # this test's process holds it, and the agent said so
        assert "Retry starting the agent" in texts and "Use another port…" in texts
        assert sentence in tray.icon.toolTip()
        assert [n.kind for n in notices] == ["agent-refused"] and "\n" not in notices[0].message
        # a refusal is not a crash: nothing restarted it, and nothing counts towards giving up
        assert sup.starts == 1 and not sup.gave_up and not sup.running
        # The dashboard, built as the window process builds it (no supervisor there), says the same sentence.
        context = WindowContext(model=model, data_dir=data, log_dir=sup.log_dir, config_dir=tmp_path)
        host = WindowHost(context, keep_alive_s=3600)
        window = host.open("dashboard")
        assert isinstance(window, DashboardWindow)
        qtbot.waitUntil(window.banner.isVisible, timeout=10_000)
        assert window.banner.text().startswith(sentence), window.banner.text()
        host.close()

        tray.find_action("agent-port").trigger()  # type: ignore[union-attr]
        dialog = tray.port_dialog
        assert dialog is not None and dialog.isVisible()
        with socket.socket() as probe:  # a free port for the agent
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        dialog.spin.setValue(free)
        assert f"api_url in ~/.wakatime.cfg to http://127.0.0.1:{free}/api/hackatime/v1" in dialog.note.text()
        dialog.accept()
        qtbot.waitUntil(lambda: model.available is True, timeout=20_000)
        assert json.loads((data / "settings.json").read_text())["port"] == free
        assert model.status is not None and f":{free}/" in model.status["intake_url"]
        tray.menu.aboutToShow.emit()
        assert "Retry starting the agent" not in tray.menu_texts() and sup.problem is None
    finally:
        tray.close()
        model.stop()
        sup.terminate()


def test_another_agent_holding_the_data_folder_is_named_and_retry_starts_ours(
    standin: Any, tmp_path: Path, make_model: Callable[..., AgentModel], qtbot: Any
) -> None:
    data, model, sup, tray, notices = start_tray(standin, tmp_path, make_model)
    (data / "settings.json").parent.mkdir(parents=True)
    (data / "settings.json").write_text(json.dumps({"port": 0}))
    other = InstanceLock(data / "agent.lock")  # another agent that holds the folder and does not answer
    other.acquire()
    try:
        with qtbot.waitSignal(sup.problem_changed, timeout=20_000):
            model.start()
        tray.menu.aboutToShow.emit()
        texts = tray.menu_texts()
        assert any(
            t.startswith("The Hackatime agent cannot start: another agent already uses this data folder") for t in texts
        ), texts
        assert f"pid {os.getpid()}" in (sup.problem or "")
        assert "Retry starting the agent" in texts and "Use another port…" not in texts
        assert sup.starts == 1 and not sup.gave_up

        other.release()  # the other agent went away: Retry starts ours
        tray.find_action("agent-retry").trigger()  # type: ignore[union-attr]
        qtbot.waitUntil(lambda: model.available is True, timeout=20_000)
        qtbot.waitUntil(lambda: sup.problem is None, timeout=5_000)
        tray.menu.aboutToShow.emit()
        assert not any(t.startswith("The Hackatime agent cannot start") for t in tray.menu_texts())
        assert [n.kind for n in notices] == ["agent-refused"]
    finally:
        other.release()
        tray.close()
        model.stop()
        sup.terminate()
