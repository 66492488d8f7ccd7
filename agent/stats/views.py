"""The figures of each view, computed once for every caller: local ones with the server's
rules, and the server's own merged with the work they cannot contain (``missing``).

Every view says where it came from: ``"server"`` (the server's figure as fetched today),
``"server+local"`` (the server's figure plus this machine's work it cannot contain yet) or
``"local"`` (this store alone: no server figure of today, or one smaller than what this store
knows). Lists come in the two shapes the server has: last_7_days' (§4.6: groups of 0 s
dropped, blank names "unknown", percent of the sum of the groups) for today and 7 days, and
/api/v1/users/my/stats' (§5.4: every group kept, blank names "Other", percent of the total)
for 30 days and all time. Day bars follow summaries (§4.8): each gap credited to the earlier
heartbeat's project, each project's credit rounded, the day the sum of its projects.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from agent.contract import (
    DayFigures,
    GoalFigures,
    GroupEntry,
    LastSevenDays,
    ProjectEntry,
    ProjectsAnswer,
    TodayFigures,
)
from agent.store import windows as W

from . import durations as D
from .durations import Seg
from .missing import added, day_changes
from .queries import (
    ALL,
    GROUP_LISTS,
    PROJECT,
    PROJECT_LANGUAGE,
    after,
    day_intervals,
    day_seconds,
    group_list,
    lead_by_key,
    window_groups,
    window_seconds,
)
from .rollups import dec, enc, unpair
from .server_figures import Cached, ServerStats, merge_today

RANGES = ("today", "7d", "30d", "all")
LAST7_STYLE_RANGES = ("today", "7d")  # the others mirror /api/v1/users/my/stats
MERGED_COLUMNS = ("project", "language", "editor", "operating_system", "machine")


def range_window(range_: str, now: float, tz: Any) -> tuple[float, float]:
    """Inclusive [start, end] of a range: today and N days back plus today, with the server's
    integer-second day bounds; ``all`` is the server's valid-time scope."""
    if range_ == "today":
        lo, hi = D.day_window(D.local_date(now, tz), tz)
        return float(lo), float(hi)
    if range_ in ("7d", "30d"):
        lo, hi, _, _ = D.last_days_window(now, tz, 7 if range_ == "7d" else 30)
        return float(lo), float(hi)
    if range_ == "all":
        return 0.0, float(D.TIME_MAX)
    raise ValueError(f"range must be one of {', '.join(RANGES)}")


# ---- list shapes --------------------------------------------------------------------------------


def stats_name(column: str, value: str | None) -> str:
    """How /api/v1/users/my/stats names a group: blank is "Other", editors and systems mapped."""
    name = "Other" if D.is_blank(value) else str(value)
    return D.display_name(column, name) if column in ("editor", "operating_system") else name


def summaries_name(value: str | None) -> str:
    """How summaries names a day's project: blank ones (no project, empty) are one "Other"."""
    return "Other" if D.is_blank(value) else str(value)


def stats_list(seconds: Mapping[str | None, float], column: str, total: int) -> list[GroupEntry]:
    """A /api/v1/users/my/stats list: per-group totals rounded per group, every group kept (0 s
    too), percent of the range's total, sorted by time then name."""
    out: list[GroupEntry] = [
        {
            "name": stats_name(column, raw),
            "total_seconds": (s := D.to_seconds(value)),
            "percent": D.percent_of(s, float(total)),
        }
        for raw, value in seconds.items()
    ]
    out.sort(key=_order)
    return out


def _order(entry: Mapping[str, Any]) -> tuple[int, str]:
    return -int(entry["total_seconds"]), str(entry["name"])


