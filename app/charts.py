"""The dashboard's charts: matplotlib figures on QtAgg canvases.

Importing this module imports matplotlib (over a second, cold), so only the window
process imports it, on a pool thread once the dashboard is shown (``app.dashboard``);
the tray never does (``app.windows``).

pyplot is never used: it keeps global figure state and picks a backend; each
chart owns one ``Figure`` on its own ``FigureCanvasQTAgg``. Plotting only
changes artists; drawing happens when Qt paints the canvas, so a hidden tab costs
nothing until it is shown. Axes are placed with fixed margins in points
(:meth:`Chart._layout`), recomputed on resize: matplotlib's constrained layout
measured every label on every draw and cost about 100 ms per dashboard open.

Every chart keeps the figures it was given in plain attributes and plots them so
that tests can read the values back from the artists themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from PySide6.QtGui import QColor, QPalette, QShowEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from .binding import contained, lean_imports
from .state import format_short, top_with_other

with lean_imports():  # about 23 MB less resident memory (app.binding)
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

TOP_PROJECTS = 6
TOP_LANGUAGES = 7
TOP_BREAKDOWN = 5
# Heatmap levels in hours: none, under 30 min, under 1 h, under 2 h, under 4 h, more.
HEAT_BOUNDS = (0.0, 1e-6, 0.5, 1.0, 2.0, 4.0, 24.0)
UNSPLIT = "Not yet split by project"
UNKNOWN = "Unknown"  # a group with no name (machine, editor, language, system)
SHORT_TITLES = {"Operating systems": "Systems"}
HEAT_LEGEND = ("none", "< 30 min", "< 1 h", "< 2 h", "< 4 h", "4 h +")

# Qualitative colours that stay apart in both palettes and for common colour blindness (Okabe–Ito based).
SERIES_LIGHT = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#8c8c00", "#9a9a9a")
SERIES_DARK = ("#56b4e9", "#f0b840", "#2fc59a", "#e08fc0", "#7fa8ff", "#ff8a50", "#c8c850", "#9a9a9a")
# The first colour is "no coding that day": it must stand apart from the window background.
HEAT_LIGHT = ("#d9dde2", "#c6e48b", "#7bc96f", "#41a35a", "#23833f", "#145a2a")
HEAT_DARK = ("#3b414a", "#0e4429", "#006d32", "#26a641", "#39d353", "#8af0a0")


@dataclass(frozen=True)
class ChartPalette:
    dark: bool
    background: str
    text: str
    muted: str
    grid: str
    series: tuple[str, ...]
    heat: tuple[str, ...]

    @classmethod
    def from_qt(cls, palette: QPalette) -> ChartPalette:
        """Follow the Qt palette, which follows the system's colour scheme (:mod:`app.theme`)."""
        window = palette.color(QPalette.ColorRole.Window)
        text = palette.color(QPalette.ColorRole.WindowText)
        dark = window.lightness() < text.lightness()
        # Secondary text (value labels, the heatmap's legend) in the colour the dashboard's
        # captions use: the disabled colour was greyed to the lowest contrast (#bebebe on #efefef).
        muted = _over(palette.color(QPalette.ColorRole.PlaceholderText), window)
        grid = window.darker(120) if not dark else window.lighter(150)
        return cls(
            dark=dark,
            background=window.name(),
            text=text.name(),
            muted=muted.name(),
            grid=grid.name(),
            series=SERIES_DARK if dark else SERIES_LIGHT,
            heat=HEAT_DARK if dark else HEAT_LIGHT,
        )


def _over(colour: QColor, background: QColor) -> QColor:
    """``colour`` as it shows over ``background`` (matplotlib gets no alpha: Qt's placeholder text has one)."""
    a = colour.alphaF()
    mixed = [
        a * c + (1 - a) * b
        for c, b in zip(
            (colour.redF(), colour.greenF(), colour.blueF()),
            (background.redF(), background.greenF(), background.blueF()),
            strict=True,
        )
    ]
    return QColor.fromRgbF(mixed[0], mixed[1], mixed[2])


def hours(seconds: float) -> float:
    return float(seconds) / 3600.0


def _hours_label(value: float, _pos: object = None) -> str:
    if value == 0:
        return "0"
    return f"{value:g}h" if value >= 1 else f"{round(value * 60)}m"


