"""The dashboard drawn from a real agent's figures: the values are read back from the plotted artists."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from matplotlib.patches import Wedge
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox, QPushButton

from app import charts, state
from app.dashboard import RANGES, SORT_ROLE, DashboardWindow
from app.model import AgentModel
from app.windows import WindowContext
from app.windows.host import WindowHost
from tests.conftest import API_KEY
from tests.gui.conftest import agent_on_damaged_store, coding, local_midnight, post_heartbeats, screenshot, wait_exposed
from tests.standin import Fault


@pytest.fixture
def busy_week(history: None, zone: str, agent: Any, model: AgentModel, qtbot: Any) -> dict[str, Any]:
    """Hackatime's history plus this computer's own heartbeats, as the agent reports them."""
    yesterday = local_midnight(time.time(), zone) - 3 * 3600
    post_heartbeats(agent, coding("hackatime-desktop", 8) + coding("website", 10, end=yesterday, language="TypeScript"))
    qtbot.waitUntil(lambda: dest_sent(model) == 20, timeout=10_000)
    model.refresh()
    qtbot.waitUntil(lambda: sum(d["total_seconds"] for d in _days(model)) >= 3600, timeout=10_000)
    qtbot.waitUntil(lambda: bool(model.stats["last_7_days"].get("languages")), timeout=10_000)  # type: ignore[index]
    assert model.stats is not None
    return model.stats


def dest_sent(model: AgentModel) -> int:
    return int(((model.status or {}).get("destinations") or [{}])[0].get("sent") or 0)


def _days(model: AgentModel) -> list[dict[str, Any]]:
    return list(((model.stats or {}).get("last_7_days") or {}).get("days") or [])


@pytest.fixture
def dashboard(host: WindowHost, qtbot: Any) -> DashboardWindow:
    window = host.open("dashboard")
    assert isinstance(window, DashboardWindow)
    window.resize(1100, 780)
    wait_exposed(qtbot, window)
    qtbot.waitUntil(lambda: window.charts_loaded, timeout=30_000)  # the charts come in after the figures
    return window


def bars_by_label(ax: Any) -> dict[str, list[float]]:
    return {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}


def test_charts_plot_the_agents_figures(
    busy_week: dict[str, Any], dashboard: DashboardWindow, model: AgentModel, qtbot: Any
) -> None:
    assert dashboard.isVisible()
    # The model may have refreshed since the fixture looked: check the charts against the
    # figures they were drawn from, and that those are the model's current ones.
    qtbot.waitUntil(lambda: dashboard.week_chart.days == state.week_days(model.stats), timeout=10_000)
    stats = model.stats
    assert stats is not None
    week = stats["last_7_days"]
    days = state.week_days(stats)

    # the days stacked by project: every segment is that project's hours that day, each bar
    # as tall as its day's total (what its project list does not cover yet is drawn as such)
    ax = dashboard.week_chart.figure.axes[0]
    plotted = bars_by_label(ax)
    expected: dict[str, list[float]] = {}
    for i, day in enumerate(days):
        for project in day["projects"]:
            expected.setdefault(project["name"], [0.0] * len(days))[i] += project["total_seconds"] / 3600
    assert {"website", "hackatime-desktop"} <= set(plotted) <= {"website", "hackatime-desktop", charts.UNSPLIT}
    for name, hours in expected.items():
        assert plotted[name] == pytest.approx(hours)
    heights = [sum(series[i] for series in plotted.values()) for i in range(len(days))]
    assert heights == pytest.approx([state.bar_seconds(d) / 3600 for d in days])
    assert sum(plotted["website"]) >= 40 * 60 / 3600 - 0.01  # Hackatime's history: 40 minutes yesterday
    # the stacked segments sit on one another
    today = [c.patches[-1] for c in ax.containers]
    assert sorted(p.get_y() for p in today)[0] == 0
    # one figure for the range: the title's total is what the bars add up to, and the donut's centre
    total = state.days_total(days)
    assert sum(heights) == pytest.approx(total / 3600)
    assert dashboard.week_title.text().endswith(f"· {state.format_duration(total)}")
    assert dashboard.week_title.text().startswith("Today and the 7 days before" if len(days) == 8 else "The last ")
    assert dashboard.languages_chart.centre == state.format_short(total)
    # today's bar is today's figure, the headline's (or its projects' where those say more)
    assert heights[-1] == pytest.approx(max(stats["today"]["total_seconds"], state.bar_seconds(days[-1])) / 3600)
    assert dashboard.today_total.text() == state.format_duration(stats["today"]["total_seconds"])

    # languages as a donut: wedge angles in proportion to the seconds
    donut = dashboard.languages_chart.figure.axes[0]
    wedges = [p for p in donut.patches if isinstance(p, Wedge)]
    total = sum(lang["total_seconds"] for lang in week["languages"])
    assert [w.get_label().split("  ")[0] for w in wedges] == [lang["name"] for lang in week["languages"]]
    for wedge, lang in zip(wedges, week["languages"], strict=True):
        assert (wedge.theta2 - wedge.theta1) % 360 == pytest.approx(360 * lang["total_seconds"] / total, abs=0.01)
    assert {lang["name"] for lang in week["languages"]} == {"Python", "TypeScript"}

    # editors, machines, operating systems: horizontal bars in hours
    groups = ("editors", "machines", "operating_systems")
    for ax_bars, key in zip(dashboard.breakdown_chart.figure.axes, groups, strict=True):
        widths = [p.get_width() for p in ax_bars.patches]
        assert widths[::-1] == pytest.approx([e["total_seconds"] / 3600 for e in week[key]])

    # a year of daily totals: today and yesterday in their calendar cells
    heat = dashboard.heatmap
    for row in state.year_days(stats)[-2:]:
        day = dt.date.fromisoformat(row["date"])
        r, c = heat.cell(day)
        assert heat.grid[r, c] == pytest.approx(row["total_seconds"] / 3600)
        mesh = heat.figure.axes[0].collections[0]
        assert mesh.get_array().reshape(heat.grid.shape)[r, c] == pytest.approx(row["total_seconds"] / 3600)
    assert math.isnan(heat.grid[6, heat.grid.shape[1] - 1]) or heat.end.weekday() == 6  # no future days

    # every figure says where it comes from and how old it is
    for label in (dashboard.today_caption, dashboard.week_caption, dashboard.year_caption, dashboard.streak_caption):
        assert label.text().startswith(("From Hackatime", "Local estimate")), label.text()
    assert dashboard.today_total.text() != "—"

    screenshot(dashboard, "dashboard-overview")
    dashboard.tabs.setCurrentIndex(2)
    screenshot(dashboard, "dashboard-year")

    # re-plotting reuses each figure: nothing accumulates over hours of refreshes
    for _ in range(10):
        dashboard.week_chart.plot(days)
        dashboard.heatmap.plot(stats["daily_totals"], heat.end)
    assert len(dashboard.week_chart.figure.axes) == 1 and len(dashboard.heatmap.figure.axes) == 1
    assert bars_by_label(dashboard.week_chart.figure.axes[0]) == plotted


def test_projects_table_sorts_and_filters_by_range(
    busy_week: dict[str, Any], dashboard: DashboardWindow, agent: Any, qtbot: Any
) -> None:
    dashboard.tabs.setCurrentIndex(1)
    table, proxy = dashboard.projects_table, dashboard.projects_proxy
    qtbot.waitUntil(lambda: proxy.rowCount() == 2, timeout=10_000)

    def rows() -> list[tuple[str, float]]:
        return [(proxy.index(r, 0).data(), proxy.index(r, 1).data(SORT_ROLE)) for r in range(proxy.rowCount())]

    table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    by_time = rows()
    assert [seconds for _, seconds in by_time] == sorted((s for _, s in by_time), reverse=True)
    table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    assert [name for name, _ in rows()] == ["hackatime-desktop", "website"]
    assert proxy.index(0, 2).data() == "Python"

    with qtbot.waitSignal(dashboard.projects_model.modelReset, timeout=10_000):
        dashboard.range_box.setCurrentIndex(0)  # Today
    expected = {p["name"]: p["total_seconds"] for p in agent.stats.projects("today")["projects"]}
    assert dict(rows()) == pytest.approx(expected)
    assert "website" not in expected  # yesterday's project is gone from today's range

    dashboard.project_filter.setText("HACKA")
    assert [name for name, _ in rows()] == ["hackatime-desktop"]
    screenshot(dashboard, "dashboard-projects")


def test_dead_letters_retry_and_discard(
    agent: Any, standin: Any, model: AgentModel, dashboard: DashboardWindow, qtbot: Any
) -> None:
    standin.inject(Fault.BAD_REQUEST_400, times=20)  # every upload refused: the agent bisects and dead-letters
    post_heartbeats(agent, coding("poison", 2))
    qtbot.waitUntil(lambda: model.status["destinations"][0]["dead"] == 3, timeout=10_000)  # type: ignore[index]
    standin.clear_faults()
    dashboard.tabs.setCurrentIndex(3)
    qtbot.waitUntil(lambda: dashboard.dead_table.rowCount() == 3, timeout=10_000)
    assert dashboard.dead_table.item(0, 1).text() == "poison"
    assert "400" in dashboard.dead_table.item(0, 3).text()  # the server's reason travels with each item
    assert dashboard.dest_table.item(0, 4).text() == "3"
    assert "3 heartbeats refused by Hackatime · see the dashboard" in dashboard.sync_summary.text()
    screenshot(dashboard, "dashboard-sync")

    # Retry two: they go back to the queue and are delivered; one stays dead
    dashboard.dead_table.selectRow(0)
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    dashboard.dead_table.selectionModel().select(dashboard.dead_table.model().index(1, 0), flags)
    assert len(dashboard.selected_dead_ids()) == 2
    dashboard.retry_button.click()
    # The table follows the agent's status and the line the retry's own answer: either may land first.
    qtbot.waitUntil(
        lambda: (
            standin.count() == 2
            and dashboard.dead_table.rowCount() == 1
            and dashboard.dead_status.text() == "2 heartbeats queued again"
        ),
        timeout=10_000,
    )

    # Discard the last one: asked first (without blocking), then gone for good
    dashboard.dead_table.selectRow(0)
    dashboard.discard_button.click()
    box = dashboard.findChild(QMessageBox, "discard-confirm")
    assert box is not None and box.isVisible()
    box.button(QMessageBox.StandardButton.Discard).click()
    qtbot.waitUntil(
        lambda: dashboard.dead_table.rowCount() == 0 and dashboard.dead_status.text() == "1 heartbeat discarded",
        timeout=10_000,
    )
    qtbot.waitUntil(lambda: model.status["destinations"][0]["dead"] == 0, timeout=10_000)  # type: ignore[index]
    assert standin.count() == 2  # discarded, not sent
    assert not dashboard.retry_button.isEnabled() and not dashboard.discard_button.isEnabled()


def test_charts_follow_a_dark_palette(
    busy_week: dict[str, Any], dashboard: DashboardWindow, qapp: QApplication
) -> None:
    light = dashboard.week_chart.figure.get_facecolor()
    original = qapp.palette()
    dark = dark_palette()
    try:
        qapp.setPalette(dark)
        qapp.processEvents()
        assert dashboard.week_chart.palette_.dark
        assert dashboard.week_chart.figure.get_facecolor()[:3] == pytest.approx(QColor("#202124").getRgbF()[:3])
        assert dashboard.heatmap.palette_.heat[0] != dashboard.heatmap.palette_.background
        screenshot(dashboard, "dashboard-dark")
    finally:
        qapp.setPalette(original)
        qapp.processEvents()
    assert dashboard.week_chart.figure.get_facecolor() == light


def dark_palette() -> QPalette:
    """What a desktop in dark mode hands Qt (roughly Fusion's own dark scheme)."""
    palette = QPalette()
    roles = QPalette.ColorRole
    # fmt: off
    for role, colour in (
        (roles.Window, "#202124"), (roles.WindowText, "#e8eaed"), (roles.Base, "#17181a"),
        (roles.AlternateBase, "#26282b"), (roles.Text, "#e8eaed"), (roles.Button, "#2d2f33"),
        (roles.ButtonText, "#e8eaed"), (roles.Highlight, "#3d7bd9"), (roles.HighlightedText, "#ffffff"),
        (roles.Mid, "#4a4d52"), (roles.Dark, "#111214"), (roles.Light, "#3a3c40"), (roles.Midlight, "#333539"),
        (roles.Shadow, "#000000"), (roles.ToolTipBase, "#2d2f33"), (roles.ToolTipText, "#e8eaed"),
    ):
        palette.setColor(role, QColor(colour))
    # fmt: on
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#8a8d91"))
    return palette


def test_dashboard_keeps_the_last_figures_when_the_agent_stops(
    make_agent: Callable[..., Any], make_model: Callable[..., AgentModel], qtbot: Any, tmp_path: Path
) -> None:
    agent = make_agent()
    model = make_model(agent.config.data_dir)
    model.start()
    qtbot.waitUntil(lambda: model.stats is not None, timeout=10_000)
    context = WindowContext(model=model, data_dir=tmp_path, log_dir=tmp_path / "logs", config_dir=tmp_path)
    host = WindowHost(context, keep_alive_s=3600)
    window = host.open("dashboard")
    assert isinstance(window, DashboardWindow)
    agent.stop()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10_000)
    assert window.banner.text().startswith("The Hackatime agent is not running. Figures shown are from ")
    assert window.today_total.text() == "0 mins"  # the last figures stay on screen
    assert not window.sync_button.isEnabled()
    make_agent(data_dir=agent.config.data_dir)
    qtbot.waitUntil(lambda: not window.banner.isVisible(), timeout=10_000)
    host.close()


