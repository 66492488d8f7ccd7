"""The dashboard window: today, the last 7 days, languages, a year, projects, and sync health.

A view over :class:`app.model.AgentModel` like the tray: figures arrive with the
model's ``changed`` signal; anything else (projects for another range, dead
letters, retry, discard) is asked for through the model's background helper.
Each figure carries a caption saying whether it is Hackatime's or a local
estimate and how old it is.

Charts are re-plotted only when their figures changed, and only while the
window is visible; a closed dashboard costs nothing on refresh.

Headline first, charts later: the window is built and shown without the charts
library (matplotlib takes longer to import than everything else the window needs),
with today, the goal, the streak and sync as soon as the agent answers. The
charts module is imported on a pool thread once those are painted, and the charts
take the places held for them when it is in (:meth:`_install_charts`).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRectF,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QCloseEvent, QColor, QPainter, QPaintEvent, QPalette, QPen, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from agent import contract as C

from . import APP_TITLE, icons, state, theme
from .binding import contained
from .model import AgentModel

if TYPE_CHECKING:
    from .charts import BreakdownChart, ChartPalette, DonutChart, HeatmapChart, WeekChart

log = logging.getLogger(__name__)

DEFAULT_SIZE = QSize(1080, 760)
MIN_SIZE = QSize(800, 560)  # fully usable from here up: every chart keeps its labels and bars
RANGES = (("today", "Today"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("all", "All time"))
SORT_ROLE = Qt.ItemDataRole.UserRole + 1

Index = QModelIndex | QPersistentModelIndex


class GoalRing(QWidget):
    """Today's progress towards the day goal as a ring; a grey ring when there is no goal."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fraction: float | None = None
        self.percent: int | None = None
        self.setFixedSize(84, 84)

    def set_goal(self, fraction: float | None, percent: int | None) -> None:
        """The arc follows ``fraction``; the text is ``percent``, the figure the menu and tooltip show."""
        if (fraction, percent) != (self.fraction, self.percent):
            self.fraction, self.percent = fraction, percent
            tip = "No daily goal set on Hackatime" if percent is None else f"{percent} % of the goal"
            self.setToolTip(tip)
            self.update()

    @contained
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(7, 7, self.width() - 14, self.height() - 14)
        track = self.palette().color(self.palette().ColorRole.Mid)
        pen = QPen(track, 9)
        p.setPen(pen)
        p.drawEllipse(rect)
        text = "—"
        if self.fraction is not None:
            done = min(self.fraction, 1.0)
            pen.setColor(QColor("#2e9d57") if self.fraction >= 1 else QColor("#ec3750"))
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            p.setPen(pen)
            p.drawArc(rect, 90 * 16, -int(done * 360 * 16))
            text = "—" if self.percent is None else f"{self.percent}%"
        p.setPen(self.palette().color(self.palette().ColorRole.WindowText))
        font = p.font()
        font.setBold(True)
        p.setFont(font)
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        p.end()


