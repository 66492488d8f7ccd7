"""Carrying what can still be read out of a damaged store file into a fresh one."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from agent.contract import DESTINATION
from agent.heartbeat import dedup_key_of

from .schema import DEAD, HISTORY, LIVE, READY, SENT
from .sqlite import SQLITE_MAGIC, connect

_HB_COLUMNS = (
    "id, time, dedup_key, payload, source, received_at, entity, type, category, project, branch, "
    "language, editor, operating_system, machine, is_write"
)

RECOVERY_STEP = 1000  # ids read per range (then per tenth, per hundredth, then one by one)
RECOVERY_PROBE = 1000  # ids tried one by one past the highest known, for rows on lost pages at the end
_BATCH = 1000  # rows written per transaction
_MIN_ROW = 32  # bytes: no heartbeat row is smaller (its dedup key alone is 16)
# The columns after ``received_at`` but ``is_write``: the payload's values (agent.store.heartbeats).
_PAYLOAD_COLUMNS = (
    "entity", "type", "category", "project", "branch", "language", "editor", "operating_system", "machine",
)  # fmt: skip
_SOURCES = {b"editor": "editor", b"watcher": "watcher", b"import": "import"}


def recover_into(conn: sqlite3.Connection, damaged: Path) -> tuple[int, int | None]:
    """Copy every heartbeat still readable from ``damaged`` into the fresh store.

    A damaged page hides different rows from different reads: a scan stops at its first
    error, a range read can stop early without one, a lookup by id can miss a row a range
    reaches. So the table is scanned from both ends, then every range of ids still short is
    read again in smaller ranges and finally id by id; each row is kept once. A delivery
    already marked sent or dead stays so; anything else goes back to ready (a resend is
    de-duplicated by the server); imported history kept local stays local. Returns
    (recovered, lost): heartbeats are never deleted, so every id up to the highest one known
    existed, and each of those not recovered is lost (None: unknown, when nothing could be
    read or the file was cut short).
    """
    source = _readable_copy(damaged) or damaged
    try:
        old = connect(source, readonly=True)
    except sqlite3.DatabaseError:
        _remove_copy(source, damaged)
        return 0, None
    # Heartbeats are never deleted, so no id exceeds the rows the file can hold (none is
    # smaller than this): a larger one is garbage read from a damaged page.
    copied = _Copied(limit=max(RECOVERY_PROBE, source.stat().st_size // _MIN_ROW))
    try:
        with contextlib.suppress(sqlite3.DatabaseError):  # else re-created from the configuration
            for row in old.execute("SELECT name, url FROM destinations"):
                conn.execute("INSERT OR IGNORE INTO destinations(name, url) VALUES (?, ?)", row)
        held = _read_held(old, copied.limit)
        for lo, hi in held:
            conn.execute("INSERT INTO held_imports(lo, hi) VALUES (?, ?)", (lo, hi))
        copied.highest = min(
            copied.limit,
            max(
                _scalar(old, "SELECT max(id) FROM heartbeats"),
                _scalar(old, "SELECT max(heartbeat_id) FROM deliveries"),
                max((hi for _, hi in held), default=0),
            ),
        )
        old.text_factory = bytes  # a row of garbage text must not end a scan: each is decoded alone
        _copy(conn, copied, _rows(old, "SELECT id, payload FROM heartbeats"))
        _copy(conn, copied, _rows(old, "SELECT id, payload FROM heartbeats ORDER BY id DESC"))
        lo = 1
        while lo <= copied.highest + RECOVERY_PROBE:
            hi = lo + RECOVERY_STEP - 1
            _copy_range(conn, copied, old, lo, hi, RECOVERY_STEP)
            lo = hi + 1
        _copy_row_facts(conn, copied, old)
        old.text_factory = str
        _copy_deliveries(conn, copied, old, held)
    finally:
        old.close()
        _remove_copy(source, damaged)
    if not copied.highest or source != damaged:
        return copied.count, None  # nothing readable, or rows on pages cut off: how many there were is unknown
    return copied.count, max(0, copied.highest - copied.count)


class _Copied:
    """The ids of the heartbeats carried over (one bit each: a store may hold millions)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # no real id is larger
        self.bits = bytearray()
        self.count = 0  # rows inserted
        self.highest = 0

    def __contains__(self, hb_id: object) -> bool:  # an id read from a damaged page can be of any type
        if not isinstance(hb_id, int) or hb_id <= 0:
            return False
        return hb_id >> 3 < len(self.bits) and bool(self.bits[hb_id >> 3] & (1 << (hb_id & 7)))

    def mark(self, hb_id: int) -> None:
        if hb_id >> 3 >= len(self.bits):
            self.bits.extend(bytes((hb_id >> 3) + 1 - len(self.bits) + 4096))
        self.bits[hb_id >> 3] |= 1 << (hb_id & 7)
        self.highest = max(self.highest, hb_id)

    def missing(self, lo: int, hi: int) -> int:
        return sum(hb_id not in self for hb_id in range(lo, hi + 1))