def test_dark_follows_the_colour_scheme_hint_live(
    busy_week: dict[str, Any], dashboard: DashboardWindow, qapp: QApplication, qtbot: Any
) -> None:
    """Qt's own colour-scheme hint, not GTK: a change of scheme re-themes the open dashboard at once."""
    hints = qapp.styleHints()
    light = dashboard.heatmap.palette_
    assert not light.dark
    try:
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)  # what the platform sends when the desktop turns dark
        qtbot.waitUntil(lambda: dashboard.heatmap.palette_.dark, timeout=5000)
        assert dashboard.week_chart.palette_.dark and dashboard.languages_chart.palette_.dark
        # the heatmap's legend shows its colours, lightest to brightest in dark: no "darker = more"
        legend = dashboard.heatmap.figure.axes[0].get_legend()
        assert [t.get_text() for t in legend.get_texts()] == ["none", "< 30 min", "< 1 h", "< 2 h", "< 4 h", "4 h +"]
        swatches = [QColor.fromRgbF(*h.get_facecolor()[:3]) for h in legend.legend_handles]
        assert [c.name() for c in swatches] == list(dashboard.heatmap.palette_.heat)
        assert swatches[-1].lightness() > swatches[1].lightness()  # more is brighter on a dark background
        screenshot(dashboard, "dashboard-dark")
    finally:
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
    qtbot.waitUntil(lambda: not dashboard.heatmap.palette_.dark, timeout=5000)
    assert dashboard.heatmap.palette_ == light


