"""The agent's wall-clock jobs, on one scheduler thread: the end of a pause, the periodic refresh
of the server's figures, the daily store backup. Delivery is not here: it is driven by events.

Jobs are due at wall-clock times (epoch seconds). The thread sleeps until the earliest one,
but never more than a minute at a time, so a laptop that slept or a clock that was set
notices within a minute; a job that fell due meanwhile runs once, late rather than never.
Local times are computed with ``zoneinfo`` in the system's zone (tzlocal), DST included.

Not APScheduler (design.md names it for these jobs): importing it costs the agent 2.9 MiB
(63 modules: asyncio, multiprocessing, concurrent.futures and importlib.metadata come with it,
whichever executor is configured), which takes the agent watching 20,000 folders from 42.5 to
45.4 MiB, over its 42.9 MiB budget; three timers do not need it. The interface below is the one an
APScheduler-backed version would offer, should the budget allow it later.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import tzlocal

__all__ = ["Jobs", "local_zone", "next_local_midnight"]

log = logging.getLogger(__name__)

LONGEST_SLEEP = 60.0  # seconds: how late a job may run after a suspend or a clock change


def local_zone() -> ZoneInfo:
    """The system's time zone (UTC when it cannot be told)."""
    try:
        zone = tzlocal.get_localzone()
    except Exception:  # tzlocal raises its own errors for odd system setups
        log.warning("cannot tell the local time zone; using UTC")
        return ZoneInfo("UTC")
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo("UTC")


def next_local_midnight(now: float, zone: ZoneInfo) -> float:
    """The first instant of the next local day after ``now`` (epoch seconds), DST included.

    A day is not always 24 hours long, so this is the calendar's next date at 00:00 in
    ``zone``; where 00:00 does not exist (a DST jump at midnight) it is the first instant
    that does.
    """
    today = dt.datetime.fromtimestamp(now, zone).date()
    midnight = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return midnight.timestamp()


@dataclass(order=True)
class _Entry:
    due: float
    order: int
    job_id: str = field(compare=False)
    func: Callable[[], None] = field(compare=False)
    period: float | None = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Jobs:
    """One thread runs every job, one at a time, at (or just after) its wall-clock time.

    ``clock`` is the wall clock the due times are read against (tests pass their own and
    call :meth:`run_due`); the thread waits on real time, a minute at most.
    """

    def __init__(self, zone: ZoneInfo | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.zone = zone or local_zone()
        self.clock = clock
        self._heap: list[_Entry] = []
        self._by_id: dict[str, _Entry] = {}
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            self._stopping = False
        self._thread = threading.Thread(target=self._run, name="jobs", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop, waiting for a job in progress; joins the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def at(self, job_id: str, when: float, func: Callable[[], None]) -> None:
        """Run ``func`` once at ``when`` (epoch seconds), replacing the job of that id."""
        self._add(job_id, when, func, None)

    def every(self, job_id: str, seconds: float, func: Callable[[], None], *, delay: float | None = None) -> None:
        """Run ``func`` every ``seconds``, the first time after ``delay`` seconds (default: one period)."""
        self._add(job_id, self.clock() + (seconds if delay is None else delay), func, seconds)

    def cancel(self, job_id: str) -> None:
        with self._cond:
            entry = self._by_id.pop(job_id, None)
            if entry is not None:
                entry.cancelled = True

    def next_run(self, job_id: str) -> float | None:
        """When the job runs next (epoch seconds), None when there is no such job."""
        with self._cond:
            entry = self._by_id.get(job_id)
            return None if entry is None else entry.due

    def run_due(self) -> int:
        """Run every job due by ``clock()`` now, on the calling thread; how many ran."""
        ran = 0
        while (entry := self._take_due()) is not None:
            self._call(entry)
            ran += 1
        return ran

    def _add(self, job_id: str, due: float, func: Callable[[], None], period: float | None) -> None:
        with self._cond:
            old = self._by_id.get(job_id)
            if old is not None:
                old.cancelled = True
            entry = _Entry(due, next(self._order), job_id, func, period)
            self._by_id[job_id] = entry
            heapq.heappush(self._heap, entry)
            self._cond.notify_all()

    def _take_due(self) -> _Entry | None:
        """The earliest due job, rescheduled first if it repeats; None when none is due."""
        with self._cond:
            while self._heap and self._heap[0].cancelled:
                heapq.heappop(self._heap)
            if not self._heap or self._heap[0].due > self.clock():
                return None
            entry = heapq.heappop(self._heap)
            if entry.period is None:
                del self._by_id[entry.job_id]
            else:
                # Missed runs (a suspend) are not made up one by one: the next is a period from now.
                due = entry.due + entry.period
                if due <= self.clock():
                    due = self.clock() + entry.period
                again = _Entry(due, next(self._order), entry.job_id, entry.func, entry.period)
                self._by_id[entry.job_id] = again
                heapq.heappush(self._heap, again)
            return entry

    def _call(self, entry: _Entry) -> None:
        try:
            entry.func()
        except Exception:  # one failing job must not stop the others
            log.exception("scheduled job %s failed", entry.job_id)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                wait = LONGEST_SLEEP if not self._heap else self._heap[0].due - self.clock()
                if wait > 0:
                    self._cond.wait(min(wait, LONGEST_SLEEP))
                    continue
            self.run_due()
