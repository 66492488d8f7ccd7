"""Imported history into the store: the import's own insert path, for batches of thousands."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .connection import StoreBase
from .schema import HISTORY, READY

# An imported heartbeat as ``agent.imports.rows`` prepares it: the ``heartbeats`` columns from
# ``time`` to ``is_write`` without ``source`` and ``received_at``, which one import shares.
ImportedRow = tuple[Any, ...]

_INSERT = (
    "INSERT INTO heartbeats(time, dedup_key, payload, source, received_at, entity, type, category, project, "
    "branch, language, editor, operating_system, machine, is_write) "
    "VALUES (?,?,?,'import',{now!r},?,?,?,?,?,?,?,?,?,?) ON CONFLICT(time, dedup_key) DO NOTHING"
)


class ImportedHistory(StoreBase):
    def add_imported(self, rows: Sequence[ImportedRow], *, upload: bool, meta: tuple[str, str] | None = None) -> int:
        """Store a batch of imported heartbeats in one transaction; returns how many were new.

        Heartbeats already stored (by an earlier import, live capture, or earlier in the batch)
        are skipped by their dedup key. New ones queue for every destination behind every live
        heartbeat (HISTORY), unless ``upload`` is False. ``meta`` (key, value), the import's
        checkpoint, commits with them. One executemany of prepared rows, and the new rows'
        deliveries in one set-based statement: no Python per row beyond binding it.
        """
        if not rows and meta is None:
            return 0
        now = time.time()
        # Committed without an fsync (WAL, synchronous=NORMAL): a crash can lose only the last
        # batches of an import, always together with the checkpoint that counts them, and
        # running the import again re-reads from the checkpoint that survived. No live
        # heartbeat loses its fsync: every other commit runs at the store's own level and
        # syncs the log up to itself, these rows included.
        with self.transaction(synchronous="NORMAL") as conn:
            if meta is not None:
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    meta,
                )
            if not rows:
                return 0
            before = conn.execute("SELECT coalesce(max(id), 0) FROM heartbeats").fetchone()[0]
            changes = conn.total_changes
            conn.executemany(_INSERT.format(now=now), rows)
            created: int = conn.total_changes - changes
            if created and upload:
                conn.execute(
                    "INSERT INTO deliveries(destination, heartbeat_id, time, state, updated_at, priority) "
                    "SELECT d.name, h.id, h.time, ?, ?, ? FROM heartbeats h, destinations d WHERE h.id > ?",
                    (READY, now, HISTORY, before),
                )
            elif created:
                # The new rows took the ids after ``before``, one after another (this transaction
                # holds the writer lock): one range says which heartbeats are held.
                conn.execute("INSERT INTO held_imports(lo, hi) VALUES (?, ?)", (before + 1, before + created))
        return created

    def held_count(self) -> int:
        """Imported heartbeats kept local that ``upload_held`` would queue."""
        row = self.reader().execute("SELECT coalesce(sum(hi - lo + 1), 0) FROM held_imports").fetchone()
        return int(row[0])

    def upload_held(self) -> int:
        """Queue the history imported without upload for every destination, behind every live
        heartbeat, as an import with upload would have; returns how many heartbeats were queued.
        Without a destination nothing is queued and the history stays held."""
        now = time.time()
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM destinations LIMIT 1").fetchone() is None:
                return 0
            held = int(conn.execute("SELECT coalesce(sum(hi - lo + 1), 0) FROM held_imports").fetchone()[0])
            conn.execute(
                "INSERT OR IGNORE INTO deliveries(destination, heartbeat_id, time, state, updated_at, priority) "
                "SELECT d.name, h.id, h.time, ?, ?, ? FROM held_imports r "
                "JOIN heartbeats h ON h.id BETWEEN r.lo AND r.hi CROSS JOIN destinations d",
                (READY, now, HISTORY),
            )
            conn.execute("DELETE FROM held_imports")
        return held
