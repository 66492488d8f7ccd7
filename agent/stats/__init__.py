"""Stats with Hackatime's exact rules: durations and streaks, rollups over the store, and the
server's own figures cached and merged with work not yet synced.
"""

from .server_figures import ServerStats, merge_today
from .service import StatsService

__all__ = ["ServerStats", "StatsService", "merge_today"]