class Chart(FigureCanvasQTAgg):
    """A canvas with one figure, themed from the Qt palette and re-plotted on demand."""

    def __init__(self, palette: ChartPalette, *, min_height: int = 220, parent: QWidget | None = None) -> None:
        self.figure = Figure(figsize=(6, 3))
        super().__init__(self.figure)
        if parent is not None:
            self.setParent(parent)
        self.palette_ = palette
        self._stale = False
        self.setMinimumSize(240, min_height)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.mpl_connect("resize_event", lambda _event: self._layout())

    def set_palette(self, palette: ChartPalette) -> None:
        if palette != self.palette_:
            self.palette_ = palette
            self.replot()

    def replot(self) -> None:
        self.figure.clear()
        self.figure.set_facecolor(self.palette_.background)
        self._plot()
        self._layout()
        # A chart on a hidden tab is drawn when it is first shown, not now: drawing
        # (layout included) is most of the cost of opening the dashboard.
        if self.isVisible():
            self.draw_idle()
        else:
            self._stale = True

    @contained
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self.draw_idle()

    def _plot(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _layout(self) -> None:
        """Place the axes for the current size (overridden where there are axes to place)."""

    def _place(self, ax: Axes, left: float, right: float, top: float, bottom: float, x0: float = 0.0,
               width: float | None = None) -> None:  # fmt: skip
        """Put ``ax`` inside the figure (or the column from ``x0`` of ``width``, in points) with margins in points."""
        fig_w, fig_h = self.figure.get_size_inches() * 72
        width = fig_w - x0 if width is None else width
        w = max(1.0, width - left - right)
        h = max(1.0, fig_h - top - bottom)
        ax.set_position((((x0 + left) / fig_w), bottom / fig_h, w / fig_w, h / fig_h))

    def _axes(self, ax: Axes, *, grid_axis: Literal["x", "y"] | None = "y") -> Axes:
        p = self.palette_
        ax.set_facecolor(p.background)
        for side, spine in ax.spines.items():
            spine.set_visible(side in ("bottom", "left"))
            spine.set_color(p.grid)
        ax.tick_params(colors=p.muted, labelcolor=p.text, labelsize=8.5)
        if grid_axis:
            ax.grid(axis=grid_axis, color=p.grid, linewidth=0.8)
            ax.set_axisbelow(True)
        return ax

    def _empty(self, message: str) -> None:
        ax = self.figure.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, message, ha="center", va="center", color=self.palette_.muted, transform=ax.transAxes)

    def _legend(self, ax: Axes, **kw: Any) -> None:
        ax.legend(frameon=False, fontsize=8.5, labelcolor=self.palette_.text, **kw)


class WeekChart(Chart):
    """Last 7 days as stacked bars, one colour per project (the biggest six, then Other)."""

    def __init__(self, palette: ChartPalette, parent: QWidget | None = None) -> None:
        super().__init__(palette, min_height=150, parent=parent)
        self.days: list[Mapping[str, Any]] = []
        self.series: dict[str, list[float]] = {}  # project → seconds per day, as plotted

    def total(self) -> float:
        """What the bars add up to, in seconds: the range total shown beside the chart."""
        return float(sum(sum(values) for values in self.series.values()))

    def plot(self, days: Sequence[Mapping[str, Any]]) -> None:
        self.days = list(days)
        totals: dict[str, float] = {}
        for day in self.days:
            for project in day.get("projects") or []:
                name = str(project.get("name") or "(unknown)")
                totals[name] = totals.get(name, 0.0) + float(project.get("total_seconds") or 0)
        kept = [name for name, _ in top_with_other(list(totals.items()), TOP_PROJECTS)]
        series: dict[str, list[float]] = {name: [0.0] * len(self.days) for name in kept}
        for i, day in enumerate(self.days):
            listed = 0.0
            for project in day.get("projects") or []:
                name = str(project.get("name") or "(unknown)")
                key = name if name in series and name != "Other" else "Other"
                seconds = float(project.get("total_seconds") or 0)
                series.setdefault(key, [0.0] * len(self.days))[i] += seconds
                listed += seconds
            # A bar is as tall as its day's total (the figure the title adds up): time the
            # day's project list does not cover yet (the latest work, newer than the server's
            # split by project) is drawn on top as what it is.
            rest = float(day.get("total_seconds") or 0) - listed
            if rest >= 1:
                series.setdefault(UNSPLIT, [0.0] * len(self.days))[i] += rest
        for last in ("Other", UNSPLIT):  # last: drawn on top, in the neutral colours
            if last in series:
                series[last] = series.pop(last)
        self.series = series
        self.replot()

    def _plot(self) -> None:
        if not self.days or not any(any(v) for v in self.series.values()):
            self._empty(f"No coding time in these {len(self.days) or 8} days")
            return
        p = self.palette_
        ax = self._axes(self.figure.add_subplot())
        x = np.arange(len(self.days))
        bottom = np.zeros(len(self.days))
        for i, (name, seconds) in enumerate(self.series.items()):
            values = np.array([hours(s) for s in seconds])
            colour = _colour(p, i, name)
            ax.bar(x, values, bottom=bottom, label=name, color=colour, width=0.62)
            bottom += values
        labels = []
        for day in self.days:
            try:
                d = dt.date.fromisoformat(str(day.get("date")))
                labels.append(f"{d:%a}\n{d.day}")
            except ValueError:
                labels.append(str(day.get("date")))
        ax.set_xticks(x, labels)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
        ax.yaxis.set_major_formatter(FuncFormatter(_hours_label))
        for i, total in enumerate(bottom):
            if total > 0:
                ax.annotate(
                    format_short(total * 3600),
                    (i, total),
                    ha="center",
                    va="bottom",
                    xytext=(0, 2),
                    textcoords="offset points",
                    fontsize=8,
                    color=p.muted,
                )
        ax.set_ylim(0, max(bottom.max() * 1.15, 0.5))
        self._legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0))

    def _layout(self) -> None:
        if self.figure.axes and any(any(v) for v in self.series.values()):
            legend = _text_width(self.series, extra=34, most=190)
            self._place(self.figure.axes[0], left=30, right=legend, top=12, bottom=28)


