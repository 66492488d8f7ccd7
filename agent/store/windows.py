"""The SQL of the stats' raw reads: heartbeats of a time window, one grouping column at a time,
and those a server figure may lack (still queued, or claimed after the figure was fetched).

Run inside the read snapshot an answer is computed from, so each takes that snapshot's
connection; ``agent.stats`` holds what is computed from the rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from .schema import DEAD, HISTORY, IN_FLIGHT, LIVE, READY, SENT

_WINDOW = "time >= ? AND time < ?"
_CODING = "category IS NOT NULL AND category != 'browsing'"  # the coding timeline (§4.3)


def timeline(
    conn: sqlite3.Connection, lo: float, hi: float, columns: Sequence[str] = (), *, coding: bool = False
) -> sqlite3.Cursor:
    """(time, *columns) of the heartbeats in [lo, hi) in (time, id) order; with no columns,
    (time, ''). ``coding``: only those on the coding timeline."""
    picked = ", ".join(columns) if columns else "''"
    where = f"{_WINDOW} AND {_CODING}" if coding else _WINDOW
    return conn.execute(f"SELECT time, {picked} FROM heartbeats WHERE {where} ORDER BY time, id", (lo, hi))


def any_between(conn: sqlite3.Connection, lo: float, hi: float) -> bool:
    """Is there a heartbeat in [lo, hi)? (one index probe)"""
    return conn.execute(f"SELECT 1 FROM heartbeats WHERE {_WINDOW} LIMIT 1", (lo, hi)).fetchone() is not None


# ---- what a server figure may lack ------------------------------------------------------------------

# A heartbeat as the merges read it: time, id, category, project, language, editor,
# operating_system, machine, entity.
_SELECT = "SELECT h.time, h.id, h.category, h.project, h.language, h.editor, h.operating_system, h.machine, h.entity"
_JOIN = "FROM heartbeats h LEFT JOIN deliveries d ON d.heartbeat_id = h.id AND d.destination = :dest"
# Possibly in the figure: no delivery row, sent before the stamps existed, or first claimed
# by the time the figure's answer had arrived.
_CONTAINED = (
    f"(d.heartbeat_id IS NULL OR (d.state != {DEAD} AND "
    f"(d.reach_seq <= :mark OR (d.reach_seq IS NULL AND d.state = {SENT}))))"
)


def not_contained(conn: sqlite3.Connection, dest: str, lo: float, hi: float, mark: int) -> list[Any]:
    """Heartbeats in [lo, hi] a figure fetched at claim ``mark`` surely lacks (unordered).

    Two index ranges, both small: the queue (waiting or in flight; every priority named so the
    time range is a seek), and the claims stamped after the mark (``deliveries_reach``)."""
    sql = (
        f"{_SELECT} FROM deliveries d INDEXED BY deliveries_queue JOIN heartbeats h ON h.id = d.heartbeat_id "
        f"WHERE d.destination = :dest AND d.state IN ({READY}, {IN_FLIGHT}) AND d.priority IN ({LIVE}, {HISTORY}) "
        "AND d.time >= :lo AND d.time <= :hi AND (d.reach_seq IS NULL OR d.reach_seq > :mark) "
        f"UNION ALL {_SELECT} FROM deliveries d INDEXED BY deliveries_reach JOIN heartbeats h ON h.id = d.heartbeat_id "
        f"WHERE d.destination = :dest AND d.reach_seq > :mark AND d.state = {SENT} AND d.time >= :lo AND d.time <= :hi"
    )
    return conn.execute(sql, {"dest": dest, "lo": lo, "hi": hi, "mark": mark}).fetchall()


def dead_letters(conn: sqlite3.Connection, dest: str, lo: float, hi: float) -> list[Any]:
    """Heartbeats in [lo, hi) the server refused (dead letters; unordered)."""
    sql = (
        f"{_SELECT} FROM deliveries d INDEXED BY deliveries_queue JOIN heartbeats h ON h.id = d.heartbeat_id "
        f"WHERE d.destination = :dest AND d.state = {DEAD} AND d.priority IN ({LIVE}, {HISTORY}) "
        "AND d.time >= :lo AND d.time < :hi"
    )
    return conn.execute(sql, {"dest": dest, "lo": lo, "hi": hi}).fetchall()


def with_containment(conn: sqlite3.Connection, dest: str, lo: float, hi: float, mark: int) -> sqlite3.Cursor:
    """Every heartbeat in [lo, hi] but dead letters in (time, id) order, each with a last
    column saying whether the figure may contain it."""
    sql = (
        f"{_SELECT}, {_CONTAINED} {_JOIN} WHERE h.time >= :lo AND h.time <= :hi "
        f"AND (d.state IS NULL OR d.state != {DEAD}) ORDER BY h.time, h.id"
    )
    return conn.execute(sql, {"dest": dest, "lo": lo, "hi": hi, "mark": mark})


def contained_edge(conn: sqlite3.Connection, dest: str, mark: int, lo: float, hi: float, last: bool) -> float | None:
    """The first (or ``last``) time in [lo, hi] of a heartbeat the figure may contain."""
    order = "DESC" if last else "ASC"
    sql = (
        f"SELECT h.time {_JOIN} WHERE h.time >= :lo AND h.time <= :hi AND {_CONTAINED} ORDER BY h.time {order} LIMIT 1"
    )
    found = conn.execute(sql, {"dest": dest, "lo": lo, "hi": hi, "mark": mark}).fetchone()
    return None if found is None else float(found[0])
