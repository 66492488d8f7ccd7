"""Delivery: the outbox that sends stored heartbeats to Hackatime in paced bulk requests,
settles each item by the server's answer, and backs off when the server or network fails.
"""

from .hackatime import HackatimeClient
from .outbox import DrainResult, Outbox, Outcome, PassResult, Verdict, item_verdict
from .pacing import Backoff, RateLimiter, TokenBucket, hackatime_buckets, retry_after_seconds

__all__ = [
    "Backoff",
    "DrainResult",
    "HackatimeClient",
    "Outbox",
    "Outcome",
    "PassResult",
    "RateLimiter",
    "TokenBucket",
    "Verdict",
    "hackatime_buckets",
    "item_verdict",
    "retry_after_seconds",
]