class DonutChart(Chart):
    """Shares of time as a donut (languages): the biggest seven, then Other."""

    def __init__(self, palette: ChartPalette, empty: str = "No data yet", parent: QWidget | None = None) -> None:
        super().__init__(palette, min_height=140, parent=parent)
        self.empty_text = empty
        self.items: list[tuple[str, float]] = []  # (name, seconds), as plotted
        self.centre: str = ""
        self._centre_text: Any = None

    def plot(self, items: Sequence[Mapping[str, Any]], centre: str | None = None) -> None:
        """``centre``: the range's total as the rest of the window writes it (the shares' sum otherwise)."""
        self.items = top_with_other(_pairs(items), TOP_LANGUAGES)
        self.centre = centre if centre is not None else format_short(sum(v for _, v in self.items))
        self.replot()

    def _plot(self) -> None:
        total = sum(v for _, v in self.items)
        if total <= 0:
            self._empty(self.empty_text)
            return
        p = self.palette_
        ax = self.figure.add_subplot()
        ax.set_facecolor(p.background)
        colours = [_colour(p, i, name) for i, (name, _) in enumerate(self.items)]
        wedges, *_ = ax.pie(
            [v for _, v in self.items],
            colors=colours,
            startangle=90,
            counterclock=False,
            wedgeprops={"width": 0.36, "edgecolor": p.background, "linewidth": 1.5},
        )
        for wedge, (name, value) in zip(wedges, self.items, strict=True):
            wedge.set_label(f"{name}  {value / total * 100:.0f} %")
        self._centre_text = ax.text(0, 0, self.centre, ha="center", va="center", color=p.text, fontweight="bold")
        ax.set_aspect("equal")
        self._legend(ax, loc="center left", bbox_to_anchor=(1.0, 0.5))

    def _layout(self) -> None:
        if self.figure.axes and self.items:
            fig_w, fig_h = self.figure.get_size_inches() * 72
            legend = _text_width([f"{name}  100 %" for name, _ in self.items], extra=30, most=min(180, fig_w * 0.5))
            self._place(self.figure.axes[0], left=4, right=legend, top=4, bottom=4)
            if self._centre_text is not None:
                # The hole is 28 % of the ring's diameter wide (wedge width 0.36 of the radius):
                # size the text to it, so it never leaves the ring on a small window.
                diameter = min(fig_w - legend - 8, fig_h - 8)
                hole = diameter * 0.64
                self._centre_text.set_fontsize(max(6.0, min(11.0, hole / (0.62 * max(len(self.centre), 3)))))


