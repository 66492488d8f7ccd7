"""Local stats with Hackatime's rules over the store, fast on years of history, and the
service the CLI, the intake and the control API ask for figures.

Rollups. Every heartbeat falls in a 15-minute UTC bucket (``floor(time / 900)``). For each
bucket and each grouping (all heartbeats; non-browsing ones for streaks; per project,
language, editor, OS, machine, category, project+language) the table ``stats_rollup`` keeps
one row per group value: the capped-gap sum between consecutive heartbeats *of that group*
inside the bucket (``span``), and the group's first and last time there. §2 only ever looks at
consecutive pairs, so the total of any window made of whole buckets is exact:

    Σ span  +  Σ min(first(next row) − last(row), 120)   over the group's rows in time order

a fold over the rows read in primary-key order (dim, bucket, value), which is already
time order per value. Windows that cut a bucket (the statusbar's integer-second end at
23:59:59, a streak window starting at now − 31 days) read the raw heartbeats of that
bucket instead, so every window is exact. Buckets are UTC and 15 minutes long because every
local midnight of every IANA zone from 2001 to 2033 (the times the server accepts) falls on
a UTC quarter hour (checked for all 599 zones), so a local day in any zone is a whole number
of buckets: the rollups never depend on the profile's timezone, which can change at any
time, and a year of days is one range read. Summaries credit each gap to the *earlier*
heartbeat's project (LEAD); dimension 9 keeps those credits inside a bucket and the bucket's
last project (``tail``), so the gap between buckets can be credited too.

Keeping them current. ``rollup_hook`` runs inside the store's insert transaction. New
heartbeats after a bucket's last one (the usual case) or before its first are folded in
incrementally; one landing in the middle of a bucket (an out-of-order import) makes the
bucket be recomputed from its raw heartbeats, which is exact whatever the arrival order.
The mark ``meta.stats_rollup_id`` is the highest heartbeat id whose bucket is known to be
folded in; rows stored without the hook (another process, recovery of a damaged file, an
older version) leave the mark behind, and the next query recomputes their buckets from the
raw heartbeats (idempotent), or rebuilds everything in chunks when that is most of the store.

Why the sums are exact in floating point: see ``agent.stats.durations``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from agent.heartbeat import Heartbeat
from agent.store.schema import DEAD, IN_FLIGHT, READY, SENT
from agent.store.store import Store

from . import durations as D
from .durations import TIMEOUT, Seg
from .server_figures import ServerStats, StatsClient, merge_today

log = logging.getLogger(__name__)

BUCKET = 900
ALL, CODING, PROJECT, LANGUAGE, EDITOR, OS, MACHINE, CATEGORY, PROJECT_LANGUAGE, LEAD = range(10)
DIMS = tuple(range(10))
NULL = "\x00"  # stands for SQL NULL in ``value`` (normalize strips NUL, so no real name has one)
MARK_KEY = "stats_rollup_id"
REBUILD_ROWS = 50_000  # above this many heartbeats to fold in, rebuild by walking the whole store
CHUNK_ROWS = 20_000  # heartbeats per write transaction while rebuilding (the intake keeps flowing)
RANGES = ("today", "7d", "30d", "all")
PROJECTS_RANGE = "30d"

# dim → the SQL expression giving its value from a heartbeats row (raw reads of cut buckets)
_GROUP_COLUMNS = {
    PROJECT: "project",
    LANGUAGE: "language",
    EDITOR: "editor",
    OS: "operating_system",
    MACHINE: "machine",
    CATEGORY: "category",
}
GROUP_LISTS = (
    ("projects", PROJECT, "project"),
    ("languages", LANGUAGE, "language"),
    ("editors", EDITOR, "editor"),
    ("operating_systems", OS, "operating_system"),
    ("machines", MACHINE, "machine"),
    ("categories", CATEGORY, "category"),
)


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
Raw = tuple[float, int, str | None, str | None, str | None, str | None, str | None, str | None]
_RAW_SELECT = "SELECT time, id, category, project, language, editor, operating_system, machine FROM heartbeats"
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

    def records(self, bucket: int, keys: Iterable[tuple[int, str]] | None = None) -> list[tuple[Any, ...]]:
        rows = self.rows
        return [
            (dim, bucket, value, *rows[(dim, value)], self.tail if dim == ALL else None)
            for dim, value in (rows if keys is None else keys)
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


def _concat(early: _Bucket, late: _Bucket) -> _Bucket:
    """The rows of a bucket whose heartbeats are ``early``'s followed by ``late``'s.

    ``early`` is updated in place and returned (callers pass a state they no longer need).
    """
    e_whole, l_whole = early.rows.get(_WHOLE), late.rows.get(_WHOLE)
    if e_whole is None:
        return late
    if l_whole is None:
        return early
    # The gap from the early part's last heartbeat to the late part's first goes to the early tail.
    bridge = D.capped(l_whole[1] - e_whole[2])
    rows = early.rows
    for key, l_acc in late.rows.items():
        e_acc = rows.get(key)
        if e_acc is None:
            rows[key] = l_acc
        elif key[0] == LEAD:
            e_acc[0] += l_acc[0]
            e_acc[1] = min(e_acc[1], l_acc[1])
            e_acc[2] = max(e_acc[2], l_acc[2])
            e_acc[3] += l_acc[3]
        else:
            gap = l_acc[1] - e_acc[2]
            e_acc[0] += l_acc[0] + (gap if gap < TIMEOUT else TIMEOUT)
            e_acc[2] = l_acc[2]
            e_acc[3] += l_acc[3]
    rows[(LEAD, early.tail)][0] += bridge
    early.tail = late.tail
    return early


def _load(conn: sqlite3.Connection, buckets: Sequence[int]) -> dict[int, _Bucket]:
    states: dict[int, _Bucket] = {}
    for chunk in range(0, len(buckets), 100):
        part = buckets[chunk : chunk + 100]
        sql = (
            "SELECT bucket, dim, value, span, first, last, n, tail FROM stats_rollup "
            f"WHERE dim IN ({','.join('?' * len(DIMS))}) AND bucket IN ({','.join('?' * len(part))})"
        )
        for bucket, dim, value, span, first, last, n, tail in conn.execute(sql, (*DIMS, *part)):
            state = states.get(bucket)
            if state is None:
                state = states[bucket] = _Bucket()
            state.rows[(dim, value)] = [span, first, last, n]
            if dim == ALL:
                state.tail = tail if tail is not None else NULL
    return states


_INSERT = "INSERT OR REPLACE INTO stats_rollup(dim, bucket, value, span, first, last, n, tail) VALUES (?,?,?,?,?,?,?,?)"


def _recompute(conn: sqlite3.Connection, lo_bucket: int, hi_bucket: int, rows: Sequence[Raw] | None = None) -> None:
    """Rebuild buckets [lo_bucket, hi_bucket] from their raw heartbeats (exact for any history)."""
    if rows is None:
        rows = conn.execute(
            _RAW_SELECT + " WHERE time >= ? AND time < ? ORDER BY time, id",
            (lo_bucket * BUCKET, (hi_bucket + 1) * BUCKET),
        ).fetchall()
    conn.executemany(
        "DELETE FROM stats_rollup WHERE dim = ? AND bucket BETWEEN ? AND ?",
        [(dim, lo_bucket, hi_bucket) for dim in DIMS],
    )
    records: list[tuple[Any, ...]] = []
    for bucket, group in itertools.groupby(rows, key=lambda r: bucket_of(r[0])):
        records.extend(_build(list(group)).records(bucket))
    conn.executemany(_INSERT, records)


def _get_mark(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (MARK_KEY,)).fetchone()
    return int(row[0]) if row is not None else 0


def _set_mark(conn: sqlite3.Connection, value: int) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (MARK_KEY, str(value)),
    )


def rollup_hook(conn: sqlite3.Connection, created: Sequence[tuple[int, Heartbeat]]) -> None:
    """``Store.insert_hooks`` entry: fold newly stored heartbeats into the rollups, in the same
    transaction, so a committed heartbeat is always counted."""
    by_bucket: dict[int, list[Raw]] = {}
    for hb_id, hb in created:
        p = hb.payload
        t = hb.time
        r: Raw = (
            t, hb_id, p.get("category"), p.get("project"), p.get("language"),
            hb.editor, hb.operating_system, p.get("machine"),
        )  # fmt: skip
        b = int(t // BUCKET)  # bucket_of, inlined: this runs for every heartbeat stored
        if not b * BUCKET <= t < (b + 1) * BUCKET:
            b = bucket_of(t)
        found = by_bucket.get(b)
        if found is None:
            by_bucket[b] = [r]
        else:
            found.append(r)
    stored = _load(conn, list(by_bucket))
    records: list[tuple[Any, ...]] = []
    for bucket, rs in by_bucket.items():
        rs.sort(key=lambda r: (r[0], r[1]))
        state = stored.get(bucket)
        if state is None:
            records.extend(_build(rs).records(bucket))
            continue
        first, last = state.rows[_WHOLE][1], state.rows[_WHOLE][2]
        before = [r for r in rs if r[0] < first]
        after = [r for r in rs if r[0] >= last]
        if len(before) + len(after) != len(rs):
            # One lands between two stored heartbeats; its neighbours are not in the rollup,
            # so take the bucket again from its raw heartbeats (they include the new ones).
            _recompute(conn, bucket, bucket)
            continue
        changed: set[tuple[int, str]] = set()
        if before:
            head = _build(before)
            changed.update(head.rows)
            state = _concat(head, state)  # every stored row may change: keep the head's copy
        if after:
            rest = _build(after)
            changed.update(rest.rows)
            changed.add((LEAD, state.tail))
            state = _concat(state, rest)
        records.extend(state.records(bucket, changed))
    conn.executemany(_INSERT, records)
    ids = [hb_id for hb_id, _ in created]
    # New ids follow the highest one stored, so the mark moves only if nothing before them
    # was stored without this hook; otherwise it stays, and catch_up fixes those buckets.
    if _get_mark(conn) == min(ids) - 1:
        _set_mark(conn, max(ids))


def install(store: Store) -> None:
    """Keep the store's rollups current on every insert (once per store)."""
    if rollup_hook not in store.insert_hooks:
        store.insert_hooks.append(rollup_hook)


