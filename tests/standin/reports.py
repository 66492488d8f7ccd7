"""Read endpoints: statusbar, last 7 days, summaries, profile, /api/v1 stats and heartbeats.

Each function takes the user's live rows and the stand-in's clock and returns ``(status, payload)``;
the HTTP layer (``app.py``) only authenticates and encodes. Section numbers are hackatime-api.md's.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from . import durations, languages, railsjson
from .durations import Row, day_bounds, local_date, pg_integer, rows_between, zone
from .formats import (
    clock_emoji,
    compliment,
    digital,
    digital_padded,
    hrs_mins,
    ruby_round,
    short_time_detailed,
    short_time_simple,
)
from .users import User

Payload = dict[str, Any]
_DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")


def statusbar_text(user: User, seconds: int, now: float) -> str:
    """``User#format_extension_text`` plus the day-goal suffix (§4.5)."""
    if user.text_mode == "clock_emoji":
        return clock_emoji(seconds)
    if user.text_mode == "compliment_text":
        return compliment(user.id, now)
    text = short_time_simple(seconds) if seconds else "Start coding!"
    if user.day_goal is not None and user.show_goals_in_statusbar:
        text += f" / {short_time_simple(user.day_goal)} goal"
    return text


def statusbar_today(user: User, rows: list[Row], now: float) -> Payload:
    """§4.5: one timeline over today's heartbeats in the *profile* zone, integer-second bounds."""
    tz = zone(user.timezone)
    start, end = day_bounds(local_date(now, tz), tz)
    total = durations.duration_seconds(rows_between(rows, start, end))
    data: Payload = {"grand_total": {"text": statusbar_text(user, total, now), "total_seconds": total}}
    if user.day_goal is not None:
        # The stand-in has no archived projects and no goal filters, so tracked == today's total.
        data["goal"] = {
            "target_seconds": user.day_goal,
            "tracked_seconds": total,
            "completion_percent": int(min(ruby_round(total / user.day_goal * 100), 100)) if user.day_goal else 100,
            "complete": total >= user.day_goal,
        }
    return {"data": data}


def _group_list(rows: list[Row], column: str) -> list[Payload]:
    """A last_7_days category list: per-group LAG, percent of the sum of the groups (§2, §4.6)."""
    totals = durations.grouped_duration_seconds(rows, column)
    grand = float(sum(totals.values()))
    if grand == 0:
        return []
    display = {
        "editor": languages.display_editor,
        "operating_system": languages.display_os,
        "language": languages.display_language,
    }.get(column, str)
    entries: list[Payload] = []
    for key, seconds in totals.items():
        if seconds <= 0:
            continue
        name = display(key if not languages.is_blank(key) else "unknown")
        entries.append(
            {
                "name": name,
                "total_seconds": seconds,
                "percent": ruby_round(seconds / grand * 100, 2),
                "digital": digital(seconds),
                "text": hrs_mins(seconds),
                "hours": seconds // 3600,
                "minutes": seconds % 3600 // 60,
                "seconds": seconds % 60,
            }
        )
    # The server's order among equal totals is whatever SQL returned; sort by name for stable tests.
    return sorted(entries, key=lambda e: (-e["total_seconds"], str(e["name"])))


def last_7_days(user: User, rows: list[Row], now: float) -> Payload:
    """§4.6: 8 local calendar days as ONE timeline (a gap over midnight is credited)."""
    tz = zone(user.timezone)
    today = local_date(now, tz)
    first = today - dt.timedelta(days=7)
    start, end = day_bounds(first, tz)[0], day_bounds(today, tz)[1]
    window = rows_between(rows, start, end)
    total = durations.duration_seconds(window)
    active_days = len({local_date(row["time"], tz) for row in window})
    daily_average: float = ruby_round(total / active_days, 1) if active_days else 0
    return {
        "data": {
            "username": user.slack_uid,
            "user_id": user.slack_uid,
            "start": railsjson.iso_zoned(dt.datetime.fromtimestamp(start, tz)),
            "end": railsjson.iso_zoned(dt.datetime.fromtimestamp(end, tz)),
            "status": "ok",
            "total_seconds": total,
            "daily_average": daily_average,
            "days_including_holidays": active_days,
            "range": "last_7_days",
            "human_readable_range": "Last 7 Days",
            "human_readable_total": hrs_mins(total),
            "human_readable_daily_average": hrs_mins(int(daily_average)),
            "is_coding_activity_visible": True,
            "is_other_usage_visible": True,
            "editors": _group_list(window, "editor"),
            "languages": _group_list(window, "language"),
            "machines": _group_list(window, "machine"),
            "projects": _group_list(window, "project"),
            "operating_systems": _group_list(window, "operating_system"),
            "categories": [
                {
                    "name": "coding",
                    "total_seconds": total,
                    "percent": 100.0,
                    "digital": digital(total),
                    "text": hrs_mins(total),
                    "hours": total // 3600,
                    "minutes": total % 3600 // 60,
                    "seconds": total % 60,
                }
            ],
        }
    }