@pytest.mark.parametrize("size", [(800, 560), (860, 640), (1350, 690)])
def test_the_dashboard_is_usable_on_small_screens(
    busy_week: dict[str, Any], dashboard: DashboardWindow, qtbot: Any, size: tuple[int, int]
) -> None:
    """800×560 up: the window can be that small, and every chart keeps room for its bars and titles.

    Each check waits for the layout to settle, as a person looks once it has: the model
    refreshes while the test runs ("updated just now" becomes "2 s old"), and a caption that
    changed a moment ago has its new height only once its layout request is handled.
    """
    dashboard.resize(*size)

    def fits() -> None:
        assert (dashboard.width(), dashboard.height()) == size  # nothing in the layout forces it larger
        breakdown = dashboard.breakdown_chart
        width_px = breakdown.figure.get_size_inches()[0] * breakdown.figure.dpi
        for ax, text in zip(breakdown.figure.axes, breakdown._titles, strict=True):
            assert ax.get_position().width * width_px > 40  # the bars have room
            assert text.get_text() in ("Editors", "Machines", "Operating systems", "Systems")  # whole words
        assert dashboard.week_chart.height() >= dashboard.week_chart.minimumHeight() > 0

    def no_text_cut_off() -> None:
        """Every label shown has the room its text needs (a wrapped one its lines' height)."""
        for label in dashboard.findChildren(QLabel):
            if not label.isVisible() or not label.text():
                continue
            if label.wordWrap():
                assert label.height() >= label.heightForWidth(label.width()), (size, label.objectName(), label.text())
            else:
                assert label.width() >= label.sizeHint().width(), (size, label.objectName(), label.text())

    def projects_in_view() -> None:
        """The languages get as much room as the names (a name is elided, not the languages)."""
        header = dashboard.projects_table.horizontalHeader()
        assert header.sectionSize(2) >= header.sectionSize(0) - 2 > 0  # equal shares, give or take a pixel
        columns = sum(header.sectionSize(c) for c in range(4))
        assert columns <= dashboard.projects_table.viewport().width() + 1  # all in view, no sideways scrolling

    qtbot.waitUntil(fits, timeout=5000)
    for tab in range(dashboard.tabs.count()):
        dashboard.tabs.setCurrentIndex(tab)
        qtbot.waitUntil(no_text_cut_off, timeout=5000)
    dashboard.tabs.setCurrentIndex(1)
    qtbot.waitUntil(projects_in_view, timeout=5000)


