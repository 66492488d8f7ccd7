"""Pacing against Hackatime's fixed-window limits, on a simulated clock; backoff; Retry-After."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from agent.delivery.pacing import Backoff, RateLimiter, hackatime_buckets, retry_after_seconds


class SimClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> bool:
        self.now += seconds
        return False  # never asked to stop


@pytest.mark.parametrize("offset", [0.0, 17.3, 59.99])
def test_two_hours_of_flat_out_requests_stay_under_every_window(offset: float) -> None:
    clock = SimClock(3600 * 100 + offset)
    limiter = RateLimiter(hackatime_buckets(clock()), clock=clock, wait=clock.sleep)
    sent: list[float] = []
    start = clock()
    while clock() - start < 2 * 3600:
        assert limiter.acquire()
        sent.append(clock())
    per_minute = Counter(int(t // 60) for t in sent)
    per_hour = Counter(int(t // 3600) for t in sent)
    # rack-attack counts per fixed window: 300 a minute on every path, 10,000 /api requests an hour.
    assert max(per_minute.values()) <= 300
    assert max(per_hour.values()) <= 10_000
    # ...while using at least 95 % of what the hourly limit allows.
    assert len(sent) >= 0.95 * 2 * 10_000


def test_backoff_grows_caps_and_resets() -> None:
    backoff = Backoff(base=2, cap=300, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(12)]
    for n, delay in enumerate(delays):
        step = min(300, 2 * 2**n)
        assert step / 2 <= delay <= step
    assert max(delays) <= 300
    backoff.reset()
    assert backoff.next_delay() <= 2


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"retry-after": "17"}, None, 17),
        ({"retry-after": "Thu, 01 Jan 1970 00:01:40 GMT"}, None, 40),
        ({"x-ratelimit-reset": "130"}, None, 70),
        ({}, {"retry_after": 9}, 9),
        ({}, "garbage", 60),
    ],
)
def test_retry_after(headers: dict[str, str], body: object, expected: float) -> None:
    assert retry_after_seconds(headers, body, now=60) == pytest.approx(expected)