def profile(user: User) -> Payload:
    """§4.7: the cheapest key check, and the user's profile timezone."""
    return {
        "data": {
            "id": str(user.id),
            "username": user.username,
            "display_name": user.shown_name,
            "full_name": user.shown_name,
            "photo": f"https://hackatime.hackclub.com/users/{user.id}/avatar",
            "timezone": user.timezone,
            "created_at": railsjson.iso_seconds(user.created_at),
            "modified_at": railsjson.iso_seconds(user.created_at),
            "plan": "free",
        }
    }


def _duration_fields(seconds: int) -> Payload:
    return {
        "total_seconds": seconds,
        "hours": seconds // 3600,
        "minutes": seconds % 3600 // 60,
        "seconds": seconds % 60,
        "digital": digital_padded(seconds),
        "decimal": f"{seconds / 3600:.2f}",
        "text": short_time_simple(seconds),
    }


def _parse_day(text: str | None) -> dt.date | None:
    if text is None or not _DATE.match(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _range_text(day: dt.date, today: dt.date) -> str:
    if day == today:
        return "Today"
    if day == today - dt.timedelta(days=1):
        return "Yesterday"
    return f"{day:%B} {day.day}, {day.year}"


def summaries(user: User, rows: list[Row], now: float, params: Mapping[str, str]) -> tuple[int, Payload]:
    """§4.8: one entry per local day; LEAD within each day credits the earlier heartbeat's project,
    and a day is the sum of its projects' rounded credits."""
    first, last = _parse_day(params.get("start")), _parse_day(params.get("end"))
    if first is None or last is None:
        return 400, {"error": "start and end must be valid dates in YYYY-MM-DD format"}
    if last < first:
        return 400, {"error": "end must not be before start"}
    if (last - first).days + 1 > 366:
        return 400, {"error": "date range cannot exceed 366 days"}
    tz_name = params.get("timezone") or user.timezone
    if "timezone" in params and zone(tz_name).key != tz_name:
        return 400, {"error": "Invalid timezone"}
    tz = zone(tz_name)
    project = params.get("project")
    window = rows_between(rows, day_bounds(first, tz)[0], day_bounds(last, tz)[1])
    if project:
        window = [row for row in window if row["project"] == project]
    by_day: dict[dt.date, list[Row]] = defaultdict(list)
    for row in window:
        by_day[local_date(row["time"], tz)].append(row)

    today = local_date(now, tz)
    entries: list[Payload] = []
    grand = 0
    day = first
    while day <= last:
        # Heartbeats without a project (null, empty or blank) are one "Other" project; each
        # project's credit is rounded (ties to even) and the day is the sum of its projects.
        credits: dict[str, float] = defaultdict(float)
        for name, seconds_f in durations.lead_credits(by_day.get(day, []), "project").items():
            credits["Other" if languages.is_blank(name) else name] += seconds_f
        rounded = {name: pg_integer(seconds_f) for name, seconds_f in credits.items()}
        total = sum(rounded.values())
        grand += total
        projects: list[Payload] = []
        for name, seconds in rounded.items():
            if seconds > 0:
                fields = _duration_fields(seconds)
                fields["percent"] = ruby_round(seconds / total * 100, 2) if total else 0.0
                projects.append({"name": name, **fields})
        start, end = day_bounds(day, tz)
        entries.append(
            {
                "grand_total": _duration_fields(total),
                "projects": sorted(projects, key=lambda p: (-p["total_seconds"], p["name"])),
                **{key: [] for key in ("branches", "categories", "dependencies", "editors", "entities")},
                **{key: [] for key in ("languages", "machines", "operating_systems")},
                "range": {
                    "date": day.isoformat(),
                    "start": railsjson.iso_seconds(start),
                    "end": railsjson.iso_seconds(end),
                    "text": _range_text(day, today),
                    "timezone": tz.key,
                },
            }
        )
        day += dt.timedelta(days=1)

    holidays = sum(1 for entry in entries if entry["grand_total"]["total_seconds"] == 0)
    worked = len(entries) - holidays
    average = grand // worked if worked else 0
    return 200, {
        "data": entries,
        "cumulative_total": {
            "seconds": grand,
            "text": short_time_simple(grand),
            "decimal": f"{grand / 3600:.2f}",
            "digital": digital_padded(grand),
        },
        "daily_average": {
            "holidays": holidays,
            "days_including_holidays": len(entries),
            "days_minus_holidays": worked,
            "seconds": average,
            "text": short_time_simple(average),
            "seconds_including_other_language": average,
            "text_including_other_language": short_time_simple(average),
        },
        "start": railsjson.iso_seconds(day_bounds(first, tz)[0]),
        "end": railsjson.iso_seconds(day_bounds(last, tz)[1]),
    }


def parse_moment(text: str) -> float:
    """A ``Time.parse``-able query value (ISO 8601); no offset means the server's zone, UTC."""
    moment = dt.datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _stats_chunk(rows: list[Row], column: str, total: int, limit: int | None) -> list[Payload]:
    entries: list[Payload] = []
    for key, seconds in durations.grouped_duration_seconds(rows, column).items():
        raw = key if not languages.is_blank(key) else "Other"
        entry: Payload = {
            "name": languages.display_language(raw) if column == "language" else raw,
            "total_seconds": seconds,
            "text": short_time_simple(seconds),
            "hours": seconds // 3600,
            "minutes": seconds % 3600 // 60,
            "percent": ruby_round(100.0 * seconds / total, 2) if total else 0.0,
            "digital": digital_padded(seconds),
        }
        if column == "language":
            entry["color"] = languages.language_color(raw)
        entries.append(entry)
    entries.sort(key=lambda e: (-e["total_seconds"], str(e["name"])))
    return entries[:limit] if limit else entries


def user_stats(user: User, rows: list[Row], now: float, params: Mapping[str, str]) -> tuple[int, Payload]:
    """§5.4 ``GET /api/v1/users/{u}/stats``: all-time-ish totals, languages/projects, and the streak."""
    today = dt.datetime.fromtimestamp(now, dt.UTC)
    try:
        start = int(parse_moment(params["start_date"])) if params.get("start_date") else None
    except ValueError:
        return 422, {"error": "Invalid start_date"}
    try:
        end = int(parse_moment(params["end_date"])) if params.get("end_date") else None
    except ValueError:
        return 422, {"error": "Invalid end_date"}
    if start is None:
        try:
            start = int(today.replace(year=today.year - 10).timestamp())
        except ValueError:  # 29 February → 28 February, as ActiveSupport's 10.years.ago does
            start = int(today.replace(year=today.year - 10, day=28).timestamp())
    if end is None:
        end = day_bounds(today.date(), durations.UTC)[1]

    scope = [row for row in rows if start <= row["time"] < end]  # WakatimeService: time < end
    if params.get("filter_by_project"):
        wanted = set(params["filter_by_project"].split(","))
        scope = [row for row in scope if row["project"] in wanted]
    if params.get("total_seconds") == "true":
        if params.get("filter_by_category"):
            categories = set(params["filter_by_category"].split(","))
            scope = [row for row in scope if row["category"] in categories]
        return 200, {"total_seconds": durations.duration_seconds(scope)}

    total = durations.duration_seconds(scope)
    days = (end - start) // 86400
    average = total // days if days else 0
    data: Payload = {
        "username": user.shown_name,
        "user_id": str(user.id),
        "is_coding_activity_visible": True,
        "is_other_usage_visible": True,
        "status": "ok",
        "start": railsjson.iso_seconds(start),
        "end": railsjson.iso_seconds(end),
        "range": "all_time",
        "human_readable_range": "All Time",
        "total_seconds": total,
        "daily_average": average,
        "human_readable_total": short_time_detailed(total),
        "human_readable_daily_average": short_time_detailed(average),
    }
    features = set((params.get("features") or "languages").split(","))
    limit_text = params.get("limit", "")
    limit = int(limit_text) if limit_text.isdigit() else None
    if "languages" in features:
        data["languages"] = _stats_chunk(scope, "language", total, limit)
    if "projects" in features:
        data["projects"] = _stats_chunk(scope, "project", total, limit)
        if params.get("filter_by_project"):
            data["unique_total_seconds"] = total
    data["streak"] = durations.streak_days(rows, zone(user.timezone), now)
    return 200, {"data": data, "trust_factor": {"trust_level": "blue", "trust_value": 0}}


def my_heartbeats_window(now: float, params: Mapping[str, str]) -> tuple[float, float]:
    """§5.1 window: defaults to today in **UTC**; a bad value raises ``ValueError`` (→ 500)."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    start_default = day_bounds(today, durations.UTC)[0]
    start = parse_moment(params["start_time"]) if params.get("start_time") else float(start_default)
    end = parse_moment(params["end_time"]) if params.get("end_time") else start_default + 86399.999999
    return start, end


def time_ago(seconds: float) -> str:
    """Rails ``time_ago_in_words`` (without seconds), followed by " ago"."""
    minutes = round(seconds / 60)
    if minutes < 1:
        words = "less than a minute"
    elif minutes < 2:
        words = "1 minute"
    elif minutes < 45:
        words = f"{minutes} minutes"
    elif minutes < 90:
        words = "about 1 hour"
    elif minutes < 1440:
        words = f"about {round(minutes / 60)} hours"
    elif minutes < 2520:
        words = "1 day"
    elif minutes < 43200:
        words = f"{round(minutes / 1440)} days"
    elif minutes < 86400:
        words = "about 1 month"
    elif minutes < 525600:
        words = f"{round(minutes / 43200)} months"
    else:
        words = f"about {round(minutes / 525600)} years"
    return f"{words} ago"


# ---- /api/v1/authenticated/* (§5.3): OAuth only, UTC ----------------------------------------------------


def authenticated_hours(rows: list[Row], now: float, params: Mapping[str, str]) -> tuple[int, Payload]:
    """``/hours``: UTC days, 7 days ago through today by default, one timeline; a bad date is a 500."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    try:
        start = dt.date.fromisoformat(params["start_date"]) if params.get("start_date") else today - dt.timedelta(7)
        end = dt.date.fromisoformat(params["end_date"]) if params.get("end_date") else today
    except ValueError:
        return 500, {"error": "Internal Server Error", "status": 500}
    lo, hi = day_bounds(start, durations.UTC)[0], day_bounds(end, durations.UTC)[1]
    total = durations.duration_seconds(rows_between(rows, lo, hi))
    return 200, {"start_date": start.isoformat(), "end_date": end.isoformat(), "total_seconds": total}


def authenticated_streak(user: User, rows: list[Row], now: float) -> Payload:
    return {"streak_days": durations.streak_days(rows, zone(user.timezone), now)}


def authenticated_projects(user: User, rows: list[Row], params: Mapping[str, str]) -> Payload:
    """``/projects``: all time, per-project LAG; archived ones only with ``include_archived=true``;
    projects with no name left out. (The server's rollup lags ingestion by ~2 minutes; this does not.)"""
    named = [row for row in rows if not languages.is_blank(row["project"])]
    with_archived = params.get("include_archived") == "true"
    out: list[Payload] = []
    for name, seconds in durations.grouped_duration_seconds(named, "project").items():
        archived = name in user.archived_projects
        if archived and not with_archived:
            continue
        own = [row for row in named if row["project"] == name]
        used = sorted({languages.display_language(r["language"]) for r in own if not languages.is_blank(r["language"])})
        out.append(
            {
                "name": name,
                "total_seconds": seconds,
                "most_recent_heartbeat": railsjson.iso_seconds(max(r["time"] for r in own)),
                "languages": used,
                "archived": archived,
            }
        )
    out.sort(key=lambda e: (-e["total_seconds"], e["name"]))
    return {"projects": out}
