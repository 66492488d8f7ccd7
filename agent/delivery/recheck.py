"""When to ask the server again whether it accepts a key it rejected.

A 401 is not always final: the server may have hiccuped, or an account may be
restored. After a rejection the same key is re-checked (``GET users/current``)
1, 2, 5 and 10 minutes apart, then every 30 minutes, and delivery resumes the
moment it is accepted. Waiting is measured on a monotonic clock: wall time may
jump (suspend, NTP) and must neither fire every check at once nor stall them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

RECHECK_DELAYS: tuple[float, ...] = (60.0, 120.0, 300.0, 600.0, 1800.0)  # the last one repeats


class Waiting(Protocol):
    """A monotonic clock and a way to wait on it; tests pass a clock they drive by hand."""

    def monotonic(self) -> float: ...

    def wait(self, event: threading.Event, timeout: float | None) -> bool: ...


class RealTime:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        return event.wait(timeout)


class KeyRecheck:
    """The schedule of re-checks of one rejected key. Not thread-safe: the delivery thread owns it."""

    def __init__(self, waiting: Waiting, delays: Sequence[float] = RECHECK_DELAYS) -> None:
        self.waiting = waiting
        self.delays = tuple(delays)
        self._step = 0
        self._due: float | None = None
        self._resumed = False  # a check accepted the key and no delivery has succeeded since

    @property
    def active(self) -> bool:
        return self._due is not None

    def rejected(self) -> None:
        """The key was rejected: start the schedule (a rejection while it runs changes nothing).

        A key that a check accepted but uploads still reject (a server that answers reads and
        refuses writes, as for an account pending deletion) goes on to the next, longer step
        rather than back to one minute, so the two never ping-pong every minute.
        """
        if self._due is None:
            self._step = min(self._step + 1, len(self.delays) - 1) if self._resumed else 0
            self._due = self.waiting.monotonic() + self.delays[self._step]
            self._resumed = False

    def due_now(self) -> None:
        """Check at the next chance (the agent restarted with a key rejected before)."""
        self._due = self.waiting.monotonic()

    def accepted(self) -> None:
        """A check accepted the key: delivery resumes; the step is kept until an upload succeeds."""
        self._due = None
        self._resumed = True

    def due_in(self) -> float | None:
        """Seconds until the next check (0 when due), or None when no check is scheduled."""
        if self._due is None:
            return None
        return max(0.0, self._due - self.waiting.monotonic())

    def still_rejected(self) -> None:
        """A check found the key still rejected (or the server unreachable): schedule the next."""
        self._step = min(self._step + 1, len(self.delays) - 1)
        self._due = self.waiting.monotonic() + self.delays[self._step]

    def reset(self) -> None:
        """Delivery succeeded or the key changed: no check is due any more."""
        self._step = 0
        self._due = None
        self._resumed = False

    def next_delays(self) -> tuple[float, ...]:
        """For status: the delay of the current step and the ones after it."""
        return self.delays[self._step :]
