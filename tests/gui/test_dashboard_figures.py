"""How the dashboard's figures read: names of groups with no name."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agent import contract as C
from app.dashboard import DashboardWindow
from app.model import AgentModel
from app.windows.host import WindowHost
from tests.exports import exported, write_export
from tests.gui.conftest import wait_exposed


def open_dashboard(host: WindowHost, qtbot: Any, width: int, height: int) -> DashboardWindow:
    window = host.open("dashboard")
    assert isinstance(window, DashboardWindow)
    window.resize(width, height)
    wait_exposed(qtbot, window)
    qtbot.waitUntil(lambda: window.charts_loaded, timeout=30_000)
    return window


def test_a_machine_with_no_name_reads_unknown_as_editors_and_systems_do(
    agent: Any, model: AgentModel, host: WindowHost, qtbot: Any, tmp_path: Path
) -> None:
    # The last hour of history from a Hackatime export that names no machine, kept on this computer.
    beats = [{k: v for k, v in hb.items() if k != "machine"} for hb in exported("hackatime", 100, time.time() - 3600)]
    path = write_export(tmp_path / "no-machine.json", "hackatime", beats)
    model.client.request(C.IMPORT_START, {"path": str(path), "upload": False})

    def machines() -> list[str]:
        week = (model.stats or {}).get("last_7_days") or {}
        return [m["name"] for m in week.get("machines") or []]

    qtbot.waitUntil(lambda: ((model.status or {}).get("import_run") or {}).get("state") == "done", timeout=60_000)
    model.refresh()
    qtbot.waitUntil(lambda: "unknown" in machines(), timeout=30_000)  # the agent names it as the server does
    window = open_dashboard(host, qtbot, 1100, 780)
    chart = window.breakdown_chart
    qtbot.waitUntil(lambda: bool(chart.groups.get("machines")), timeout=10_000)
    editors, machines_ax, systems = chart.figure.axes
    assert [t.get_text() for t in editors.get_yticklabels()] == ["VSCode"]
    assert [t.get_text() for t in systems.get_yticklabels()] == ["Linux"]
    assert "Unknown" in [t.get_text() for t in machines_ax.get_yticklabels()]
    assert "unknown" not in [t.get_text() for t in machines_ax.get_yticklabels()]
