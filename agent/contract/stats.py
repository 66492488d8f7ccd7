"""The shapes of the figures: ``/stats`` (the tray's and dashboard's snapshot), ``/stats/projects``
and the CLI's local ``stats``; every figure says where it came from.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

# ---- /stats ----------------------------------------------------------------------------------------


class GroupEntry(TypedDict):
    name: str
    total_seconds: int
    percent: NotRequired[float]


class ProjectEntry(GroupEntry):
    languages: NotRequired[list[str]]  # most used first
    last_activity: NotRequired[float | None]  # None: no heartbeat of it in this store
    archived: NotRequired[bool]  # all time only: archived at the server (known when signed in with Hackatime)


class GoalFigures(TypedDict):
    target_seconds: int
    tracked_seconds: int
    completion_percent: int
    complete: bool
    source: str  # server | server+local | local


class TodayFigures(TypedDict):
    total_seconds: int  # the merged figure the tray shows
    text: str
    local_seconds: int
    server_seconds: int | None
    unsynced_seconds: int
    unsynced_heartbeats: int
    source: str  # server | server+local | local
    server_fetched_at: float | None
    server_age_seconds: float | None
    goal: GoalFigures | None
    start: float
    end: float
    # In the snapshot: today's projects, as the day's bar in daily_totals (summaries' rule, §4.8:
    # each project's credit rounded, the bar the sum of its parts), the server's merged with
    # unsynced work like the total; projects_source says which (server | server+local | local).
    projects: NotRequired[list[GroupEntry]]
    projects_source: NotRequired[str]


class Streak(TypedDict):
    days: int
    source: str
    fetched_at: float | None
    age_seconds: float | None
    server_days: int | None
    local_days: int


class DayFigures(TypedDict):
    """One local day's bar (summaries, §4.8): total_seconds is the sum of its projects."""

    date: str  # ISO date
    total_seconds: int
    projects: NotRequired[list[GroupEntry]]  # name and total_seconds; blank projects are one "Other"
    source: NotRequired[str]  # server | server+local (unsynced work merged in) | local


class LastSevenDays(TypedDict):
    total_seconds: int
    source: str
    fetched_at: float | None
    server_seconds: int | None
    local_seconds: int
    projects: list[GroupEntry]
    languages: list[GroupEntry]
    editors: list[GroupEntry]
    operating_systems: list[GroupEntry]
    machines: list[GroupEntry]
    categories: list[GroupEntry]
    daily_average: float
    days_including_holidays: int
    days: list[DayFigures]  # the same 8 days as the total (the server's window), oldest first
    days_source: str  # server | server+local | local
    start: float
    end: float


class ServerProjects(TypedDict):
    range: str
    fetched_at: float
    # As the server sent them: /users/my/stats' (name, total_seconds, percent), or, signed in with
    # Hackatime, /authenticated/projects' with the archived ones (archived, most_recent_heartbeat, languages)
    projects: list[dict[str, Any]]
    languages: list[dict[str, Any]]
    total_seconds: NotRequired[int | None]  # all time (signed in: /authenticated/hours, no 10-year window)
    source: NotRequired[str]  # key | oauth


class ServerError(TypedDict):
    error: str
    at: float


class ServerHealth(TypedDict):
    configured: bool
    fetched_at: dict[str, float | None]  # per server figure
    errors: dict[str, ServerError]
    rate_limited_until: float | None


class SyncHealth(TypedDict):
    destination: str
    pending: int
    in_flight: int
    dead: int
    oldest_pending: float | None
    auth_state: NotRequired[str]
    last_success: NotRequired[float | None]
    last_error: NotRequired[str | None]
    last_error_at: NotRequired[float | None]
    backoff_until: NotRequired[float | None]


class StatsSnapshot(TypedDict):
    """Everything the tray and the dashboard show, in one answer; every figure says its source."""

    generated_at: float
    timezone: str
    today: TodayFigures
    streak: Streak
    projects_range: str
    projects: list[ProjectEntry]  # the projects_range's, as ProjectsAnswer.projects
    projects_source: str  # server | server+local | local
    projects_fetched_at: float | None  # when the server's list was fetched (None: local)
    server_projects: ServerProjects | None
    last_7_days: LastSevenDays
    daily_totals: list[DayFigures]  # a year of days ending today, oldest first (one summaries request)
    daily_totals_source: str  # server | server+local | local
    daily_totals_fetched_at: float | None
    sync: SyncHealth
    server: ServerHealth


class LocalFigures(TypedDict):
    """``hackatime-agent stats``: one range computed locally."""

    range: str
    start: str | None
    end: str | None
    start_ts: float
    end_ts: float
    timezone: str
    source: str
    generated_at: float
    total_seconds: int
    heartbeats: int
    first_heartbeat: float | None
    last_heartbeat: float | None
    projects: list[ProjectEntry]
    languages: list[GroupEntry]
    editors: list[GroupEntry]
    operating_systems: list[GroupEntry]
    machines: list[GroupEntry]
    categories: list[GroupEntry]


class ProjectsAnswer(TypedDict):
    """``/stats/projects?range=``: today (the day's bar), 7d (last_7_days' list: 0 s dropped,
    percent of the groups' sum), 30d and all (/api/v1/users/my/stats' list: every group, blank
    ones "Other", percent of the total). The server's list merged with unsynced work when it
    was fetched today, else this store's; languages and last_activity only where known locally."""

    range: str
    projects: list[ProjectEntry]
    source: str  # server | server+local | local
    fetched_at: float | None  # when the server's list was fetched (None: local)