def catch_up(store: Store) -> int:
    """Fold in heartbeats stored without the hook; returns how many there were."""
    reader = store.reader()
    top = reader.execute("SELECT max(id) FROM heartbeats").fetchone()[0] or 0
    mark = _get_mark(reader)
    if top <= mark:
        return 0
    folded = 0
    if top - mark > REBUILD_ROWS:
        folded = _rebuild(store) - mark
    with store.transaction() as conn:
        mark = _get_mark(conn)
        top = conn.execute("SELECT max(id) FROM heartbeats").fetchone()[0] or 0
        if top <= mark:
            return folded
        buckets = sorted({bucket_of(t) for (t,) in conn.execute("SELECT time FROM heartbeats WHERE id > ?", (mark,))})
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
        top = conn.execute("SELECT max(id) FROM heartbeats").fetchone()[0] or 0
        conn.execute("DELETE FROM stats_rollup")
    cursor_bucket: int | None = None
    total = 0
    while True:
        with store.transaction() as conn:
            lo = -math.inf if cursor_bucket is None else cursor_bucket * BUCKET
            rows: list[Raw] = conn.execute(
                _RAW_SELECT + " WHERE time >= ? ORDER BY time, id LIMIT ?", (lo, CHUNK_ROWS)
            ).fetchall()
            if not rows:
                break
            first_b, last_b = bucket_of(rows[0][0]), bucket_of(rows[-1][0])
            if len(rows) == CHUNK_ROWS:
                if first_b == last_b:  # one huge bucket: take all of it
                    rows = conn.execute(
                        _RAW_SELECT + " WHERE time >= ? AND time < ? ORDER BY time, id",
                        (first_b * BUCKET, (first_b + 1) * BUCKET),
                    ).fetchall()
                else:  # the last bucket may continue past the limit: leave it for the next chunk
                    last_b -= 1
                    rows = [r for r in rows if r[0] < (last_b + 1) * BUCKET]
            start_b = first_b if cursor_bucket is None else cursor_bucket
            _recompute(conn, start_b, last_b, rows)
            total += len(rows)
            cursor_bucket = last_b + 1
    with store.transaction() as conn:
        # Heartbeats stored meanwhile were folded by the hook or by the walk; the ones after
        # ``top`` are looked at again by catch_up's incremental pass (recomputing is idempotent).
        if _get_mark(conn) < top:
            _set_mark(conn, top)
    log.info("rebuilt the stats rollups from %d heartbeats in %.1f s", total, time.monotonic() - started)
    return int(top)


