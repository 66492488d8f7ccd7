"""The tray's picture of the agent: the latest status and stats, kept fresh off the GUI thread.

Freshness comes from two sources (Maestral's ``status_change_longpoll`` pattern):
a long-poll on ``/agent/v1/events`` that returns as soon as anything changes
(heartbeat, delivery, pause), and slow timers as a safety net and to keep the
"3 min ago" wording honest. Requests are coalesced — at most one status and one
stats call in flight, one more queued — so a burst of heartbeats, or a refresh
asked for every second for an hour, never piles up work.

When the agent stops answering, the last figures are kept (the UI says how old
they are) and the model probes every couple of seconds until it is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from agent import contract as C

from . import shown_notices, state
from .client import AgentClient, AgentError, AgentUnavailable, Cancelled
from .tasks import TaskRunner

log = logging.getLogger(__name__)


class AgentModel(QObject):
    changed = Signal()  # status, stats, availability or an action's progress changed
    stats_changed = Signal()
    availability_changed = Signal(bool)
    notice = Signal(object)  # state.Notice, for the tray to show
    sync_finished = Signal(object)  # the /sync answer
    action_failed = Signal(str)  # a sentence for the user

    def __init__(
        self,
        client: AgentClient,
        runner: TaskRunner,
        *,
        clock: Callable[[], float] = time.time,
        status_interval_s: float = 30.0,
        stats_interval_s: float = 120.0,
        down_interval_s: float = 2.0,
        longpoll_s: float = 25.0,
        stats_min_gap_s: float = 5.0,
        notifications: state.NotificationTracker | None = None,
        notices_dir: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        """``notices_dir``: where the tray keeps the agent's notices it has shown, so that a restart
        does not pop them up again (its config dir); None: for this run only (the window process,
        which pops up nothing)."""
        super().__init__(parent)
        self.client = client
        self.runner = runner
        self.clock = clock
        self.status: C.Status | None = None
        self.stats: C.StatsSnapshot | None = None
        self.available: bool | None = None
        self.error: str | None = None
        self.syncing = False
        self.status_at: float | None = None
        self.stats_at: float | None = None
        self.longpoll_s = longpoll_s
        self.stats_min_gap_s = stats_min_gap_s
        self.status_interval_s = status_interval_s
        self.down_interval_s = down_interval_s
        self._tracker = notifications or state.NotificationTracker()
        self._notices_dir = notices_dir
        if notices_dir is not None:
            self._tracker.shown_notices = shown_notices.load(notices_dir)
        self._saved_notices = set(self._tracker.shown_notices)
        self._seq: int | None = None
        self._want_status = self._want_stats = False
        self._status_busy = self._stats_busy = self._poll_busy = False
        self._stopped = True

        # Coarse timers: a few ms of slack lets the OS batch wake-ups (idle CPU ≈ 0).
        self._status_timer = self._timer(status_interval_s, lambda: self.refresh(stats=False))
        self._stats_timer = self._timer(stats_interval_s, self.refresh)
        self._stats_soon = self._timer(stats_min_gap_s, self._stats_now, single=True)
        self._poll_retry = self._timer(30.0, self._poll, single=True)

    def _timer(self, seconds: float, slot: Callable[[], None], single: bool = False) -> QTimer:
        timer = QTimer(self)
        timer.setInterval(int(seconds * 1000))
        timer.setSingleShot(single)
        timer.timeout.connect(slot)
        return timer

    # ---- lifetime -----------------------------------------------------------------

    def start(self) -> None:
        self._stopped = False
        self._status_timer.start()
        self._stats_timer.start()
        self.refresh()

    def stop(self) -> None:
        """Stop every timer and abort calls in flight (the long-poll returns at once)."""
        self._stopped = True
        for timer in (self._status_timer, self._stats_timer, self._stats_soon, self._poll_retry):
            timer.stop()
        self.client.close()

    # ---- refreshing ---------------------------------------------------------------

    def refresh(self, stats: bool = True) -> None:
        self._want_status = True
        self._want_stats = self._want_stats or stats
        self._pump()

    def _pump(self) -> None:
        if self._stopped:
            return
        if self._want_status and not self._status_busy:
            self._want_status, self._status_busy = False, True
            self.runner.run(self.client.status, self._on_status, self._on_status_error, name="status")
        if self._want_stats and not self._stats_busy and self.available is not False:
            self._want_stats, self._stats_busy = False, True
            self.runner.run(self._fetch_stats, self._on_stats, self._on_stats_error, name="stats")

    def _fetch_stats(self) -> C.StatsSnapshot:
        """Runs on the pool: the snapshot, every figure the tray and the dashboard show."""
        return self.client.stats()

    def _stats_now(self) -> None:
        self._want_stats = True
        self._pump()

    def _on_change(self) -> None:
        """The agent says something changed: status now, stats soon (at most every few seconds)."""
        self.refresh(stats=False)
        since = self.clock() - (self.stats_at or 0.0)
        if since >= self.stats_min_gap_s:
            self._stats_now()
        elif not self._stats_soon.isActive():
            self._stats_soon.start(int((self.stats_min_gap_s - since) * 1000) + 1)

    def _on_status(self, status: C.Status) -> None:
        self._status_busy = False
        self._accept_status(status)
        self._pump()

    def _accept_status(self, status: C.Status) -> None:
        now = self.clock()
        self.status, self.status_at = status, now
        self.error = None
        self._set_available(True)
        seq = status.get("seq")
        if isinstance(seq, int) and self._seq is None:
            # Only the first status seeds the long-poll; after that only the poll's own
            # answers move it on. The agent reads seq before the figures, so a change
            # while the status was built makes the poll answer at once rather than vanish.
            self._seq = seq
        self._poll()
        for notice in self._tracker.on_status(status, now):
            self.notice.emit(notice)
        self._save_shown_notices()
        self.changed.emit()

    def _save_shown_notices(self) -> None:
        """Written only when it changed: a notice shown or dismissed, a few times a year."""
        shown = self._tracker.shown_notices
        if self._notices_dir is not None and shown != self._saved_notices:
            self._saved_notices = set(shown)
            shown_notices.save(self._notices_dir, shown)

    def _on_status_error(self, exc: BaseException) -> None:
        self._status_busy = False
        self._failed(exc)
        self._pump()

    def _on_stats(self, stats: C.StatsSnapshot) -> None:
        self._stats_busy = False
        self.stats, self.stats_at = stats, self.clock()
        for notice in self._tracker.on_stats(stats):
            self.notice.emit(notice)
        self.stats_changed.emit()
        self.changed.emit()
        self._pump()

    def _on_stats_error(self, exc: BaseException) -> None:
        self._stats_busy = False
        self._failed(exc)
        self._pump()

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled) or self._stopped:
            return
        if isinstance(exc, AgentUnavailable):
            self.error = str(exc)
            self._set_available(False)
        elif isinstance(exc, AgentError):
            self.error = str(exc)
        else:
            log.error("agent call failed", exc_info=exc)
            self.error = f"unexpected error: {exc}"
        self.changed.emit()

    def _set_available(self, available: bool) -> None:
        if available == self.available:
            return
        was_down = self.available is False
        self.available = available
        # While the agent is away, probe often so the tray recovers within seconds.
        interval = self.status_interval_s if available else self.down_interval_s
        self._status_timer.setInterval(int(interval * 1000))
        self.availability_changed.emit(available)
        if available and was_down:
            self._want_stats = True
            self._seq = None  # maybe another agent process: its own count; the next status seeds it

    # ---- the long-poll ------------------------------------------------------------

    def _poll(self) -> None:
        if self._stopped or self._poll_busy or self._seq is None or self.available is False:
            return
        self._poll_retry.stop()
        self._poll_busy = True
        after, wait = self._seq, self.longpoll_s
        self.runner.run(
            lambda: self.client.wait_for_change(after, wait), self._on_poll, self._on_poll_error, name="events"
        )

    def _on_poll(self, seq: int) -> None:
        self._poll_busy = False
        if seq != self._seq:  # "!=": a restarted agent counts from zero again
            self._seq = seq
            self._on_change()
        self._poll()

    def _on_poll_error(self, exc: BaseException) -> None:
        self._poll_busy = False
        if isinstance(exc, Cancelled) or self._stopped:
            return
        if isinstance(exc, AgentUnavailable):
            # The agent went away mid-poll: say so now; the status probe brings the poll back.
            self._failed(exc)
            return
        # Anything else (an agent without /events, a server error): the timers still
        # keep the tray fresh; try the long-poll again later.
        log.warning("agent events long-poll failed: %s", exc)
        self._poll_retry.start()

    # ---- actions ------------------------------------------------------------------

    def sync_now(self) -> None:
        if self.syncing or self._stopped:
            return
        self.syncing = True
        self.changed.emit()
        self.runner.run(self.client.sync, self._on_synced, self._on_sync_error, name="sync")

    def _on_synced(self, result: dict[str, Any]) -> None:
        self.syncing = False
        self.sync_finished.emit(result)
        self.refresh()

    def _on_sync_error(self, exc: BaseException) -> None:
        self.syncing = False
        if not isinstance(exc, Cancelled):
            self.action_failed.emit(f"Sync failed: {exc}")
            self.sync_finished.emit(exc)
        self._failed(exc)
        self.refresh()

    def pause(self, until: float | str | None) -> None:
        """Pause recording until ``until`` (Unix time, or ``contract.PAUSE_UNTIL_TOMORROW``); None resumes."""

        def done(status: C.Status) -> None:
            self._accept_status(status)

        def failed(exc: BaseException) -> None:
            if not isinstance(exc, Cancelled):
                self.action_failed.emit(f"Could not {'pause' if until else 'resume'} tracking: {exc}")
            self._failed(exc)

        self.runner.run(lambda: self.client.pause(until), done, failed, name="pause")

    def call(
        self,
        func: Callable[[AgentClient], Any],
        on_result: Callable[[Any], None],
        on_error: Callable[[BaseException], None] | None = None,
        *,
        context: QObject | None = None,
        refresh_after: bool = False,
    ) -> None:
        """Any other agent call (dead letters, projects by range), through the same helper."""

        def done(value: Any) -> None:
            on_result(value)
            if refresh_after:
                self.refresh()

        def failed(exc: BaseException) -> None:
            if isinstance(exc, Cancelled):
                return
            if isinstance(exc, AgentUnavailable):
                self._failed(exc)
            if on_error is not None:
                on_error(exc)
            else:
                self.action_failed.emit(str(exc))

        self.runner.run(lambda: func(self.client), done, failed, context=context)

    def retry_dead(self, destination: str, ids: Sequence[int], on_done: Callable[[Any], None]) -> None:
        self.call(lambda c: c.retry_dead(destination, ids), on_done, refresh_after=True)

    def discard_dead(self, destination: str, ids: Sequence[int], on_done: Callable[[Any], None]) -> None:
        self.call(lambda c: c.discard_dead(destination, ids), on_done, refresh_after=True)

    def dismiss_notice(
        self, notice_id: int, on_done: Callable[[Any], None], on_error: Callable[[BaseException], None]
    ) -> None:
        """Dismiss a stored notice; the refresh after it brings the status that no longer lists it."""
        self.call(lambda c: c.dismiss_notice(notice_id), on_done, on_error, refresh_after=True)

    # ---- what the views show ------------------------------------------------------

    def icon_state(self) -> state.IconState:
        return state.icon_state(self.status, self.available, self.clock())

    def menu_view(self, agent_problem: str | None = None) -> state.MenuView:
        return state.menu_view(
            self.status,
            self.stats,
            self.available,
            self.clock(),
            error=self.error,
            syncing=self.syncing,
            agent_problem=agent_problem if self.available is not True else None,
        )

    def tooltip(self, agent_problem: str | None = None) -> str:
        problem = agent_problem if self.available is not True else None
        return state.tooltip(self.status, self.stats, self.available, self.clock(), problem)
