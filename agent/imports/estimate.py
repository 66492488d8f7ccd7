"""How long uploading imported history takes at Hackatime's limits (hackatime-api.md §6)."""

from __future__ import annotations

import math

from agent.delivery.pacing import hackatime_buckets


def upload_seconds(heartbeats: int, per_request: int = 100) -> float:
    """Seconds to upload ``heartbeats`` paced as the outbox paces: 100 a request, and the
    slowest of the rate limiter's buckets decides (a million is about an hour)."""
    requests = math.ceil(heartbeats / per_request)
    return max(max(0.0, requests - b.capacity) / b.rate for b in hackatime_buckets(0.0))