# ---- queries ----------------------------------------------------------------------------------

Interval = tuple[float, float, Hashable]  # [lo, hi) and the key (e.g. a local date) it counts for


def _after(x: float) -> float:
    """The half-open end for an inclusive bound: ``t <= x`` is ``t < _after(x)``."""
    return math.nextafter(x, math.inf)


def _split(lo: float, hi: float) -> tuple[int, int]:
    """Whole buckets [blo, bhi) inside [lo, hi); the rest of [lo, hi) is read raw."""
    blo = bucket_of(lo)
    if blo * BUCKET < lo:
        blo += 1
    return blo, max(blo, bucket_of(hi))


def _raw_groups(conn: sqlite3.Connection, dim: int, lo: float, hi: float) -> dict[str, Seg]:
    """Per-group segments straight from the heartbeats in [lo, hi)."""
    if hi <= lo:
        return {}
    where = "time >= ? AND time < ?"
    if dim == ALL:
        sql = f"SELECT time, '' FROM heartbeats WHERE {where} ORDER BY time, id"
    elif dim == CODING:
        sql = (
            f"SELECT time, '' FROM heartbeats WHERE {where} "
            "AND category IS NOT NULL AND category != 'browsing' ORDER BY time, id"
        )
    elif dim == PROJECT_LANGUAGE:
        sql = f"SELECT time, project, language FROM heartbeats WHERE {where} ORDER BY time, id"
    else:
        sql = f"SELECT time, {_GROUP_COLUMNS[dim]} FROM heartbeats WHERE {where} ORDER BY time, id"
    times: dict[str, list[float]] = {}
    for row in conn.execute(sql, (lo, hi)):
        value = pair(row[1], row[2]) if dim == PROJECT_LANGUAGE else enc(row[1])
        times.setdefault(value, []).append(row[0])
    out: dict[str, Seg] = {}
    for value, ts in times.items():
        seg = D.seg_of(ts)
        if seg is not None:
            out[value] = seg
    return out