def _rows(old: sqlite3.Connection, sql: str, *params: object) -> Iterator[tuple[Any, ...]]:
    """The rows a query gives before its first error (a damaged page), if any."""
    try:
        yield from old.execute(sql, params)
    except sqlite3.DatabaseError:
        return


def _copy(conn: sqlite3.Connection, copied: _Copied, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert the heartbeats not copied yet whose payload reads whole, a batch per transaction.

    Only the id and the payload are read (the fewer columns a read decodes, the fewer damaged
    records end it): every other column is the payload's own value, as the store writes it.
    Where it was read, the original source, time received and key replace the stand-ins
    afterwards (:func:`_copy_row_facts`).
    """
    batch: list[tuple[Any, ...]] = []
    for hb_id, payload in rows:
        if not isinstance(hb_id, int) or not 0 < hb_id <= copied.limit or hb_id in copied:
            continue
        row = _rebuilt(hb_id, payload)
        if row is None:
            continue
        copied.mark(hb_id)
        batch.append(row)
        if len(batch) >= _BATCH:
            copied.count += _insert(conn, batch)
            batch = []
    if batch:
        copied.count += _insert(conn, batch)


def _rebuilt(hb_id: int, payload: Any) -> tuple[Any, ...] | None:
    """The heartbeats row for a payload read from a damaged file; None when it is not one."""
    try:
        text = payload.decode("utf-8")
        p = json.loads(text)
        when = p["time"]
        key = dedup_key_of(text)
    except (AttributeError, UnicodeDecodeError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(when, float) or not math.isfinite(when):
        return None
    is_write = p.get("is_write")
    columns = [p.get(name) for name in _PAYLOAD_COLUMNS]
    if not all(value is None or isinstance(value, str) for value in columns):
        return None
    return (hb_id, when, key, text, "editor", when, *columns, None if is_write is None else int(bool(is_write)))


def _insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> int:
    """How many were inserted: a row stored before schema 3 can share its rebuilt key with a
    twin stored since, and the server counts the two as one heartbeat anyway."""
    before = conn.total_changes
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(f"INSERT OR IGNORE INTO heartbeats({_HB_COLUMNS}) VALUES ({','.join('?' * 16)})", rows)
    conn.execute("COMMIT")
    return conn.total_changes - before


def _copy_row_facts(conn: sqlite3.Connection, copied: _Copied, old: sqlite3.Connection) -> None:
    """Each copied heartbeat's source, time received and stored key, where they can be read."""
    for lo in range(1, copied.highest + 1, RECOVERY_STEP):
        facts: dict[int, tuple[str, float, bytes, int]] = {}
        _read_facts(old, copied, facts, lo, min(copied.highest, lo + RECOVERY_STEP - 1), RECOVERY_STEP)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "UPDATE OR IGNORE heartbeats SET source = ?, received_at = ?, dedup_key = ? WHERE id = ?",
            list(facts.values()),
        )
        conn.execute("COMMIT")


