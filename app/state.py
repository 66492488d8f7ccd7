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
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from agent import contract as C

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


def format_roughly(seconds: float, *, estimate: bool = False) -> str:
    """An amount that may be below a minute, where "0 mins" would read as nothing: "under 1 min";
    an ``estimate`` of a minute or more says "about"."""
    if seconds < 60:
        return "under 1 min"
    return f"about {format_duration(seconds)}" if estimate else format_duration(seconds)


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


def ruby_round(value: float) -> int:
    """Ruby's ``Float#round`` to an integer: halves go away from zero (Python's ``round`` goes to even)."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def goal_percent(stats: Stats | None) -> int | None:
    """Today's goal as Hackatime's ``completion_percent``: ``min(round(tracked / target · 100), 100)``.

    The one computation of this figure: tooltip, menu and dashboard all show this
    number. The agent's own value is used when it sent one.
    """
    goal = today(stats).get("goal")
    if not goal:
        return None
    given = goal.get("completion_percent")
    if isinstance(given, int | float) and not isinstance(given, bool):
        return int(given)
    target = float(goal.get("target_seconds") or 0)
    if target <= 0:
        return None
    return min(ruby_round(float(goal.get("tracked_seconds") or 0) / target * 100), 100)


def goal_line(stats: Stats | None) -> str | None:
    goal = today(stats).get("goal")
    if not goal:
        return None
    target = format_duration(goal.get("target_seconds"))
    if goal.get("complete"):
        return f"Goal reached: {format_duration(goal.get('tracked_seconds'))} of {target}"
    return f"Goal: {goal_percent(stats) or 0} % of {target}"


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


def todays_projects(stats: Stats | None) -> list[tuple[str, float]]:
    """Today's projects, biggest first, from the same figures as today's total.

    Preferred: the agent's merged per-project today (``today.projects``: the server's
    figures plus work not synced yet), else today's bar of the week (the server's
    summaries, or local ones without a server). Never this computer's figures alone
    beside a merged total: they miss what other computers sent and would not add up.
    """
    source: Iterable[Mapping[str, Any]] = []
    merged = today(stats).get("projects")
    days = (((stats or {}).get("last_7_days") or {}).get("days")) or []
    if isinstance(merged, list):
        source = merged
    elif days:
        source = days[-1].get("projects") or []
    rows = [(str(p.get("name") or "(unknown)"), float(p.get("total_seconds") or 0)) for p in source]
    return sorted((r for r in rows if r[1] > 0), key=lambda r: -r[1])


def today_date(stats: Stats | None) -> str | None:
    """Today's date in the stats' own calendar (the profile's zone), from today's start."""
    start = today(stats).get("start")
    zone = (stats or {}).get("timezone")
    if not isinstance(start, int | float) or not isinstance(zone, str):
        return None
    # Imported here: only the dashboard's figures need it, and zoneinfo loads sysconfig (~1 MB the tray would keep).
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return dt.datetime.fromtimestamp(start, ZoneInfo(zone)).date().isoformat()
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _with_today(days: Sequence[Mapping[str, Any]], stats: Stats | None) -> list[Mapping[str, Any]]:
    """``days`` with today's entry holding today's merged figures, so today's bar, today's
    heatmap cell and the "Today" headline are one figure, not three."""
    out = list(days)
    t = today(stats)
    if not out or "total_seconds" not in t or out[-1].get("date") != today_date(stats):
        return out
    last = dict(out[-1])
    last["total_seconds"] = t["total_seconds"]
    if isinstance(t.get("projects"), list):
        last["projects"] = t["projects"]
    out[-1] = last
    return out


def week_days(stats: Stats | None) -> list[Mapping[str, Any]]:
    """The week chart's bars: the agent's days, today's being today's figure."""
    days = (((stats or {}).get("last_7_days") or {}).get("days")) or []
    return _with_today(days, stats)


def year_days(stats: Stats | None) -> list[Mapping[str, Any]]:
    """The year heatmap's daily totals, today's being today's figure."""
    return _with_today((stats or {}).get("daily_totals") or [], stats)


def bar_seconds(day: Mapping[str, Any]) -> float:
    """How tall a day's bar is: its total, or its projects' sum where that is larger.

    A day's projects add up to its total when both come from one computation; where
    they do not (today's projects from an older server figure than today's total),
    the bar still shows every project's time, and the range total adds up the bars.
    """
    listed = sum(float(p.get("total_seconds") or 0) for p in day.get("projects") or [])
    return max(float(day.get("total_seconds") or 0), listed)


def days_total(days: Sequence[Mapping[str, Any]]) -> float:
    """A range's total as its chart adds it up: the sum of its bars."""
    return float(sum(bar_seconds(d) for d in days))


def days_title(days: Sequence[Mapping[str, Any]]) -> str:
    """What the week chart draws, said plainly: Hackatime's "last 7 days" is today and the 7 before."""
    count = len(days)
    span = "Today and the 7 days before" if count == 8 else f"The last {count} days" if count else "This week"
    return f"{span}, by project · {format_duration(days_total(days))}"


# ---- words for what went wrong -----------------------------------------------------

# Errors that mean this computer has no network at all (not that one server refuses).
_OFFLINE_MARKERS = (
    "name resolution",
    "name or service not known",
    "nodename nor servname",
    "getaddrinfo failed",
    "no address associated",
    "network is unreachable",
    "network is down",
    "no route to host",
)
_NETWORK_REASONS = (
    ("refused", "connection refused"),
    ("timed out", "no answer in time"),
    ("timeout", "no answer in time"),
    ("reset", "connection reset"),
    ("disconnected", "connection closed"),
    ("closed", "connection closed"),
    ("certificate", "secure connection failed"),
    ("ssl", "secure connection failed"),
)


def server_title(dest: Mapping[str, Any] | None) -> str:
    """A destination's name as people write it ("Hackatime", not the internal "hackatime")."""
    name = str((dest or {}).get("name") or "hackatime")
    return "Hackatime" if name.lower() == "hackatime" else name


def is_offline_error(error: str | None) -> bool:
    low = (error or "").lower()
    return any(marker in low for marker in _OFFLINE_MARKERS)


def readable_error(error: str | None, server: str = "Hackatime") -> str:
    """An agent's ``last_error`` as a sentence: no exception class names, no errno."""
    if not error:
        return ""
    low = error.lower()
    if is_offline_error(error):
        return "Offline (no network connection)"
    if low.startswith("network error"):
        why = next((words for marker, words in _NETWORK_REASONS if marker in low), "network error")
        return f"Can't reach {server} ({why})"
    if "rejected the api key" in low:
        return f"{server} rejected the API key"
    if "rate limited" in low:
        return f"{server} asked to slow down"
    code = re.search(r"HTTP (\d{3})", error)
    if code:
        return f"{server} answered with an error (HTTP {code.group(1)})"
    if "not understood" in low or "acknowledged none" in low:
        return f"{server} sent an answer that could not be read"
    return error[:1].upper() + error[1:]


def _failing(dest: Mapping[str, Any]) -> bool:
    last_success = dest.get("last_success")
    error_at = dest.get("last_error_at")
    return bool(dest.get("last_error")) and (last_success is None or (error_at or 0) > last_success)


def is_offline(status: Status | None) -> bool:
    """No network at all: the agent got no answer and the error says the network is down.

    A server refusing connections, timing out or answering 5xx is not "offline":
    the words then name that server and what it did (:func:`readable_error`).
    """
    if not status or status.get("online") is not False:
        return False
    errors = [str(d.get("last_error") or "") for d in destinations(status) if _failing(d)]
    return not errors or any(is_offline_error(e) for e in errors)


# ---- sync lines -------------------------------------------------------------------


def _dest_line(dest: Mapping[str, Any], now: float) -> str:
    waiting = queued(dest)
    auth = dest.get("auth_state")
    if auth == "rejected":
        return f"API key rejected · {plural(waiting, 'heartbeat')} kept until it is fixed"
    if auth == "missing":
        return f"No API key · {plural(waiting, 'heartbeat')} kept locally"
    last_success = dest.get("last_success")
    backoff = dest.get("backoff_until")
    if waiting == 0:
        if last_success is None:
            return "Nothing to sync yet"
        return f"All synced · last synced {format_ago(last_success, now)}"
    head = f"{plural(waiting, 'heartbeat')} waiting"
    if _failing(dest):
        tail = readable_error(str(dest.get("last_error")), server_title(dest))
        if backoff and backoff > now:
            tail += f" · retrying {format_in(backoff, now)}"
        return f"{head} · {tail}"
    return f"{head} · last synced {format_ago(last_success, now)}"


AGENT_NOT_RUNNING = "The Hackatime agent is not running"
# The agent cannot store what editors send while its disk is full (they keep it and resend).
DISK_FULL_LINE = "Disk full · new heartbeats can't be stored until there is room"


def agent_down_line(error: str | None) -> str:
    """Why the tray has no agent to talk to, in one sentence.

    Refused or closed connections and a missing address file all mean no agent runs;
    only one that holds the connection without answering is "not answering".
    """
    if error and "did not answer" in error:
        return "The Hackatime agent is not answering"
    return AGENT_NOT_RUNNING


def sync_lines(
    status: Status | None,
    available: bool | None,
    now: float,
    error: str | None = None,
    agent_problem: str | None = None,
) -> list[str]:
    """The menu's sync section: one line per destination, plus what needs attention.

    ``agent_problem`` is the supervisor's sentence when the agent could not start
    (port in use, another agent): it says more than "not running" can.
    """
    if agent_problem:
        return [agent_problem]
    if available is False:
        return [agent_down_line(error)]
    if status is None:
        return ["Connecting to the agent…"]
    lines: list[str] = []
    if is_paused(status, now):
        lines.append(f"Tracking paused until {format_clock(float(status['paused_until']), now)}")
    key_problem = any(d.get("auth_state") in ("rejected", "missing") for d in destinations(status))
    if is_offline(status) and not key_problem:
        lines.append("Offline · heartbeats are kept and sent when the network is back")
    dests = destinations(status)
    for dest in dests:
        text = _dest_line(dest, now)
        lines.append(text if len(dests) == 1 else f"{server_title(dest)}: {text}")
        dead = int(dest.get("dead") or 0)
        if dead:
            lines.append(f"{plural(dead, 'heartbeat')} refused by {server_title(dest)} · see the dashboard")
    if status.get("disk_full"):
        lines.append(DISK_FULL_LINE)
    lines.extend(import_lines(status))
    return lines


def import_lines(status: Status) -> list[str]:
    """An import being read, then its upload until every imported heartbeat is up."""
    run = status.get("import_run")
    if run is not None and run["state"] == "reading":
        percent = 100 * run["bytes_read"] // max(1, run["bytes_total"])
        return [f"Importing history: {percent} % · {plural(run['read'], 'heartbeat')} read"]
    waiting = status.get("history_upload")
    if waiting:
        return [
            f"Uploading imported history: {waiting['pending']:,} left · "
            f"{format_roughly(waiting['seconds'], estimate=True)}"
        ]
    return []


# ---- the agent's notices ----------------------------------------------------------


def agent_notices(status: Status | None) -> list[Mapping[str, Any]]:
    """The notices the agent lists (``status["notices"]``), read defensively."""
    return [n for n in (status or {}).get("notices") or [] if isinstance(n, Mapping)]


def stored_notices(status: Status | None) -> list[Mapping[str, Any]]:
    """Notices kept in the agent's store (an integer id): they stay until the user dismisses them."""
    return [n for n in agent_notices(status) if isinstance(n.get("id"), int) and not isinstance(n.get("id"), bool)]


def is_disk_notice(notice: Mapping[str, Any]) -> bool:
    """The full disk's notice: not stored (no id) yet timed. Configuration notices carry no time."""
    return notice.get("id") is None and notice.get("time") is not None


def notices_line(status: Status | None) -> str | None:
    """The menu's pointer to the Sync tab while stored warnings wait to be read and dismissed."""
    count = sum(1 for n in stored_notices(status) if n.get("level") in ("warning", "error"))
    if not count:
        return None
    return f"{plural(count, 'notice')} from the agent — see Sync"


def notice_title(level: str | None) -> str:
    return {"error": "Hackatime agent: problem", "warning": "Hackatime agent: warning"}.get(
        str(level), "Hackatime agent"
    )


def goal_tooltip(stats: Stats | None) -> str:
    percent = goal_percent(stats)
    if percent is None:
        return ""
    goal = today(stats).get("goal") or {}
    return f" · {percent} % of {format_duration(goal.get('target_seconds'))} goal"


def tooltip(
    status: Status | None,
    stats: Stats | None,
    available: bool | None,
    now: float,
    agent_problem: str | None = None,
) -> str:
    """Today's total first (the point of the tray), then goal and whatever is wrong."""
    lines = [f"Hackatime · today {today_total_text(stats)}{goal_tooltip(stats)}"]
    state = sync_state(status, available, now)
    extra = {
        SyncState.STARTING: "Connecting to the agent…",
        SyncState.AGENT_DOWN: agent_problem or AGENT_NOT_RUNNING,
        SyncState.PAUSED: "Tracking paused",
        SyncState.KEY_REJECTED: "API key rejected — heartbeats kept",
    }.get(state)
    if state is SyncState.OFFLINE:
        extra = "Offline — heartbeats kept" if is_offline(status) else "Can't reach Hackatime — heartbeats kept"
    if state is SyncState.WAITING:
        waiting = sum(queued(d) for d in destinations(status))
        extra = f"{plural(waiting, 'heartbeat')} waiting to sync"
    if extra:
        lines.append(extra)
    if status and status.get("disk_full"):
        lines.append("Disk full — new heartbeats can't be stored")
    line = notices_line(status)
    if line:
        lines.append(line)
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
    notices: str | None = None  # "2 notices from the agent — see Sync", while some wait to be dismissed


def menu_view(
    status: Status | None,
    stats: Stats | None,
    available: bool | None,
    now: float,
    *,
    error: str | None = None,
    syncing: bool = False,
    agent_problem: str | None = None,
) -> MenuView:
    info = [f"Today: {today_total_text(stats)}"]
    for line in (goal_line(stats), streak_line(stats)):
        if line:
            info.append(line)
    top = todays_projects(stats)[:TOP_PROJECTS]
    projects = [f"{name} · {format_duration(secs)}" for name, secs in top]
    sync = sync_lines(status, available, now, error, agent_problem)
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
        notices=notices_line(status) if available is not False else None,
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


def pause_until(choice: PauseChoice, now: float) -> float | str:
    if choice is PauseChoice.HALF_HOUR:
        return now + 30 * 60
    if choice is PauseChoice.HOUR:
        return now + 60 * 60
    # "Until tomorrow" is the next local midnight (a new day starts a new count on Hackatime);
    # the agent works it out in its own zone, DST included, and resumes then.
    return C.PAUSE_UNTIL_TOMORROW


# ---- sources and ages (every figure says where it comes from) ---------------------


def source_caption(
    source: str | None,
    fetched_at: float | None,
    generated_at: float | None,
    now: float,
    unsynced_seconds: float | None = None,
    pending: bool = False,
) -> str:
    """Where a figure comes from and how old it is: "From Hackatime · 3 min old", "Local estimate · just now".

    A merged figure says what it adds to Hackatime's: work still waiting to be
    sent (``pending``, from the same status as the sync line, so "not yet synced"
    never stands beside "All synced"), or work sent after Hackatime's figure was read.
    """
    if source == "server":
        return f"From Hackatime · {_age(fetched_at, now)}"
    if source == "server+local":
        if unsynced_seconds is None:  # a list or a chart: no one amount to name
            return f"From Hackatime ({_age(fetched_at, now)}) · with this computer's newer work"
        amount = format_roughly(unsynced_seconds)
        how = "not yet synced" if pending else "synced since then"
        return f"From Hackatime ({_age(fetched_at, now)}) · includes {amount} {how}"
    if source == "local+server":
        return f"From Hackatime and this computer · {_age(fetched_at or generated_at, now)}"
    return f"Local estimate · {_age(generated_at, now)}"


def unsynced_pending(status: Status | None) -> bool:
    """Heartbeats still waiting to be sent, by the status the sync lines read."""
    return any(queued(d) for d in destinations(status))


def _age(ts: float | None, now: float) -> str:
    if ts is None:
        return "age unknown"
    text = format_ago(ts, now)
    return "updated just now" if text == "just now" else f"{text.removesuffix(' ago')} old"


# ---- notifications ----------------------------------------------------------------


NoticeKey = tuple[int, float]  # a stored notice of the agent: its id and time


@dataclass(frozen=True)
class Notice:
    # "key-rejected" | "back-online" | "goal-reached" | "disk-full" | "agent-notice" | "agent-crashed" | "agent-gave-up"
    kind: str
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
    _disk_full: bool = False
    # Stored notices already shown, by id and time: a store recovered from damage numbers its
    # notices from 1 again. The tray seeds it from the last run (app.shown_notices).
    shown_notices: set[NoticeKey] = field(default_factory=set)
    _notice_texts: set[str] = field(default_factory=set)  # the configuration's notices already shown (no id)

    def on_status(self, status: Status, now: float) -> list[Notice]:
        notices = self._agent_notices(status)
        disk_full = bool(status.get("disk_full"))
        if disk_full and not self._disk_full:
            notices.append(
                Notice(
                    "disk-full",
                    "Disk full",
                    "The agent cannot store new heartbeats until there is room; editors keep theirs and send "
                    "them again. Free some space: the agent carries on by itself.",
                    warning=True,
                )
            )
        self._disk_full = disk_full
        dests = destinations(status)
        rejected = {str(d.get("name")) for d in dests if d.get("auth_state") == "rejected"}
        for name in sorted(rejected - self._rejected):
            notices.append(
                Notice(
                    "key-rejected",
                    "API key rejected",
                    f"{server_title({'name': name})} refused the API key. Heartbeats are kept on this computer "
                    "and sent once the key is fixed.",
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

    def _agent_notices(self, status: Status) -> list[Notice]:
        """A popup per notice the agent lists, once: stored ones once each (they are listed until
        dismissed), the configuration's once per wording for this run (the agent lists them on every
        status and they have no id). The full disk has its own transition notice below."""
        out: list[Notice] = []
        listed: set[NoticeKey] = set()
        for item in agent_notices(status):
            ident, message = item.get("id"), str(item.get("message") or "")
            if isinstance(ident, int):
                when = item.get("time")
                key = (ident, float(when) if isinstance(when, int | float) else 0.0)
                listed.add(key)
                if key in self.shown_notices:
                    continue
                self.shown_notices.add(key)
            elif is_disk_notice(item) or not message or message in self._notice_texts:
                continue
            else:
                self._notice_texts.add(message)
            level = item.get("level")
            out.append(Notice("agent-notice", notice_title(level), message, warning=level in ("warning", "error")))
        # Only those the agent still lists: a dismissed one is never listed again, and what the
        # tray keeps across restarts stays as short as the list.
        self.shown_notices &= listed
        return out

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


def about_text(version: str, licences: str) -> str:
    """The About box: what this is, which version, under which licences."""
    return (
        f"<b>Hackatime Desktop {version}</b><br>"
        "Coding time for Hackatime: a heartbeat agent that never loses a heartbeat, and this tray app.<br><br>"
        "MIT licence. The licences of the libraries it ships with are in "
        f"<a href='{licences}'>the licences folder</a>.<br>"
        "<a href='https://hackatime.hackclub.com'>hackatime.hackclub.com</a>"
    )