@pytest.fixture
def month_on_the_server(standin: Any, zone: str) -> list[dt.date]:
    """A month of coding another computer sent to Hackatime; this computer's store stays empty."""
    midnight = local_midnight(time.time(), zone)
    beats: list[dict[str, Any]] = []
    days_ago = (0, 1, 3, 6, 9, 15, 22, 29, 45, 200)
    for i, ago in enumerate(days_ago):
        end = time.time() - 300 if ago == 0 else midnight - (ago - 1) * 86400 - 6 * 3600
        project = ("website", "hackatime-desktop", "arcade")[i % 3]
        beats += coding(project, 20 + 5 * i, end=end, language=("TypeScript", "Python", "Rust")[i % 3])
    for start in range(0, len(beats), 100):  # Hackatime's bulk limit
        answer = standin.ingest_direct(json.dumps(beats[start : start + 100]).encode(), API_KEY)
        assert answer.status == 201
    return [dt.date.fromtimestamp(midnight) - dt.timedelta(days=a) for a in days_ago]


def server_days(standin: Any, first: dt.date, last: dt.date) -> dict[dt.date, int]:
    """What Hackatime itself answers for these days (§4.8 summaries), asked over HTTP."""
    url = f"{standin.api_url}/users/current/summaries?start={first.isoformat()}&end={last.isoformat()}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        data = json.loads(response.read())["data"]
    return {dt.date.fromisoformat(d["range"]["date"]): int(d["grand_total"]["total_seconds"]) for d in data}


