"""The rollups: per-15-minute sums that make every window's figure exact and fast.

Every heartbeat falls in a 15-minute UTC bucket (``floor(time / 900)``). For each bucket and
each grouping (all heartbeats; non-browsing ones for streaks; per project, language, editor,
OS, machine, category, project+language) the table ``stats_rollup`` keeps one row per group
value: the capped-gap sum between consecutive heartbeats *of that group* inside the bucket
(``span``), and the group's first and last time there. §2 only ever looks at consecutive
pairs, so the total of any window made of whole buckets is exact:

    Σ span  +  Σ min(first(next row) − last(row), 120)   over the group's rows in time order

a fold over the rows read in primary-key order (dim, bucket, value), which is already time
order per value (``agent.stats.queries``). Buckets are UTC and 15 minutes long because every
local midnight of every IANA zone from 2001 to 2033 (the times the server accepts) falls on
a UTC quarter hour (checked for all 599 zones), so a local day in any zone is a whole number
of buckets: the rollups never depend on the profile's timezone, which can change at any
time, and a year of days is one range read. Summaries credit each gap to the *earlier*
heartbeat's project (LEAD); dimension 9 keeps those credits inside a bucket and the bucket's
last project (``tail``), so the gap between buckets can be credited too.

Keeping them current. The intake only stores heartbeats; folding them in is kept off the
editors' path. ``catch_up`` runs on the agent's stats thread once a burst settles and
before every query: the mark ``meta.stats_rollup_id`` is the highest heartbeat id folded
in, and every bucket holding a heartbeat above it is recomputed from its raw heartbeats,
which is exact whatever the arrival order (an import lands in the middle of old buckets)
and idempotent. When most of the store is unfolded (right after the migration, a recovery,
a rollup format change) the whole store is walked instead, a chunk of buckets per write
transaction so the intake keeps flowing.

Why the sums are exact in floating point: see ``agent.stats.durations``.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from agent.heartbeat import server_language
from agent.store import rollups as R
from agent.store.store import Store

from .durations import TIMEOUT

log = logging.getLogger(__name__)

BUCKET = 900
ALL, CODING, PROJECT, LANGUAGE, EDITOR, OS, MACHINE, CATEGORY, PROJECT_LANGUAGE, LEAD = range(10)
DIMS = tuple(range(10))
NULL = "\x00"  # stands for SQL NULL in ``value`` (normalize strips NUL, so no real name has one)
MARK_KEY = "stats_rollup_id"
FORMAT_KEY, FORMAT = "stats_rollup_format", "2"  # 2: languages inferred as the server does (§4.3)
REBUILD_ROWS = 50_000  # above this many heartbeats to fold in, rebuild by walking the whole store
CHUNK_ROWS = 20_000  # heartbeats per write transaction while rebuilding (the intake keeps flowing)


def enc(value: str | None) -> str:
    return NULL if value is None else value


def dec(value: str) -> str | None:
    return None if value == NULL else value


_PAIRS: dict[tuple[str | None, str | None], str] = {}


def pair(project: str | None, language: str | None) -> str:
    """An unambiguous key for (project, language), NULLs included."""
    key = (project, language)
    found = _PAIRS.get(key)
    if found is None:
        found = json.dumps([project, language], ensure_ascii=False)
        if len(_PAIRS) < 10_000:
            _PAIRS[key] = found
    return found


def unpair(value: str) -> tuple[str | None, str | None]:
    project, language = json.loads(value)
    return project, language


def bucket_of(t: float) -> int:
    """floor(t / 900), kept in step with the raw range [b·900, (b+1)·900) whatever the rounding."""
    b = int(t // BUCKET)
    if b * BUCKET > t:
        b -= 1
    elif (b + 1) * BUCKET <= t:
        b += 1
    return b


# ---- the per-bucket accumulator ---------------------------------------------------------------

# A raw heartbeat as the rollups see it: (time, id, category, project, language, editor, os, machine)
#   language is the one the server stores (``server_language``), entity is read only to infer it
Raw = tuple[float, int, str | None, str | None, str | None, str | None, str | None, str | None]


def _raws(rows: Iterable[Sequence[Any]]) -> list[Raw]:
    """Rows of ``agent.store.rollups``' heartbeat reads as the rollups see them (the server's
    language, no entity)."""
    return [(r[0], r[1], r[2], r[3], server_language(r[4], r[8]), r[5], r[6], r[7]) for r in rows]


_WHOLE = (ALL, "")
_COLUMN_DIMS = ((PROJECT, 3), (LANGUAGE, 4), (EDITOR, 5), (OS, 6), (MACHINE, 7), (CATEGORY, 2))


class _Bucket:
    """The rollup rows of one bucket: (dim, value) → [span, first, last, n], and the project of
    the bucket's last heartbeat (``tail``). For dimension 9 (LEAD) ``span`` is the time credited
    to the project by the summaries rule."""

    __slots__ = ("rows", "tail")

    def __init__(self) -> None:
        self.rows: dict[tuple[int, str], list[Any]] = {}
        self.tail: str = NULL

    def records(self, bucket: int) -> list[tuple[Any, ...]]:
        return [
            (dim, bucket, value, *acc, self.tail if dim == ALL else None) for (dim, value), acc in self.rows.items()
        ]


def _runs(
    rows: dict[tuple[int, str], list[Any]], dim: int, values: Sequence[Any], times: list[float], pre: list[float]
) -> None:
    """Fold one grouping's values (aligned with ``times``) into ``rows``, a run at a time.

    Inside a run of equal values the group's consecutive heartbeats are the bucket's
    consecutive heartbeats, so the run's capped-gap sum is a difference of the prefix sums
    ``pre`` (exact, see agent.stats.durations); between two runs of the same value the gap is
    capped and added, which is LAG partitioned by the group. None of a run is skipped.
    """
    i = 0
    for value, group in itertools.groupby(values):
        j = i + len(list(group)) - 1
        if value is not _SKIP:
            key = (dim, _key(dim, value))
            acc = rows.get(key)
            if acc is None:
                rows[key] = [pre[j] - pre[i], times[i], times[j], j - i + 1]
            else:
                gap = times[i] - acc[2]
                acc[0] += (gap if gap < TIMEOUT else TIMEOUT) + (pre[j] - pre[i])
                acc[2] = times[j]
                acc[3] += j - i + 1
        i = j + 1


_SKIP = object()  # a CODING run of browsing (or null-category) heartbeats: not on that timeline


def _key(dim: int, value: Any) -> str:
    if dim == PROJECT_LANGUAGE:
        return pair(value[0], value[1])
    if dim == CODING:
        return ""
    return NULL if value is None else value


def _build(rs: Sequence[Raw]) -> _Bucket:
    """One bucket's rows from its heartbeats, given in (time, id) order."""
    state = _Bucket()
    n = len(rs)
    if not n:
        return state
    cols = list(zip(*rs, strict=True))  # one transposition in C instead of a pass per grouping
    times: list[float] = list(cols[0])
    pre = [0.0] * n  # pre[i]: capped-gap sum from the bucket's first heartbeat to its i-th
    total = 0.0
    prev = times[0]
    for i in range(1, n):
        t = times[i]
        gap = t - prev
        total += gap if gap < TIMEOUT else TIMEOUT
        pre[i] = total
        prev = t
    rows = state.rows
    rows[_WHOLE] = [total, times[0], times[-1], n]
    for dim, col in _COLUMN_DIMS:
        _runs(rows, dim, cols[col], times, pre)
    _runs(rows, PROJECT_LANGUAGE, list(zip(cols[3], cols[4], strict=True)), times, pre)
    _runs(rows, CODING, [True if c is not None and c != "browsing" else _SKIP for c in cols[2]], times, pre)
    # LEAD: a run of one project is credited its own gaps and the gap that follows it.
    i = 0
    for project, group in itertools.groupby(cols[3]):
        j = i + len(list(group)) - 1
        key = (LEAD, NULL if project is None else project)
        credit = pre[j + 1 if j + 1 < n else j] - pre[i]
        acc = rows.get(key)
        if acc is None:
            rows[key] = [credit, times[i], times[j], j - i + 1]
        else:
            acc[0] += credit
            acc[2] = times[j]
            acc[3] += j - i + 1
        i = j + 1
    state.tail = enc(rs[-1][3])
    return state


