"""Queries over the rollups: each group's exact segment over any window, day by day or
whole, the summaries' LEAD credits, streaks, and what unsynced work adds to a server figure.

A window's whole buckets come from ``stats_rollup`` (``agent.stats.rollups``); the parts of
the buckets it cuts (the statusbar's integer-second end at 23:59:59, a streak window
starting at now − 31 days) come from the raw heartbeats, so every window is exact.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from agent.store import rollups as R
from agent.store import windows as W

from . import durations as D
from .durations import TIMEOUT, Seg
from .rollups import (
    ALL,
    BUCKET,
    CATEGORY,
    CODING,
    EDITOR,
    LANGUAGE,
    LEAD,
    MACHINE,
    NULL,
    OS,
    PROJECT,
    PROJECT_LANGUAGE,
    bucket_of,
    dec,
    enc,
    pair,
    server_language,
)

# dim → the heartbeats column holding its value (raw reads of cut buckets)
_GROUP_COLUMNS = {
    PROJECT: "project",
    LANGUAGE: "language",
    EDITOR: "editor",
    OS: "operating_system",
    MACHINE: "machine",
    CATEGORY: "category",
}
GROUP_DIMS = {column: dim for dim, column in _GROUP_COLUMNS.items()}  # column → its rollup dim
GROUP_LISTS = (
    ("projects", PROJECT, "project"),
    ("languages", LANGUAGE, "language"),
    ("editors", EDITOR, "editor"),
    ("operating_systems", OS, "operating_system"),
    ("machines", MACHINE, "machine"),
    ("categories", CATEGORY, "category"),
)


Interval = tuple[float, float, Hashable]  # [lo, hi) and the key (e.g. a local date) it counts for


def after(x: float) -> float:
    """The half-open end for an inclusive bound: ``t <= x`` is ``t < after(x)``."""
    return math.nextafter(x, math.inf)


def _adjacent_runs(cores: list[tuple[int, int, Hashable]]) -> Iterator[list[tuple[int, int, Hashable]]]:
    """Sorted cores (first bucket, end bucket, key) in runs where each starts where the last
    ended: a run is read with one range query over the rollups."""
    start = 0
    while start < len(cores):
        end = start + 1
        while end < len(cores) and cores[end][0] == cores[end - 1][1]:
            end += 1
        yield cores[start:end]
        start = end


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
    if dim in (ALL, CODING):
        rows = W.timeline(conn, lo, hi, coding=dim == CODING)
    elif dim == PROJECT_LANGUAGE:
        rows = W.timeline(conn, lo, hi, ("project", "language", "entity"))
    elif dim == LANGUAGE:
        rows = W.timeline(conn, lo, hi, ("language", "entity"))
    else:
        rows = W.timeline(conn, lo, hi, (_GROUP_COLUMNS[dim],))
    times: dict[str, list[float]] = {}
    for row in rows:
        if dim == PROJECT_LANGUAGE:
            value = pair(row[1], server_language(row[2], row[3]))
        elif dim == LANGUAGE:
            value = enc(server_language(row[1], row[2]))
        else:
            value = enc(row[1])
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
    for run in _adjacent_runs(cores):
        k = 0
        batch: list[tuple[Any, ...]] = []
        for bucket, *rest in R.rows_in(conn, dim, run[0][0], run[-1][1]):
            while bucket >= run[k][1]:
                if batch:
                    pieces[run[k][2]].append((run[k][0] * BUCKET, _fold_rows(batch)))
                    batch = []
                k += 1
            batch.append(rest)
        if batch:
            pieces[run[k][2]].append((run[k][0] * BUCKET, _fold_rows(batch)))
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


def group_counts(conn: sqlite3.Connection, dim: int, lo: float, hi: float, values: Sequence[str]) -> dict[str, int]:
    """How many heartbeats each of ``values`` (encoded groups of ``dim``) has in [lo, hi): whole
    buckets summed by SQLite from the rollups, the cut ends counted from the heartbeats."""
    if not values or hi <= lo:
        return {}
    blo, bhi = _split(lo, hi)
    cuts = [(lo, blo * BUCKET), (bhi * BUCKET, hi)] if blo < bhi else [(lo, hi)]
    out = R.counts_in(conn, dim, blo, bhi, values) if blo < bhi else {}
    for a, b in cuts:
        for value, seg in _raw_groups(conn, dim, a, b).items():
            if value in values:
                out[value] = out.get(value, 0) + seg.count
    return out


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
    """The summaries rule per key: each capped gap credited to the earlier heartbeat's project.

    Whole buckets come from the rollups, read once per run of adjacent intervals (a year of
    days is two range queries) and routed to their interval by a pointer that only moves
    forward; the parts of cut buckets come from the raw heartbeats."""
    pieces: dict[Hashable, list[tuple[float, _LeadPiece]]] = {}

    def raw(lo: float, hi: float) -> _LeadPiece | None:
        if hi <= lo:
            return None
        rows = W.timeline(conn, lo, hi, ("project",)).fetchall()
        if not rows:
            return None
        credits = D.lead_credits((t, enc(p)) for t, p in rows)
        return _LeadPiece(credits, rows[0][0], rows[-1][0], enc(rows[-1][1]))

    cores: list[tuple[int, int, Hashable]] = []
    for lo, hi, key in sorted(intervals, key=lambda iv: iv[0]):
        blo, bhi = _split(lo, hi)
        parts = pieces.setdefault(key, [])
        edges = [(lo, hi)] if blo >= bhi else [(lo, blo * BUCKET), (bhi * BUCKET, hi)]
        for a, b in edges:
            piece = raw(a, b)
            if piece is not None:
                parts.append((a, piece))
        if blo < bhi:
            cores.append((blo, bhi, key))
    for run in _adjacent_runs(cores):
        credits: list[dict[str, float]] = [{} for _ in run]
        # Each core's credits summed in SQL: one index range per core, joined to a list of them.
        for first in range(0, len(run), 300):
            part = [(k, blo, bhi) for k, (blo, bhi, _) in enumerate(run[first : first + 300], first)]
            for k, value, span in R.spans_per_core(conn, LEAD, part):
                credits[k][value] = span
        # The gaps between a core's buckets go to the earlier bucket's last project: the
        # bucket rows come in bucket order, so a pointer that only moves forward routes them.
        ends = [core[1] for core in run]
        k = 0
        before: tuple[float, str] | None = None
        bounds: list[list[Any]] = [[] for _ in run]
        for bucket, first_t, last_t, tail in R.bounds_in(conn, ALL, run[0][0], run[-1][1]):
            if bucket >= ends[k]:
                while bucket >= ends[k]:
                    k += 1
                before = None
            tail = tail if tail is not None else NULL
            if before is not None:
                got = credits[k]
                got[before[1]] = got.get(before[1], 0.0) + D.capped(first_t - before[0])
            before = (last_t, tail)
            found = bounds[k]
            if found:
                found[1], found[2] = last_t, tail
            else:
                bounds[k] = [first_t, last_t, tail]
        for (blo, _, key), got, found in zip(run, credits, bounds, strict=True):
            if found:
                pieces[key].append((blo * BUCKET, _LeadPiece(got, found[0], found[1], found[2])))
    out: dict[Hashable, dict[str, float]] = {}
    for key, parts in pieces.items():
        if not parts:
            continue
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
    days = day_seconds(conn, D.local_date(start, tz), today, tz, dim=CODING, lo=start, hi=after(now))
    return D.streak(days, today)


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
