"""Hackatime's time rules, pure: durations (§2), streaks (§3), local days, statusbar text (§4.5).

Everything here is a plain function of its arguments, so the rules can be checked against
hand-computed tables and against the reference formula of hackatime-api.md §2.

Why float sums here are exact: every heartbeat time the store accepts lies in
[1e9, 2e9) (heartbeat.normalize_time), where a double is a multiple of 2^-23 s. The
difference of two such times is exact (Sterbenz), and any sum of such differences below
2^30 s (34 years) is again a multiple of 2^-23 that fits in 53 bits, so it is exact too.
Every partial sum is therefore the true real-number sum, in any order: totals assembled
from rollups in any grouping equal the server's single ``SUM`` bit for bit, and Python's
``round`` (ties to even) then matches PostgreSQL's ``float::integer``.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

TIMEOUT = 120.0  # Heartbeat.heartbeat_timeout_duration: a longer gap is capped, not dropped
STREAK_DAY_SECONDS = 900  # a streak day needs at least 15 minutes
STREAK_WINDOW_SECONDS = 31 * 86400  # 31.days.ago in the app's zone (UTC), so always 31 × 24 h
TIME_MAX = 253402300799  # the server's with_valid_timestamps upper bound
UTC = ZoneInfo("UTC")

K = TypeVar("K", bound=Hashable)


# ---- §2: durations ----------------------------------------------------------------------------


def capped(gap: float) -> float:
    return gap if gap < TIMEOUT else TIMEOUT


def capped_sum(times: Sequence[float]) -> float:
    """Σ min(t_i − t_{i−1}, 120) over an ordered timeline; the first heartbeat adds 0."""
    total = 0.0
    for i in range(1, len(times)):
        gap = times[i] - times[i - 1]
        total += gap if gap < TIMEOUT else TIMEOUT
    return total


def to_seconds(total: float) -> int:
    """PostgreSQL ``float::integer``: nearest integer, ties to even (Python's ``round``)."""
    return round(total)


def duration_seconds(times: Iterable[float]) -> int:
    """§2 over one timeline: sort, sum the capped gaps, round ties to even."""
    return to_seconds(capped_sum(sorted(times)))


def grouped_seconds(rows: Iterable[tuple[float, K]]) -> dict[K, float]:
    """Per-group totals with ``LAG(time) OVER (PARTITION BY group ORDER BY time, id)``.

    ``rows`` are (time, group) in (time, id) order. Each group is its own timeline, so the
    groups can add up to more than the overall total (A@0, B@30, A@60, B@90: 90 overall,
    60 + 60 by group). Unrounded, so callers can round per group as the server does.
    """
    last: dict[K, float] = {}
    totals: dict[K, float] = {}
    for t, key in rows:
        prev = last.get(key)
        if prev is None:
            totals[key] = 0.0
        else:
            gap = t - prev
            totals[key] += gap if gap < TIMEOUT else TIMEOUT
        last[key] = t
    return totals


def lead_credits(rows: Iterable[tuple[float, K]]) -> dict[K, float]:
    """The summaries rule: ``LEAD(time)`` over one timeline, each capped gap credited to the
    *earlier* heartbeat's group, so the groups add up to the timeline's total.

    ``rows`` are (time, group) in (time, id) order; a group whose only heartbeat is the
    last one still appears, with 0.
    """
    credits: dict[K, float] = {}
    prev_t: float | None = None
    prev_key: K | None = None
    for t, key in rows:
        if prev_t is not None:
            gap = t - prev_t
            credits[prev_key] += gap if gap < TIMEOUT else TIMEOUT  # type: ignore[index]
        credits.setdefault(key, 0.0)
        prev_t, prev_key = t, key
    return credits


@dataclass(frozen=True)
class Span:
    start_time: float
    end_time: float
    duration: float


def spans(times: Iterable[float]) -> list[Span]:
    """§2 spans: a new span starts after a gap over 120 s; each span carries the capped gap
    to the next heartbeat, so the spans add up to the timeline's total. Empty spans are dropped.
    """
    ts = sorted(times)
    out: list[Span] = []
    if not ts:
        return out
    start = ts[0]
    for i, t in enumerate(ts):
        nxt = ts[i + 1] if i + 1 < len(ts) else None
        if nxt is None or nxt - t > TIMEOUT:
            trailing = 0.0 if nxt is None else TIMEOUT
            duration = (t - start) + trailing
            if duration > 0:
                out.append(Span(start, t + trailing, duration))
            if nxt is not None:
                start = nxt
    return out


# ---- segments: pieces of one timeline that can be glued together --------------------------------


@dataclass(frozen=True, slots=True)
class Seg:
    """A contiguous stretch of one timeline: its internal capped-gap sum and its two ends.

    Two stretches of the same timeline, the second later than the first, join with the
    capped gap between the first's last heartbeat and the second's first; that is all
    §2 needs to assemble a window's total from per-bucket pieces.
    """

    span: float
    first: float
    last: float
    count: int = 1

    def then(self, later: Seg) -> Seg:
        gap = later.first - self.last
        return Seg(
            self.span + later.span + (gap if gap < TIMEOUT else TIMEOUT),
            self.first,
            later.last,
            self.count + later.count,
        )


def join(segments: Iterable[Seg]) -> Seg | None:
    """Glue stretches given in time order; None when there are none."""
    out: Seg | None = None
    for seg in segments:
        out = seg if out is None else out.then(seg)
    return out


def seg_of(times: Sequence[float]) -> Seg | None:
    return Seg(capped_sum(times), times[0], times[-1], len(times)) if times else None


# ---- §3: streak -------------------------------------------------------------------------------


def streak(day_seconds: Mapping[dt.date, int], today: dt.date) -> int:
    """Consecutive local days with ≥ 900 s, counted back from today if today qualifies,
    otherwise from yesterday; the first day short of 15 minutes (or missing) stops it.
    """
    eligible = {d for d, s in day_seconds.items() if s >= STREAK_DAY_SECONDS and d <= today}
    day = today if today in eligible else today - dt.timedelta(days=1)
    count = 0
    while day in eligible:
        count += 1
        day -= dt.timedelta(days=1)
    return count


def streak_eligible(category: str | None) -> bool:
    """SQL ``category != 'browsing'`` is not true for NULL, so null categories drop out too."""
    return category is not None and category != "browsing"


# ---- local days in the profile's zone ------------------------------------------------------------


def zone(name: str | None) -> ZoneInfo:
    """The zone for an IANA name; a blank or unknown one falls back to UTC, as the server does."""
    if not name or not name.strip():
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def valid_zone(name: object) -> bool:
    if not isinstance(name, str) or not name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_date(ts: float, tz: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(ts, tz).date()


def day_start(day: dt.date, tz: ZoneInfo) -> int:
    """``beginning_of_day.to_i``: local midnight (its first occurrence; after a gap, the gap's end)."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def day_window(day: dt.date, tz: ZoneInfo) -> tuple[int, int]:
    """``[beginning_of_day.to_i, end_of_day.to_i]``, both inclusive integer seconds: a heartbeat
    at 23:59:59.5 is in no day's window (the statusbar and last_7_days filter this way).
    """
    return day_start(day, tz), day_start(day + dt.timedelta(days=1), tz) - 1


def last_days_window(now: float, tz: ZoneInfo, days: int) -> tuple[int, int, dt.date, dt.date]:
    """``(now - days).beginning_of_day .. now.end_of_day``: days + 1 local calendar days."""
    today = local_date(now, tz)
    first = today - dt.timedelta(days=days)
    return day_start(first, tz), day_window(today, tz)[1], first, today


def _offset(ts: int, tz: ZoneInfo) -> float:
    off = dt.datetime.fromtimestamp(ts, tz).utcoffset()
    return 0.0 if off is None else off.total_seconds()


@functools.lru_cache(maxsize=64)
def day_pieces(first: dt.date, last: dt.date, tz: ZoneInfo) -> tuple[tuple[int, int, dt.date], ...]:
    """Half-open ``[lo, hi)`` stretches of time, in order, whose local date is constant, covering
    exactly the instants whose local date (``DATE_TRUNC('day', … AT TIME ZONE tz)``) is in
    ``[first, last]``.

    Usually one stretch per day, from one midnight to the next. A clock change can make the
    local date go backwards (America/Goose_Bay until 2010 fell back from 00:01 to 23:01), so
    a day may own two stretches; both are listed, and callers join them in time order.
    """
    one = dt.timedelta(days=1)
    cuts: set[int] = set()
    day = first - one
    while day <= last + one:
        for fold in (0, 1):  # the second occurrence of an ambiguous midnight also starts a day
            cuts.add(int(dt.datetime(day.year, day.month, day.day, fold=fold, tzinfo=tz).timestamp()))
        day += one
    # Every clock change is a possible date change too; find each by bisection (whole seconds).
    starts = sorted(cuts)
    for a, b in itertools.pairwise(starts):
        if b - a > 1 and _offset(a, tz) != _offset(b - 1, tz):
            lo, hi, base = a, b - 1, _offset(a, tz)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(mid, tz) == base:
                    lo = mid
                else:
                    hi = mid
            cuts.add(hi)
    ordered = sorted(cuts)
    pieces: list[tuple[int, int, dt.date]] = []
    for lo, hi in itertools.pairwise(ordered):
        date = local_date(lo, tz)
        if not first <= date <= last:
            continue
        if pieces and pieces[-1][1] == lo and pieces[-1][2] == date:
            pieces[-1] = (pieces[-1][0], hi, date)
        else:
            pieces.append((lo, hi, date))
    return tuple(pieces)


def dates(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


# ---- text and rounding, as the server's helpers produce them -------------------------------------

CLOCKS = (
    "🕛", "🕧", "🕐", "🕜", "🕑", "🕝", "🕒", "🕞", "🕓", "🕟", "🕔", "🕠",
    "🕕", "🕡", "🕖", "🕢", "🕗", "🕣", "🕘", "🕤", "🕙", "🕥", "🕚", "🕦",
)  # fmt: skip
_SIMPLE = re.compile(r"\A(Start coding!|\d+h \d+m|\d+h|\d+m)\Z")


def short_time_simple(seconds: int) -> str:
    """``"1h 30m"``, ``"1h"``, ``"5m"``; a zero part is left out and under a minute is ``"0m"``."""
    hours, minutes = seconds // 3600, seconds % 3600 // 60
    parts = [f"{hours}h"] if hours else []
    if minutes:
        parts.append(f"{minutes}m")
    return " ".join(parts) or "0m"


def clock_emoji(seconds: int) -> str:
    """One clock face per half hour, starting at twelve o'clock for 0 s."""
    return CLOCKS[(seconds // 1800) % len(CLOCKS)]


def statusbar_text(
    seconds: int, *, mode: str = "simple_text", goal_seconds: int | None = None, flavour: str = ""
) -> str:
    """``User#format_extension_text`` plus the day-goal suffix (§4.5).

    ``mode`` is the user's text type; ``compliment_text`` shows ``flavour`` (the server's last
    compliment) because compliments carry no time. ``goal_seconds`` adds ``" / 2h goal"``.
    """
    if mode == "clock_emoji":
        text = clock_emoji(seconds)
    elif mode == "compliment_text" and flavour:
        text = flavour
    else:
        text = short_time_simple(seconds) if seconds else "Start coding!"
    if goal_seconds is not None:
        text += f" / {short_time_simple(goal_seconds)} goal"
    return text


def text_mode(server_text: str) -> tuple[str, bool, str]:
    """Guess the user's text type from a statusbar text the server produced:
    (mode, shows the goal, the flavour text before any goal suffix).
    """
    head, sep, tail = server_text.partition(" / ")
    has_goal = bool(sep) and tail.endswith(" goal")
    if not has_goal:
        head = server_text
    if head in CLOCKS:
        return "clock_emoji", has_goal, head
    if _SIMPLE.match(head):
        return "simple_text", has_goal, head
    return "compliment_text", has_goal, head


def ruby_round(value: float, digits: int = 0) -> float:
    """``Float#round``: halves go away from zero (Python's ``round`` goes to even)."""
    scale = 10.0**digits
    return math.copysign(math.floor(abs(value) * scale + 0.5) / scale, value)


def percent_of(seconds: int, total: float) -> float:
    return ruby_round(seconds / total * 100, 2) if total else 0.0


def goal_figures(target: int, tracked: int) -> dict[str, int | bool]:
    """The statusbar's goal object: ``completion_percent = min(round(tracked/target·100), 100)``."""
    percent = int(min(ruby_round(tracked / target * 100), 100)) if target > 0 else 100
    return {
        "target_seconds": target,
        "tracked_seconds": tracked,
        "completion_percent": percent,
        "complete": tracked >= target,
    }


# ---- display names (ApplicationHelper) -----------------------------------------------------------

EDITOR_DISPLAY = {
    "vscode": "VSCode", "vs code": "VSCode", "pycharm": "PyCharm", "intellij": "IntelliJ IDEA",
    "intellijidea": "IntelliJ IDEA", "intellij idea": "IntelliJ IDEA", "webstorm": "WebStorm",
    "phpstorm": "PhpStorm", "datagrip": "DataGrip", "ktexteditor": "Kate",
    "android studio": "Android Studio", "visual studio": "Visual Studio",
    "sublime text": "Sublime Text", "iterm2": "iTerm2", "rubymine": "RubyMine", "opencode": "OpenCode",
    "claudecode": "Claude Code", "claude code": "Claude Code", "zoom.us": "Zoom",
    "windowspowershell": "PowerShell", "goland": "GoLand", "rustrover": "RustRover",
}  # fmt: skip
OS_DISPLAY = {
    "darwin": "macOS", "macos": "macOS", "mac": "macOS", "wsl": "WSL", "mozilla": "Firefox", "vscode": "VSCode",
}  # fmt: skip


def is_blank(value: str | None) -> bool:
    """ActiveSupport ``blank?`` for a string column: nil, empty or whitespace only."""
    return value is None or not value.strip()


def display_name(column: str, value: str | None) -> str:
    """How a group's name is shown in last_7_days lists: blank → ``unknown``, then editors and
    operating systems mapped (``vscode`` → ``VSCode``, ``darwin`` → ``macOS``)."""
    name = "unknown" if value is None or is_blank(value) else value
    if column == "editor":
        return EDITOR_DISPLAY.get(name.lower()) or name.capitalize()
    if column == "operating_system":
        return OS_DISPLAY.get(name.lower()) or name.capitalize()
    return name
