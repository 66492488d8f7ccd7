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
what the server will add. Totals use the exact neighbours; per-group lists look at the
neighbours within two minutes only, which can leave a group short by at most one capped gap
(never over) until the next fetch.
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
from .rollups import server_language

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
        i = COLUMNS[column]
        touched: set[str | None] = {_text(r[i]) for r in gone}
        both = D.grouped_seconds((r[0], _text(r[i])) for r in rows if r[i] in touched)
        known = D.grouped_seconds((r[0], _text(r[i])) for r in rows if r[i] in touched and r[8])
        out.groups[column] = {g: both[g] - known.get(g, 0.0) for g in touched}
    return out


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
