"""What the tray shows, as pure functions of the agent's status and stats.

Everything here takes the JSON dicts the control API returns (``/agent/v1/status``
and ``/agent/v1/stats``) plus the current time, and returns plain data: no Qt, no
I/O. The widgets only turn that data into actions and labels, so every wording
and every state decision is unit-testable with a recorded dict.

The dicts are read defensively (``.get`` everywhere): the stats shape may gain
keys, and an older or newer agent must never crash the tray.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

Status = Mapping[str, Any]
Stats = Mapping[str, Any]

DEFAULT_WEB_URL = "https://hackatime.hackclub.com/"
LONG_OFFLINE_S = 10 * 60  # shorter outages are routine (laptop lid, train tunnel): no notification
TOP_PROJECTS = 3


class SyncState(enum.Enum):
    """The base of the tray icon, most urgent first (see :func:`sync_state`)."""

    STARTING = "starting"  # no answer from the agent yet
    AGENT_DOWN = "agent-down"
    PAUSED = "paused"
    KEY_REJECTED = "key-rejected"  # rejected by the server, or no key at all
    OFFLINE = "offline"
    WAITING = "waiting"  # heartbeats queued, the server reachable
    SYNCED = "synced"


@dataclass(frozen=True)
class IconState:
    sync: SyncState
    recording: bool = False  # a heartbeat in the last 2 minutes: drawn as a dot over the base

    @property
    def name(self) -> str:
        return self.sync.value + ("-recording" if self.recording else "")


# ---- formatting -------------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    """Hackatime's own wording ("3 hrs 12 mins"), so the tray reads like the website."""
    if seconds is None:
        return "—"
    minutes = int(max(0.0, seconds) // 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hr" if hours == 1 else f"{hours} hrs")
    if minutes or not hours:
        parts.append(f"{minutes} min" if minutes == 1 else f"{minutes} mins")
    return " ".join(parts)


def format_short(seconds: float | None) -> str:
    """A compact duration for chart labels and table cells: "3h 12m", "45m"."""
    if seconds is None:
        return "—"
    minutes = int(max(0.0, seconds) // 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


def format_ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    delta = now - ts
    if delta < 45:
        return "just now"
    if delta < 90 * 60:
        return f"{max(1, round(delta / 60))} min ago"
    if delta < 36 * 3600:
        return f"{round(delta / 3600)} h ago"
    return f"{round(delta / 86400)} days ago"


def format_in(ts: float, now: float) -> str:
    delta = ts - now
    if delta < 60:
        return f"in {max(1, round(delta))} s"
    if delta < 90 * 60:
        return f"in {round(delta / 60)} min"
    return f"in {round(delta / 3600)} h"


def format_clock(ts: float, now: float) -> str:
    """A local time of day, with the weekday when it is not today."""
    when = dt.datetime.fromtimestamp(ts)
    if when.date() == dt.datetime.fromtimestamp(now).date():
        return when.strftime("%H:%M")
    return when.strftime("%a %H:%M")


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


# ---- state ------------------------------------------------------------------------


def destinations(status: Status | None) -> list[Mapping[str, Any]]:
    if not status:
        return []
    return [d for d in status.get("destinations") or [] if isinstance(d, Mapping)]


def queued(dest: Mapping[str, Any]) -> int:
    return int(dest.get("pending") or 0) + int(dest.get("in_flight") or 0)


def is_paused(status: Status | None, now: float) -> bool:
    until = (status or {}).get("paused_until")
    return until is not None and float(until) > now


def sync_state(status: Status | None, available: bool | None, now: float) -> SyncState:
    """One word for the icon. Order matters: the most actionable problem wins.

    A stopped agent hides everything else (nothing it said is current). Pause is
    the user's own choice and explains why nothing records. A rejected key needs
    the user; offline and waiting fix themselves.
    """
    if available is False:
        return SyncState.AGENT_DOWN
    if status is None:
        return SyncState.STARTING
    if is_paused(status, now):
        return SyncState.PAUSED
    dests = destinations(status)
    if any(d.get("auth_state") in ("rejected", "missing") for d in dests):
        return SyncState.KEY_REJECTED
    if status.get("online") is False:
        return SyncState.OFFLINE
    if any(queued(d) for d in dests):
        return SyncState.WAITING
    return SyncState.SYNCED


def icon_state(status: Status | None, available: bool | None, now: float) -> IconState:
    state = sync_state(status, available, now)
    recording = bool(status and status.get("recording")) and state not in (SyncState.AGENT_DOWN, SyncState.PAUSED)
    return IconState(state, recording)


# ---- today, goal, streak, projects ------------------------------------------------


def today(stats: Stats | None) -> Mapping[str, Any]:
    return (stats or {}).get("today") or {}


def today_total_text(stats: Stats | None) -> str:
    t = today(stats)
    if "total_seconds" not in t:
        return "—"
    return format_duration(t.get("total_seconds"))


def goal_line(stats: Stats | None) -> str | None:
    goal = today(stats).get("goal")
    if not goal:
        return None
    target = format_duration(goal.get("target_seconds"))
    if goal.get("complete"):
        return f"Goal reached: {format_duration(goal.get('tracked_seconds'))} of {target}"
    percent = int(goal.get("completion_percent") or 0)
    return f"Goal: {percent} % of {target}"


def goal_fraction(stats: Stats | None) -> float | None:
    goal = today(stats).get("goal")
    if not goal:
        return None
    target = float(goal.get("target_seconds") or 0)
    if target <= 0:
        return None
    return max(0.0, float(goal.get("tracked_seconds") or 0) / target)


def streak_days(stats: Stats | None) -> int | None:
    streak = (stats or {}).get("streak") or {}
    days = streak.get("days")
    return None if days is None else int(days)


def streak_line(stats: Stats | None) -> str | None:
    days = streak_days(stats)
    if days is None:
        return None
    return f"Streak: {plural(days, 'day')}"


def todays_projects(
    stats: Stats | None, today_projects: Sequence[Mapping[str, Any]] | None = None
) -> list[tuple[str, float]]:
    """Today's projects, biggest first.

    ``today_projects`` is the agent's local ``/stats/projects?range=today``: it
    includes what has not reached the server yet, so it is preferred. Without it,
    the 7-day breakdown's last day (today) is used.
    """
    source: Iterable[Mapping[str, Any]] = []
    if today_projects is not None:
        source = today_projects
    elif stats:
        days = ((stats.get("last_7_days") or {}).get("days")) or []
        if days:
            source = days[-1].get("projects") or []
        elif stats.get("projects_range") == "today":
            source = stats.get("projects") or []
    rows = [(str(p.get("name") or "(unknown)"), float(p.get("total_seconds") or 0)) for p in source]
    return sorted((r for r in rows if r[1] > 0), key=lambda r: -r[1])


# ---- sync lines -------------------------------------------------------------------


def _dest_line(dest: Mapping[str, Any], now: float) -> str:
    waiting = queued(dest)
    auth = dest.get("auth_state")
    if auth == "rejected":
        return f"API key rejected · {plural(waiting, 'heartbeat')} kept until it is fixed"
    if auth == "missing":
        return f"No API key · {plural(waiting, 'heartbeat')} kept locally"
    last_success = dest.get("last_success")
    last_error = dest.get("last_error")
    error_at = dest.get("last_error_at")
    failing = bool(last_error) and (last_success is None or (error_at or 0) > last_success)
    backoff = dest.get("backoff_until")
    if waiting == 0:
        if last_success is None:
            return "Nothing to sync yet"
        return f"All synced · last synced {format_ago(last_success, now)}"
    head = f"{plural(waiting, 'heartbeat')} waiting"
    if failing:
        tail = str(last_error)
        if backoff and backoff > now:
            tail += f" · retrying {format_in(backoff, now)}"
        return f"{head} · {tail}"
    return f"{head} · last synced {format_ago(last_success, now)}"


def sync_lines(status: Status | None, available: bool | None, now: float, error: str | None = None) -> list[str]:
    """The menu's sync section: one line per destination, plus what needs attention."""
    if available is False:
        return [f"Agent not running{': ' + error if error else ''}"]
    if status is None:
        return ["Connecting to the agent…"]
    lines: list[str] = []
    if is_paused(status, now):
        lines.append(f"Tracking paused until {format_clock(float(status['paused_until']), now)}")
    key_problem = any(d.get("auth_state") in ("rejected", "missing") for d in destinations(status))
    if status.get("online") is False and not key_problem:
        lines.append("Offline · heartbeats are kept and sent when the network is back")
    dests = destinations(status)
    for dest in dests:
        text = _dest_line(dest, now)
        lines.append(text if len(dests) == 1 else f"{dest.get('name', '?')}: {text}")
        dead = int(dest.get("dead") or 0)
        if dead:
            lines.append(f"{plural(dead, 'heartbeat')} refused by {dest.get('name', 'the server')} · see the dashboard")
    return lines


def tooltip(status: Status | None, stats: Stats | None, available: bool | None, now: float) -> str:
    """Today's total first (the point of the tray), then goal and whatever is wrong."""
    lines = [f"Hackatime · today {today_total_text(stats)}"]
    fraction = goal_fraction(stats)
    if fraction is not None:
        goal = today(stats).get("goal") or {}
        lines[0] += f" · {int(fraction * 100)} % of {format_duration(goal.get('target_seconds'))} goal"
    state = sync_state(status, available, now)
    extra = {
        SyncState.STARTING: "Connecting to the agent…",
        SyncState.AGENT_DOWN: "Agent not running",
        SyncState.PAUSED: "Tracking paused",
        SyncState.KEY_REJECTED: "API key rejected — heartbeats kept",
        SyncState.OFFLINE: "Offline — heartbeats kept",
    }.get(state)
    if state is SyncState.WAITING:
        waiting = sum(queued(d) for d in destinations(status))
        extra = f"{plural(waiting, 'heartbeat')} waiting to sync"
    if extra:
        lines.append(extra)
    return "\n".join(lines)


# ---- the menu ---------------------------------------------------------------------


@dataclass(frozen=True)
class MenuView:
    """The information half of the tray menu; actions are fixed and only enabled or not."""

    info: list[str]
    projects: list[str]
    sync: list[str]
    can_act: bool  # Sync now / Pause need a running agent
    paused: bool
    syncing: bool = False
    web_url: str = DEFAULT_WEB_URL
    log_dir: str | None = None


def menu_view(
    status: Status | None,
    stats: Stats | None,
    available: bool | None,
    now: float,
    *,
    error: str | None = None,
    syncing: bool = False,
    today_projects: Sequence[Mapping[str, Any]] | None = None,
) -> MenuView:
    info = [f"Today: {today_total_text(stats)}"]
    for line in (goal_line(stats), streak_line(stats)):
        if line:
            info.append(line)
    top = todays_projects(stats, today_projects)[:TOP_PROJECTS]
    projects = [f"{name} · {format_duration(secs)}" for name, secs in top]
    sync = sync_lines(status, available, now, error)
    if syncing and available:
        sync = ["Syncing…", *sync[1:]] if sync else ["Syncing…"]
    dests = destinations(status)
    return MenuView(
        info=info,
        projects=projects,
        sync=sync,
        can_act=bool(available) and status is not None,
        paused=is_paused(status, now),
        syncing=syncing,
        web_url=web_url(dests[0].get("url") if dests else None),
        log_dir=(status or {}).get("log_dir"),
    )


def web_url(api_url: str | None) -> str:
    """The website behind an API URL: ``https://host/api/hackatime/v1`` → ``https://host/``."""
    if not api_url:
        return DEFAULT_WEB_URL
    parts = urlsplit(api_url)
    if not parts.scheme or not parts.netloc:
        return DEFAULT_WEB_URL
    path = parts.path
    cut = path.find("/api/")
    path = path[: cut + 1] if cut >= 0 else "/"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class PauseChoice(enum.Enum):
    HALF_HOUR = "30m"
    HOUR = "1h"
    TOMORROW = "tomorrow"


def pause_until(choice: PauseChoice, now: float) -> float:
    if choice is PauseChoice.HALF_HOUR:
        return now + 30 * 60
    if choice is PauseChoice.HOUR:
        return now + 60 * 60
    # "Until tomorrow" is the next local midnight: a new day starts a new count on Hackatime.
    local = dt.datetime.fromtimestamp(now).astimezone()
    midnight = (local + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp()


# ---- sources and ages (every figure says where it comes from) ---------------------


def source_caption(
    source: str | None,
    fetched_at: float | None,
    generated_at: float | None,
    now: float,
    unsynced_seconds: float = 0.0,
) -> str:
    """Where a figure comes from and how old it is: "From Hackatime · 3 min old", "Local estimate · just now"."""
    if source == "server":
        return f"From Hackatime · {_age(fetched_at, now)}"
    if source in ("server+local", "local+server"):
        extra = "local activity" if unsynced_seconds < 60 else format_duration(unsynced_seconds)
        return f"Hackatime ({_age(fetched_at, now)}) + {extra} not yet synced"
    return f"Local estimate · {_age(generated_at, now)}"


def _age(ts: float | None, now: float) -> str:
    if ts is None:
        return "age unknown"
    text = format_ago(ts, now)
    return "updated just now" if text == "just now" else f"{text.removesuffix(' ago')} old"


# ---- notifications ----------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    kind: str  # "key-rejected" | "back-online" | "goal-reached" | "agent-crashed" | "agent-gave-up"
    title: str
    message: str
    warning: bool = False


@dataclass
class NotificationTracker:
    """Turns successive statuses and stats into the few notifications worth a popup.

    Each notice fires on a transition, never on a steady state, so a refresh
    every few seconds cannot repeat it.
    """

    long_offline_s: float = LONG_OFFLINE_S
    _rejected: set[str] = field(default_factory=set)
    _offline_since: float | None = None
    _sent_before_outage: int = 0
    _catching_up: bool = False
    _goal_seen: dict[str, bool] = field(default_factory=dict)

    def on_status(self, status: Status, now: float) -> list[Notice]:
        notices: list[Notice] = []
        dests = destinations(status)
        rejected = {str(d.get("name")) for d in dests if d.get("auth_state") == "rejected"}
        for name in sorted(rejected - self._rejected):
            notices.append(
                Notice(
                    "key-rejected",
                    "API key rejected",
                    f"{name} refused the API key. Heartbeats are kept on this computer and sent once the key is fixed.",
                    warning=True,
                )
            )
        self._rejected = rejected

        sent = sum(int(d.get("sent") or 0) for d in dests)
        online = status.get("online")
        if online is False:
            if self._offline_since is None:
                self._offline_since = now
                self._sent_before_outage = sent
            self._catching_up = False
        elif online is True and self._offline_since is not None:
            if now - self._offline_since >= self.long_offline_s:
                self._catching_up = True
            self._offline_since = None
        # Report once the backlog is gone, so N is the whole catch-up rather than the first batch.
        if self._catching_up and online is True and not any(queued(d) for d in dests):
            self._catching_up = False
            delivered = sent - self._sent_before_outage
            if delivered > 0:
                notices.append(
                    Notice("back-online", "Back online", f"{plural(delivered, 'heartbeat')} delivered to Hackatime.")
                )
        return notices

    def on_stats(self, stats: Stats) -> list[Notice]:
        goal = today(stats).get("goal")
        days = ((stats.get("last_7_days") or {}).get("days")) or []
        day = str(days[-1].get("date")) if days else ""
        if not goal:
            return []
        complete = bool(goal.get("complete"))
        seen = self._goal_seen.get(day)
        self._goal_seen = {day: complete}
        # The first look at a day only records it: a goal reached before the app started is old news.
        if seen is False and complete:
            return [
                Notice(
                    "goal-reached",
                    "Daily goal reached",
                    f"{format_duration(goal.get('tracked_seconds'))} today — goal of "
                    f"{format_duration(goal.get('target_seconds'))} done.",
                )
            ]
        return []


def top_with_other(items: Sequence[tuple[str, float]], n: int) -> list[tuple[str, float]]:
    """The n largest items, the rest summed as "Other" (charts stay readable)."""
    ordered = sorted(items, key=lambda kv: -kv[1])
    head = list(ordered[:n])
    rest = sum(v for _, v in ordered[n:])
    if rest > 0:
        head.append(("Other", rest))
    return head
