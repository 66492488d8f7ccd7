"""The SQL of the stats rollups: the ``stats_rollup`` rows (per 15-minute bucket and grouping),
the heartbeats they are built from, and the meta values saying how far they reach.

The stats package runs these inside a transaction of its own (the write that folds new
heartbeats in, or the read snapshot an answer is computed from), so each takes that
transaction's connection; ``agent.stats.rollups`` holds what is computed from them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

# A heartbeat as the rollups read it: time, id, category, project, language, editor,
# operating_system, machine, entity (read only to infer a language the server would infer).
_RAW = "SELECT time, id, category, project, language, editor, operating_system, machine, entity FROM heartbeats"
_INSERT = "INSERT OR REPLACE INTO stats_rollup(dim, bucket, value, span, first, last, n, tail) VALUES (?,?,?,?,?,?,?,?)"


def heartbeats_between(conn: sqlite3.Connection, lo: float, hi: float) -> sqlite3.Cursor:
    """The heartbeats in [lo, hi) in (time, id) order."""
    return conn.execute(_RAW + " WHERE time >= ? AND time < ? ORDER BY time, id", (lo, hi))


def heartbeats_from(conn: sqlite3.Connection, lo: float, limit: int) -> sqlite3.Cursor:
    """The first ``limit`` heartbeats at or after ``lo`` in (time, id) order."""
    return conn.execute(_RAW + " WHERE time >= ? ORDER BY time, id LIMIT ?", (lo, limit))


def times_after(conn: sqlite3.Connection, heartbeat_id: int) -> list[float]:
    """The times of the heartbeats stored after ``heartbeat_id``."""
    return [t for (t,) in conn.execute("SELECT time FROM heartbeats WHERE id > ?", (heartbeat_id,))]


def newest_id(conn: sqlite3.Connection) -> int:
    """The highest heartbeat id (0: none stored)."""
    return int(conn.execute("SELECT max(id) FROM heartbeats").fetchone()[0] or 0)


def replace_buckets(
    conn: sqlite3.Connection, dims: Iterable[int], lo_bucket: int, hi_bucket: int, records: Sequence[tuple[Any, ...]]
) -> None:
    """Buckets [lo_bucket, hi_bucket] of ``dims`` hold exactly ``records`` from now on."""
    conn.executemany(
        "DELETE FROM stats_rollup WHERE dim = ? AND bucket BETWEEN ? AND ?",
        [(dim, lo_bucket, hi_bucket) for dim in dims],
    )
    conn.executemany(_INSERT, records)


def clear(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM stats_rollup")


def meta_value(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def rows_in(conn: sqlite3.Connection, dim: int, lo_bucket: int, end_bucket: int) -> sqlite3.Cursor:
    """(bucket, value, span, first, last, n) of ``dim`` in buckets [lo_bucket, end_bucket), by bucket."""
    return conn.execute(
        "SELECT bucket, value, span, first, last, n FROM stats_rollup WHERE dim = ? AND bucket >= ? AND bucket < ?",
        (dim, lo_bucket, end_bucket),
    )


def counts_in(
    conn: sqlite3.Connection, dim: int, lo_bucket: int, end_bucket: int, values: Sequence[str]
) -> dict[str, int]:
    """How many heartbeats each of ``values`` of ``dim`` has in buckets [lo_bucket, end_bucket)."""
    marks = ",".join("?" * len(values))
    found = conn.execute(
        f"SELECT value, sum(n) FROM stats_rollup WHERE dim = ? AND bucket >= ? AND bucket < ? AND value IN ({marks}) "
        "GROUP BY value",
        (dim, lo_bucket, end_bucket, *values),
    )
    return {value: int(n) for value, n in found}


def bounds_in(conn: sqlite3.Connection, dim: int, lo_bucket: int, end_bucket: int) -> sqlite3.Cursor:
    """(bucket, first, last, tail) of ``dim`` in buckets [lo_bucket, end_bucket), by bucket."""
    return conn.execute(
        "SELECT bucket, first, last, tail FROM stats_rollup WHERE dim = ? AND bucket >= ? AND bucket < ?",
        (dim, lo_bucket, end_bucket),
    )


def spans_per_core(conn: sqlite3.Connection, dim: int, cores: Sequence[tuple[int, int, int]]) -> sqlite3.Cursor:
    """(k, value, sum of span) of ``dim`` for each core (k, first bucket, end bucket): one index
    range per core, joined to a list of them (at most a few hundred cores per call)."""
    values = ",".join("(?,?,?)" for _ in cores)
    return conn.execute(
        f"WITH cores(k, lo, hi) AS (VALUES {values}) SELECT c.k, r.value, sum(r.span) FROM cores c "
        "JOIN stats_rollup r ON r.dim = ? AND r.bucket >= c.lo AND r.bucket < c.hi GROUP BY c.k, r.value",
        (*(x for core in cores for x in core), dim),
    )
