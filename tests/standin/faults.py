"""Injectable failures, consumed one request at a time in the order they were queued."""

from __future__ import annotations

import enum
import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

FaultScope = Literal["heartbeats", "reads", "all"]


class Fault(enum.Enum):
    """What the next matching request gets instead of (or on top of) the normal answer."""

    # Answered before the app sees the request: nothing is stored.
    SERVER_ERROR_500 = "500"
    BAD_GATEWAY_502 = "502"  # a Cloudflare HTML page, not JSON
    SERVICE_UNAVAILABLE_503 = "503"  # likewise
    BAD_REQUEST_400 = "400"
    UNAUTHORIZED_401 = "401"
    RATE_LIMITED_429 = "429"  # rack-attack's JSON body and headers; see ``retry_after``
    CONNECTION_RESET = "reset"  # TCP RST before any byte of a response
    HANG = "hang"  # no answer until ``release_hangs()`` or ``stop()``; then the connection is reset
    # The request is handled (and stored) normally, then the answer is spoiled.
    LOST_AFTER_STORE = "lost"  # stored, then the connection is reset: the client never learns
    MALFORMED_201 = "malformed"  # status and length consistent, but the JSON is cut in half
    TRUNCATED_201 = "truncated"  # Content-Length promises more than is sent before the close
    SHORT_RESPONSES_201 = "short"  # ``responses`` lists fewer items than the request held
    HELD_201 = "held"  # stored, then the answer waits until ``release_hangs()`` and is sent whole

    @property
    def stores(self) -> bool:
        """Whether the request still reaches the app (and so may store heartbeats)."""
        return self in _AFTER_APP


_AFTER_APP = frozenset(
    (Fault.LOST_AFTER_STORE, Fault.MALFORMED_201, Fault.TRUNCATED_201, Fault.SHORT_RESPONSES_201, Fault.HELD_201)
)


@dataclass
class _Entry:
    fault: Fault
    remaining: int
    scope: FaultScope
    retry_after: int
    drop: int


@dataclass(frozen=True)
class Injected:
    """One fault taken for one request, with its parameters."""

    fault: Fault
    retry_after: int = 60  # RATE_LIMITED_429: seconds in Retry-After and the body
    drop: int = 1  # SHORT_RESPONSES_201: how many trailing results to leave out


class FaultQueue:
    """FIFO of injected faults. A request takes from the first entry whose scope it matches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: deque[_Entry] = deque()

    def add(self, fault: Fault, times: int, scope: FaultScope, retry_after: int, drop: int) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._entries.append(_Entry(fault, times, scope, retry_after, drop))

    def take(self, *, is_heartbeat_post: bool, is_read: bool) -> Injected | None:
        with self._lock:
            for entry in self._entries:
                if (
                    entry.scope == "all"
                    or (entry.scope == "heartbeats" and is_heartbeat_post)
                    or (entry.scope == "reads" and is_read)
                ):
                    entry.remaining -= 1
                    if entry.remaining == 0:
                        self._entries.remove(entry)
                    return Injected(entry.fault, entry.retry_after, entry.drop)
        return None

    def pending(self) -> int:
        with self._lock:
            return sum(entry.remaining for entry in self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
