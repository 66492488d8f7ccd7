"""The delivery queue per destination: claim (ready → in flight, stamped with a claim number),
settle the outcome (sent | dead | back to ready), queue figures, dead letters.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from agent.contract import DeadLetter

from .connection import StoreBase
from .schema import DEAD, HISTORY, IN_FLIGHT, LIVE, READY, SENT


@dataclass(frozen=True)
class QueueCounts:
    pending: int
    in_flight: int
    sent: int
    dead: int
    oldest_pending: float | None
    history: int = 0  # imported history still to deliver (pending or in flight), sent after live ones


def _count(state: int, priority: int | None = None) -> str:
    where = f"destination = :dest AND state = {state}" + ("" if priority is None else f" AND priority = {priority}")
    return f"(SELECT count(*) FROM deliveries WHERE {where})"


def _first(state: int, priority: int) -> str:
    # One index seek per (state, priority): a min() over both states would scan them.
    return f"(SELECT min(time) FROM deliveries WHERE destination = :dest AND state = {state} AND priority = {priority})"


# One statement, so every figure comes from the same snapshot.
_COUNTS = "SELECT " + ", ".join(
    [
        _count(READY, LIVE),
        _count(READY, HISTORY),
        _count(IN_FLIGHT, LIVE),
        _count(IN_FLIGHT, HISTORY),
        _count(DEAD),
        "(SELECT sent_total FROM destinations WHERE name = :dest)",
        *(_first(state, priority) for state in (READY, IN_FLIGHT) for priority in (LIVE, HISTORY)),
    ]
)


class DeliveryQueue(StoreBase):
    """Each stored heartbeat's way to each destination."""

    def claim(self, destination: str, limit: int) -> list[tuple[int, str]]:
        """Move up to ``limit`` ready heartbeats to in flight, live ones first, oldest first;
        return (id, payload).

        Each claim takes the next ``delivery_seq`` and stamps its rows with it (schema 4):
        from the moment the rows are in flight, a server figure fetched later may contain them.
        """
        now = time.time()
        with self.transaction() as conn:
            seq = self._delivery_seq(conn) + 1
            ids = [
                r[0]
                for r in conn.execute(
                    "UPDATE deliveries SET state = ?, attempts = attempts + 1, updated_at = ?, claim_seq = ?, "
                    "reach_seq = coalesce(reach_seq, ?) "
                    "WHERE destination = ? AND heartbeat_id IN ("
                    "  SELECT heartbeat_id FROM deliveries WHERE destination = ? AND state = ? "
                    "  ORDER BY priority, time, heartbeat_id LIMIT ?) RETURNING heartbeat_id",
                    (IN_FLIGHT, now, seq, seq, destination, destination, READY, limit),
                )
            ]
            if not ids:
                return []
            conn.execute("UPDATE meta SET value = ? WHERE key = 'delivery_seq'", (str(seq),))
            marks = ",".join("?" * len(ids))
            rows = conn.execute(
                f"SELECT id, payload FROM heartbeats WHERE id IN ({marks}) ORDER BY time, id", ids
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    @staticmethod
    def _delivery_seq(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = 'delivery_seq'").fetchone()
        return int(row[0]) if row is not None else 0

    def delivery_seq(self) -> int:
        """The claims counter now. Read after a server figure's answer has arrived, it bounds
        the claims whose requests that figure can contain (``reach_seq <= it``)."""
        return self._delivery_seq(self.reader())

    def settle(
        self,
        destination: str,
        *,
        sent: Sequence[int] = (),
        dead: Sequence[tuple[int, str]] = (),
        retry: Sequence[int] = (),
        unreached: Sequence[int] = (),
    ) -> None:
        """Record the outcome of a delivery attempt, all in one transaction.

        ``retry``: back to ready, and the request may have reached the server (a reset, a
        timeout, a 5xx, an answer that was not understood). ``unreached``: back to ready, and
        the request surely did not reach it (refused connection, 401/403, 429, never sent),
        so this claim stops counting as possibly contained in a server figure.
        """
        now = time.time()
        with self.transaction() as conn:
            newly_sent = _for_ids(
                conn,
                "UPDATE deliveries SET state = ?, updated_at = ?, reason = NULL "
                "WHERE destination = ? AND state != ? AND heartbeat_id IN ({ids})",
                (SENT, now, destination, SENT),
                sent,
            )
            if newly_sent:
                conn.execute(
                    "UPDATE destinations SET sent_total = sent_total + ? WHERE name = ?", (newly_sent, destination)
                )
            conn.executemany(
                "UPDATE deliveries SET state = ?, updated_at = ?, reason = ? "
                "WHERE destination = ? AND heartbeat_id = ?",
                [(DEAD, now, reason, destination, hb_id) for hb_id, reason in dead],
            )
            _for_ids(
                conn,
                "UPDATE deliveries SET state = ?, updated_at = ? WHERE destination = ? AND heartbeat_id IN ({ids})",
                (READY, now, destination),
                retry,
            )
            _for_ids(
                conn,
                "UPDATE deliveries SET state = ?, updated_at = ?, "
                "reach_seq = CASE WHEN reach_seq = claim_seq THEN NULL ELSE reach_seq END "
                "WHERE destination = ? AND heartbeat_id IN ({ids})",
                (READY, now, destination),
                unreached,
            )

    def resume_in_flight(self) -> int:
        """At start-up, heartbeats left in flight by a stop or crash go back to ready."""
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE deliveries SET state = ?, updated_at = ? WHERE state = ?",
                (READY, time.time(), IN_FLIGHT),
            )
            return cur.rowcount

    def counts(self, destination: str) -> QueueCounts:
        """Queue figures for one destination: one statement, one pass over its backlog, never
        over its history.

        Each figure is a count or a min() over one (state, priority) run of the queue index
        (destination, state, priority, time, …), so together the counts read each queued row
        once: pending and history are sums of them, not a second scan of an imported backlog.
        (A GROUP BY over the same runs reads them once too, but decodes every row: slower.)
        """
        row = self.reader().execute(_COUNTS, {"dest": destination}).fetchone()
        ready_live, ready_history, flying_live, flying_history, dead, sent, *firsts = row
        return QueueCounts(
            pending=ready_live + ready_history,
            in_flight=flying_live + flying_history,
            sent=sent or 0,
            dead=dead,
            oldest_pending=min((t for t in firsts if t is not None), default=None),
            history=ready_history + flying_history,
        )

    def dead_letters(self, destination: str, limit: int = 200) -> list[DeadLetter]:
        rows = (
            self.reader()
            .execute(
                "SELECT d.heartbeat_id, d.time, d.reason, d.attempts, d.updated_at, h.entity, h.project "
                "FROM deliveries d JOIN heartbeats h ON h.id = d.heartbeat_id "
                "WHERE d.destination = ? AND d.state = ? ORDER BY d.time LIMIT ?",
                (destination, DEAD, limit),
            )
            .fetchall()
        )
        return [
            {
                "id": r[0],
                "time": r[1],
                "reason": r[2],
                "attempts": r[3],
                "dead_at": r[4],
                "entity": r[5],
                "project": r[6],
            }
            for r in rows
        ]

    def retry_dead(self, destination: str, ids: Sequence[int] | None = None) -> int:
        """Dead letters back to ready (all of them when ``ids`` is None)."""
        with self.transaction() as conn:
            if ids is None:
                cur = conn.execute(
                    "UPDATE deliveries SET state = ?, reason = NULL, updated_at = ? "
                    "WHERE destination = ? AND state = ?",
                    (READY, time.time(), destination, DEAD),
                )
                return cur.rowcount
            return _for_ids(
                conn,
                "UPDATE deliveries SET state = ?, reason = NULL, updated_at = ? "
                "WHERE destination = ? AND state = ? AND heartbeat_id IN ({ids})",
                (READY, time.time(), destination, DEAD),
                ids,
            )

    def discard_dead(self, destination: str, ids: Sequence[int]) -> int:
        """Give up delivering these dead letters; the heartbeats stay for local stats."""
        with self.transaction() as conn:
            return _for_ids(
                conn,
                "DELETE FROM deliveries WHERE destination = ? AND state = ? AND heartbeat_id IN ({ids})",
                (destination, DEAD),
                ids,
            )


def _for_ids(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...], ids: Sequence[int]) -> int:
    """Run ``sql`` (with ``{ids}`` for the id list) over ``ids`` in chunks under SQLite's
    parameter limit; return the rows changed."""
    changed = 0
    for chunk in _chunks(list(ids), 500):
        changed += conn.execute(sql.format(ids=",".join("?" * len(chunk))), (*params, *chunk)).rowcount
    return changed


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