def _recompute(conn: sqlite3.Connection, lo_bucket: int, hi_bucket: int, rows: Sequence[Raw] | None = None) -> None:
    """Rebuild buckets [lo_bucket, hi_bucket] from their raw heartbeats (exact for any history)."""
    if rows is None:
        rows = _raws(R.heartbeats_between(conn, lo_bucket * BUCKET, (hi_bucket + 1) * BUCKET))
    records: list[tuple[Any, ...]] = []
    for bucket, group in itertools.groupby(rows, key=lambda r: bucket_of(r[0])):
        records.extend(_build(list(group)).records(bucket))
    R.replace_buckets(conn, DIMS, lo_bucket, hi_bucket, records)


def _get_mark(conn: sqlite3.Connection) -> int:
    return int(R.meta_value(conn, MARK_KEY) or 0)


def _set_mark(conn: sqlite3.Connection, value: int) -> None:
    R.set_meta(conn, MARK_KEY, str(value))


def catch_up(store: Store) -> int:
    """Fold in the heartbeats stored since the last call; returns how many there were."""
    reader = store.reader()
    if store.meta_get(FORMAT_KEY) != FORMAT:
        # Rollups written by an older version count some groups differently: build them again.
        with store.transaction() as conn:
            _set_mark(conn, 0)
            R.set_meta(conn, FORMAT_KEY, FORMAT)
    top = R.newest_id(reader)
    mark = _get_mark(reader)
    if top <= mark:
        return 0
    folded = 0
    if top - mark > REBUILD_ROWS:
        folded = _rebuild(store) - mark
    with store.transaction() as conn:
        mark = _get_mark(conn)
        top = R.newest_id(conn)
        if top <= mark:
            return folded
        buckets = sorted({bucket_of(t) for t in R.times_after(conn, mark)})
        for b in buckets:
            _recompute(conn, b, b)
        _set_mark(conn, top)
    log.info("folded %d heartbeats into the stats rollups", top - mark)
    return folded + top - mark


