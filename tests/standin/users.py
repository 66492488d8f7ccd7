"""The accounts the stand-in knows, keyed by API key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TextMode = Literal["simple_text", "clock_emoji", "compliment_text"]

DEFAULT_API_KEY = "0b6a3e1e-6c1f-4d1e-9a5b-2f3c4d5e6f70"


@dataclass(frozen=True)
class User:
    """One Hackatime account. Only what the endpoints in hackatime-api.md read is modelled."""

    id: int
    username: str
    timezone: str = "UTC"  # IANA name; an invalid or blank one falls back to UTC, like the server
    day_goal: int | None = None  # seconds of a ``period: "day"`` goal, or no goal
    text_mode: TextMode = "simple_text"  # ``hackatime_extension_text_type``
    display_name: str | None = None
    slack_uid: str | None = None  # what stats/last_7_days reports as username and user_id
    show_goals_in_statusbar: bool = True
    public_stats: bool = True  # ``allow_public_stats_lookup``
    pending_deletion: bool = False  # heartbeat POST → 403, /api/v1/my/* → 401
    created_at: float = 1_735_689_600.0  # 2025-01-01T00:00:00Z
    archived_projects: tuple[str, ...] = ()  # left out of /authenticated/projects unless include_archived

    @property
    def shown_name(self) -> str:
        return self.display_name or self.username


DEFAULT_USER = User(id=1, username="orpheus", timezone="UTC")
