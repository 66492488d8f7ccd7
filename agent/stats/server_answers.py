"""Checking the server's answers: each body is read into the few figures the agent keeps, or
refused as ``Garbage`` when it is not what the server sends (the cache then keeps the last
good one). Section numbers are hackatime-api.md's.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

GROUPS = ("languages", "editors", "operating_systems", "machines", "projects", "categories")


class Garbage(ValueError):
    """A 200 answer whose body is not what the server sends."""


def _seconds(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise Garbage(f"{what} is not a number of seconds: {value!r:.40}")
    return round(value)


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Garbage(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise Garbage(f"{what} is not a list")
    return value


def _group_entries(value: Any, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    out = []
    for item in _list(value, what):
        entry = _dict(item, what)
        name = entry.get("name")
        if name is not None and not isinstance(name, str):
            raise Garbage(f"a name in {what} is not a string")
        seconds = _seconds(entry.get("total_seconds"), what)
        percent = entry.get("percent")
        out.append(
            {
                "name": name if name is not None else "unknown",
                "total_seconds": seconds,
                "percent": float(percent)
                if isinstance(percent, int | float) and not isinstance(percent, bool)
                else 0.0,
            }
        )
    return out


def parse_user(body: Any) -> dict[str, Any]:
    data = _dict(_dict(body, "the answer").get("data"), "data")
    tz = data.get("timezone")
    if tz is not None and not isinstance(tz, str):
        raise Garbage("timezone is not a string")
    username = data.get("username")
    user_id = data.get("id")
    return {
        "timezone": tz or "UTC",
        "username": username if isinstance(username, str) else None,
        "id": str(user_id) if isinstance(user_id, str | int) and not isinstance(user_id, bool) else None,
    }


def parse_statusbar(body: Any) -> dict[str, Any]:
    data = _dict(_dict(body, "the answer").get("data"), "data")
    grand = _dict(data.get("grand_total"), "grand_total")
    text = grand.get("text")
    if text is not None and not isinstance(text, str):
        raise Garbage("grand_total.text is not a string")
    out: dict[str, Any] = {"total_seconds": _seconds(grand.get("total_seconds"), "grand_total.total_seconds")}
    out["text"] = text or ""
    goal = data.get("goal")
    if goal is not None:
        goal = _dict(goal, "goal")
        out["goal"] = {
            "target_seconds": _seconds(goal.get("target_seconds"), "goal.target_seconds"),
            "tracked_seconds": _seconds(goal.get("tracked_seconds"), "goal.tracked_seconds"),
        }
    else:
        out["goal"] = None
    return out


def parse_stats(body: Any) -> dict[str, Any]:
    data = _dict(_dict(body, "the answer").get("data"), "data")
    streak = data.get("streak")
    if isinstance(streak, bool) or not isinstance(streak, int) or streak < 0:
        raise Garbage(f"streak is not a whole number: {streak!r:.40}")
    return {
        "streak": streak,
        "total_seconds": _seconds(data.get("total_seconds", 0), "total_seconds"),
        "languages": _group_entries(data.get("languages"), "languages"),
        "projects": _group_entries(data.get("projects"), "projects"),
    }


def parse_last_7_days(body: Any) -> dict[str, Any]:
    data = _dict(_dict(body, "the answer").get("data"), "data")
    figures: dict[str, Any] = {"total_seconds": _seconds(data.get("total_seconds"), "total_seconds")}
    for group in GROUPS:
        figures[group] = _group_entries(data.get(group), group)
    average = data.get("daily_average", 0)
    figures["daily_average"] = (
        float(average) if isinstance(average, int | float) and not isinstance(average, bool) else 0.0
    )
    active = data.get("days_including_holidays", 0)
    figures["days_including_holidays"] = active if isinstance(active, int) and not isinstance(active, bool) else 0
    return {"figures": figures}


def parse_summaries(body: Any) -> dict[str, Any]:
    days = []
    for item in _list(_dict(body, "the answer").get("data"), "data"):
        entry = _dict(item, "a day")
        date = _dict(entry.get("range"), "range").get("date")
        if not isinstance(date, str):
            raise Garbage("range.date is not a string")
        try:
            dt.date.fromisoformat(date)
        except ValueError:
            raise Garbage(f"range.date {date!r:.20} is not a date") from None
        total = _seconds(_dict(entry.get("grand_total"), "grand_total").get("total_seconds"), "grand_total")
        projects = [{"name": p["name"], "total_seconds": p["total_seconds"]} for p in _group_entries(
            entry.get("projects"), "projects")]  # fmt: skip
        days.append({"date": date, "total_seconds": total, "projects": projects})
    return {"days": days}


# ---- /api/v1/authenticated/* (§5.3): with the OAuth token of "Sign in with Hackatime" ----------------------


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Garbage(f"{what} is not a whole number: {value!r:.40}")
    return value


def parse_oauth_me(body: Any) -> dict[str, Any]:
    user_id = _dict(body, "the answer").get("id")
    if isinstance(user_id, bool) or not isinstance(user_id, int | str):
        raise Garbage("id is not an id")
    return {"id": str(user_id)}


def parse_oauth_streak(body: Any) -> dict[str, Any]:
    return {"streak": _whole(_dict(body, "the answer").get("streak_days"), "streak_days")}


def parse_oauth_hours(body: Any) -> dict[str, Any]:
    data = _dict(body, "the answer")
    return {"total_seconds": _seconds(data.get("total_seconds"), "total_seconds")}


def parse_oauth_projects(body: Any) -> dict[str, Any]:
    projects = []
    for item in _list(_dict(body, "the answer").get("projects"), "projects"):
        entry = _dict(item, "a project")
        name, recent, used = entry.get("name"), entry.get("most_recent_heartbeat"), entry.get("languages") or []
        if not isinstance(name, str) or not name:
            raise Garbage("a project has no name")
        if recent is not None and not isinstance(recent, str):
            raise Garbage("most_recent_heartbeat is not a time")
        if not isinstance(used, list) or not all(isinstance(x, str) for x in used):
            raise Garbage("languages is not a list of names")
        projects.append(
            {
                "name": name,
                "total_seconds": _seconds(entry.get("total_seconds"), "total_seconds"),
                "archived": entry.get("archived") is True,
                "most_recent_heartbeat": recent,
                "languages": used,
            }
        )
    return {"projects": projects}