class BreakdownChart(Chart):
    """Editors, machines and operating systems as three small horizontal bar charts."""

    GROUPS = (("editors", "Editors"), ("machines", "Machines"), ("operating_systems", "Operating systems"))

    def __init__(self, palette: ChartPalette, parent: QWidget | None = None) -> None:
        super().__init__(palette, min_height=140, parent=parent)
        self.groups: dict[str, list[tuple[str, float]]] = {}
        self._titles: list[Any] = []

    def plot(self, week: Mapping[str, Any]) -> None:
        self.groups = {}
        for key, _title in self.GROUPS:
            self.groups[key] = top_with_other(_pairs(week.get(key) or []), TOP_BREAKDOWN)
        self.replot()

    def _plot(self) -> None:
        if not any(self.groups.values()):
            self._empty("No editors, machines or systems recorded this week")
            return
        p = self.palette_
        axes = self.figure.subplots(1, len(self.GROUPS))
        # Titles are figure texts at each column's left edge: an axes title starts after the
        # bar labels and ran into the next column on a narrow window ("Operating syste").
        self._titles = []
        for i, (ax, (key, title)) in enumerate(zip(axes, self.GROUPS, strict=True)):
            self._axes(ax, grid_axis="x")
            self._titles.append(self.figure.text(0, 1, title, color=p.text, fontsize=9.5, va="top", ha="left"))
            rows = list(reversed(self.groups.get(key) or []))
            if not rows:
                ax.set_axis_off()
                continue
            y = np.arange(len(rows))
            ax.barh(y, [hours(v) for _, v in rows], color=p.series[i], height=0.6)
            ax.set_yticks(y, [name for name, _ in rows])
            ax.xaxis.set_major_locator(MaxNLocator(nbins=3))
            ax.xaxis.set_major_formatter(FuncFormatter(_hours_label))

    def _layout(self) -> None:
        axes = self.figure.axes
        if len(axes) != len(self.GROUPS):
            return
        fig_w, fig_h = self.figure.get_size_inches() * 72
        column = fig_w / len(axes)
        for i, (ax, (key, title)) in enumerate(zip(axes, self.GROUPS, strict=True)):
            # Labels get at most half the column, clipped to fit: the bars always keep room.
            most = column * 0.5
            chars = max(5, int((most - 14) / 5.2))
            names = [_clip(name, chars) for name, _ in self.groups.get(key) or []]
            label = _text_width(names, extra=14, least=24, most=most)
            self._place(ax, left=label, right=10, top=20, bottom=18, x0=i * column, width=column)
            if names:
                ax.set_yticks(np.arange(len(names)), list(reversed(names)))
                # fewer ticks where the bars are short, so "24m" and "48m" never run together
                ax.xaxis.set_major_locator(MaxNLocator(nbins=3 if column - label > 110 else 2))
            if i < len(self._titles):
                text = self._titles[i]
                text.set_position(((i * column + 4) / fig_w, 1 - 2 / fig_h))
                room = max(6, int((column - 8) / 6.2))
                # A short word where the long one does not fit: never a clipped "Operating sy…".
                text.set_text(title if len(title) <= room else _clip(SHORT_TITLES.get(title, title), room))