def _by_name(entries: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    found: dict[str, float] = {}
    for entry in entries:
        found[entry["name"]] = found.get(entry["name"], 0.0) + float(entry["total_seconds"])
    return found


def merge_list(
    server: Iterable[Mapping[str, Any]], deltas: Mapping[str | None, float], name: Any, *, stats_style: bool, total: int
) -> list[GroupEntry]:
    """The server's list plus what missing work adds to each group (named as the list names
    them), in the list's own shape."""
    seconds = _by_name(server)
    for raw, delta in deltas.items():
        key = name(raw)
        seconds[key] = seconds.get(key, 0.0) + delta
    rounded = {key: D.to_seconds(value) for key, value in seconds.items()}
    out: list[GroupEntry]
    if stats_style:
        out = [{"name": k, "total_seconds": v, "percent": D.percent_of(v, float(total))} for k, v in rounded.items()]
    else:
        grand = float(sum(v for v in rounded.values() if v > 0))
        out = [{"name": k, "total_seconds": v, "percent": D.percent_of(v, grand)} for k, v in rounded.items() if v > 0]
    out.sort(key=_order)
    return out


# ---- local figures --------------------------------------------------------------------------------


def local_figures(
    conn: sqlite3.Connection, lo: float, hi: float, *, stats_style: bool, only: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """A range's total and its lists (``only`` some of them) from this store alone, projects
    with their languages."""
    end = after(hi)
    whole = window_groups(conn, ALL, lo, end).get("")
    total = 0 if whole is None else D.to_seconds(whole.span)
    out: dict[str, Any] = {
        "total_seconds": total,
        "heartbeats": 0 if whole is None else whole.count,
        "first_heartbeat": None if whole is None else whole.first,
        "last_heartbeat": None if whole is None else whole.last,
    }
    for name, dim, column in GROUP_LISTS:
        if only is not None and name not in only:
            continue
        groups = window_groups(conn, dim, lo, end)
        entries: list[Any]  # GroupEntry, ProjectEntry once the languages are added
        if stats_style:
            entries = stats_list({dec(v): seg.span for v, seg in groups.items()}, column, total)
            raws = {stats_name(column, dec(v)): dec(v) for v in groups}
        else:
            entries = group_list(groups, column, keep_raw=True)
            raws = {e["name"]: e.pop("_raw") for e in entries}
        if name == "projects":
            _add_languages(conn, cast(list[ProjectEntry], entries), raws, groups, lo, end)
        out[name] = entries
    return out


def _add_languages(
    conn: sqlite3.Connection,
    entries: list[ProjectEntry],
    raws: Mapping[str, str | None],
    groups: Mapping[str, Seg],
    lo: float,
    end: float,
) -> None:
    languages: dict[str | None, list[tuple[float, str]]] = {}
    for value, seg in window_groups(conn, PROJECT_LANGUAGE, lo, end).items():
        project, language = unpair(value)
        if language is not None and not D.is_blank(language):
            languages.setdefault(project, []).append((seg.span, language))
    for entry in entries:
        raw = raws.get(entry["name"])
        ranked = sorted(languages.get(raw, []), key=lambda x: (-x[0], x[1]))
        entry["languages"] = [name for _, name in ranked]
        found = groups.get(enc(raw))
        entry["last_activity"] = found.last if found is not None else None


def local_last_7_days(conn: sqlite3.Connection, now: float, tz: Any) -> dict[str, Any]:
    """stats/last_7_days (§4.6) from this store: 8 local days as one timeline, its lists, one
    "coding" category holding the whole total. ``stats --range 7d`` and the tray both use it."""
    lo, hi, first, today = D.last_days_window(now, tz, 7)
    out = local_figures(conn, float(lo), float(hi), stats_style=False)
    total = out["total_seconds"]
    out["categories"] = [{"name": "coding", "total_seconds": total, "percent": 100.0}] if total else []
    # days_including_holidays: local days with any heartbeat in the window, even one (an index
    # probe per day).
    active = len({date for a, b, date in day_intervals(first, today, tz, lo, after(hi)) if W.any_between(conn, a, b)})
    out["days_including_holidays"] = active
    out["daily_average"] = D.ruby_round(total / active, 1) if active else 0.0
    return out


# ---- merged views -----------------------------------------------------------------------------------


@dataclass
class Views:
    """The merged views over one read transaction."""

    conn: sqlite3.Connection
    server: ServerStats
    destination: str
    now: float
    tz: Any

    def today(self) -> TodayFigures:
        """Today's total (statusbar, §4.5) merged, the goal, and today's projects (the day's bar)."""
        lo, hi = D.day_window(D.local_date(self.now, self.tz), self.tz)
        local_seconds = window_seconds(self.conn, lo, after(hi))
        cached = self.server.today(self.now, self.tz)
        mark = cached.reach_mark if cached is not None else self.server.store.delivery_seq()
        extra = added(self.conn, self.destination, lo, hi, mark)
        server_seconds = cached.total_seconds if cached is not None else None
        total, source = merge_today(server_seconds, local_seconds, extra.seconds)
        goal = cast("GoalFigures | None", self.server.goal(total, server_seconds, cached))
        return {
            "total_seconds": total,
            "text": self.server.text(total, goal),
            "local_seconds": local_seconds,
            "server_seconds": server_seconds,
            "unsynced_seconds": D.to_seconds(extra.seconds),
            "unsynced_heartbeats": extra.heartbeats,
            "source": source,
            "server_fetched_at": cached.fetched_at if cached is not None else None,
            "server_age_seconds": None if cached is None else max(0.0, self.now - cached.fetched_at),
            "goal": goal,
            "start": lo,
            "end": hi,
        }

    def days(self, first: dt.date, last: dt.date) -> tuple[list[DayFigures], str, float | None]:
        """Daily bars for [first, last]: the server's summaries merged with missing work, else
        local; returns (days, source of the whole, when the server's were fetched)."""
        cached = self.server.summaries(self.now, self.tz)
        fetched = {d["date"]: d for d in cached.value["days"]} if cached is not None else {}
        dates = D.dates(first, last)
        if cached is None or any(d.isoformat() not in fetched for d in dates):
            return local_days(self.conn, first, last, self.tz), "local", None
        changes = day_changes(self.conn, self.destination, first, last, self.tz, cached.reach_mark)
        # This store's own day is a floor for every day, whatever the server's figure may already
        # hold: a fetch answered while a batch was in flight counts that batch as possibly in it,
        # so the merge adds nothing, yet the figure may predate it. With a large upload on its
        # way (no changes measured) this is also the whole merge.
        local = {d["date"]: d for d in local_days(self.conn, first, last, self.tz)}
        out: list[DayFigures] = []
        sources: set[str] = set()
        for d in dates:
            entry = fetched[d.isoformat()]
            change = changes.get(d) if changes is not None else None
            day: DayFigures
            if change is None:
                day = cast(DayFigures, {**entry, "source": "server"})  # as the server sent it
            else:
                day = _merged_day(d, entry, change.credits, change.local_credits)
            mine = local.get(d.isoformat())
            if mine is not None and mine["total_seconds"] > day["total_seconds"]:
                day = mine
            sources.add(day["source"])
            out.append(day)
        source = "server" if sources == {"server"} else "local" if sources == {"local"} else "server+local"
        return out, source, cached.fetched_at

    def last_7_days(self) -> LastSevenDays:
        """stats/last_7_days (§4.6), the server's merged with missing work, else local; the
        daily bars of the same 8 days (summaries)."""
        lo, hi, first, today = D.last_days_window(self.now, self.tz, 7)
        local_total = window_seconds(self.conn, lo, after(hi))
        cached = self.server.last_7_days(self.now, self.tz)
        out: dict[str, Any]
        server_total: int | None = None
        merged = -1
        if cached is not None:
            extra = added(self.conn, self.destination, lo, hi, cached.reach_mark, MERGED_COLUMNS)
            server_total = int(cached.figures["total_seconds"])
            merged = max(server_total, D.to_seconds(server_total + extra.seconds))
        # The lists come from where the total does: when this store alone holds more (a fetch that
        # may predate a batch in flight adds nothing for it), its lists, so the parts add up.
        if cached is not None and server_total is not None and merged >= local_total:
            out = cached.figures
            total, source = merge_today(server_total, local_total, extra.seconds)
            for name, _, column in GROUP_LISTS:
                if column in extra.groups:
                    namer = functools.partial(D.display_name, column)
                    out[name] = merge_list(out[name], extra.groups[column], namer, stats_style=False, total=total)
            out["categories"] = [{"name": "coding", "total_seconds": total, "percent": 100.0}] if total else []
            out.update(
                {"total_seconds": total, "source": source, "fetched_at": cached.fetched_at,
                 "server_seconds": server_total, "local_seconds": local_total}
            )  # fmt: skip
        else:
            out = local_last_7_days(self.conn, self.now, self.tz)
            for key in ("heartbeats", "first_heartbeat", "last_heartbeat"):
                out.pop(key, None)
            for entry in out["projects"]:
                entry.pop("languages", None)
                entry.pop("last_activity", None)
            out.update(
                {"source": "local", "fetched_at": cached.fetched_at if cached is not None else None,
                 "server_seconds": server_total, "local_seconds": out["total_seconds"]}
            )  # fmt: skip
        out["days"], out["days_source"], _ = self.days(first, today)
        out.update({"start": lo, "end": hi})
        return cast(LastSevenDays, out)  # the server's last_7_days (or its local twin) with these keys

    def projects(self, range_: str) -> ProjectsAnswer:
        """A range's projects: the server's (today's bar, last_7_days, or /stats for 30 days and
        all time) merged with missing work, else this store's; each with the languages and last
        activity this store knows of it."""
        lo, hi = range_window(range_, self.now, self.tz)
        if range_ == "today":
            today = D.local_date(self.now, self.tz)
            (day,), _, fetched_at = self.days(today, today)
            bar = float(day["total_seconds"])
            projects: list[ProjectEntry] = [
                {
                    "name": p["name"],
                    "total_seconds": p["total_seconds"],
                    "percent": D.percent_of(p["total_seconds"], bar),
                }
                for p in day.get("projects", [])
            ]
            answer: ProjectsAnswer = {
                "range": range_,
                "projects": projects,
                "source": day.get("source", "local"),
                "fetched_at": fetched_at,
            }
        elif range_ == "7d":
            week = self.last_7_days()
            answer = {"range": range_, "projects": [{**p} for p in week["projects"]], "source": week["source"],
                      "fetched_at": week["fetched_at"]}  # fmt: skip
        else:
            server = self.server
            cached = server.stats_30d(self.now, self.tz) if range_ == "30d" else server.stats_all(self.now, self.tz)
            if cached is None:
                local = local_figures(self.conn, lo, hi, stats_style=True, only=("projects",))
                return {"range": range_, "projects": local["projects"], "source": "local", "fetched_at": None}
            answer = self._merged_stats(range_, cached, lo, hi)
        self._local_details(answer["projects"], lo, hi)
        if range_ == "all":
            archived = self.server.archived_projects()  # known when signed in with Hackatime
            for entry in answer["projects"]:
                entry["archived"] = entry["name"] in archived
        return answer

    def _local_details(self, entries: list[ProjectEntry], lo: float, hi: float) -> None:
        groups = window_groups(self.conn, PROJECT, lo, after(hi))
        raws: dict[str, str | None] = {}
        for value in groups:
            raw = dec(value)
            for name in {stats_name("project", raw), D.display_name("project", raw)}:
                raws.setdefault(name, raw)
        _add_languages(self.conn, entries, raws, groups, lo, after(hi))

    def _merged_stats(self, range_: str, cached: Cached, lo: float, hi: float) -> ProjectsAnswer:
        extra = added(self.conn, self.destination, lo, hi, cached.reach_mark, ("project",))
        server_total = int(cached.value.get("total_seconds", 0))
        total = max(server_total, D.to_seconds(server_total + extra.seconds))
        namer = functools.partial(stats_name, "project")
        projects = merge_list(
            cached.value.get("projects", []), extra.groups.get("project", {}), namer, stats_style=True, total=total
        )
        source = "server+local" if extra.heartbeats else "server"
        # A projects list is a stats list: name, total_seconds, percent (languages added later).
        entries = cast(list[ProjectEntry], projects)
        return {"range": range_, "projects": entries, "source": source, "fetched_at": cached.fetched_at}


def _merged_day(
    d: dt.date, entry: Mapping[str, Any], deltas: Mapping[str | None, float], local: Mapping[str | None, float]
) -> DayFigures:
    """A server day plus what missing work changes in its projects' credits, or the day as this
    store sees it when that is more: never the two added together."""
    merged = _by_name(entry["projects"])
    for raw, delta in deltas.items():
        key = summaries_name(raw)
        merged[key] = merged.get(key, 0.0) + delta
    server_day = _bar(d, merged, "server+local")
    local_day = _bar(d, _named(local), "local")
    return local_day if local_day["total_seconds"] > server_day["total_seconds"] else server_day


def _named(credits: Mapping[str | None, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for raw, credit in credits.items():
        key = summaries_name(raw)
        out[key] = out.get(key, 0.0) + credit
    return out


def _bar(d: dt.date, credits: Mapping[str, float], source: str) -> DayFigures:
    """A day bar: each project's credit rounded (ties to even), the day the sum of its parts."""
    projects: list[GroupEntry] = [
        {"name": k, "total_seconds": s} for k, v in credits.items() if (s := max(0, D.to_seconds(v))) > 0
    ]
    projects.sort(key=_order)
    return {"date": d.isoformat(), "total_seconds": sum(p["total_seconds"] for p in projects),
            "projects": projects, "source": source}  # fmt: skip


BAR_DAYS = 8  # the days drawn as bars (the last 7 days and today); older ones are heatmap cells


def local_days(conn: sqlite3.Connection, first: dt.date, last: dt.date, tz: Any) -> list[DayFigures]:
    """Days from this store alone: the last ``BAR_DAYS`` as summaries' bars (§4.8, projects
    credited and rounded one by one, the day their sum); older ones, which only the year's
    heatmap shows, as their one-timeline total, which is within a second per project of it
    and a fifth of the cost over a year."""
    bars_from = max(first, last - dt.timedelta(days=BAR_DAYS - 1))
    credits = lead_by_key(conn, day_intervals(bars_from, last, tz))
    totals = day_seconds(conn, first, bars_from - dt.timedelta(days=1), tz) if first < bars_from else {}
    out: list[DayFigures] = [
        {"date": d.isoformat(), "total_seconds": totals.get(d, 0), "projects": [], "source": "local"}
        for d in D.dates(first, bars_from - dt.timedelta(days=1))
    ]
    out += [
        _bar(d, _named({dec(k): v for k, v in credits.get(d, {}).items()}), "local") for d in D.dates(bars_from, last)
    ]
    return out