def _fold_rows(rows: Iterable[tuple[Any, ...]]) -> dict[str, Seg]:
    """Join rollup rows (value, span, first, last, n), given in bucket order, per value."""
    acc: dict[str, list[Any]] = {}
    for value, span, first, last, n in rows:
        a = acc.get(value)
        if a is None:
            acc[value] = [span, first, last, n]
        else:
            gap = first - a[2]
            a[0] += span + (gap if gap < TIMEOUT else TIMEOUT)
            a[2] = last
            a[3] += n
    return {value: Seg(a[0], a[1], a[2], a[3]) for value, a in acc.items()}


def collect(conn: sqlite3.Connection, dim: int, intervals: Sequence[Interval]) -> dict[Hashable, dict[str, Seg]]:
    """For each key, each group's segment over the key's intervals (joined in time order).

    Intervals must not overlap. Whole buckets come from the rollups (rows in primary-key
    order are already in bucket order per value, so a fold in Python joins them without a
    sort); the parts of cut buckets at an interval's ends come from the raw heartbeats.
    """
    pieces: dict[Hashable, list[tuple[float, dict[str, Seg]]]] = {}
    cores: list[tuple[int, int, Hashable]] = []  # (first bucket, end bucket, key), in time order
    for lo, hi, key in sorted(intervals, key=lambda iv: iv[0]):
        blo, bhi = _split(lo, hi)
        parts = pieces.setdefault(key, [])
        if blo < bhi:
            cores.append((blo, bhi, key))
            parts.append((lo, _raw_groups(conn, dim, lo, blo * BUCKET)))
            parts.append((bhi * BUCKET, _raw_groups(conn, dim, bhi * BUCKET, hi)))
        else:
            parts.append((lo, _raw_groups(conn, dim, lo, hi)))
    # One range query per run of adjacent cores (a year of days is one query), each row
    # routed to its core: the cores are sorted, so a pointer that only moves forward does.
    start = 0
    while start < len(cores):
        end = start + 1
        while end < len(cores) and cores[end][0] == cores[end - 1][1]:
            end += 1
        run = cores[start:end]
        rows = conn.execute(
            "SELECT bucket, value, span, first, last, n FROM stats_rollup WHERE dim = ? AND bucket >= ? AND bucket < ?",
            (dim, run[0][0], run[-1][1]),
        )
        k = 0
        batch: list[tuple[Any, ...]] = []
        for bucket, *rest in rows:
            while bucket >= run[k][1]:
                if batch:
                    pieces[run[k][2]].append((run[k][0] * BUCKET, _fold_rows(batch)))
                    batch = []
                k += 1
            batch.append(rest)
        if batch:
            pieces[run[k][2]].append((run[k][0] * BUCKET, _fold_rows(batch)))
        start = end
    out: dict[Hashable, dict[str, Seg]] = {}
    for key, parts in pieces.items():
        parts.sort(key=lambda p: p[0])
        joined: dict[str, Seg] = {}
        for _, groups in parts:
            for value, seg in groups.items():
                prev = joined.get(value)
                joined[value] = seg if prev is None else prev.then(seg)
        out[key] = joined
    return out


def window_groups(conn: sqlite3.Connection, dim: int, lo: float, hi: float) -> dict[str, Seg]:
    """Each group's segment over [lo, hi) (per-group partitions, §2)."""
    return collect(conn, dim, [(lo, hi, 0)]).get(0, {})


def window_seconds(conn: sqlite3.Connection, lo: float, hi: float, dim: int = ALL) -> int:
    seg = window_groups(conn, dim, lo, hi).get("")
    return 0 if seg is None else D.to_seconds(seg.span)


@dataclass
class _LeadPiece:
    credits: dict[str, float]
    first: float
    last: float
    tail: str


def lead_by_key(conn: sqlite3.Connection, intervals: Sequence[Interval]) -> dict[Hashable, dict[str, float]]:
    """The summaries rule per key: each capped gap credited to the earlier heartbeat's project."""
    pieces: dict[Hashable, list[tuple[float, _LeadPiece]]] = {}

    def raw(lo: float, hi: float) -> _LeadPiece | None:
        if hi <= lo:
            return None
        rows = conn.execute(
            "SELECT time, project FROM heartbeats WHERE time >= ? AND time < ? ORDER BY time, id", (lo, hi)
        ).fetchall()
        if not rows:
            return None
        credits = D.lead_credits((t, enc(p)) for t, p in rows)
        return _LeadPiece(credits, rows[0][0], rows[-1][0], enc(rows[-1][1]))

    for lo, hi, key in intervals:
        blo, bhi = _split(lo, hi)
        found: list[tuple[float, _LeadPiece | None]] = []
        if blo < bhi:
            found.append((lo, raw(lo, blo * BUCKET)))
            found.append((bhi * BUCKET, raw(bhi * BUCKET, hi)))
            buckets = conn.execute(
                "SELECT first, last, tail FROM stats_rollup "
                "WHERE dim = ? AND bucket >= ? AND bucket < ? ORDER BY bucket",
                (ALL, blo, bhi),
            ).fetchall()
            if buckets:
                credits: dict[str, float] = {}
                for value, span in conn.execute(
                    "SELECT value, span FROM stats_rollup WHERE dim = ? AND bucket >= ? AND bucket < ?",
                    (LEAD, blo, bhi),
                ):
                    credits[value] = credits.get(value, 0.0) + span
                for (_, prev_last, prev_tail), (first, _, _) in itertools.pairwise(buckets):
                    credits[prev_tail] = credits.get(prev_tail, 0.0) + D.capped(first - prev_last)
                found.append((blo * BUCKET, _LeadPiece(credits, buckets[0][0], buckets[-1][1], buckets[-1][2])))
        else:
            found.append((lo, raw(lo, hi)))
        kept = [(at, p) for at, p in found if p is not None]
        if kept:
            pieces.setdefault(key, []).extend(kept)
    out: dict[Hashable, dict[str, float]] = {}
    for key, parts in pieces.items():
        parts.sort(key=lambda p: p[0])
        total: dict[str, float] = {}
        prev: _LeadPiece | None = None
        for _, piece in parts:
            for value, credit in piece.credits.items():
                total[value] = total.get(value, 0.0) + credit
            if prev is not None:
                total[prev.tail] = total.get(prev.tail, 0.0) + D.capped(piece.first - prev.last)
            prev = piece
        out[key] = total
    return out


