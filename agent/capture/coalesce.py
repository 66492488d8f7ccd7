"""Coalescing saves into heartbeats: a pure state machine driven by the caller's clock.

No I/O, no threads, no clock of its own: every call says what time it is, so the
rules are tested with plain numbers. The watcher feeds it saves (``add``) and asks
what is due (``due``); building and storing the heartbeats is the watcher's job.

* **Per file**, at most one heartbeat per window (30 s): the first save goes out
  after a short delay (0.3 s, which also lets an atomic save's rename arrive),
  later saves inside the window are merged and the last one goes out when the
  window closes (trailing edge).
* **Mass changes.** When 20 or more different files of one project change within
  2 seconds, a tool is at work (checkout, formatter, build). From then until the
  project has been quiet for 2 seconds its changes count as one: at most one
  heartbeat per project per window (the most recently changed file that can be
  built), so a 5,000-file checkout records one heartbeat. Files that became due
  before the threshold was reached — only possible for tools slower than about
  60 files a second — are recorded normally, so at most 19 more.
"""

from __future__ import annotations

import enum
import os
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "DELAY",
    "MASS_CHANGE_FILES",
    "MASS_CHANGE_QUIET",
    "MASS_CHANGE_WINDOW",
    "WINDOW",
    "Coalescer",
    "Due",
    "Taken",
]

WINDOW = 30.0  # seconds: at most one heartbeat per file (or per mass change) per window
DELAY = 0.3  # seconds between a save and its leading-edge heartbeat
MASS_CHANGE_FILES = 20  # different files of one project ...
MASS_CHANGE_WINDOW = 2.0  # ... changed within this many seconds make a mass change
MASS_CHANGE_QUIET = 2.0  # a mass change ends after this many seconds without changes


class Taken(enum.Enum):
    """What :meth:`Coalescer.add` did with a save."""

    FILE = "file"  # pending on its own
    MASS_CHANGE = "mass-change"  # merged into its project's ongoing mass change
    MASS_CHANGE_STARTED = "mass-change-started"  # this save made its project a mass change


class Due(NamedTuple):
    """One heartbeat to build: the first of ``choices`` (path, save time) that builds.

    A file has one choice; a mass change lists its most recent files, newest first,
    because the newest may be gone or binary by the time it is built.
    """

    choices: list[tuple[str, float]]
    mass_change: bool


@dataclass
class _Pending:
    first: float
    last: float
    key: str


@dataclass
class _Burst:
    """A mass change in one project: its changes are recorded as one heartbeat per window."""

    key: str
    last: float
    dirty_since: float | None = None
    last_emit: float | None = None
    paths: deque[tuple[str, float]] = field(default_factory=lambda: deque(maxlen=8))

    def add(self, path: str, when: float) -> None:
        self.last = max(self.last, when)
        if self.dirty_since is None:
            self.dirty_since = when
        if self.paths and self.paths[-1][0] == path:
            self.paths[-1] = (path, when)
        else:
            self.paths.append((path, when))


