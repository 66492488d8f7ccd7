"""rack-attack as Hackatime configures it (hackatime-api.md §6), against the stand-in's clock.

Fixed windows, as rack-attack counts: a request falls in window ``floor(now / period)``, every
matching request increments that window's counter (throttled ones too), and the first throttle
whose counter exceeds its limit answers 429. Every client is one IP here, as behind a NAT.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from . import railsjson

_HEARTBEAT_POST = re.compile(r"\A/api/hackatime/v1/users/[^/]+/heartbeats(?:\.bulk)?\Z")
RATE_LIMIT_MESSAGE = "Woah there, way too fast, take a chill pill speedy gonzales!"


@dataclass(frozen=True)
class ThrottleLimits:
    """``(limit, period_seconds)`` per throttle; scale them down to make a pacing test quick."""

    general: tuple[int, int] = (300, 60)  # every path but /assets, heartbeat POSTs included
    heartbeat_uploads: tuple[int, int] = (360, 60)  # POST …/heartbeats and …/heartbeats.bulk
    api: tuple[int, int] = (10_000, 3600)  # everything under /api/
    posts: tuple[int, int] = (60, 300)  # POSTs that are not heartbeat uploads


@dataclass(frozen=True)
class Throttled:
    limit: int
    retry_after: int
    reset_epoch: int


def is_heartbeat_post(method: str, path: str) -> bool:
    return method == "POST" and _HEARTBEAT_POST.match(path) is not None


class Throttle:
    def __init__(self, limits: ThrottleLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}

    def _applicable(self, method: str, path: str) -> list[tuple[str, tuple[int, int]]]:
        heartbeat = is_heartbeat_post(method, path)
        rules = [
            ("general", self.limits.general, not path.startswith("/assets")),
            ("heartbeat_uploads", self.limits.heartbeat_uploads, heartbeat),
            ("api", self.limits.api, path.startswith("/api/")),
            ("posts", self.limits.posts, method == "POST" and not heartbeat),
        ]
        return [(name, limit) for name, limit, applies in rules if applies]

    def check(self, method: str, path: str, now: float) -> Throttled | None:
        epoch = int(now)
        with self._lock:
            for name, (limit, period) in self._applicable(method, path):
                window = epoch // period
                key = (name, window)
                if key not in self._counts:
                    # A new window: forget the ones that can no longer be hit.
                    self._counts = {k: v for k, v in self._counts.items() if k[0] != name or k[1] >= window}
                self._counts[key] = count = self._counts.get(key, 0) + 1
                if count > limit:
                    retry_after = period - epoch % period
                    return Throttled(limit, retry_after, epoch + retry_after)
        return None


def rate_limited(throttled: Throttled) -> tuple[bytes, list[tuple[str, str]]]:
    """rack-attack's 429 body and headers."""
    reset_at = railsjson.iso_seconds(throttled.reset_epoch)
    body = railsjson.dumpb(
        {
            "error": "Rate limit exceeded",
            "message": RATE_LIMIT_MESSAGE,
            "retry_after": throttled.retry_after,
            "reset_at": reset_at,
        }
    )
    headers = [
        ("Retry-After", str(throttled.retry_after)),
        ("X-RateLimit-Limit", str(throttled.limit)),
        ("X-RateLimit-Remaining", "0"),
        ("X-RateLimit-Reset", str(throttled.reset_epoch)),
        ("X-RateLimit-Reset-At", reset_at),
    ]
    return body, headers