def day_intervals(
    first: dt.date, last: dt.date, tz: Any, lo: float = -math.inf, hi: float = math.inf
) -> list[Interval]:
    """The stretches of each local day in [first, last] (``DATE_TRUNC`` days), clipped to [lo, hi)."""
    out: list[Interval] = []
    for a, b, date in D.day_pieces(first, last, tz):
        a2, b2 = max(float(a), lo), min(float(b), hi)
        if a2 < b2:
            out.append((a2, b2, date))
    return out


def day_seconds(
    conn: sqlite3.Connection, first: dt.date, last: dt.date, tz: Any, *, dim: int = ALL,
    lo: float = -math.inf, hi: float = math.inf,
) -> dict[dt.date, int]:  # fmt: skip
    """Each local day's total (one timeline per day: no gap is credited across midnight)."""
    found = collect(conn, dim, day_intervals(first, last, tz, lo, hi))
    out: dict[dt.date, int] = {}
    for key, groups in found.items():
        seg = groups.get("")
        if seg is not None and isinstance(key, dt.date):
            out[key] = D.to_seconds(seg.span)
    return out


def streak_days(conn: sqlite3.Connection, now: float, tz: Any) -> int:
    """§3 over the store: non-browsing heartbeats in [now − 31 days, now], per local day."""
    start = now - D.STREAK_WINDOW_SECONDS
    today = D.local_date(now, tz)
    days = day_seconds(conn, D.local_date(start, tz), today, tz, dim=CODING, lo=start, hi=_after(now))
    return D.streak(days, today)


def unsynced(conn: sqlite3.Connection, destination: str, lo: float, hi: float, seen_before: float) -> tuple[float, int]:
    """What this machine's heartbeats in [lo, hi] that the server had not counted add to it.

    "Not counted": waiting or in flight, or accepted after ``seen_before`` (the wall time the
    server's figure was fetched). Returned is (capped-gap contribution, how many): the
    duration of the known heartbeats with them minus without them, both exact. Capped-gap
    duration is submodular, so when other machines' heartbeats interleave this is an upper
    bound of what the server will add; for one machine it is exact. Dead letters are left
    out of both: the server refused them. Heartbeats with no delivery to this destination
    (imported with --no-upload, usually history the server already has) count as known.
    """
    known = "(d.heartbeat_id IS NULL OR (d.state = %d AND d.updated_at <= ?))" % SENT  # noqa: UP031
    join = "FROM heartbeats h LEFT JOIN deliveries d ON d.heartbeat_id = h.id AND d.destination = ?"
    # Two index ranges (waiting or in flight; accepted lately) rather than one OR, which would
    # make SQLite walk every delivery of the destination.
    umin, umax, count = math.inf, -math.inf, 0
    for sql, args in (
        ("state IN (?, ?)", (READY, IN_FLIGHT)),
        ("state = ? AND updated_at > ?", (SENT, seen_before)),
    ):
        lo_t, hi_t, n = conn.execute(
            f"SELECT min(time), max(time), count(*) FROM deliveries WHERE destination = ? AND {sql} "
            "AND time >= ? AND time <= ?",
            (destination, *args, lo, hi),
        ).fetchone()
        if n:
            umin, umax, count = min(umin, lo_t), max(umax, hi_t), count + n
    if not count:
        return 0.0, 0
    pred = conn.execute(
        f"SELECT h.time {join} WHERE h.time >= ? AND h.time < ? AND {known} ORDER BY h.time DESC LIMIT 1",
        (destination, lo, umin, seen_before),
    ).fetchone()
    succ = conn.execute(
        f"SELECT h.time {join} WHERE h.time > ? AND h.time <= ? AND {known} ORDER BY h.time LIMIT 1",
        (destination, umax, hi, seen_before),
    ).fetchone()
    a = umin if pred is None else pred[0]
    b = umax if succ is None else succ[0]
    with_new: list[float] = []
    without: list[float] = []
    for t, state, updated in conn.execute(
        f"SELECT h.time, d.state, d.updated_at {join} WHERE h.time >= ? AND h.time <= ? ORDER BY h.time, h.id",
        (destination, a, b),
    ):
        if state is None or (state == SENT and updated <= seen_before):
            with_new.append(t)
            without.append(t)
        elif state != DEAD:
            with_new.append(t)
    return D.capped_sum(with_new) - D.capped_sum(without), count


