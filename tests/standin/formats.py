"""Human-readable duration texts and Ruby's rounding, as the server's helpers produce them."""

from __future__ import annotations

import hashlib

# Statusbar text rules (§4.5) are shared with the agent, which must format exactly as the server does.
from agent.stats.durations import CLOCKS as CLOCKS
from agent.stats.durations import clock_emoji as clock_emoji
from agent.stats.durations import ruby_round as ruby_round
from agent.stats.durations import short_time_simple as short_time_simple

COMPLIMENTS = (
    "You're doing great!",
    "Keep it up!",
    "Look at you go!",
    "You're on fire!",
    "Nice work!",
)


def short_time_detailed(seconds: int) -> str:
    """``"10h"``, ``"9s"``, ``"1h 2m 3s"``; an empty string for zero, as the helper joins no parts."""
    parts = []
    for value, unit in ((seconds // 3600, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")):
        if value:
            parts.append(f"{value}{unit}")
    return " ".join(parts)


def hrs_mins(seconds: int) -> str:
    return f"{seconds // 3600} hrs {seconds % 3600 // 60} mins"


def digital(seconds: int) -> str:
    """``"7:00:00"`` (stats/last_7_days)."""
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def digital_padded(seconds: int) -> str:
    """``"08:20:00"`` (summaries and /api/v1 stats)."""
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def compliment(user_id: int, now: float) -> str:
    """Stable for a 7-minute bucket per user, like the server (which seeds its own PRNG instead)."""
    bucket = int(now) // (7 * 60)
    seed = int(hashlib.md5(f"{user_id}-{bucket}".encode()).hexdigest(), 16)
    return COMPLIMENTS[seed % len(COMPLIMENTS)]
