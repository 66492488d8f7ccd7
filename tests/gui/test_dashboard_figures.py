"""How the dashboard's figures read and fit: names of groups with no name, and the year's calendar at each width."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication

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


@pytest.mark.parametrize("size", [(860, 640), (1366, 768)])
def test_the_year_calendar_is_as_tall_as_it_is_drawn(
    history: None, model: AgentModel, host: WindowHost, qtbot: Any, qapp: QApplication, size: tuple[int, int]
) -> None:
    """No empty band between the calendar's legend and the summary under it, at any width."""
    window = open_dashboard(host, qtbot, *size)
    window.tabs.setCurrentWidget(window.heatmap.parentWidget())
    heat = window.heatmap
    qtbot.waitUntil(lambda: heat.start is not None and heat.isVisible(), timeout=10_000)

    def gaps() -> tuple[float, float]:
        """Pixels from the legend to the canvas's bottom, and the calendar's width short of what it is given."""
        heat.draw()  # the calendar's square days and its legend as they are drawn at this size
        ax = heat.figure.axes[0]
        legend = ax.get_legend().get_window_extent()
        given, drawn = ax.get_position(original=True).width, ax.get_position(original=False).width
        return legend.y0 / heat.device_pixel_ratio, (given - drawn) * heat.width()

    qtbot.waitUntil(lambda: gaps()[0] < 16, timeout=5000)
    below, short = gaps()
    assert below >= 0 and short <= 2  # the calendar keeps the whole width given to it, and nothing under it is cut
    assert window.year_summary.geometry().top() - heat.geometry().bottom() <= 12
