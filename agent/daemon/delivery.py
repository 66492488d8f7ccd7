"""Delivery on the agent: the worker loop that drains the outbox, Sync now, dead letters."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from agent.contract import DESTINATION, DeadLetter, SyncAnswer
from agent.delivery.outbox import Outcome

from .base import AgentBase

log = logging.getLogger(__name__)

IDLE_RECHECK = 60.0  # seconds between delivery checks when nothing wakes the worker


class DeliveryLoop(AgentBase):
    # ---- delivery ----------------------------------------------------------------------------

    def _delivery_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            kicked = self._kick.is_set()
            self._kick.clear()
            try:
                with self._recheck_lock:
                    due = self._recheck.due_in()
                if due == 0:
                    self.recheck_key()
                result = self.outbox.deliver_once(self._stop, ignore_backoff=kicked)
            except Exception:
                log.exception("delivery pass failed unexpectedly")
                self._stop.wait(IDLE_RECHECK)
                continue
            if result.outcome is Outcome.DELIVERED:
                if result.sent:
                    # The server's figures now lag what it holds: refetch them (lists and day
                    # bars included) once the burst of deliveries settles; until then the
                    # figures are merged with the work sent since they were fetched.
                    self._server_stale.set()
                    self._stats_due.set()
                    with self._recheck_lock:
                        self._recheck.reset()
                continue
            if result.outcome in (Outcome.RATE_LIMITED, Outcome.UNREACHABLE, Outcome.BACKING_OFF):
                # Sit out the wait; only an explicit sync request (or stop) cuts it short.
                self._kick.wait(result.wait)
            elif result.outcome is Outcome.DISK_FULL:
                # A heartbeat stored again means the disk has room: try at once, else every few seconds.
                self._wake.wait(result.wait)
            elif result.outcome is Outcome.AUTH_REJECTED:
                # Wait for the next re-check of the same key, or a new key (which wakes this loop).
                with self._recheck_lock:
                    self._recheck.rejected()
                    due = self._recheck.due_in()
                self._waiting.wait(self._wake, due)
            else:
                self._wake.wait(IDLE_RECHECK)

    def sync_now(self) -> SyncAnswer:
        """Deliver everything deliverable now (the tray's Sync now, the CLI's sync)."""
        self.keys.reload(keyring=True)
        if self.store.destination(DESTINATION)["auth_state"] == "rejected":
            self.recheck_key()  # the user asked: don't make them wait for the next scheduled check
        result = self.outbox.drain(self._stop)
        self.changed()
        return {
            "delivered": result.sent,
            "dead": result.dead,
            "pending": result.pending,
            "outcome": result.outcome.value,
            "error": result.error,
        }

    # ---- dead letters and notices ----------------------------------------------------------------

    def dead_letters(self, destination: str) -> list[DeadLetter]:
        return self.store.dead_letters(destination)

    def retry_dead(self, destination: str, ids: Sequence[int] | None) -> int:
        """Dead letters back to the queue (all of them when ``ids`` is None); delivery wakes up."""
        count = self.store.retry_dead(destination, ids)
        self.changed(wake=True)
        return count

    def discard_dead(self, destination: str, ids: Sequence[int]) -> int:
        count = self.store.discard_dead(destination, ids)
        self.changed()
        return count

    def dismiss_notice(self, notice_id: int) -> None:
        self.store.dismiss_notice(notice_id)
        self.changed()