class ProjectsModel(QAbstractTableModel):
    HEADERS = ("Project", "Time", "Languages", "Last activity")

    def __init__(self, clock: Callable[[], float], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[Mapping[str, Any]] = []
        self.clock = clock

    def set_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = self.rows[index.row()], index.column()
        seconds = float(row.get("total_seconds") or 0)
        last = row.get("last_activity")
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                # Archived on Hackatime: known when signed in with Hackatime (all time only).
                return str(row.get("name") or "(unknown)") + (" (archived)" if row.get("archived") else "")
            if col == 1:
                return state.format_duration(seconds)
            if col == 2:
                return ", ".join(str(lang) for lang in (row.get("languages") or [])[:4]) or "—"
            if col == 3:
                return state.format_ago(float(last), self.clock()) if last else "—"
        if role == SORT_ROLE:
            # Sort on the numbers, not on their wording ("10 mins" must not sort before "2 hrs").
            return (str(row.get("name") or "").lower(), seconds, len(row.get("languages") or []), float(last or 0))[col]
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class DashboardWindow(QMainWindow):
    ready = Signal()  # the headline shows the agent's figures for the first time (app.windows)
    charts_ready = Signal()  # the charts are in place and plotted
    rendered = Signal()  # the charts were re-plotted from new figures (tests, benchmarks)
    dead_loaded = Signal()  # the dead-letter table was filled from the agent's answer
    notices_shown = Signal()  # the notices list was refilled from a new status

    # Created once the charts module is imported (_install_charts); until then placeholders hold their places.
    week_chart: WeekChart
    languages_chart: DonutChart
    breakdown_chart: BreakdownChart
    heatmap: HeatmapChart
    _palette: ChartPalette

    def __init__(self, model: AgentModel, parent: QWidget | None = None, *, log_dir: Path | None = None) -> None:
        """``log_dir``: the tray's, where the agent it starts writes why it refused to start (the banner says it)."""
        super().__init__(parent)
        self.model = model
        self.log_dir = log_dir
        self.setObjectName("dashboard")
        self.setWindowTitle(f"{APP_TITLE} — Dashboard")
        self.setWindowIcon(icons.app_icon())
        self.setMinimumSize(MIN_SIZE)
        self.resize(_fitting(DEFAULT_SIZE))
        theme.follow(QApplication.instance())  # type: ignore[arg-type]  # idempotent: the tray may have already
        self.charts_loaded = False
        self._charts_asked = False
        self._has_figures = False
        self._placeholders: dict[str, tuple[QLayout, QLabel]] = {}
        self._shown: dict[str, Any] = {}  # the figures each part was last plotted from
        self._dirty = True
        self._projects_range = "7d"
        self.dead_items: list[C.DeadLetter] = []
        self._dead_destination: str | None = None
        self._confirm: QMessageBox | None = None

        central = QWidget()
        root = QVBoxLayout(central)
        root.addLayout(self._build_header())
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("QLabel { background: #d93036; color: white; padding: 6px; border-radius: 4px; }")
        self.banner.hide()
        root.addWidget(self.banner)
        self.tabs = QTabWidget()
        for page, title in (
            (self._build_overview(), "Overview"),
            (self._build_projects(), "Projects"),
            (self._build_year(), "Year"),
            (self._build_sync(), "Sync"),
        ):
            # Filled with the window colour, which is also the charts' background: no seams.
            page.setAutoFillBackground(True)
            self.tabs.addTab(page, title)
        self.tabs.currentChanged.connect(self._tab_changed)
        root.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        central.installEventFilter(self)  # its first paint with figures starts the charts' import

        model.changed.connect(self.refresh_view)
        self.refresh_view()

    # ---- layout ---------------------------------------------------------------------

    @staticmethod
    def _caption(name: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setWordWrap(True)  # a long caption takes a second line on a narrow window, never runs off it
        _muted(label)
        return label

    def _build_header(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.goal_ring = GoalRing()
        row.addWidget(self.goal_ring)
        today = QVBoxLayout()
        self.today_total = QLabel("—")
        self.today_total.setObjectName("today-total")
        font = self.today_total.font()
        font.setPointSizeF(font.pointSizeF() * 2)
        font.setBold(True)
        self.today_total.setFont(font)
        today.addWidget(QLabel("Today"))
        today.addWidget(self.today_total)
        self.goal_label = QLabel()
        self.goal_label.setObjectName("goal")
        today.addWidget(self.goal_label)
        self.today_caption = self._caption("today-caption")
        today.addWidget(self.today_caption)
        row.addLayout(today, 2)
        streak = QVBoxLayout()
        streak.addWidget(QLabel("Streak"))
        self.streak_label = QLabel("—")
        self.streak_label.setObjectName("streak")
        self.streak_label.setFont(font)
        streak.addWidget(self.streak_label)
        self.streak_caption = self._caption("streak-caption")
        streak.addWidget(self.streak_caption)
        streak.addStretch(1)
        row.addLayout(streak, 1)
        sync = QVBoxLayout()
        sync.addWidget(QLabel("Sync"))
        self.sync_summary = QLabel()
        self.sync_summary.setObjectName("sync-summary")
        self.sync_summary.setWordWrap(True)
        sync.addWidget(self.sync_summary)
        self.sync_button = QPushButton("Sync now")
        self.sync_button.setObjectName("dashboard-sync")
        self.sync_button.clicked.connect(self.model.sync_now)
        sync.addWidget(self.sync_button, 0, Qt.AlignmentFlag.AlignLeft)
        sync.addStretch(1)
        row.addLayout(sync, 2)
        return row

    def _build_overview(self) -> QWidget:
        page = QWidget()
        grid = QGridLayout(page)
        week, languages, breakdown = (self._placeholder(grid, name) for name in ("week", "languages", "breakdown"))
        self.week_caption = self._caption("week-caption")
        self.languages_caption = self._caption("languages-caption")
        self.breakdown_caption = self._caption("breakdown-caption")
        self.week_title = _title("Today and the 7 days before, by project")
        self.week_title.setObjectName("week-title")
        grid.addWidget(self.week_title, 0, 0, 1, 2)
        grid.addWidget(week, 1, 0, 1, 2)
        grid.addWidget(self.week_caption, 2, 0, 1, 2)
        grid.addWidget(_title("Languages"), 3, 0)
        grid.addWidget(_title("Editors, machines and systems"), 3, 1)
        grid.addWidget(languages, 4, 0)
        grid.addWidget(breakdown, 4, 1)
        grid.addWidget(self.languages_caption, 5, 0)
        grid.addWidget(self.breakdown_caption, 5, 1)
        grid.setRowStretch(1, 5)
        grid.setRowStretch(4, 4)
        grid.setColumnStretch(0, 2)
        grid.setColumnStretch(1, 3)
        return page

    def _build_projects(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        bar = QHBoxLayout()
        self.range_box = QComboBox()
        self.range_box.setObjectName("projects-range")
        for key, label in RANGES:
            self.range_box.addItem(label, key)
        self.range_box.setCurrentIndex([k for k, _ in RANGES].index(self._projects_range))
        self.range_box.currentIndexChanged.connect(self._range_changed)
        bar.addWidget(QLabel("Range"))
        bar.addWidget(self.range_box)
        self.project_filter = QLineEdit()
        self.project_filter.setPlaceholderText("Filter projects")
        self.project_filter.setClearButtonEnabled(True)
        bar.addWidget(self.project_filter, 1)
        layout.addLayout(bar)
        self.projects_model = ProjectsModel(self.model.clock, self)
        self.projects_proxy = QSortFilterProxyModel(self)
        self.projects_proxy.setSourceModel(self.projects_model)
        self.projects_proxy.setSortRole(SORT_ROLE)
        self.projects_proxy.setFilterKeyColumn(0)
        self.projects_proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.project_filter.textChanged.connect(self.projects_proxy.setFilterFixedString)
        self.projects_table = QTableView()
        self.projects_table.setObjectName("projects-table")
        self.projects_table.setModel(self.projects_proxy)
        self.projects_table.setSortingEnabled(True)
        self.projects_table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
        self.projects_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.projects_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.projects_table.verticalHeader().hide()
        header = self.projects_table.horizontalHeader()
        # Name and languages share what the numbers leave; a long name is elided, not the languages.
        stretch, fit = QHeaderView.ResizeMode.Stretch, QHeaderView.ResizeMode.ResizeToContents
        for column, mode in enumerate((stretch, fit, stretch, fit)):
            header.setSectionResizeMode(column, mode)
        self.projects_table.setAlternatingRowColors(True)
        layout.addWidget(self.projects_table, 1)
        self.projects_caption = self._caption("projects-caption")
        layout.addWidget(self.projects_caption)
        return page

    def _build_year(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(_title("A year of daily totals"))
        layout.addWidget(self._placeholder(layout, "year"))
        self.year_summary = QLabel()
        self.year_summary.setObjectName("year-summary")
        layout.addWidget(self.year_summary)
        self.year_caption = self._caption("year-caption")
        layout.addWidget(self.year_caption)
        layout.addStretch(1)
        return page

    def _build_sync(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self._build_notices(layout)
        layout.addWidget(_title("Destinations"))
        self.dest_table = QTableWidget(0, 7)
        self.dest_table.setObjectName("destinations")
        self.dest_table.setHorizontalHeaderLabels(
            ["Destination", "Waiting", "Sending", "Sent", "Dead", "Last success", "Last error"]
        )
        self.dest_table.verticalHeader().hide()
        self.dest_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.dest_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.dest_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.dest_table.horizontalHeader().setSectionResizeMode(6, QHeaderView.ResizeMode.Stretch)
        self.dest_table.setMaximumHeight(130)
        self.dest_table.itemSelectionChanged.connect(self._destination_selected)
        layout.addWidget(self.dest_table)

        self.dead_title = _title("Refused heartbeats")
        layout.addWidget(self.dead_title)
        hint = QLabel(
            "The server refused these heartbeats and they are no longer retried. Retry sends them again "
            "(after fixing the cause); Discard forgets them for this destination."
        )
        hint.setWordWrap(True)
        _muted(hint)
        layout.addWidget(hint)
        self.dead_table = QTableWidget(0, 5)
        self.dead_table.setObjectName("dead-letters")
        self.dead_table.setHorizontalHeaderLabels(["Time", "Project", "File", "Reason", "Attempts"])
        self.dead_table.verticalHeader().hide()
        self.dead_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.dead_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.dead_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self.dead_table.horizontalHeader()
        for column in (0, 1, 4):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(2, 280)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.dead_table.setWordWrap(False)
        self.dead_table.setTextElideMode(Qt.TextElideMode.ElideLeft)  # a path's file name is its useful end
        self.dead_table.itemSelectionChanged.connect(self._dead_selection_changed)
        layout.addWidget(self.dead_table, 1)
        buttons = QHBoxLayout()
        self.select_all_button = QPushButton("Select all")
        self.select_all_button.clicked.connect(self.dead_table.selectAll)
        self.retry_button = QPushButton("Retry")
        self.retry_button.setObjectName("dead-retry")
        self.retry_button.clicked.connect(self.retry_selected)
        self.discard_button = QPushButton("Discard…")
        self.discard_button.setObjectName("dead-discard")
        self.discard_button.clicked.connect(self.discard_selected)
        for button in (self.select_all_button, self.retry_button, self.discard_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.dead_status = QLabel()
        self.dead_status.setObjectName("dead-status")
        buttons.addWidget(self.dead_status)
        layout.addLayout(buttons)
        self._dead_selection_changed()
        return page

    def _build_notices(self, layout: QVBoxLayout) -> None:
        """What the agent wants the user to know (a damaged store recovered, a key source unreadable):
        first on the Sync tab, shown only while there is any."""
        self.notices_title = _title("Notices from the agent")
        layout.addWidget(self.notices_title)
        self.notices_table = QTableWidget(0, 3)
        self.notices_table.setObjectName("agent-notices")
        self.notices_table.setHorizontalHeaderLabels(["Time", "Message", ""])
        self.notices_table.verticalHeader().hide()
        self.notices_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.notices_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.notices_table.setWordWrap(True)  # a recovery notice is a few sentences: all of it is read
        header = self.notices_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.notices_table.setMaximumHeight(170)
        layout.addWidget(self.notices_table)
        self.notices_status = QLabel()
        self.notices_status.setObjectName("notices-status")
        self.notices_status.setWordWrap(True)
        layout.addWidget(self.notices_status)
        self.notices: list[Mapping[str, Any]] = []
        self._show_notices([])

    def _placeholder(self, layout: QLayout, name: str) -> QLabel:
        label = QLabel("Loading the chart…")
        label.setObjectName(f"{name}-placeholder")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setEnabled(False)
        label.setMinimumHeight(120)
        self._placeholders[name] = (layout, label)
        return label

    # ---- the charts, once their library is in ------------------------------------------

    def _load_charts(self) -> None:
        if self._charts_asked:
            return
        self._charts_asked = True
        # On a pool thread: the window stays live (and painted) while matplotlib loads.
        self.model.runner.run(
            lambda: importlib.import_module("app.charts"),
            self._install_charts,
            self._charts_failed,
            context=self,
            name="import charts",
        )

    def _install_charts(self, charts: ModuleType) -> None:
        self._palette = charts.ChartPalette.from_qt(self.palette())
        self.week_chart = charts.WeekChart(self._palette)
        self.languages_chart = charts.DonutChart(self._palette, empty="No languages recorded this week")
        self.breakdown_chart = charts.BreakdownChart(self._palette)
        self.heatmap = charts.HeatmapChart(self._palette)
        self.heatmap.setMaximumHeight(260)
        for name, chart in (
            ("week", self.week_chart),
            ("languages", self.languages_chart),
            ("breakdown", self.breakdown_chart),
            ("year", self.heatmap),
        ):
            layout, placeholder = self._placeholders.pop(name)
            layout.replaceWidget(placeholder, chart)
            placeholder.deleteLater()
        self.charts_loaded = True
        self.refresh_view()
        self.charts_ready.emit()

    def _charts_failed(self, exc: BaseException) -> None:
        log.error("the charts could not be loaded", exc_info=exc)
        for _, placeholder in self._placeholders.values():
            placeholder.setText(f"The charts could not be loaded: {exc}")

    # ---- showing ---------------------------------------------------------------------

    def is_ready(self) -> bool:
        return self._has_figures

    @contained
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._dirty:
            self.refresh_view()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and self._has_figures and not self._charts_asked:
            # After this paint: the figures reach the screen before the import competes with them.
            QTimer.singleShot(0, self._load_charts)
        return False

    @contained
    def closeEvent(self, event: QCloseEvent) -> None:
        if self._confirm is not None:
            self._confirm.close()
        event.accept()  # hidden, kept by the window process until its keep-alive runs out (app.windows.host)

    @contained
    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            # The system switched between light and dark: re-theme the charts.
            if not self.charts_loaded:
                return  # the charts take the palette of the moment when they are made
            palette = type(self._palette).from_qt(self.palette())
            if palette != self._palette:
                self._palette = palette
                for chart in (self.week_chart, self.languages_chart, self.breakdown_chart, self.heatmap):
                    chart.set_palette(palette)

    def show_tab(self, name: str) -> bool:
        """Bring the tab titled ``name`` (any case: "sync") to the front; False when there is none.

        The window process calls it for a request naming a page (the tray's notices line
        asks for the Sync tab, where the notices are listed and dismissed)."""
        for index in range(self.tabs.count()):
            if self.tabs.tabText(index).casefold() == name.casefold():
                self.tabs.setCurrentIndex(index)
                return True
        return False

    @contained
    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.dead_table.parentWidget():
            self.load_dead()

    # ---- figures → widgets ------------------------------------------------------------

    @contained
    def refresh_view(self) -> None:
        if not self.isVisible():
            self._dirty = True
            return
        self._dirty = False
        model, now = self.model, self.model.clock()
        stats: Mapping[str, Any] = model.stats or {}
        status = model.status
        generated = stats.get("generated_at")

        if model.available is False:
            shown = f" Figures shown are from {state.format_clock(model.status_at, now)}." if model.status_at else ""
            self.banner.setText(f"{self._agent_problem() or state.agent_down_line(model.error) + '.'}{shown}")
            self.banner.show()
        else:
            self.banner.hide()

        today = state.today(stats)
        self.today_total.setText(state.today_total_text(stats))
        self.goal_ring.set_goal(state.goal_fraction(stats), state.goal_percent(stats))
        self.goal_label.setText(state.goal_line(stats) or "No daily goal set on Hackatime")
        unsynced = float(today.get("unsynced_seconds") or 0)
        pending = state.unsynced_pending(status)
        fetched = today.get("server_fetched_at")
        caption = state.source_caption(today.get("source"), fetched, generated, now, unsynced, pending)
        self.today_caption.setText(caption)
        streak = stats.get("streak") or {}
        days = state.streak_days(stats)
        self.streak_label.setText("—" if days is None else state.plural(days, "day"))
        streak_caption = state.source_caption(streak.get("source"), streak.get("fetched_at"), generated, now)
        self.streak_caption.setText(streak_caption)
        self.sync_summary.setText("\n".join(state.sync_lines(status, model.available, now, model.error)))
        self.sync_button.setEnabled(bool(model.available) and not model.syncing)

        week = stats.get("last_7_days") or {}
        week_caption = state.source_caption(week.get("source"), week.get("fetched_at"), generated, now)
        for label in (self.languages_caption, self.breakdown_caption):
            label.setText(week_caption)
        # The per-day bars may come from elsewhere than the week's totals (server summaries vs local).
        days_source = week.get("days_source") or week.get("source")
        self.week_caption.setText(state.source_caption(days_source, week.get("fetched_at"), generated, now))
        year_fetched = stats.get("daily_totals_fetched_at", week.get("fetched_at"))
        year_source = stats.get("daily_totals_source") or "local"
        self.year_caption.setText(state.source_caption(year_source, year_fetched, generated, now))

        if stats.get("projects_range") == self._projects_range and self._changed("projects", stats.get("projects")):
            self._show_projects(stats)
        elif stats and self._projects_range != stats.get("projects_range") and self._changed("projects-for", generated):
            self.load_projects()
        self._refresh_destinations(status)
        notices = state.agent_notices(status)
        if self._changed("notices", notices):
            self._show_notices(notices)
        self.week_title.setText(state.days_title(state.week_days(stats)))
        # Ready once the headline shows what there is: the figures, or that the agent is not running.
        if (model.stats is not None or model.available is False) and not self._has_figures:
            self._has_figures = True
            self.ready.emit()
        if self.charts_loaded and self._plot(stats, week, generated):
            self.rendered.emit()

    def _agent_problem(self) -> str | None:
        """The tray's sentence for an agent that refused to start (port in use, another agent), if it did."""
        if self.log_dir is None:
            return None
        from .supervisor import refusal_in_log  # only while the agent is down

        refusal = refusal_in_log(self.log_dir)
        return refusal.sentence if refusal is not None else None

    def _plot(self, stats: Mapping[str, Any], week: Mapping[str, Any], generated: Any) -> bool:
        """Re-plot the charts whose figures changed; True when any was."""
        plotted = False
        bars = state.week_days(stats)
        total = state.format_short(state.days_total(bars))  # one figure: the title's, the donut's
        if self._changed("week", bars):
            self.week_chart.plot(bars)
            plotted = True
        if self._changed("languages", (week.get("languages"), total)):
            self.languages_chart.plot(week.get("languages") or [], centre=total)
            plotted = True
        breakdown = {k: week.get(k) for k, _ in type(self.breakdown_chart).GROUPS}
        if self._changed("breakdown", breakdown):
            self.breakdown_chart.plot(breakdown)
            plotted = True
        daily = state.year_days(stats)
        end = _last_day(week.get("days"), daily, generated)
        if self._changed("year", (daily, end)):
            self.heatmap.plot(daily or [], end)
            year = self.heatmap.summary()
            best = year["best_day"]
            self.year_summary.setText(
                f"{state.format_duration(year['total_seconds'])} in the last year · "
                f"{state.plural(year['active_days'], 'active day')} · "
                f"{state.format_duration(year['average_seconds'])} on an average active day"
                + (f" · best day {best:%d %b %Y} ({state.format_duration(year['best_seconds'])})" if best else "")
            )
            plotted = True
        return plotted

    def _changed(self, key: str, value: Any) -> bool:
        if key in self._shown and self._shown[key] == value:
            return False
        self._shown[key] = value
        return True

    # ---- projects ---------------------------------------------------------------------

    def _range_changed(self, index: int) -> None:
        self._projects_range = str(self.range_box.itemData(index))
        self._shown.pop("projects", None)
        self.load_projects()

    def load_projects(self) -> None:
        wanted = self._projects_range

        def done(answer: C.ProjectsAnswer) -> None:
            if answer.get("range", wanted) == self._projects_range:
                self._show_projects(answer)

        self.model.call(lambda c: c.projects(wanted), done, self._show_error, context=self)

    def _show_projects(self, answer: Mapping[str, Any]) -> None:  # a ProjectsAnswer or the StatsSnapshot
        """A range's projects, and where they come from (the server's when this computer has none)."""
        rows = answer.get("projects") or []
        self.projects_model.set_rows(rows)
        now = self.model.clock()
        source = answer.get("projects_source") or answer.get("source") or "local"
        fetched = answer.get("projects_fetched_at", answer.get("fetched_at"))
        stats: Mapping[str, Any] = self.model.stats or {}
        generated = answer.get("generated_at") or stats.get("generated_at")
        caption = state.source_caption(source, fetched, generated, now)
        total = state.format_duration(sum(float(r.get("total_seconds") or 0) for r in rows))
        self.projects_caption.setText(f"{state.plural(len(rows), 'project')} · {total} · {caption}")

    # ---- the agent's notices ----------------------------------------------------------

    def _show_notices(self, notices: Sequence[Mapping[str, Any]]) -> None:
        """One row per notice, as the latest status lists them; stored ones get a Dismiss button."""
        self.notices = list(notices)
        table = self.notices_table
        table.setRowCount(len(notices))
        for r, notice in enumerate(notices):
            when = notice.get("time")
            stamp = dt.datetime.fromtimestamp(float(when)).strftime("%Y-%m-%d %H:%M") if when else "—"
            for c, text in enumerate((stamp, str(notice.get("message") or ""))):
                table.setItem(r, c, QTableWidgetItem(text))
            ident = notice.get("id")
            if isinstance(ident, int):
                button = QPushButton("Dismiss")
                button.setObjectName(f"notice-dismiss-{ident}")
                button.clicked.connect(lambda _checked=False, i=ident, b=button: self.dismiss_notice(i, b))
                table.setCellWidget(r, 2, button)
            else:
                table.removeCellWidget(r, 2)
                table.setItem(r, 2, QTableWidgetItem(""))  # the agent's own: gone once its cause is
        table.resizeRowsToContents()
        for widget in (self.notices_title, self.notices_table, self.notices_status):
            widget.setVisible(bool(notices))
        self.notices_status.clear()
        self.notices_shown.emit()

    def dismiss_notice(self, notice_id: int, button: QPushButton | None = None) -> None:
        """Ask the agent to drop the notice, off the GUI thread; the next status removes its row."""
        if button is not None:
            button.setEnabled(False)
            button.setText("Dismissing…")

        def failed(exc: BaseException) -> None:
            self._show_notices(self.notices)  # a fresh button: the one clicked may have been replaced meanwhile
            self.notices_status.setText(f"Could not dismiss the notice: {exc}")

        self.model.dismiss_notice(notice_id, lambda _answer: None, failed)

    # ---- sync health ------------------------------------------------------------------

    def _refresh_destinations(self, status: C.Status | None) -> None:
        now = self.model.clock()
        dests = state.destinations(status)
        selected = self._dead_destination
        self.dest_table.blockSignals(True)
        self.dest_table.setRowCount(len(dests))
        for r, d in enumerate(dests):
            # In words, as the menu says it: never the exception's text ("ConnectError: [Errno 111] …").
            error = state.readable_error(str(d.get("last_error") or ""), state.server_title(d))
            if error and d.get("last_error_at"):
                error = f"{error} ({state.format_ago(float(d['last_error_at']), now)})"
            cells = [
                state.server_title(d),
                f"{int(d.get('pending') or 0):,}",
                f"{int(d.get('in_flight') or 0):,}",
                f"{int(d.get('sent') or 0):,}",
                f"{int(d.get('dead') or 0):,}",
                state.format_ago(d.get("last_success"), now),
                error or "—",
            ]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c in (1, 2, 3, 4):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setData(Qt.ItemDataRole.UserRole, str(d.get("name")))  # the name the agent knows it by
                self.dest_table.setItem(r, c, item)
            if d.get("auth_state") in ("rejected", "missing"):
                text = "API key rejected" if d.get("auth_state") == "rejected" else "No API key"
                self.dest_table.setItem(r, 6, QTableWidgetItem(text))
        names = [str(d.get("name")) for d in dests]
        if selected not in names:
            selected = names[0] if names else None
        if selected is not None:
            self.dest_table.selectRow(names.index(selected))
        self.dest_table.blockSignals(False)
        changed = selected != self._dead_destination
        self._dead_destination = selected
        dead_now = next((int(d.get("dead") or 0) for d in dests if d.get("name") == selected), 0)
        if changed or self._changed("dead-count", (selected, dead_now)):
            self.load_dead()

    def _destination_selected(self) -> None:
        rows = self.dest_table.selectionModel().selectedRows()
        if rows:
            item = self.dest_table.item(rows[0].row(), 0)
            name = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
            if name and name != self._dead_destination:
                self._dead_destination = str(name)
                self.load_dead()

    def load_dead(self) -> None:
        destination = self._dead_destination
        if destination is None or not self.model.available:
            return

        def done(items: list[C.DeadLetter]) -> None:
            if destination == self._dead_destination:
                self._show_dead(items)

        self.model.call(lambda c: c.dead(destination), done, self._show_error, context=self)

    def _show_dead(self, items: list[C.DeadLetter]) -> None:
        self.dead_items = items
        where = state.server_title({"name": self._dead_destination})
        self.dead_title.setText(
            f"Refused heartbeats · {where} · {len(items):,}" if items else f"Refused heartbeats · {where} · none"
        )
        self.dead_table.setRowCount(len(items))
        for r, item in enumerate(items):
            when = dt.datetime.fromtimestamp(float(item.get("time") or 0)).strftime("%Y-%m-%d %H:%M")
            cells = [
                when,
                str(item.get("project") or "—"),
                str(item.get("entity") or ""),
                str(item.get("reason") or ""),
                str(item.get("attempts") or ""),
            ]
            for c, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                cell.setData(Qt.ItemDataRole.UserRole, item.get("id"))
                if c == 2:
                    cell.setToolTip(text)
                self.dead_table.setItem(r, c, cell)
        self._dead_selection_changed()
        self.dead_loaded.emit()

    def selected_dead_ids(self) -> list[int]:
        rows = sorted({index.row() for index in self.dead_table.selectionModel().selectedRows()})
        return [int(self.dead_items[r]["id"]) for r in rows if r < len(self.dead_items)]

    def _dead_selection_changed(self) -> None:
        has = bool(self.dead_table.selectionModel().selectedRows())
        self.retry_button.setEnabled(has)
        self.discard_button.setEnabled(has)
        self.select_all_button.setEnabled(self.dead_table.rowCount() > 0)

    def retry_selected(self) -> None:
        ids, destination = self.selected_dead_ids(), self._dead_destination
        if not ids or destination is None:
            return
        self.dead_status.setText(f"Retrying {state.plural(len(ids), 'heartbeat')}…")
        self.model.retry_dead(destination, ids, self._dead_done("queued again"))

    def discard_selected(self) -> None:
        ids, destination = self.selected_dead_ids(), self._dead_destination
        if not ids or destination is None:
            return
        # Discarding is permanent: ask first, without blocking the event loop (open(), not exec()).
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Discard refused heartbeats?",
            f"{state.plural(len(ids), 'heartbeat')} will never be sent to {state.server_title({'name': destination})}. "
            "They stay in the local history.",
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("discard-confirm")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def answered(button: int) -> None:
            self._confirm = None
            if button == QMessageBox.StandardButton.Discard:
                self.dead_status.setText(f"Discarding {state.plural(len(ids), 'heartbeat')}…")
                self.model.discard_dead(destination, ids, self._dead_done("discarded"))

        box.finished.connect(answered)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._confirm = box
        box.open()

    def _dead_done(self, verb: str) -> Callable[[Any], None]:
        def done(count: Any) -> None:
            self.dead_status.setText(f"{state.plural(int(count), 'heartbeat')} {verb}")
            self.load_dead()

        return done

    def _show_error(self, exc: BaseException) -> None:
        self.dead_status.setText(str(exc))


def _muted(label: QLabel) -> None:
    """Secondary text in the palette's placeholder colour: quieter than the figures, yet readable.

    A disabled label, used before, is greyed to the lowest contrast the style has.
    """
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)


def _title(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


Rows = Sequence[Mapping[str, Any]] | None


def _fitting(size: QSize) -> QSize:
    """``size``, or less where the screen (minus panels and the title bar) is smaller."""
    screen = QApplication.primaryScreen()
    if screen is None:
        return size
    room = screen.availableGeometry().size() - QSize(16, 48)  # the window manager's frame and title bar
    return size.boundedTo(room).expandedTo(MIN_SIZE)


def _last_day(days: Rows, daily: Rows, generated: Any) -> dt.date:
    """Today in the stats' own calendar: the last of the 7 days, else the newest daily total."""
    for source in (days, daily):
        if source:
            try:
                return dt.date.fromisoformat(str(source[-1].get("date")))
            except ValueError:
                pass
    if isinstance(generated, int | float):
        return dt.datetime.fromtimestamp(generated).date()
    return dt.date.today()


__all__ = ["DashboardWindow", "GoalRing", "ProjectsModel"]
