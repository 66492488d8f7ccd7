"""The stats service the CLI, the intake and the control API ask for figures: local ones
with the server's rules (``agent.stats.queries``), the server's own (``server_figures``),
and the two merged so that no heartbeat is counted twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from agent.contract import DESTINATION
from agent.store.store import Store

from . import durations as D
from .durations import Seg
from .queries import (
    ALL,
    GROUP_LISTS,
    PROJECT,
    PROJECT_LANGUAGE,
    after,
    collect,
    day_intervals,
    day_seconds,
    group_list,
    lead_by_key,
    streak_days,
    unsynced,
    window_groups,
    window_seconds,
)
from .rollups import catch_up, dec, enc, unpair
from .server_figures import ServerStats, StatsClient, merge_today

RANGES = ("today", "7d", "30d", "all")
PROJECTS_RANGE = "30d"


def _system_zone() -> str | None:
    try:
        import tzlocal

        name = tzlocal.get_localzone_name()
    except Exception:  # tzlocal raises its own errors for odd system setups
        return None
    return name if D.valid_zone(name) else None


class StatsService:
    """Local figures with the server's rules, cached server figures, and the merged view."""

    def __init__(
        self,
        store: Store,
        *,
        client: StatsClient | None,
        destination: str = DESTINATION,
        clock: Callable[[], float] = time.time,
        timezone: str | None = None,
    ) -> None:
        self.store = store
        self.destination = destination
        self.clock = clock
        self._given_tz = timezone
        self.server = ServerStats(store, client, clock=clock)
        # New heartbeats are folded into the rollups on the agent's stats thread and before
        # every query (``rollups.catch_up``), never on the editors' intake path.
        self._catch_up_lock = threading.Lock()

    # ---- plumbing --------------------------------------------------------------------------

    def prepare(self) -> int:
        """Bring the rollups up to date now (e.g. at start-up, after a migration)."""
        with self._catch_up_lock:
            return catch_up(self.store)

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction, so every figure of an answer comes from the same snapshot."""
        self.prepare()
        conn = self.store.reader()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def timezone(self) -> str:
        """The profile's zone (cached users/current), else the given one, else the system's, else UTC."""
        profile = self.server.profile_timezone()
        if profile is not None:
            return profile
        if self._given_tz and D.valid_zone(self._given_tz):
            return self._given_tz
        return _system_zone() or "UTC"

    # ---- local figures ---------------------------------------------------------------------

    def _range_window(self, range_: str, now: float, tz: Any) -> tuple[float, float]:
        """Inclusive [start, end] of a range: today and N days back plus today, with the
        server's integer-second day bounds; ``all`` is the server's valid-time scope."""
        if range_ == "today":
            lo, hi = D.day_window(D.local_date(now, tz), tz)
            return float(lo), float(hi)
        if range_ in ("7d", "30d"):
            lo, hi, _, _ = D.last_days_window(now, tz, 7 if range_ == "7d" else 30)
            return float(lo), float(hi)
        if range_ == "all":
            return 0.0, float(D.TIME_MAX)
        raise ValueError(f"range must be one of {', '.join(RANGES)}")

    def local(self, range: str) -> dict[str, Any]:
        """Local figures for ``hackatime-agent stats`` and the control API."""
        now = self.clock()
        tz_name = self.timezone()
        tz = D.zone(tz_name)
        lo, hi = self._range_window(range, now, tz)
        with self._read() as conn:
            out = self._figures(conn, lo, hi)
        if range == "all":  # the scope is every valid time; show the history's own ends instead
            first, last = out["first_heartbeat"], out["last_heartbeat"]
            start, end = (None, None) if first is None else (_iso(first, tz), _iso(last, tz))
        else:
            start, end = _iso(lo, tz), _iso(hi, tz)
        out.update(
            {
                "range": range,
                "start": start,
                "end": end,
                "start_ts": lo,
                "end_ts": hi,
                "timezone": tz_name,
                "source": "local",
                "generated_at": now,
            }
        )
        return out

    def _figures(self, conn: sqlite3.Connection, lo: float, hi: float) -> dict[str, Any]:
        end = after(hi)
        whole = window_groups(conn, ALL, lo, end).get("")
        out: dict[str, Any] = {
            "total_seconds": 0 if whole is None else D.to_seconds(whole.span),
            "heartbeats": 0 if whole is None else whole.count,
            "first_heartbeat": None if whole is None else whole.first,
            "last_heartbeat": None if whole is None else whole.last,
        }
        for name, dim, column in GROUP_LISTS:
            groups = window_groups(conn, dim, lo, end)
            if name == "projects":
                out[name] = self._projects(conn, groups, lo, end)
            else:
                out[name] = group_list(groups, column)
        return out

    def _projects(
        self, conn: sqlite3.Connection, groups: dict[str, Seg], lo: float, end: float
    ) -> list[dict[str, Any]]:
        entries = group_list(groups, "project", keep_raw=True)
        languages: dict[str | None, list[tuple[float, str]]] = {}
        for value, seg in window_groups(conn, PROJECT_LANGUAGE, lo, end).items():
            project, language = unpair(value)
            if language is not None and not D.is_blank(language):
                languages.setdefault(project, []).append((seg.span, language))
        out = []
        for entry in entries:
            raw = entry.pop("_raw")
            ranked = sorted(languages.get(raw, []), key=lambda x: (-x[0], x[1]))
            entry["languages"] = [name for _, name in ranked]
            entry["last_activity"] = groups[enc(raw)].last
            out.append(entry)
        return out

    # ---- merged figures --------------------------------------------------------------------

    def _today(self, conn: sqlite3.Connection, now: float, tz: Any) -> dict[str, Any]:
        lo, hi = D.day_window(D.local_date(now, tz), tz)
        local_seconds = window_seconds(conn, lo, after(hi))
        cached = self.server.today(now, tz)
        seen = cached.wall_fetched_at if cached is not None else math.inf
        extra, pending = unsynced(conn, self.destination, lo, hi, seen)
        server_seconds = cached.total_seconds if cached is not None else None
        total, source = merge_today(server_seconds, local_seconds, extra)
        goal = self.server.goal(total, server_seconds, cached)
        return {
            "total_seconds": total,
            "text": self.server.text(total, goal),
            "local_seconds": local_seconds,
            "server_seconds": server_seconds,
            "unsynced_seconds": D.to_seconds(extra),
            "unsynced_heartbeats": pending,
            "source": source,
            "server_fetched_at": cached.fetched_at if cached is not None else None,
            "server_age_seconds": None if cached is None else max(0.0, now - cached.fetched_at),
            "goal": goal,
            "start": lo,
            "end": hi,
        }

    def statusbar_today(self) -> dict[str, Any]:
        """Hackatime's statusbar answer (§4.5) with the merged figure, for editor plugins."""
        now = self.clock()
        tz = D.zone(self.timezone())
        with self._read() as conn:
            today = self._today(conn, now, tz)
        data: dict[str, Any] = {"grand_total": {"text": today["text"], "total_seconds": today["total_seconds"]}}
        if today["goal"] is not None:
            data["goal"] = {
                k: today["goal"][k] for k in ("target_seconds", "tracked_seconds", "completion_percent", "complete")
            }
        return {"data": data}

    def snapshot(self) -> dict[str, Any]:
        """Everything the tray shows, in one answer; every figure says where it comes from."""
        now = self.clock()
        tz_name = self.timezone()
        tz = D.zone(tz_name)
        today_date = D.local_date(now, tz)
        with self._read() as conn:
            today = self._today(conn, now, tz)
            local_streak = streak_days(conn, now, tz)
            plo, phi = self._range_window(PROJECTS_RANGE, now, tz)
            project_groups = window_groups(conn, PROJECT, plo, after(phi))
            projects = self._projects(conn, project_groups, plo, after(phi))
            last7 = self._last_7_days(conn, now, tz)
            first_day = today_date - dt.timedelta(days=364)
            days = day_seconds(conn, first_day, today_date, tz)
        sync = self._sync_health()  # its own snapshot: Store.counts reads in one transaction
        streak = self.server.streak(now, tz, local_streak)
        # The heatmap is local (the server has no cheap year of days); where the daily bars
        # came from the server, a day shows the larger of the two figures.
        overlay = {d["date"]: d["total_seconds"] for d in last7["days"]} if last7["days_source"] == "server" else {}
        daily = [
            {"date": iso, "total_seconds": max(days.get(d, 0), overlay.get(iso, 0))}
            for d in D.dates(first_day, today_date)
            for iso in (d.isoformat(),)
        ]
        return {
            "generated_at": now,
            "timezone": tz_name,
            "today": today,
            "streak": streak,
            "projects_range": PROJECTS_RANGE,
            "projects": projects,
            "server_projects": self.server.projects(),
            "last_7_days": last7,
            "daily_totals": daily,
            "daily_totals_source": "local+server" if overlay else "local",
            "sync": sync,
            "server": self.server.health(now),
        }

    def _last_7_days(self, conn: sqlite3.Connection, now: float, tz: Any) -> dict[str, Any]:
        """stats/last_7_days (§4.6): 8 local days as one timeline, per-group lists, and the daily
        bars with per-project time (summaries, §4.8). Server figures when fetched today, local
        ones otherwise; the total is merged with unsynced work like today's."""
        lo, hi, first, today = D.last_days_window(now, tz, 7)
        local_total = window_seconds(conn, lo, after(hi))
        cached = self.server.last_7_days(now, tz)
        out: dict[str, Any]
        if cached is not None:
            out = cached.figures
            extra, _ = unsynced(conn, self.destination, lo, hi, cached.wall_fetched_at)
            server_total = int(out["total_seconds"])
            total, source = merge_today(server_total, local_total, extra)
            out.update(
                {"total_seconds": total, "source": source, "fetched_at": cached.fetched_at,
                 "server_seconds": server_total, "local_seconds": local_total}
            )  # fmt: skip
        else:
            out = self._figures(conn, float(lo), float(hi))
            for key in ("heartbeats", "first_heartbeat", "last_heartbeat"):
                out.pop(key, None)
            for entry in out["projects"]:
                entry.pop("languages", None)
                entry.pop("last_activity", None)
            # The server lists one "coding" category holding the whole total (§4.6).
            total = out["total_seconds"]
            out["categories"] = [{"name": "coding", "total_seconds": total, "percent": 100.0}] if total else []
            # days_including_holidays: local days with any heartbeat in the window, even one.
            active = sum(
                1
                for groups in collect(conn, ALL, day_intervals(first, today, tz, lo, after(hi))).values()
                if groups.get("")
            )
            out.update(
                {"source": "local", "fetched_at": None, "server_seconds": None, "local_seconds": total,
                 "days_including_holidays": active,
                 "daily_average": D.ruby_round(total / active, 1) if active else 0.0}
            )  # fmt: skip
        server_days = self.server.summaries(now, tz, first, today)
        if server_days is not None:
            out["days"], out["days_source"] = server_days, "server"
        else:
            out["days"], out["days_source"] = self._local_days(conn, first, today, tz), "local"
        out.update({"start": lo, "end": hi})
        return out

    def _local_days(self, conn: sqlite3.Connection, first: dt.date, last: dt.date, tz: Any) -> list[dict[str, Any]]:
        """Daily bars like summaries: a day's total and its projects, each gap credited to the
        earlier heartbeat's project, so the projects add up to the day."""
        credits_by_day = lead_by_key(conn, day_intervals(first, last, tz))
        totals = day_seconds(conn, first, last, tz)
        days = []
        for d in D.dates(first, last):
            projects: list[dict[str, Any]] = []
            for value, credit in credits_by_day.get(d, {}).items():
                seconds = D.to_seconds(credit)
                if seconds > 0:
                    projects.append({"name": D.display_name("project", dec(value)), "total_seconds": seconds})
            projects.sort(key=lambda p: (-p["total_seconds"], p["name"]))
            days.append({"date": d.isoformat(), "total_seconds": totals.get(d, 0), "projects": projects})
        return days

    def _sync_health(self) -> dict[str, Any]:
        """The queue for the tray, as ``Store.counts`` counts it, with the destination's health."""
        counts = self.store.counts(self.destination)
        health: dict[str, Any] = {
            "destination": self.destination,
            "pending": counts.pending,
            "in_flight": counts.in_flight,
            "dead": counts.dead,
            "oldest_pending": counts.oldest_pending,
        }
        with contextlib.suppress(KeyError):
            dest = self.store.destination(self.destination)
            for key in ("auth_state", "last_success", "last_error", "last_error_at", "backoff_until"):
                health[key] = dest.get(key)
        return health

    def refresh_server(self, force: bool = False) -> bool:
        """Fetch the server's figures that are due; never raises on network, HTTP or bad JSON."""
        return self.server.refresh(force=force, timezone=self.timezone)


def _iso(ts: float, tz: Any) -> str:
    return dt.datetime.fromtimestamp(ts, tz).isoformat()
