"""The durable store: every heartbeat in SQLite (WAL, migrations, backups) and its delivery
state per destination (ready → in flight → sent | dead); the only place that speaks SQL.
"""

from .schema import DEAD, HISTORY, IN_FLIGHT, LATEST, LIVE, READY, SENT
from .store import Added, QueueCounts, Store, StoreCorrupt, StoreFull, StoreTooNew

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
