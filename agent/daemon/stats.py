"""Stats on the agent: folding new heartbeats into the rollups after a burst, refreshing the
server's figures, the daily store backup.
"""

from __future__ import annotations

import logging

from agent.contract import ProjectsAnswer, StatsSnapshot

from .base import AgentBase

log = logging.getLogger(__name__)

STATS_REFRESH = 30.0  # how often the scheduler asks whether a server fetch is due
FORCED_REFRESH = 120.0  # after deliveries, refetch server figures at most this often
STATS_QUIET = 1.0  # after new heartbeats, wait until none came for this long before folding them in
STATS_MAX_DEFER = 30.0  # but fold a never-ending burst in at least this often
BACKUP_DIR = "backups"  # in the data dir
BACKUP_EVERY = 86400.0  # a store backup a day ...
BACKUP_CHECK = 3600.0  # ... checked for every hour, so an agent that runs a few hours a day makes it too
BACKUP_FIRST = 300.0  # the first check, a few minutes after start


class StatsJobs(AgentBase):
    # ---- stats ---------------------------------------------------------------------------------

    def _stats_loop(self) -> None:
        try:
            # After a migration or a recovery the rollups are rebuilt here (seconds on years of
            # history) rather than on the first editor's statusbar request.
            rebuilt = self.stats.prepare()
            if rebuilt:
                log.info("stats rollups brought up to date (%d heartbeats folded in)", rebuilt)
        except Exception:
            log.exception("preparing the stats rollups failed")
        while not self._stop.is_set():
            self._stats_due.wait()
            self._wait_until_quiet()
            if self._stop.is_set():
                return
            try:
                self.stats.prepare()  # fold new heartbeats into the rollups, off the intake path
                if self._server_stale.is_set():
                    self._refresh_server_figures()  # deliveries settled: now, not at the next period
            except Exception:
                log.exception("folding new heartbeats into the stats failed")

    def _refresh_server_figures(self) -> None:
        """Fetch the server's figures that are due (all of them, at most every FORCED_REFRESH,
        once deliveries made the cached ones lag): every STATS_REFRESH on the scheduler, and
        when a burst of deliveries settles."""
        with self._refresh_lock:
            force = self._server_stale.is_set() and self.monotonic() - self._last_forced_refresh >= FORCED_REFRESH
            if force:
                self._server_stale.clear()
                self._last_forced_refresh = self.monotonic()
            if not self.key_rejected() and self.stats.refresh_server(force=force):
                self.changed()

    def _backup(self) -> None:
        """The scheduler's hourly job: a store backup once a day on the agent's clock (the last 7 kept).

        A clock set back makes the last backup look newer than now: that counts as due.
        """
        folder = self.config.data_dir / BACKUP_DIR
        now = self.clock()
        last = self.store.last_backup_at(folder)
        if last is not None and 0 <= now - last < BACKUP_EVERY:
            return
        self.store.backup(folder, now=now)

    def _wait_until_quiet(self) -> None:
        """Wait until a burst of new heartbeats is over: none for STATS_QUIET, or STATS_MAX_DEFER.

        Folding competes with the intake for the writer lock and the GIL, and an editor
        flushing its offline queue or an import sends thousands a second; folding once
        after the burst does the same work without slowing it. Queries fold on demand
        (``StatsService._read``), so no answer is stale meanwhile.
        """
        deadline = self.monotonic() + STATS_MAX_DEFER
        while not self._stop.is_set():
            self._stats_due.clear()
            left = deadline - self.monotonic()
            if left <= 0 or not self._stats_due.wait(min(STATS_QUIET, left)):
                return

    def refresh_stats(self) -> StatsSnapshot:
        """Fetch the server's figures now (a dashboard's Refresh), then answer the stats snapshot."""
        # While the key is rejected, the server's figures are not fetched: they would look fresh
        # ("updated just now") beside heartbeats the server refuses to take.
        if not self.key_rejected() and self.stats.refresh_server(force=True):
            self.changed()
        return self.stats.snapshot()

    def stats_snapshot(self) -> StatsSnapshot:
        return self.stats.snapshot()

    def projects(self, range_: str) -> ProjectsAnswer:
        """A range's projects, the server's merged with unsynced work or this store's (the
        tray's menu lists today's, the dashboard's table any range's), with their source."""
        return self.stats.projects(range_)
