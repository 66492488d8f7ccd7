"""Pacing: a token-bucket limiter under Hackatime's limits, and capped backoff.

Hackatime throttles per IP with fixed windows (hackatime-api.md §6): 300 requests
a minute on every path, 360 heartbeat POSTs a minute, 10,000 /api requests an
hour. A token bucket with capacity C and rate r admits at most C + r·T requests
in any window of length T, so each bucket's rate is set a little under the limit
and its capacity small enough that C + r·T stays under it.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float
    updated: float

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait_time(self, now: float) -> float:
        self._refill(now)
        # Refills add float error: a bucket at 0.9999999 tokens is full enough, and a shorter
        # wait than 1 ms could be too small to move a large clock value forward at all.
        if self.tokens >= 1 - 1e-6:
            return 0.0
        return max((1 - self.tokens) / self.rate, 1e-3)

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1


def hackatime_buckets(
    now: float, margin: float = 0.97, per_minute: int = 300, per_hour: int = 10_000
) -> list[TokenBucket]:
    """Buckets that keep a client under Hackatime's published per-IP limits.

    Capacities are sized so capacity + margin·limit stays below the limit in every window:
    5 of 300 a minute, 2 % of the hourly limit.
    """
    minute_cap = max(1.0, per_minute / 60)
    hour_cap = max(1.0, per_hour / 50)
    general = TokenBucket(rate=margin * per_minute / 60, capacity=minute_cap, tokens=minute_cap, updated=now)
    hourly = TokenBucket(rate=margin * per_hour / 3600, capacity=hour_cap, tokens=hour_cap, updated=now)
    return [general, hourly]


class RateLimiter:
    """Admit one request at a time when every bucket has a token; shared by all requests to a host."""

    def __init__(
        self,
        buckets: list[TokenBucket] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self._clock = clock
        self._buckets = buckets if buckets is not None else hackatime_buckets(clock())
        self._lock = threading.Lock()
        # ``wait(seconds)`` returns True when the caller should give up (stop requested).
        self._wait = wait or (lambda s: threading.Event().wait(s))

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Block until a request may be sent; False when ``stop`` was set meanwhile."""
        while True:
            with self._lock:
                now = self._clock()
                delay = max(b.wait_time(now) for b in self._buckets)
                if delay <= 0:
                    for b in self._buckets:
                        b.take(now)
                    return True
            if stop is not None:
                if stop.wait(delay):
                    return False
            elif self._wait(delay):
                return False


class Backoff:
    """Exponential backoff with jitter, capped; reset on success."""

    def __init__(self, base: float = 2.0, cap: float = 300.0, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.failures)
        self.failures += 1
        # "Equal jitter": never less than half the step, so a flapping server is not hammered,
        # yet clients that failed together spread out.
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.failures = 0


def retry_after_seconds(headers: Mapping[str, str], body: object, now: float, default: float = 60.0) -> float:
    """How long a 429 asks us to wait: Retry-After (seconds or HTTP date), then the body, then a default."""
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            parsed = email.utils.parsedate_to_datetime(value)
            return max(0.0, parsed.timestamp() - now)
        except (TypeError, ValueError):
            pass
    reset = headers.get("x-ratelimit-reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - now)
    if isinstance(body, dict):
        seconds = body.get("retry_after")
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds >= 0:
            return float(seconds)
    return default
