"""The durable store: every heartbeat in SQLite (WAL, migrations, backups) and its delivery
state per destination (ready → in flight → sent | dead); the only place that speaks SQL.
"""

from .heartbeats import Added
from .queue import QueueCounts
from .schema import DEAD, HISTORY, IN_FLIGHT, LATEST, LIVE, READY, SENT
from .sqlite import StoreCorrupt, StoreFull, StoreTooNew
from .store import Store

__all__ = [
    "DEAD",
    "HISTORY",
    "IN_FLIGHT",
    "LATEST",
    "LIVE",
    "READY",
    "SENT",
    "Added",
    "QueueCounts",
    "Store",
    "StoreCorrupt",
    "StoreFull",
    "StoreTooNew",
]