class Coalescer:
    """Saves in, heartbeats due out. Not thread-safe, except :meth:`next_due_in`, which only reads."""

    def __init__(self, *, window: float = WINDOW, delay: float = DELAY) -> None:
        self.window = float(window)
        self.delay = float(delay)
        self._pending: dict[str, _Pending] = {}
        self._last_emit: dict[str, float] = {}
        self._recent: dict[str, dict[str, float]] = {}
        self._bursts: dict[str, _Burst] = {}
        self._last_housekeeping = 0.0

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def mass_changes(self) -> int:
        """Mass changes in progress."""
        return len(self._bursts)

    def add(self, path: str, when: float, key: str) -> Taken:
        """A save of ``path`` at ``when``; ``key`` names its project (the mass-change unit)."""
        burst = self._bursts.get(key)
        started = False
        if burst is None:
            recent = self._recent.setdefault(key, {})
            recent[path] = when
            if len(recent) >= MASS_CHANGE_FILES:
                horizon = when - MASS_CHANGE_WINDOW
                for old in [p for p, t in recent.items() if t < horizon]:
                    del recent[old]
                if len(recent) >= MASS_CHANGE_FILES:
                    burst = self._start_burst(key, when)
                    started = True
        if burst is not None:
            burst.add(path, when)
            return Taken.MASS_CHANGE_STARTED if started else Taken.MASS_CHANGE
        pending = self._pending.get(path)
        if pending is None:
            self._pending[path] = _Pending(first=when, last=when, key=key)
        else:
            pending.last = max(pending.last, when)
        return Taken.FILE

    def _start_burst(self, key: str, when: float) -> _Burst:
        burst = _Burst(key=key, last=when)
        absorbed = sorted((p.last, path) for path, p in self._pending.items() if p.key == key)
        for last, path in absorbed:
            del self._pending[path]
            burst.add(path, last)
        self._bursts[key] = burst
        self._recent.pop(key, None)
        return burst

    def forget(self, path: str) -> None:
        """The file was deleted or moved away: nothing of it is due any more."""
        self._pending.pop(path, None)

    def forget_tree(self, folder: str) -> None:
        """A folder was deleted or moved away: nothing below it is due any more."""
        prefix = folder.rstrip(os.sep) + os.sep
        for path in [p for p in self._pending if p.startswith(prefix)]:
            del self._pending[path]

    def _due_at(self, path: str, pending: _Pending) -> float:
        last_emit = self._last_emit.get(path)
        due = pending.first + self.delay
        if last_emit is not None:
            due = max(due, last_emit + self.window)
        return due

    def _burst_due_at(self, burst: _Burst) -> float:
        if burst.dirty_since is None:
            return float("inf")
        # When the tool is done (quiet), or a window after the first change if it never stops.
        due = min(burst.last + MASS_CHANGE_QUIET, burst.dirty_since + self.window)
        if burst.last_emit is not None:
            due = max(due, burst.last_emit + self.window)
        return due

    def next_due_in(self, now: float) -> float | None:
        """Seconds until something is due (0 when overdue), or None when nothing is pending.

        Safe beside a writer on another thread: it reads copies.
        """
        pending = list(self._pending.items())
        bursts = list(self._bursts.values())
        if not pending and not bursts:
            return None
        due = [self._due_at(path, p) for path, p in pending]
        due += [self._burst_due_at(b) for b in bursts]
        # Bursts without changes still need a wake-up to end.
        due += [b.last + MASS_CHANGE_QUIET for b in bursts]
        wait = min(due) - now
        # A little slack so a wake-up never lands just before the due time and spins.
        return 0.0 if wait <= 0 else wait + 0.002

    def due(self, now: float, *, force: bool = False) -> list[Due]:
        """Take what is due at ``now`` (everything, trailing edges included, with ``force``)."""
        out: list[Due] = []
        for path, pending in list(self._pending.items()):
            if force or now >= self._due_at(path, pending):
                del self._pending[path]
                self._last_emit[path] = now
                out.append(Due([(path, pending.last)], False))
        for key, burst in list(self._bursts.items()):
            if burst.dirty_since is not None and (force or now >= self._burst_due_at(burst)):
                out.append(Due(list(reversed(burst.paths)), True))
                burst.dirty_since = None
                burst.last_emit = now
                burst.paths.clear()
            if burst.dirty_since is None and (force or now >= burst.last + MASS_CHANGE_QUIET):
                del self._bursts[key]
        if now - self._last_housekeeping > self.window:
            self._housekeeping(now)
        return out

    def _housekeeping(self, now: float) -> None:
        """Forget what can no longer change a decision: emits older than a window, stale counts."""
        self._last_housekeeping = now
        horizon = now - self.window
        for path in [p for p, t in self._last_emit.items() if t < horizon]:
            del self._last_emit[path]
        for key in list(self._recent):
            recent = self._recent[key]
            if not recent or max(recent.values()) < now - MASS_CHANGE_WINDOW:
                del self._recent[key]