def _read_facts(
    old: sqlite3.Connection,
    copied: _Copied,
    facts: dict[int, tuple[str, float, bytes, int]],
    lo: int,
    hi: int,
    step: int,
) -> None:
    """The facts of ids lo..hi not read yet: as one range, then smaller ones, as for the rows."""
    if not any(hb_id in copied and hb_id not in facts for hb_id in range(lo, hi + 1)):
        return
    columns = "SELECT id, dedup_key, source, received_at FROM heartbeats"
    rows = (
        _rows(old, f"{columns} WHERE id = ?", lo)
        if step == 1
        else _rows(old, f"{columns} WHERE id BETWEEN ? AND ?", lo, hi)
    )
    for hb_id, key, source, received in rows:
        if hb_id in copied and source in _SOURCES and isinstance(received, float) and isinstance(key, bytes):
            facts[hb_id] = (_SOURCES[source], received, key, hb_id)
    if step > 1:
        part = max(1, step // 10)
        for sub in range(lo, hi + 1, part):
            _read_facts(old, copied, facts, sub, min(hi, sub + part - 1), part)


def _copy_range(
    conn: sqlite3.Connection, copied: _Copied, old: sqlite3.Connection, lo: int, hi: int, step: int
) -> None:
    """Read ids lo..hi again where some are still missing: as one range, then in ranges a tenth
    the size, down to one id at a time."""
    if not copied.missing(lo, hi):
        return
    if step == 1:
        _copy(conn, copied, _rows(old, "SELECT id, payload FROM heartbeats WHERE id = ?", lo))
        return
    _copy(conn, copied, _rows(old, "SELECT id, payload FROM heartbeats WHERE id BETWEEN ? AND ?", lo, hi))
    part = max(1, step // 10)
    for sub in range(lo, hi + 1, part):
        _copy_range(conn, copied, old, sub, min(hi, sub + part - 1), part)


def _read_held(old: sqlite3.Connection, limit: int) -> list[tuple[int, int]]:
    """The id ranges of imported history kept local (``import --no-upload``)."""
    return [
        (lo, hi)
        for lo, hi in _rows(old, "SELECT lo, hi FROM held_imports")
        if isinstance(lo, int) and isinstance(hi, int) and 0 < lo <= hi <= limit
    ]


def _copy_deliveries(
    conn: sqlite3.Connection, copied: _Copied, old: sqlite3.Connection, held: list[tuple[int, int]]
) -> None:
    """Each carried heartbeat's delivery rows, read per destination by key range. Where none
    can be read, it is queued again for every destination (a resend is de-duplicated by the
    server; a heartbeat never sent would be lost), unless it is history kept local."""
    names = {r[0] for r in conn.execute("SELECT name FROM destinations")} | {DESTINATION}
    names |= {r[0] for r in _rows(old, "SELECT DISTINCT destination FROM deliveries") if isinstance(r[0], str)}
    fallback = [r[0] for r in conn.execute("SELECT name FROM destinations")] or [DESTINATION]
    # A store older than schema 3 has no priorities: its deliveries were all live.
    columns = {r[1] for r in _rows(old, "PRAGMA table_info(deliveries)")}
    priority_column = "priority" if "priority" in columns or not columns else "0"
    now = time.time()
    for lo in range(1, copied.highest + 1, RECOVERY_STEP):
        hi = lo + RECOVERY_STEP - 1
        found: dict[int, list[tuple[str, int, Any, Any]]] = {}
        for name in sorted(names):
            for hb_id, state, reason, priority in _rows(
                old,
                f"SELECT heartbeat_id, state, reason, {priority_column} FROM deliveries "
                "WHERE destination = ? AND heartbeat_id BETWEEN ? AND ?",
                name,
                lo,
                hi,
            ):
                if hb_id in copied and isinstance(state, int):
                    found.setdefault(hb_id, []).append((name, state, reason, priority))
        rows = []
        for hb_id, hb_time, source in conn.execute(
            "SELECT id, time, source FROM heartbeats WHERE id BETWEEN ? AND ?", (lo, hi)
        ):
            known = found.get(hb_id)
            if known is None:
                if any(a <= hb_id <= b for a, b in held):
                    continue  # kept local by choice: still held, not queued
                guess = HISTORY if source == "import" else LIVE
                known = [(name, READY, None, guess) for name in fallback]
            for name, state, reason, priority in known:
                state = state if state in (SENT, DEAD) else READY
                priority = priority if priority in (LIVE, HISTORY) else LIVE
                rows.append((name, hb_id, hb_time, state, now, reason, priority))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT OR IGNORE INTO deliveries(destination, heartbeat_id, time, state, updated_at, reason, priority) "
            "VALUES (?,?,?,?,?,?,?)",
            rows,
        )
        conn.execute("COMMIT")
    conn.execute(
        "UPDATE destinations SET sent_total = (SELECT count(*) FROM deliveries d "
        "WHERE d.destination = destinations.name AND d.state = ?)",
        (SENT,),
    )


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
