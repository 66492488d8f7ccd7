"""Storing heartbeats: the group-committed add (one transaction and one fsync for concurrent
callers), de-duplication against stored rows, a ready delivery row per destination, insert hooks.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from agent.heartbeat import Heartbeat

from .connection import StoreBase
from .schema import LIVE, READY
from .sqlite import is_full

# The heartbeats table's columns that copy a payload field, in the INSERT's order.
_COLUMNS = (
    "entity",
    "type",
    "category",
    "project",
    "branch",
    "language",
    "editor",
    "operating_system",
    "machine",
    "is_write",
)
RECENT_ENTITIES = 20_000  # files remembered for "an editor already sent this one"
_new = tuple.__new__

InsertHook = Callable[[sqlite3.Connection, Sequence[tuple[int, Heartbeat]]], None]


class Added(NamedTuple):  # a tuple, not a dataclass: one is built per heartbeat stored
    id: int
    created: bool  # False when an identical heartbeat was already stored


@dataclass
class _PendingAdd:
    heartbeats: list[Heartbeat]
    source: str
    destinations: list[str] | None
    priority: int = LIVE
    meta: tuple[str, str] | None = None
    done: bool = False
    result: list[Added] | None = None
    error: BaseException | None = None


class HeartbeatRows(StoreBase):
    """Heartbeats in, and what the rest of the agent asks about them."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.insert_hooks: list[InsertHook] = []
        self._pending: list[_PendingAdd] = []
        self._pending_lock = threading.Lock()
        self._recent_editor: dict[str, float] = {}
        self._recent_lock = threading.Lock()
        super().__init__(path, synchronous=synchronous)

    def add(
        self,
        heartbeats: Sequence[Heartbeat],
        source: str,
        *,
        destinations: Iterable[str] | None = None,
        priority: int = LIVE,
        meta: tuple[str, str] | None = None,
    ) -> list[Added]:
        """Store heartbeats durably; identical ones are matched to the stored row.

        Each new heartbeat gets a ``ready`` delivery row for every destination given
        (default: every configured destination), at ``priority`` (imported history is
        ``HISTORY``: delivered after every live heartbeat). ``meta`` (key, value) is set in the
        same transaction (an import's checkpoint commits with its batch). Returns once the transaction holding
        them has committed. Concurrent callers share one transaction and one fsync
        (group commit), each batch in its own savepoint so one failure fails only it.
        """
        item = _PendingAdd(
            list(heartbeats), source, None if destinations is None else list(destinations), priority, meta
        )
        with self._pending_lock:
            self._pending.append(item)
        with self._lock:
            if not item.done:
                with self._pending_lock:
                    group, self._pending = self._pending, []
                self._commit_group(group)
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result

    def _commit_group(self, group: list[_PendingAdd]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            if self._dest_names is None:
                self._dest_names = self._destination_names(conn)
            dests = self._dest_names
            for n, item in enumerate(group):
                conn.execute(f"SAVEPOINT add_{n}")
                try:
                    item.result = self._insert(conn, item, dests)
                except Exception as exc:
                    if not conn.in_transaction or is_full(exc):
                        raise  # SQLite gave up the whole transaction (a full disk): the group fails
                    conn.execute(f"ROLLBACK TO add_{n}")
                    item.error = exc
                conn.execute(f"RELEASE add_{n}")
            conn.execute("COMMIT")
            self._remember_editor_entities(group)
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = self._classify(exc)
            for item in group:
                item.result, item.error = None, item.error or error
            if error is exc:
                raise
            raise error from exc
        else:
            self._wrote()
        finally:
            for item in group:
                item.done = True

    def _insert(self, conn: sqlite3.Connection, item: _PendingAdd, all_dests: list[str]) -> list[Added]:
        if item.meta is not None:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                item.meta,
            )
        if not item.heartbeats:
            return []
        now = time.time()
        dests = item.destinations if item.destinations is not None else all_dests
        before = conn.execute("SELECT coalesce(max(id), 0) FROM heartbeats").fetchone()[0]
        changes_before = conn.total_changes
        heartbeats, source = item.heartbeats, item.source
        # One executemany, and a lookup only when something conflicted: per-row INSERT … RETURNING
        # is three times slower. The columns are the payload's own values, read in C by map()
        # (a bool binds as 0 or 1; editor and OS are in the payload exactly as derived).
        conn.executemany(
            "INSERT INTO heartbeats(time, dedup_key, payload, source, received_at, entity, type, category, "
            "project, branch, language, editor, operating_system, machine, is_write) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(time, dedup_key) DO NOTHING",
            [
                (t, key, payload_json, source, now, *map(payload.get, _COLUMNS))
                for payload, payload_json, key, t, _, _ in heartbeats  # unpacked: cheaper than six lookups
            ],
        )
        if conn.total_changes - changes_before == len(heartbeats):
            # Nothing was a duplicate (the usual case): we hold the write lock and rowids
            # are max + 1, so the rows got the next ids in order.
            # tuple.__new__: the named tuple's own __new__ is a Python function, called per heartbeat.
            results = [_new(Added, (hb_id, True)) for hb_id in range(before + 1, before + 1 + len(heartbeats))]
        else:
            results = self._match_duplicates(conn, heartbeats, before)
        # The new rows are exactly those above ``before`` (a duplicate was not inserted): their
        # deliveries in one statement per destination, with no Python work per row.
        for dest in dests:
            conn.execute(
                "INSERT INTO deliveries(destination, heartbeat_id, time, state, updated_at, priority) "
                "SELECT ?, id, time, ?, ?, ? FROM heartbeats WHERE id > ?",
                (dest, READY, now, item.priority, before),
            )
        if self.insert_hooks:
            created = [(added.id, hb) for added, hb in zip(results, heartbeats, strict=True) if added.created]
            if created:
                for hook in self.insert_hooks:
                    hook(conn, created)
        return results

    @staticmethod
    def _match_duplicates(conn: sqlite3.Connection, heartbeats: list[Heartbeat], before: int) -> list[Added]:
        """Each heartbeat's row when some were already stored: the new rows are the ones above
        ``before``; only duplicates need a lookup by key."""
        ids: dict[tuple[float, bytes], int] = {
            (t, key): hb_id
            for hb_id, t, key in conn.execute("SELECT id, time, dedup_key FROM heartbeats WHERE id > ?", (before,))
        }
        for hb in heartbeats:
            if (hb.time, hb.dedup_key) not in ids:
                row = conn.execute(
                    "SELECT id FROM heartbeats WHERE time = ? AND dedup_key = ?", (hb.time, hb.dedup_key)
                ).fetchone()
                ids[(hb.time, hb.dedup_key)] = row[0]
        results: list[Added] = []
        seen: set[int] = set()
        for hb in heartbeats:
            hb_id = ids[(hb.time, hb.dedup_key)]
            results.append(Added(hb_id, hb_id > before and hb_id not in seen))  # a twin in the batch is not new
            seen.add(hb_id)
        return results

    def _remember_editor_entities(self, group: list[_PendingAdd]) -> None:
        """Keep the last editor heartbeat time per file in memory (the watcher asks about the last 30 s)."""
        with self._recent_lock:
            recent = self._recent_editor
            get = recent.get
            for item in group:
                if item.source == "editor" and item.result is not None:
                    for payload, _, _, t, _, _ in item.heartbeats:
                        entity = payload.get("entity")
                        if entity and t > get(entity, 0.0):
                            recent[entity] = t
            if len(recent) > RECENT_ENTITIES:
                newest = sorted(recent.items(), key=lambda kv: kv[1])[-RECENT_ENTITIES // 2 :]
                self._recent_editor = dict(newest)

    def editor_heartbeat_since(self, entity: str, since: float) -> bool:
        """Did an editor plugin send a heartbeat for ``entity`` at or after ``since`` (this run)?"""
        with self._recent_lock:
            return self._recent_editor.get(entity, 0.0) >= since

    def last_received_at(self) -> float | None:
        """When the newest heartbeat arrived (None: the store is empty).

        The newest row by id, not max(received_at): that column has no index, and the tray
        asks for status after every change.
        """
        row = self.reader().execute("SELECT received_at FROM heartbeats ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def heartbeat_count(self) -> int:
        return int(self.reader().execute("SELECT count(*) FROM heartbeats").fetchone()[0])

    @staticmethod
    def _destination_names(conn: sqlite3.Connection) -> list[str]:
        return [r[0] for r in conn.execute("SELECT name FROM destinations ORDER BY name")]
