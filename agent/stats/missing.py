"""What this machine's work that a server figure cannot contain adds to that figure.

A server figure is made from the heartbeats the server holds while it answers. The store
stamps each delivery with the first claim whose request may have reached the server
(``reach_seq``, schema 4) and each cached figure keeps the claims counter read once its
answer had arrived (``Cached.reach_mark``). A heartbeat is *possibly contained* in the figure
when its reach_seq is at or below that mark, when it was sent before the stamps existed, or
when it has no delivery at all (history imported without upload, which the server has).
Everything else is *missing* from it for sure: still waiting, or first claimed after the
answer arrived. Only missing work is ever added to a figure. A batch in flight while the
figure was made counts as contained, never as missing, so whatever the order of fetches and
deliveries no heartbeat is counted twice; the figure may lag instead, until the fetch that
follows the deliveries. Dead letters are on neither side: the server refused them.

What missing work adds is measured on the timeline (§2): the duration with it minus the
duration without it, over the heartbeats this store has. For one machine that is exactly
what the server will add. Totals use the exact neighbours. Per-group lists read the rows
from two minutes before the missing work to two minutes after it, and for a group whose
first (or last) row there is missing work, whether the group has a heartbeat further out in
the range: that one is more than two minutes away, so all it adds is one capped gap, and
whether it exists is all a group's figure needs of it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.store import windows as W

from . import durations as D
from .durations import TIMEOUT
from .queries import GROUP_DIMS, after, group_counts
from .rollups import enc, server_language

# A heartbeat as the merges see it, with whether the figure may contain it.
#   (time, id, category, project, language, editor, operating_system, machine, contained)
Row = tuple[float, int, str | None, str | None, str | None, str | None, str | None, str | None, bool]
COLUMNS = {"category": 2, "project": 3, "language": 4, "editor": 5, "operating_system": 6, "machine": 7}


def _row(r: Sequence[Any], contained: bool) -> Row:
    return (r[0], r[1], r[2], r[3], server_language(r[4], r[8]), r[5], r[6], r[7], contained)


def missing_rows(conn: sqlite3.Connection, dest: str, lo: float, hi: float, mark: int) -> list[Row]:
    """Heartbeats in [lo, hi] the figure surely lacks, in (time, id) order."""
    found = W.not_contained(conn, dest, lo, hi, mark)
    return sorted((_row(r, False) for r in found), key=lambda r: (r[0], r[1]))


def _rows(conn: sqlite3.Connection, dest: str, lo: float, hi: float, mark: int) -> list[Row]:
    """Every heartbeat in [lo, hi] but dead letters, each marked contained or missing."""
    return [_row(r, bool(r[9])) for r in W.with_containment(conn, dest, lo, hi, mark)]


@dataclass
class Added:
    """What the missing work of one window adds to a server figure of it."""

    seconds: float = 0.0  # to the window's total (one timeline), exact
    heartbeats: int = 0  # how many missing heartbeats there are
    groups: dict[str, dict[str | None, float]] = field(default_factory=dict)  # column → raw value → seconds


def added(conn: sqlite3.Connection, dest: str, lo: float, hi: float, mark: int, columns: Sequence[str] = ()) -> Added:
    """The missing work of [lo, hi] against a figure with ``mark``: its total contribution, and
    per group (LAG partitioned by the column, §2) for each of ``columns``."""
    gone = missing_rows(conn, dest, lo, hi, mark)
    if not gone:
        return Added()
    umin, umax = gone[0][0], gone[-1][0]
    before = W.contained_edge(conn, dest, mark, lo, umin, last=True)
    after = W.contained_edge(conn, dest, mark, umax, hi, last=False)
    a = min(umin - TIMEOUT, before if before is not None else umin)
    b = max(umax + TIMEOUT, after if after is not None else umax)
    rows = _rows(conn, dest, max(lo, a), min(hi, b), mark)
    # The whole timeline between the exact neighbours, for the total.
    start = before if before is not None else umin
    end = after if after is not None else umax
    with_ = [r[0] for r in rows if start <= r[0] <= end]
    without = [r[0] for r in rows if start <= r[0] <= end and r[8]]
    out = Added(D.capped_sum(with_) - D.capped_sum(without), len(gone))
    for column in columns:
        out.groups[column] = _group_changes(conn, dest, column, gone, rows, (lo, hi), (max(lo, a), min(hi, b)))
    return out


def _group_changes(
    conn: sqlite3.Connection,
    dest: str,
    column: str,
    gone: Sequence[Row],
    rows: Sequence[Row],
    range_: tuple[float, float],
    read: tuple[float, float],
) -> dict[str | None, float]:
    """What the missing work adds to each group it touches (LAG partitioned by ``column``):
    ``rows`` are those of ``read``, which holds every missing heartbeat of ``range_``."""
    i = COLUMNS[column]
    touched: set[str | None] = {_text(r[i]) for r in gone}
    mine = [(r[0], _text(r[i]), r[8]) for r in rows if _text(r[i]) in touched]
    # Beyond the rows read, a group's nearest heartbeat is over two minutes from its missing
    # work: one stand-in more than two minutes out adds the same capped gap.
    firsts = {g: contained for _, g, contained in reversed(mine)}
    lasts = {g: contained for _, g, contained in mine}
    (lo, hi), (first, last) = range_, read
    led = _present(conn, dest, column, {g for g, c in firsts.items() if not c}, (lo, first), backwards=True)
    trailed = _present(conn, dest, column, {g for g, c in lasts.items() if not c}, (after(last), after(hi)))
    timeline = [(first - TIMEOUT - 1, g, True) for g in led] + mine + [(last + TIMEOUT + 1, g, True) for g in trailed]
    both = D.grouped_seconds((t, g) for t, g, _ in timeline)
    known = D.grouped_seconds((t, g) for t, g, contained in timeline if contained)
    return {g: both[g] - known.get(g, 0.0) for g in touched}


FIRST_LOOK = 3600.0  # how far _present looks first; each further look is eight times as far


def _present(
    conn: sqlite3.Connection,
    dest: str,
    column: str,
    groups: set[str | None],
    span: tuple[float, float],
    *,
    backwards: bool = False,
) -> set[str | None]:
    """Those of ``groups`` with a heartbeat in [lo, hi) the figure may contain: any but dead
    letters (none there is missing work, which lies outside). Looked for in widening steps
    from the end next to the missing work (the start, or the end ``backwards``), since a
    group's nearest heartbeat is usually close; counted from the rollups, which every read of
    the stats brings up to date first."""
    lo, hi = span
    left, found = set(groups), set()
    reach = FIRST_LOOK
    while left and lo < hi:
        a, b = (max(lo, hi - reach), hi) if backwards else (lo, min(hi, lo + reach))
        counts = group_counts(conn, GROUP_DIMS[column], a, b, sorted(enc(g) for g in left))
        for r in W.dead_letters(conn, dest, a, b):
            g = enc(_text(_row(r, False)[COLUMNS[column]]))
            counts[g] = counts.get(g, 0) - 1
        seen = {g for g in left if counts.get(enc(g), 0) > 0}
        found |= seen
        left -= seen
        lo, hi = (lo, a) if backwards else (b, hi)
        reach *= 8
    return found


def _text(value: object) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


@dataclass
class DayChange:
    """One local day with missing work: what it adds to the day's total, and to each project's
    summaries credit (LEAD, §4.8; a project's credit can shrink when work lands in a gap it was
    credited), plus the day as this store alone sees it."""

    seconds: float
    credits: dict[str | None, float]  # raw project → change of its credit
    local_credits: dict[str | None, float]  # raw project → credit over every heartbeat stored


MANY_MISSING = 20_000  # beyond this (a large import on its way up), day bars are not merged row by row


def day_changes(
    conn: sqlite3.Connection, dest: str, first: dt.date, last: dt.date, tz: Any, mark: int
) -> dict[dt.date, DayChange] | None:
    """For each local day in [first, last] with missing work, its change (whole days are read:
    LEAD credits depend on every heartbeat of the day); None when there is too much missing
    work to read it all for one answer."""
    pieces = D.day_pieces(first, last, tz)
    if not pieces:
        return {}
    gone = missing_rows(conn, dest, pieces[0][0], pieces[-1][1], mark)
    if len(gone) > MANY_MISSING:
        return None
    starts = [p[0] for p in pieces]
    days: dict[dt.date, list[tuple[int, int]]] = {}
    for r in gone:
        k = bisect.bisect_right(starts, r[0]) - 1
        if k >= 0 and r[0] < pieces[k][1]:
            days.setdefault(pieces[k][2], [])
    for lo, hi, date in pieces:
        if date in days:
            days[date].append((lo, hi))
    out: dict[dt.date, DayChange] = {}
    for date, stretches in days.items():
        rows = [r for lo, hi in stretches for r in _rows(conn, dest, lo, hi, mark) if r[0] < hi]
        rows.sort(key=lambda r: (r[0], r[1]))
        with_ = D.lead_credits((r[0], r[3]) for r in rows)
        without = D.lead_credits((r[0], r[3]) for r in rows if r[8])
        credits = {p: with_.get(p, 0.0) - without.get(p, 0.0) for p in with_.keys() | without.keys()}
        total = D.capped_sum([r[0] for r in rows]) - D.capped_sum([r[0] for r in rows if r[8]])
        local = _local_credits(conn, stretches)
        out[date] = DayChange(total, credits, local)
    return out


def _local_credits(conn: sqlite3.Connection, stretches: Sequence[tuple[int, int]]) -> dict[str | None, float]:
    rows: list[tuple[float, str | None]] = []
    for lo, hi in stretches:
        rows.extend(W.timeline(conn, lo, hi, ("project",)))
    return D.lead_credits(rows)


__all__ = ["COLUMNS", "Added", "DayChange", "added", "day_changes", "missing_rows"]
