"""Carrying what can still be read out of a damaged store file into a fresh one."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.contract import DESTINATION

from .schema import DEAD, READY, SENT
from .sqlite import SQLITE_MAGIC, connect

_HB_COLUMNS = (
    "id, time, dedup_key, payload, source, received_at, entity, type, category, project, branch, "
    "language, editor, operating_system, machine, is_write"
)

RECOVERY_STEP = 1000  # ids read per range
RECOVERY_PROBE = 1000  # ids tried one by one past the highest known, for rows on lost pages at the end


def recover_into(conn: sqlite3.Connection, damaged: Path) -> tuple[int, int | None]:
    """Copy every heartbeat still readable from ``damaged`` into the fresh store.

    Rows are read in id ranges; where a range fails, or yields fewer rows than ids (a
    damaged page can make a range read stop early without an error), the missing ids are
    read one by one, so one bad page loses only the rows on it. A delivery already marked
    sent stays sent; anything else goes back to ready (a resend is de-duplicated by the
    server). Returns (recovered, lost): heartbeats are never deleted, so every id up to the
    highest one known existed, and each of those not recovered is lost (None: unknown, when
    nothing could be read or the file was cut short).
    """
    source = _readable_copy(damaged) or damaged
    try:
        old = connect(source, readonly=True)
    except sqlite3.DatabaseError:
        _remove_copy(source, damaged)
        return 0, None
    recovered = 0
    highest = 0
    try:
        highest = max(
            _scalar(old, "SELECT max(id) FROM heartbeats"), _scalar(old, "SELECT max(heartbeat_id) FROM deliveries")
        )
        try:
            for row in old.execute("SELECT name, url FROM destinations"):
                conn.execute("INSERT OR IGNORE INTO destinations(name, url) VALUES (?, ?)", row)
        except sqlite3.DatabaseError:
            pass  # destinations are re-created from the configuration at start-up
        # Where a heartbeat's delivery rows are lost, queue it again for every destination:
        # a resend is de-duplicated by the server, a heartbeat never sent would be lost.
        fallback = [r[0] for r in conn.execute("SELECT name FROM destinations")] or [DESTINATION]
        lo = 1
        while lo <= highest + RECOVERY_PROBE:
            hi = lo + RECOVERY_STEP - 1
            rows = _read_heartbeats(old, lo, hi)
            if rows:
                highest = max(highest, rows[-1][0])
            deliveries = _read_deliveries(old, lo, hi)
            conn.execute("BEGIN IMMEDIATE")
            for row in rows:
                if not _row_is_sane(row):
                    continue
                cur = conn.execute(
                    f"INSERT OR IGNORE INTO heartbeats({_HB_COLUMNS}) VALUES ({','.join('?' * 16)})", row
                )
                if cur.rowcount != 1:
                    continue
                recovered += 1
                known = deliveries.get(row[0]) or [(d, READY, None) for d in fallback]
                for dest, state, reason in known:
                    state = state if state in (SENT, DEAD) else READY
                    conn.execute(
                        "INSERT OR IGNORE INTO deliveries(destination, heartbeat_id, time, state, updated_at, "
                        "reason) VALUES (?,?,?,?,?,?)",
                        (dest, row[0], row[1], state, time.time(), reason),
                    )
            conn.execute("COMMIT")
            lo = hi + 1
        conn.execute(
            "UPDATE destinations SET sent_total = (SELECT count(*) FROM deliveries d "
            "WHERE d.destination = destinations.name AND d.state = ?)",
            (SENT,),
        )
    finally:
        old.close()
        _remove_copy(source, damaged)
    if not highest or source != damaged:
        return recovered, None  # nothing readable, or rows on pages cut off: how many there were is unknown
    return recovered, max(0, highest - recovered)


def _readable_copy(damaged: Path) -> Path | None:
    """For a cut-short file (a crash while copying), a copy SQLite can read what is left of.

    The header still counts the pages that were lost, and SQLite then refuses every query;
    in a copy whose header counts only the pages present, the rows on those can be read.
    None when the file is not cut short (or not a database at all).
    """
    try:
        size = damaged.stat().st_size
        with open(damaged, "rb") as fh:
            header = fh.read(100)
    except OSError:
        return None
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        return None
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size  # the header's way of writing 65,536
    claimed = int.from_bytes(header[28:32], "big")
    present = size // page_size if page_size else 0
    if not present or claimed <= present:
        return None
    copy = damaged.with_name(damaged.name + ".readable")
    try:
        with open(damaged, "rb") as src, open(copy, "wb") as dst:
            shutil.copyfileobj(src, dst)
            dst.truncate(present * page_size)
            dst.seek(28)
            dst.write(present.to_bytes(4, "big"))
    except OSError:
        with contextlib.suppress(OSError):
            copy.unlink()
        return None
    return copy


def _remove_copy(source: Path, damaged: Path) -> None:
    if source != damaged:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{source}{suffix}").unlink()


def _scalar(conn: sqlite3.Connection, sql: str) -> int:
    """An integer answer from a damaged file, 0 when it cannot be read."""
    try:
        value = conn.execute(sql).fetchone()[0]
    except sqlite3.DatabaseError:
        return 0
    return value if isinstance(value, int) else 0


def _read_heartbeats(old: sqlite3.Connection, lo: int, hi: int) -> list[tuple[Any, ...]]:
    """The rows with ids lo..hi that can be read: a range read, then one by one for the rest."""
    rows: dict[int, tuple[Any, ...]] = {}
    try:
        for row in old.execute(f"SELECT {_HB_COLUMNS} FROM heartbeats WHERE id BETWEEN ? AND ?", (lo, hi)):
            rows[row[0]] = row  # an error part way keeps the rows read before it
    except sqlite3.DatabaseError:
        pass
    if len(rows) < hi - lo + 1:
        for hb_id in range(lo, hi + 1):
            if hb_id in rows:
                continue
            try:
                row = old.execute(f"SELECT {_HB_COLUMNS} FROM heartbeats WHERE id = ?", (hb_id,)).fetchone()
            except sqlite3.DatabaseError:
                continue
            if row is not None:
                rows[hb_id] = row
    return [rows[hb_id] for hb_id in sorted(rows)]


def _read_deliveries(old: sqlite3.Connection, lo: int, hi: int) -> Mapping[int, list[tuple[str, int, Any]]]:
    out: dict[int, list[tuple[str, int, Any]]] = {}
    try:
        rows = old.execute(
            "SELECT heartbeat_id, destination, state, reason FROM deliveries WHERE heartbeat_id BETWEEN ? AND ?",
            (lo, hi),
        ).fetchall()
    except sqlite3.DatabaseError:
        return out
    for hb_id, dest, state, reason in rows:
        out.setdefault(hb_id, []).append((dest, state, reason))
    return out


def _row_is_sane(row: Sequence[Any]) -> bool:
    # A damaged page can yield rows with garbage types; keep only well-formed ones.
    try:
        json.loads(row[3])
    except (TypeError, ValueError):
        return False
    return isinstance(row[0], int) and isinstance(row[1], float) and isinstance(row[2], bytes)
