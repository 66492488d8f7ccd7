"""Hackatime's duration and streak rules (hackatime-api.md §2, §3), written the plain way.

This is the oracle the app's own stats engine is checked against, so every rule is a short
loop over rows sorted by ``(time, id)``; nothing is clever or incremental.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Row = dict[str, Any]

TIMEOUT = 120.0  # Heartbeat.heartbeat_timeout_duration; a longer gap is capped, not dropped
STREAK_DAY_SECONDS = 900
STREAK_WINDOW_SECONDS = 31 * 86400
UTC = ZoneInfo("UTC")


def zone(name: str | None) -> ZoneInfo:
    """The user's zone; an invalid or blank name falls back to UTC, as the server does."""
    try:
        return ZoneInfo(name) if name and name.strip() else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def pg_integer(total: float) -> int:
    """PostgreSQL ``float::integer`` rounds ties to even, which is Python's ``round``."""
    return round(total)


def timeline(rows: Iterable[Row]) -> list[Row]:
    """``ORDER BY time ASC, id ASC``: equal times tie-break by arrival."""
    return sorted(rows, key=lambda row: (row["time"], row["id"]))


def capped_gap_sum(times: Sequence[float]) -> float:
    """Σ min(t_i − t_{i−1}, 120) over an already ordered timeline; the first heartbeat adds 0."""
    total = 0.0
    for previous, current in itertools.pairwise(times):
        total += min(current - previous, TIMEOUT)
    return total


def duration_seconds(rows: Iterable[Row]) -> int:
    return pg_integer(capped_gap_sum([row["time"] for row in timeline(rows)]))


def grouped_duration_seconds(rows: Iterable[Row], column: str) -> dict[Any, int]:
    """``LAG(time) OVER (PARTITION BY column ORDER BY time, id)``: each group is its own timeline."""
    groups: dict[Any, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row[column]].append(row)
    return {key: duration_seconds(members) for key, members in groups.items()}


def lead_credits(rows: Iterable[Row], column: str) -> dict[Any, float]:
    """``LEAD(time)`` over one timeline: each capped gap goes to the *earlier* heartbeat's group."""
    ordered = timeline(rows)
    credits: dict[Any, float] = defaultdict(float)
    for current, following in itertools.pairwise(ordered):
        credits[current[column]] += min(following["time"] - current["time"], TIMEOUT)
    if ordered:  # the last heartbeat has no LEAD; its group still exists with what it earned
        credits.setdefault(ordered[-1][column], 0.0)
    return dict(credits)


def local_date(epoch: float, tz: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(epoch, tz).date()


def day_start(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz)


def day_bounds(day: dt.date, tz: ZoneInfo) -> tuple[int, int]:
    """``[beginning_of_day.to_i, end_of_day.to_i]``: integer seconds, so 23:59:59.5 is outside."""
    start = int(day_start(day, tz).timestamp())
    end = int(day_start(day + dt.timedelta(days=1), tz).timestamp()) - 1
    return start, end


def rows_between(rows: Iterable[Row], start: float, end: float) -> list[Row]:
    """``WHERE time BETWEEN start AND end`` (both inclusive)."""
    return [row for row in rows if start <= row["time"] <= end]


def daily_durations(rows: Iterable[Row], tz: ZoneInfo) -> dict[dt.date, int]:
    """One timeline per local day (LAG partitioned by day): no gap is credited across midnight."""
    days: dict[dt.date, list[Row]] = defaultdict(list)
    for row in rows:
        days[local_date(row["time"], tz)].append(row)
    return {day: duration_seconds(members) for day, members in days.items()}


def streak_days(rows: Iterable[Row], tz: ZoneInfo, now: float) -> int:
    """§3: consecutive local days with ≥ 15 min, counted back from today, or else from yesterday."""
    window = [
        row
        for row in rows_between(rows, now - STREAK_WINDOW_SECONDS, now)
        # SQL ``category != 'browsing'`` is not true for NULL, so null categories drop out too.
        if row["category"] is not None and row["category"] != "browsing"
    ]
    today = local_date(now, tz)
    eligible = {
        day for day, seconds in daily_durations(window, tz).items() if seconds >= STREAK_DAY_SECONDS and day <= today
    }
    day = today if today in eligible else today - dt.timedelta(days=1)
    streak = 0
    while day in eligible:
        streak += 1
        day -= dt.timedelta(days=1)
    return streak