# ---- the service ------------------------------------------------------------------------------


def _system_zone() -> str | None:
    try:
        import tzlocal

        name = tzlocal.get_localzone_name()
    except Exception:  # tzlocal raises its own errors for odd system setups
        return None
    return name if D.valid_zone(name) else None


class StatsService:
    """Local figures with the server's rules, cached server figures, and the merged view."""

    def __init__(
        self,
        store: Store,
        *,
        client: StatsClient | None,
        destination: str = "hackatime",
        clock: Callable[[], float] = time.time,
        timezone: str | None = None,
        eager: bool = True,
    ) -> None:
        self.store = store
        self.destination = destination
        self.clock = clock
        self._given_tz = timezone
        self.server = ServerStats(store, client, clock=clock)
        self._catch_up_lock = threading.Lock()
        # eager: fold every insert into the rollups inside its transaction. The agent passes
        # False and catches up on its stats thread (and before every query) instead, which keeps
        # the rollup work off the editors' intake path; the rollups come out bit-identical.
        if eager:
            install(store)

    # ---- plumbing --------------------------------------------------------------------------

    def prepare(self) -> int:
        """Bring the rollups up to date now (e.g. at start-up, after a migration)."""
        with self._catch_up_lock:
            return catch_up(self.store)

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction, so every figure of an answer comes from the same snapshot."""
        self.prepare()
        conn = self.store.reader()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def timezone(self) -> str:
        """The profile's zone (cached users/current), else the given one, else the system's, else UTC."""
        profile = self.server.profile_timezone()
        if profile is not None:
            return profile
        if self._given_tz and D.valid_zone(self._given_tz):
            return self._given_tz
        return _system_zone() or "UTC"

    # ---- local figures ---------------------------------------------------------------------

    def _range_window(self, range_: str, now: float, tz: Any) -> tuple[float, float]:
        """Inclusive [start, end] of a range: today and N days back plus today, with the
        server's integer-second day bounds; ``all`` is the server's valid-time scope."""
        if range_ == "today":
            lo, hi = D.day_window(D.local_date(now, tz), tz)
            return float(lo), float(hi)
        if range_ in ("7d", "30d"):
            lo, hi, _, _ = D.last_days_window(now, tz, 7 if range_ == "7d" else 30)
            return float(lo), float(hi)
        if range_ == "all":
            return 0.0, float(D.TIME_MAX)
        raise ValueError(f"range must be one of {', '.join(RANGES)}")

    def local(self, range: str) -> dict[str, Any]:
        """Local figures for ``hackatime-agent stats`` and the control API."""
        now = self.clock()
        tz_name = self.timezone()
        tz = D.zone(tz_name)
        lo, hi = self._range_window(range, now, tz)
        with self._read() as conn:
            out = self._figures(conn, lo, hi)
        if range == "all":  # the scope is every valid time; show the history's own ends instead
            first, last = out["first_heartbeat"], out["last_heartbeat"]
            start, end = (None, None) if first is None else (_iso(first, tz), _iso(last, tz))
        else:
            start, end = _iso(lo, tz), _iso(hi, tz)
        out.update(
            {
                "range": range,
                "start": start,
                "end": end,
                "start_ts": lo,
                "end_ts": hi,
                "timezone": tz_name,
                "source": "local",
                "generated_at": now,
            }
        )
        return out

    def _figures(self, conn: sqlite3.Connection, lo: float, hi: float) -> dict[str, Any]:
        end = _after(hi)
        whole = window_groups(conn, ALL, lo, end).get("")
        out: dict[str, Any] = {
            "total_seconds": 0 if whole is None else D.to_seconds(whole.span),
            "heartbeats": 0 if whole is None else whole.count,
            "first_heartbeat": None if whole is None else whole.first,
            "last_heartbeat": None if whole is None else whole.last,
        }
        for name, dim, column in GROUP_LISTS:
            groups = window_groups(conn, dim, lo, end)
            if name == "projects":
                out[name] = self._projects(conn, groups, lo, end)
            else:
                out[name] = group_list(groups, column)
        return out

    def _projects(
        self, conn: sqlite3.Connection, groups: dict[str, Seg], lo: float, end: float
    ) -> list[dict[str, Any]]:
        entries = group_list(groups, "project", keep_raw=True)
        languages: dict[str | None, list[tuple[float, str]]] = {}
        for value, seg in window_groups(conn, PROJECT_LANGUAGE, lo, end).items():
            project, language = unpair(value)
            if language is not None and not D.is_blank(language):
                languages.setdefault(project, []).append((seg.span, language))
        out = []
        for entry in entries:
            raw = entry.pop("_raw")
            ranked = sorted(languages.get(raw, []), key=lambda x: (-x[0], x[1]))
            entry["languages"] = [name for _, name in ranked]
            entry["last_activity"] = groups[enc(raw)].last
            out.append(entry)
        return out

    # ---- merged figures --------------------------------------------------------------------

    def _today(self, conn: sqlite3.Connection, now: float, tz: Any) -> dict[str, Any]:
        lo, hi = D.day_window(D.local_date(now, tz), tz)
        local_seconds = window_seconds(conn, lo, _after(hi))
        cached = self.server.today(now, tz)
        seen = cached.wall_fetched_at if cached is not None else math.inf
        extra, pending = unsynced(conn, self.destination, lo, hi, seen)
        server_seconds = cached.total_seconds if cached is not None else None
        total, source = merge_today(server_seconds, local_seconds, extra)
        goal = self.server.goal(total, server_seconds, cached)
        return {
            "total_seconds": total,
            "text": self.server.text(total, goal),
            "local_seconds": local_seconds,
            "server_seconds": server_seconds,
            "unsynced_seconds": D.to_seconds(extra),
            "unsynced_heartbeats": pending,
            "source": source,
            "server_fetched_at": cached.fetched_at if cached is not None else None,
            "server_age_seconds": None if cached is None else max(0.0, now - cached.fetched_at),
            "goal": goal,
            "start": lo,
            "end": hi,
        }

    def statusbar_today(self) -> dict[str, Any]:
        """Hackatime's statusbar answer (§4.5) with the merged figure, for editor plugins."""
        now = self.clock()
        tz = D.zone(self.timezone())
        with self._read() as conn:
            today = self._today(conn, now, tz)
        data: dict[str, Any] = {"grand_total": {"text": today["text"], "total_seconds": today["total_seconds"]}}
        if today["goal"] is not None:
            data["goal"] = {
                k: today["goal"][k] for k in ("target_seconds", "tracked_seconds", "completion_percent", "complete")
            }
        return {"data": data}

    def snapshot(self) -> dict[str, Any]:
        """Everything the tray shows, in one answer; every figure says where it comes from."""
        now = self.clock()
        tz_name = self.timezone()
        tz = D.zone(tz_name)
        today_date = D.local_date(now, tz)
        with self._read() as conn:
            today = self._today(conn, now, tz)
            local_streak = streak_days(conn, now, tz)
            plo, phi = self._range_window(PROJECTS_RANGE, now, tz)
            project_groups = window_groups(conn, PROJECT, plo, _after(phi))
            projects = self._projects(conn, project_groups, plo, _after(phi))
            last7 = self._last_7_days(conn, now, tz)
            first_day = today_date - dt.timedelta(days=364)
            days = day_seconds(conn, first_day, today_date, tz)
            sync = self._sync_health(conn)
        streak = self.server.streak(now, tz, local_streak)
        # The heatmap is local (the server has no cheap year of days); where the daily bars
        # came from the server, a day shows the larger of the two figures.
        overlay = {d["date"]: d["total_seconds"] for d in last7["days"]} if last7["days_source"] == "server" else {}
        daily = [
            {"date": iso, "total_seconds": max(days.get(d, 0), overlay.get(iso, 0))}
            for d in D.dates(first_day, today_date)
            for iso in (d.isoformat(),)
        ]
        return {
            "generated_at": now,
            "timezone": tz_name,
            "today": today,
            "streak": streak,
            "projects_range": PROJECTS_RANGE,
            "projects": projects,
            "server_projects": self.server.projects(),
            "last_7_days": last7,
            "daily_totals": daily,
            "daily_totals_source": "local+server" if overlay else "local",
            "sync": sync,
            "server": self.server.health(now),
        }

    def _last_7_days(self, conn: sqlite3.Connection, now: float, tz: Any) -> dict[str, Any]:
        """stats/last_7_days (§4.6): 8 local days as one timeline, per-group lists, and the daily
        bars with per-project time (summaries, §4.8). Server figures when fetched today, local
        ones otherwise; the total is merged with unsynced work like today's."""
        lo, hi, first, today = D.last_days_window(now, tz, 7)
        local_total = window_seconds(conn, lo, _after(hi))
        cached = self.server.last_7_days(now, tz)
        out: dict[str, Any]
        if cached is not None:
            out = cached.figures
            extra, _ = unsynced(conn, self.destination, lo, hi, cached.wall_fetched_at)
            server_total = int(out["total_seconds"])
            total, source = merge_today(server_total, local_total, extra)
            out.update(
                {"total_seconds": total, "source": source, "fetched_at": cached.fetched_at,
                 "server_seconds": server_total, "local_seconds": local_total}
            )  # fmt: skip
        else:
            out = self._figures(conn, float(lo), float(hi))
            for key in ("heartbeats", "first_heartbeat", "last_heartbeat"):
                out.pop(key, None)
            for entry in out["projects"]:
                entry.pop("languages", None)
                entry.pop("last_activity", None)
            # The server lists one "coding" category holding the whole total (§4.6).
            total = out["total_seconds"]
            out["categories"] = [{"name": "coding", "total_seconds": total, "percent": 100.0}] if total else []
            # days_including_holidays: local days with any heartbeat in the window, even one.
            active = sum(
                1
                for groups in collect(conn, ALL, day_intervals(first, today, tz, lo, _after(hi))).values()
                if groups.get("")
            )
            out.update(
                {"source": "local", "fetched_at": None, "server_seconds": None, "local_seconds": total,
                 "days_including_holidays": active,
                 "daily_average": D.ruby_round(total / active, 1) if active else 0.0}
            )  # fmt: skip
        server_days = self.server.summaries(now, tz, first, today)
        if server_days is not None:
            out["days"], out["days_source"] = server_days, "server"
        else:
            out["days"], out["days_source"] = self._local_days(conn, first, today, tz), "local"
        out.update({"start": lo, "end": hi})
        return out

    def _local_days(self, conn: sqlite3.Connection, first: dt.date, last: dt.date, tz: Any) -> list[dict[str, Any]]:
        """Daily bars like summaries: a day's total and its projects, each gap credited to the
        earlier heartbeat's project, so the projects add up to the day."""
        credits_by_day = lead_by_key(conn, day_intervals(first, last, tz))
        totals = day_seconds(conn, first, last, tz)
        days = []
        for d in D.dates(first, last):
            projects: list[dict[str, Any]] = []
            for value, credit in credits_by_day.get(d, {}).items():
                seconds = D.to_seconds(credit)
                if seconds > 0:
                    projects.append({"name": D.display_name("project", dec(value)), "total_seconds": seconds})
            projects.sort(key=lambda p: (-p["total_seconds"], p["name"]))
            days.append({"date": d.isoformat(), "total_seconds": totals.get(d, 0), "projects": projects})
        return days

    def _sync_health(self, conn: sqlite3.Connection) -> dict[str, Any]:
        """The queue for the tray. Counted per state through the queue index: ``Store.counts``
        also counts every delivery ever sent, a scan of the whole table on years of history."""
        health: dict[str, Any] = {"destination": self.destination}
        for name, state in (("pending", READY), ("in_flight", IN_FLIGHT), ("dead", DEAD)):
            health[name] = conn.execute(
                "SELECT count(*) FROM deliveries WHERE destination = ? AND state = ?", (self.destination, state)
            ).fetchone()[0]
        oldest = [
            conn.execute(
                "SELECT min(time) FROM deliveries WHERE destination = ? AND state = ?", (self.destination, state)
            ).fetchone()[0]
            for state in (READY, IN_FLIGHT)
        ]
        health["oldest_pending"] = min((t for t in oldest if t is not None), default=None)
        with contextlib.suppress(KeyError):
            dest = self.store.destination(self.destination)
            for key in ("auth_state", "last_success", "last_error", "last_error_at", "backoff_until"):
                health[key] = dest.get(key)
        return health

    def spans(self, range: str = "today") -> list[dict[str, float]]:
        """Coding spans of a range (§2): a new span after a gap over 120 s, each carrying the
        capped gap that follows it, so they add up to the range's total."""
        now = self.clock()
        tz = D.zone(self.timezone())
        lo, hi = self._range_window(range, now, tz)
        with self._read() as conn:
            times = [t for (t,) in conn.execute("SELECT time FROM heartbeats WHERE time >= ? AND time <= ?", (lo, hi))]
        return [
            {"start_time": sp.start_time, "end_time": sp.end_time, "duration": sp.duration} for sp in D.spans(times)
        ]

    def refresh_server(self, force: bool = False) -> bool:
        """Fetch the server's figures that are due; never raises on network, HTTP or bad JSON."""
        return self.server.refresh(force=force, timezone=self.timezone)


def group_list(groups: dict[str, Seg], column: str, *, keep_raw: bool = False) -> list[dict[str, Any]]:
    """A last_7_days-style list: per-group totals (rounded per group), 0 s groups dropped,
    percent of the sum of the groups, sorted by time then name."""
    totals = [(value, D.to_seconds(seg.span)) for value, seg in groups.items()]
    grand = float(sum(s for _, s in totals))
    out: list[dict[str, Any]] = []
    for value, seconds in totals:
        if seconds <= 0:
            continue
        raw = dec(value)
        entry: dict[str, Any] = {
            "name": D.display_name(column, raw),
            "total_seconds": seconds,
            "percent": D.percent_of(seconds, grand),
        }
        if keep_raw:
            entry["_raw"] = raw
        out.append(entry)
    out.sort(key=lambda e: (-e["total_seconds"], e["name"]))
    return out


def _iso(ts: float, tz: Any) -> str:
    return dt.datetime.fromtimestamp(ts, tz).isoformat()
