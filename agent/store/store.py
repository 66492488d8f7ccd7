"""The durable store: heartbeats, their deliveries, cached server figures.

SQLite in WAL mode, file mode 0600, one writer connection behind a lock and
per-thread read connections. A heartbeat is acknowledged to its sender only
after the transaction that stores it has committed. A damaged file is moved
aside and whatever rows can still be read are carried into a fresh one.
"""

from __future__ import annotations

from .heartbeats import HeartbeatRows
from .history import ImportedHistory
from .queue import DeliveryQueue
from .records import Records


class Store(HeartbeatRows, ImportedHistory, DeliveryQueue, Records):
    """All access to the SQLite file goes through this class. Its parts, one module each: the file
    and its connections (``connection``), heartbeats (``heartbeats``), imported history
    (``history``), the delivery queue (``queue``) and the small tables (``records``)."""