def test_history_on_the_server_fills_every_view_of_an_empty_store(
    month_on_the_server: list[dt.date], standin: Any, agent: Any, model: AgentModel, host: WindowHost, qtbot: Any
) -> None:
    """A Hackatime user with history and only ~/.wakatime.cfg: no empty views, every figure the server's."""
    qtbot.waitUntil(lambda: (model.stats or {}).get("daily_totals_source") not in (None, "local"), timeout=20_000)
    window = host.open("dashboard")
    assert isinstance(window, DashboardWindow)
    wait_exposed(qtbot, window)
    qtbot.waitUntil(lambda: window.charts_loaded, timeout=30_000)

    # The year heatmap: each day as Hackatime counts it, and the active days all there.
    heat = window.heatmap
    assert heat.end is not None
    expected = server_days(standin, heat.end - dt.timedelta(days=364), heat.end)
    qtbot.waitUntil(lambda: {d: s for d, s in heat.totals.items() if s} == {d: s for d, s in expected.items() if s})
    assert sum(1 for s in expected.values() if s) == len(month_on_the_server)
    assert window.year_caption.text().startswith("From Hackatime")

    # The projects table, for every range, shows the server's projects and says so.
    window.tabs.setCurrentIndex(1)
    for index, (key, _label) in enumerate(RANGES):
        answer = model.client.projects(key)  # what the agent answers for this range
        assert answer["projects"] and answer["source"].startswith("server"), (key, answer)
        window.range_box.setCurrentIndex(index)
        qtbot.waitUntil(lambda a=answer: window.projects_model.rows == a["projects"], timeout=10_000)
        names = {str(r.get("name")) for r in window.projects_model.rows}
        assert names <= {"website", "hackatime-desktop", "arcade"}, (key, names)
        assert "From Hackatime" in window.projects_caption.text(), (key, window.projects_caption.text())
    assert {str(r.get("name")) for r in window.projects_model.rows} == {"website", "hackatime-desktop", "arcade"}
    # all time is the whole month and more, as Hackatime adds it up
    all_time = sum(float(r["total_seconds"]) for r in window.projects_model.rows)
    assert all_time >= sum(server_days(standin, min(month_on_the_server), heat.end).values()) - 60
    screenshot(window, "dashboard-server-history")


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours."""

    def luminance(name: str) -> float:
        channels = [c / 255 for c in QColor(name).getRgb()[:3]]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("scheme", [Qt.ColorScheme.Light, Qt.ColorScheme.Dark], ids=["light", "dark"])
def test_the_charts_secondary_text_is_readable(qapp: QApplication, scheme: Qt.ColorScheme) -> None:
    """Value labels and the heatmap's legend: quieter than the figures, never greyed out of sight."""
    from app import theme

    try:
        theme.apply(qapp, scheme)
        palette = charts.ChartPalette.from_qt(qapp.palette())
        assert palette.dark == (scheme == Qt.ColorScheme.Dark)
        assert contrast(palette.muted, palette.background) >= 3.0, (palette.muted, palette.background)
        assert contrast(palette.text, palette.background) > contrast(palette.muted, palette.background)
    finally:
        theme.apply(qapp, Qt.ColorScheme.Light)


