"""Human-readable duration texts and Ruby's rounding, as the server's helpers produce them."""

from __future__ import annotations

import hashlib
import math

# ApplicationHelper#time_in_emoji: one face per half hour, starting at twelve o'clock.
CLOCKS = (
    "🕛", "🕧", "🕐", "🕜", "🕑", "🕝", "🕒", "🕞", "🕓", "🕟", "🕔", "🕠",
    "🕕", "🕡", "🕖", "🕢", "🕗", "🕣", "🕘", "🕤", "🕙", "🕥", "🕚", "🕦",
)  # fmt: skip
COMPLIMENTS = (
    "You're doing great!",
    "Keep it up!",
    "Look at you go!",
    "You're on fire!",
    "Nice work!",
)


def ruby_round(value: float, digits: int = 0) -> float:
    """``Float#round``: halves go away from zero (Python's ``round`` goes to even)."""
    scale = 10.0**digits
    return math.copysign(math.floor(abs(value) * scale + 0.5) / scale, value)


def short_time_simple(seconds: int) -> str:
    """``"1h 30m"``; a zero part is left out, and anything under a minute reads ``"0m"``."""
    hours, minutes = seconds // 3600, seconds % 3600 // 60
    parts = [f"{hours}h"] if hours else []
    if minutes:
        parts.append(f"{minutes}m")
    return " ".join(parts) or "0m"


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


def clock_emoji(seconds: int) -> str:
    return CLOCKS[(seconds // 1800) % len(CLOCKS)]


def compliment(user_id: int, now: float) -> str:
    """Stable for a 7-minute bucket per user, like the server (which seeds its own PRNG instead)."""
    bucket = int(now) // (7 * 60)
    seed = int(hashlib.md5(f"{user_id}-{bucket}".encode()).hexdigest(), 16)
    return COMPLIMENTS[seed % len(COMPLIMENTS)]