class HeatmapChart(Chart):
    """A year of daily totals as a calendar: weeks left to right, Monday on top."""

    # Around the calendar, in points: the day names, the months above, the legend below.
    MARGINS: ClassVar[dict[str, float]] = {"left": 28, "right": 6, "top": 18, "bottom": 24}

    def __init__(self, palette: ChartPalette, parent: QWidget | None = None) -> None:
        super().__init__(palette, min_height=150, parent=parent)
        self.end: dt.date | None = None
        self.start: dt.date | None = None
        self.grid: np.ndarray = np.full((7, 53), np.nan)  # hours; NaN outside the year shown
        self.totals: dict[dt.date, float] = {}
        # As tall as the calendar is at the width it gets (its days are square): at a fixed
        # height a narrow window showed an empty band between the legend and the summary.
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def heightForWidth(self, width: int) -> int:
        m = self.MARGINS
        points = 72 * self.device_pixel_ratio / self.figure.dpi  # per pixel of this widget
        rows, weeks = self.grid.shape
        calendar = (width * points - m["left"] - m["right"]) * rows / weeks
        height = round((calendar + m["top"] + m["bottom"]) / points) + 1
        return max(self.minimumHeight(), min(self.maximumHeight(), height))

    def cell(self, day: dt.date) -> tuple[int, int]:
        """(row, column) of a day in :attr:`grid`."""
        assert self.start is not None
        return day.weekday(), (day - self.start).days // 7

    def plot(self, daily_totals: Sequence[Mapping[str, Any]], end: dt.date) -> None:
        self.totals = {}
        for row in daily_totals:
            try:
                day = dt.date.fromisoformat(str(row.get("date")))
            except ValueError:
                continue
            self.totals[day] = self.totals.get(day, 0.0) + float(row.get("total_seconds") or 0)
        self.end = end
        first = end - dt.timedelta(days=364)
        self.start = first - dt.timedelta(days=first.weekday())  # the Monday of the first column
        weeks = (end - self.start).days // 7 + 1
        columns, self.grid = self.grid.shape[1], np.full((7, weeks), np.nan)
        if weeks != columns:
            self.updateGeometry()  # a year spans 53 or 54 columns: the height follows
        day = first
        while day <= end:
            r, c = self.cell(day)
            self.grid[r, c] = hours(self.totals.get(day, 0.0))
            day += dt.timedelta(days=1)
        self.replot()

    def _plot(self) -> None:
        if self.start is None:
            self._empty("No history yet")
            return
        p = self.palette_
        ax = self._axes(self.figure.add_subplot(), grid_axis=None)
        for spine in ax.spines.values():
            spine.set_visible(False)
        cmap = ListedColormap(list(p.heat)).with_extremes(bad=p.background)
        norm = BoundaryNorm(HEAT_BOUNDS, cmap.N)
        # pcolormesh with background-coloured edges draws the gaps between days.
        ax.pcolormesh(np.ma.masked_invalid(self.grid), cmap=cmap, norm=norm, edgecolors=p.background, linewidth=1.5)
        ax.set_aspect("equal")
        ax.set_anchor("N")  # under the title, not floating in the middle of the page
        ax.invert_yaxis()  # Monday on top, as calendars are read
        ax.set_yticks([0.5, 2.5, 4.5], ["Mon", "Wed", "Fri"])
        ticks, labels = [], []
        for c in range(self.grid.shape[1]):
            monday = self.start + dt.timedelta(weeks=c)
            if monday.day <= 7:
                ticks.append(c + 0.5)
                labels.append(f"{monday:%b}")
        ax.set_xticks(ticks, labels)
        ax.tick_params(length=0)
        ax.xaxis.set_ticks_position("top")
        # The legend shows the colours themselves: "darker = more" was wrong on a dark background.
        self.legend = list(HEAT_LEGEND)
        handles = [Patch(facecolor=colour, edgecolor=colour) for colour in p.heat]
        ax.legend(
            handles,
            self.legend,
            loc="upper right",
            bbox_to_anchor=(1.0, -0.02),
            ncols=len(handles),
            frameon=False,
            fontsize=8,
            labelcolor=p.muted,
            handlelength=1.0,
            handleheight=1.0,
            handletextpad=0.4,
            columnspacing=1.0,
        )

    def _layout(self) -> None:
        if self.start is not None and self.figure.axes:
            self._place(self.figure.axes[0], **self.MARGINS)

    def summary(self) -> dict[str, Any]:
        """The year in four numbers, shown under the calendar."""
        values = [v for d, v in self.totals.items() if self.start is not None and self.start <= d <= (self.end or d)]
        active = [v for v in values if v > 0]
        best = max(self.totals.items(), key=lambda kv: kv[1], default=None)
        return {
            "total_seconds": sum(values),
            "active_days": len(active),
            "average_seconds": sum(active) / len(active) if active else 0.0,
            "best_day": best[0] if best and best[1] > 0 else None,
            "best_seconds": best[1] if best else 0.0,
        }


def _clip(name: str, width: int = 18) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _pairs(items: Sequence[Mapping[str, Any]]) -> list[tuple[str, float]]:
    pairs = [(_group_name(i.get("name")), float(i.get("total_seconds") or 0)) for i in items]
    return [pair for pair in pairs if pair[1] > 0]


def _group_name(name: Any) -> str:
    """A group's name as shown. The agent names a blank machine or language "unknown", as the
    server does, but a blank editor or system "Unknown": shown as the latter, beside them."""
    text = str(name or UNKNOWN)
    return UNKNOWN if text == "unknown" else text


def _colour(p: ChartPalette, i: int, name: str) -> str:
    """The i-th series colour; "Other" is always the neutral last one, the unsplit time the muted text's."""
    if name == UNSPLIT:
        return p.muted
    return p.series[-1] if name == "Other" else p.series[i % (len(p.series) - 1)]


def _text_width(texts: Iterable[str], *, extra: float, least: float = 0.0, most: float = 200.0) -> float:
    """Room in points for the longest of ``texts`` at the charts' 8.5 pt (an estimate: no text is measured)."""
    longest = max((len(t) for t in texts), default=0)
    return min(most, max(least, extra + 5.8 * longest))