def test_the_sync_tab_lists_the_agents_notices_and_dismisses_them(
    make_agent: Callable[..., Any], make_model: Callable[..., AgentModel], tmp_path: Path, qtbot: Any
) -> None:
    data_dir = tmp_path / "damaged"
    agent, stored = agent_on_damaged_store(make_agent, data_dir)
    model = make_model(data_dir)
    model.start()
    context = WindowContext(model=model, data_dir=data_dir, log_dir=tmp_path / "logs", config_dir=tmp_path)
    host = WindowHost(context, keep_alive_s=3600)
    try:
        window = host.open("dashboard")
        assert isinstance(window, DashboardWindow)
        window.tabs.setCurrentIndex(3)
        qtbot.waitUntil(lambda: window.notices_table.rowCount() == 1, timeout=10_000)
        assert window.notices_table.isVisible()
        assert window.notices_table.item(0, 1).text() == stored["message"]
        assert window.notices_table.item(0, 0).text() != "—"  # when it happened
        button = window.notices_table.cellWidget(0, 2)
        assert isinstance(button, QPushButton) and button.text() == "Dismiss"

        button.click()  # the call runs on the pool: the window keeps answering
        qtbot.waitUntil(lambda: window.notices_table.rowCount() == 0, timeout=10_000)
        assert not window.notices_table.isVisible()
        assert agent.store.notices() == []
        assert not any(n["id"] is not None for n in model.status["notices"])  # type: ignore[index]
    finally:
        host.close()
