"""The stats service the CLI, the intake and the control API ask for figures: local ones
with the server's rules (``agent.stats.queries``), the server's own (``server_figures``),
and the two merged so that no heartbeat is counted twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

from agent.contract import (
    DESTINATION,
    LocalFigures,
    ProjectsAnswer,
    ServerHealth,
    ServerProjects,
    StatsSnapshot,
    Streak,
    SyncHealth,
)
from agent.store.store import Store

from . import durations as D
from .queries import streak_days
from .rollups import catch_up
from .server_figures import YEAR_DAYS, ServerStats, StatsClient
from .views import LAST7_STYLE_RANGES, RANGES, Views, local_figures, local_last_7_days, range_window

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
        oauth: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.store = store
        self.destination = destination
        self.clock = clock
        self._given_tz = timezone
        self.server = ServerStats(store, client, clock=clock, oauth=oauth)
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
        with self.store.snapshot() as conn:
            yield conn

    def timezone(self) -> str:
        """The profile's zone (cached users/current), else the given one, else the system's, else UTC."""
        profile = self.server.profile_timezone()
        if profile is not None:
            return profile
        if self._given_tz and D.valid_zone(self._given_tz):
            return self._given_tz
        return _system_zone() or "UTC"

    # ---- figures -------------------------------------------------------------------------

    def _views(self, conn: sqlite3.Connection, now: float, tz: Any) -> Views:
        return Views(conn, self.server, self.destination, now, tz)

    def local(self, range: str) -> LocalFigures:
        """This store's figures of a range, for ``hackatime-agent stats``: lists in the shape the
        server gives them for that range (last_7_days' for today and 7 days — the very
        computation the tray's week falls back to — /api/v1/users/my/stats' beyond)."""
        now = self.clock()
        tz_name = self.timezone()
        tz = D.zone(tz_name)
        lo, hi = range_window(range, now, tz)
        with self._read() as conn:
            if range == "7d":
                out = local_last_7_days(conn, now, tz)
            else:
                out = local_figures(conn, lo, hi, stats_style=range not in LAST7_STYLE_RANGES)
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
        return cast(LocalFigures, out)  # the range's lists (as the server shapes them) with these keys

    def projects(self, range: str) -> ProjectsAnswer:
        """A range's projects for the tray: the server's merged with work it cannot contain
        yet, or this store's; says which (``source``) and when the server's were fetched."""
        if range not in RANGES:
            raise ValueError(f"range must be one of {', '.join(RANGES)}")
        now = self.clock()
        tz = D.zone(self.timezone())
        with self._read() as conn:
            return self._views(conn, now, tz).projects(range)

    def statusbar_today(self) -> dict[str, Any]:
        """Hackatime's statusbar answer (§4.5) with the merged figure, for editor plugins."""
        now = self.clock()
        tz = D.zone(self.timezone())
        with self._read() as conn:
            today = self._views(conn, now, tz).today()
        data: dict[str, Any] = {"grand_total": {"text": today["text"], "total_seconds": today["total_seconds"]}}
        if today["goal"] is not None:
            data["goal"] = {
                k: today["goal"][k] for k in ("target_seconds", "tracked_seconds", "completion_percent", "complete")
            }
        return {"data": data}

    def snapshot(self) -> StatsSnapshot:
        """Everything the tray shows, in one answer; every figure says where it comes from
        (``agent.contract`` documents the shape)."""
        now = self.clock()
        tz_name = self.timezone()
        tz = D.zone(tz_name)
        today_date = D.local_date(now, tz)
        first_day = today_date - dt.timedelta(days=YEAR_DAYS - 1)
        with self._read() as conn:
            views = self._views(conn, now, tz)
            today = views.today()
            local_streak = streak_days(conn, now, tz)
            daily, daily_source, daily_fetched = views.days(first_day, today_date)
            today_bar = daily[-1]
            today["projects"] = today_bar["projects"]
            today["projects_source"] = today_bar["source"]
            projects = views.projects(PROJECTS_RANGE)
            last7 = views.last_7_days()
        sync = self._sync_health()  # its own snapshot: Store.counts reads in one statement
        # The server's figures are kept as its JSON answers came: their shapes are the contract's.
        streak = cast(Streak, self.server.streak(now, tz, local_streak))
        return {
            "generated_at": now,
            "timezone": tz_name,
            "today": today,
            "streak": streak,
            "projects_range": PROJECTS_RANGE,
            "projects": projects["projects"],
            "projects_source": projects["source"],
            "projects_fetched_at": projects["fetched_at"],
            "server_projects": cast("ServerProjects | None", self.server.projects()),
            "last_7_days": last7,
            "daily_totals": daily,
            "daily_totals_source": daily_source,
            "daily_totals_fetched_at": daily_fetched,
            "sync": sync,
            "server": cast(ServerHealth, self.server.health(now)),
        }

    def _sync_health(self) -> SyncHealth:
        """The queue for the tray, as ``Store.counts`` counts it, with the destination's health."""
        counts = self.store.counts(self.destination)
        health: SyncHealth = {
            "destination": self.destination,
            "pending": counts.pending,
            "in_flight": counts.in_flight,
            "dead": counts.dead,
            "oldest_pending": counts.oldest_pending,
        }
        with contextlib.suppress(KeyError):
            dest = self.store.destination(self.destination)
            health["auth_state"] = dest["auth_state"]
            health["last_success"] = dest["last_success"]
            health["last_error"] = dest["last_error"]
            health["last_error_at"] = dest["last_error_at"]
            health["backoff_until"] = dest["backoff_until"]
        return health

    def refresh_server(self, force: bool = False) -> bool:
        """Fetch the server's figures that are due; never raises on network, HTTP or bad JSON."""
        return self.server.refresh(force=force, timezone=self.timezone)


def _iso(ts: float, tz: Any) -> str:
    return dt.datetime.fromtimestamp(ts, tz).isoformat()
