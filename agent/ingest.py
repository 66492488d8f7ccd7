"""The one way heartbeats come in, from editors (the intake) and from the watcher alike: stored
in one transaction, then the agent told (its change counter, delivery woken, the stats fold due).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agent.heartbeat import Heartbeat
from agent.store import Added, Store, StoreFull


class Ingest:
    """Store normalised heartbeats and tell the agent; each source normalises its own first
    (the intake from request bodies and headers, the watcher from file-system names)."""

    def __init__(
        self,
        store: Store,
        *,
        accepting: Callable[[], bool],
        on_stored: Callable[[int], None],
        on_full: Callable[[], None],
    ) -> None:
        self.store = store
        self.accepting = accepting  # False while tracking is paused: nothing is recorded
        self.on_stored = on_stored  # how many new rows: the change counter, delivery, the stats fold
        self.on_full = on_full  # the disk is full: status has changed

    def __call__(self, heartbeats: Sequence[Heartbeat], source: str) -> list[Added] | None:
        """One ``Added`` per heartbeat, in order; None while tracking is paused (nothing stored).
        A full disk raises :class:`StoreFull` once ``on_full`` has been told."""
        if not self.accepting():
            return None
        try:
            added = self.store.add(heartbeats, source)
        except StoreFull:
            self.on_full()
            raise
        created = [created for _, created in added].count(True)
        if created:
            self.on_stored(created)
        return added