def _rebuild(store: Store) -> int:
    """Walk the whole store in time order, a chunk of whole buckets per write transaction;
    returns the highest heartbeat id it covers for sure."""
    started = time.monotonic()
    with store.transaction() as conn:
        top = R.newest_id(conn)
        R.clear(conn)
    cursor_bucket: int | None = None
    total = 0
    while True:
        with store.transaction() as conn:
            lo = -math.inf if cursor_bucket is None else cursor_bucket * BUCKET
            rows = _raws(R.heartbeats_from(conn, lo, CHUNK_ROWS))
            if not rows:
                break
            first_b, last_b = bucket_of(rows[0][0]), bucket_of(rows[-1][0])
            if len(rows) == CHUNK_ROWS:
                if first_b == last_b:  # one huge bucket: take all of it
                    rows = _raws(R.heartbeats_between(conn, first_b * BUCKET, (first_b + 1) * BUCKET))
                else:  # the last bucket may continue past the limit: leave it for the next chunk
                    last_b -= 1
                    rows = [r for r in rows if r[0] < (last_b + 1) * BUCKET]
            start_b = first_b if cursor_bucket is None else cursor_bucket
            _recompute(conn, start_b, last_b, rows)
            total += len(rows)
            cursor_bucket = last_b + 1
    with store.transaction() as conn:
        # Heartbeats stored meanwhile may or may not have been seen by the walk; the ones after
        # ``top`` are looked at again by catch_up's incremental pass (recomputing is idempotent).
        if _get_mark(conn) < top:
            _set_mark(conn, top)
    log.info("rebuilt the stats rollups from %d heartbeats in %.1f s", total, time.monotonic() - started)
    return int(top)
