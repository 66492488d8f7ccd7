"""The durable store: heartbeats, their deliveries, cached server figures.

SQLite in WAL mode, file mode 0600, one writer connection behind a lock and
per-thread read connections. A heartbeat is acknowledged to its sender only
after the transaction that stores it has committed. A damaged file is moved
aside and whatever rows can still be read are carried into a fresh one.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from agent.contract import DESTINATION, DeadLetter, Notice
from agent.heartbeat import Heartbeat, dedup_key_of

from .schema import DEAD, HISTORY, IN_FLIGHT, LATEST, LIVE, MIGRATIONS, READY, SENT

log = logging.getLogger(__name__)

BACKUP_KEEP = 7  # daily backups kept
RECENT_ENTITIES = 20_000  # files remembered for "an editor already sent this one"

InsertHook = Callable[[sqlite3.Connection, Sequence[tuple[int, Heartbeat]]], None]

_HB_COLUMNS = (
    "id, time, dedup_key, payload, source, received_at, entity, type, category, project, branch, "
    "language, editor, operating_system, machine, is_write"
)


class Added(NamedTuple):  # a tuple, not a dataclass: one is built per heartbeat stored
    id: int
    created: bool  # False when an identical heartbeat was already stored


@dataclass
class _PendingAdd:
    heartbeats: list[Heartbeat]
    source: str
    destinations: list[str] | None
    priority: int = LIVE
    meta: tuple[str, str] | None = None
    done: bool = False
    result: list[Added] | None = None
    error: BaseException | None = None


@dataclass(frozen=True)
class QueueCounts:
    pending: int
    in_flight: int
    sent: int
    dead: int
    oldest_pending: float | None
    history: int = 0  # imported history still to deliver (pending or in flight), sent after live ones


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, timeout=10, isolation_level=None, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


class Store:
    """All access to the SQLite file goes through this class."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self._lock = threading.RLock()
        self._schema_lock = threading.Lock()  # a migration or a backup, never both
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self.insert_hooks: list[InsertHook] = []
        self._pending: list[_PendingAdd] = []
        self._pending_lock = threading.Lock()
        self._recent_editor: dict[str, float] = {}
        self._dest_names: list[str] | None = None  # cached: every insert needs them
        self._recent_lock = threading.Lock()
        self.recovery: dict[str, Any] | None = None
        self.full_since: float | None = None  # wall time a write first failed for a full disk
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = self._open()

    # ---- opening, migrating, recovering -------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            return self._open_checked()
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise  # a locked file or a bug is no reason to move the user's data aside
            log.error("the store at %s is damaged (%s); moving it aside", self.path, exc)
            moved = self._move_aside()
            conn = self._open_checked()
            recovered, lost = _recover_into(conn, moved)
            self.recovery = {"moved_to": str(moved), "recovered": recovered, "lost": lost, "error": str(exc)}
            message = (
                f"The local database was damaged ({exc}). It was moved to {moved.name} and a new one "
                f"was started; {recovered} heartbeats were recovered from it"
                + (
                    f" and {lost} could not be read."
                    if lost
                    else "."
                    if lost == 0
                    else "; how many it held is unknown."
                )
            )
            conn.execute("INSERT INTO notices(time, level, message) VALUES (?, 'error', ?)", (time.time(), message))
            log.warning("%s", message)
            return conn

    def _open_checked(self) -> sqlite3.Connection:
        try:
            # Create the file ourselves so it is 0600 from the first byte; SQLite gives its
            # -wal and -shm files the same mode as the database file.
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
        except FileExistsError:
            _check_header(self.path)  # before anything can write to it
        os.chmod(self.path, 0o600)
        conn = _connect(self.path)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.DatabaseError(f"could not enable WAL (journal mode {mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            check = conn.execute("PRAGMA quick_check").fetchall()
            conn.create_function("rekey", 2, _rekey, deterministic=True)  # used by migration 3
            if check != [("ok",)]:
                raise StoreCorrupt(f"integrity check failed: {check[0][0]}")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        with self.migrating():
            self._migrate_locked(conn)

    def _migrate_locked(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > LATEST:
            raise StoreTooNew(self.path, version)
        if version == LATEST:
            return
        if version > 0:
            backup = self.path.with_name(f"{self.path.name}.bak-v{version}")
            target = sqlite3.connect(backup)
            try:
                conn.backup(target)
            finally:
                target.close()
            os.chmod(backup, 0o600)
            log.info("backed up the store to %s before migrating from v%d", backup.name, version)
        for number in range(version, LATEST):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(MIGRATIONS[number]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                shutil.move(src, f"{target}{suffix}")
        return target

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transactions ---------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; it has committed when the block exits normally.

        A full disk raises :class:`StoreFull` (and is remembered in ``full_since`` until a
        write succeeds again); nothing of the transaction is kept.
        """
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")  # in WAL mode most pages reach the disk here
                except BaseException:
                    if conn.in_transaction:  # SQLite may have rolled back on its own
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                error = self._classify(exc)
                if error is exc:
                    raise
                raise error from exc
            self._wrote()

    def _classify(self, exc: BaseException) -> BaseException:
        """A write failed: a full disk becomes StoreFull (and is remembered), anything else stays."""
        if isinstance(exc, StoreFull):
            return exc
        if not (isinstance(exc, sqlite3.OperationalError) and _is_full(exc)):
            return exc
        if self.full_since is None:
            self.full_since = time.time()
            log.error("the disk holding %s is full: new heartbeats cannot be stored", self.path.parent)
        return StoreFull(f"disk full: the disk holding {self.path.parent} has no room left ({exc})")

    def _wrote(self) -> None:
        if self.full_since is not None:
            self.full_since = None
            log.warning("the disk has room again; storing resumes")

    def reader(self) -> sqlite3.Connection:
        """A read connection for the calling thread (WAL lets reads run beside the writer)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    # ---- heartbeats -----------------------------------------------------------------------

    def add(
        self,
        heartbeats: Sequence[Heartbeat],
        source: str,
        *,
        destinations: Iterable[str] | None = None,
        priority: int = LIVE,
        meta: tuple[str, str] | None = None,
    ) -> list[Added]:
        """Store heartbeats durably; identical ones are matched to the stored row.

        Each new heartbeat gets a ``ready`` delivery row for every destination given
        (default: every configured destination), at ``priority`` (imported history is
        ``HISTORY``: delivered after every live heartbeat). ``meta`` (key, value) is set in the
        same transaction (an import's checkpoint commits with its batch). Returns once the transaction holding
        them has committed. Concurrent callers share one transaction and one fsync
        (group commit), each batch in its own savepoint so one failure fails only it.
        """
        item = _PendingAdd(
            list(heartbeats), source, None if destinations is None else list(destinations), priority, meta
        )
        with self._pending_lock:
            self._pending.append(item)
        with self._lock:
            if not item.done:
                with self._pending_lock:
                    group, self._pending = self._pending, []
                self._commit_group(group)
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result

    def _commit_group(self, group: list[_PendingAdd]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            if self._dest_names is None:
                self._dest_names = self._destination_names(conn)
            dests = self._dest_names
            for n, item in enumerate(group):
                conn.execute(f"SAVEPOINT add_{n}")
                try:
                    item.result = self._insert(conn, item, dests)
                except Exception as exc:
                    if not conn.in_transaction or _is_full(exc):
                        raise  # SQLite gave up the whole transaction (a full disk): the group fails
                    conn.execute(f"ROLLBACK TO add_{n}")
                    item.error = exc
                conn.execute(f"RELEASE add_{n}")
            conn.execute("COMMIT")
            self._remember_editor_entities(group)
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = self._classify(exc)
            for item in group:
                item.result, item.error = None, item.error or error
            if error is exc:
                raise
            raise error from exc
        else:
            self._wrote()
        finally:
            for item in group:
                item.done = True

    def _insert(self, conn: sqlite3.Connection, item: _PendingAdd, all_dests: list[str]) -> list[Added]:
        if item.meta is not None:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                item.meta,
            )
        if not item.heartbeats:
            return []
        now = time.time()
        dests = item.destinations if item.destinations is not None else all_dests
        before = conn.execute("SELECT coalesce(max(id), 0) FROM heartbeats").fetchone()[0]
        changes_before = conn.total_changes
        # One executemany, and a lookup only when something conflicted: per-row INSERT … RETURNING
        # is three times slower.
        conn.executemany(
            "INSERT INTO heartbeats(time, dedup_key, payload, source, received_at, entity, type, category, "
            "project, branch, language, editor, operating_system, machine, is_write) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(time, dedup_key) DO NOTHING",
            [
                (
                    hb.time,
                    hb.dedup_key,
                    hb.payload_json,
                    item.source,
                    now,
                    hb.payload.get("entity"),
                    hb.payload.get("type"),
                    hb.payload.get("category"),
                    hb.payload.get("project"),
                    hb.payload.get("branch"),
                    hb.payload.get("language"),
                    hb.editor,
                    hb.operating_system,
                    hb.payload.get("machine"),
                    None if hb.payload.get("is_write") is None else int(hb.payload["is_write"]),
                )
                for hb in item.heartbeats
            ],
        )
        results: list[Added] = []
        created: list[tuple[int, Heartbeat]] = []
        if conn.total_changes - changes_before == len(item.heartbeats):
            # Nothing was a duplicate (the usual case): we hold the write lock and rowids
            # are max + 1, so the rows got the next ids in order.
            for hb_id, hb in enumerate(item.heartbeats, before + 1):
                results.append(Added(hb_id, True))
                created.append((hb_id, hb))
        else:
            # The new rows are the ones above ``before``; only duplicates need a lookup by key.
            ids: dict[tuple[float, bytes], int] = {
                (t, key): hb_id
                for hb_id, t, key in conn.execute("SELECT id, time, dedup_key FROM heartbeats WHERE id > ?", (before,))
            }
            for hb in item.heartbeats:
                if (hb.time, hb.dedup_key) not in ids:
                    row = conn.execute(
                        "SELECT id FROM heartbeats WHERE time = ? AND dedup_key = ?", (hb.time, hb.dedup_key)
                    ).fetchone()
                    ids[(hb.time, hb.dedup_key)] = row[0]
            seen: set[int] = set()
            for hb in item.heartbeats:
                hb_id = ids[(hb.time, hb.dedup_key)]
                new = hb_id > before and hb_id not in seen  # a twin inside the same batch is not new
                seen.add(hb_id)
                results.append(Added(hb_id, new))
                if new:
                    created.append((hb_id, hb))
        if created and dests:
            conn.executemany(
                "INSERT INTO deliveries(destination, heartbeat_id, time, state, updated_at, priority) "
                "VALUES (?,?,?,?,?,?)",
                [(dest, hb_id, hb.time, READY, now, item.priority) for hb_id, hb in created for dest in dests],
            )
        if created:
            for hook in self.insert_hooks:
                hook(conn, created)
        return results

    def _remember_editor_entities(self, group: list[_PendingAdd]) -> None:
        """Keep the last editor heartbeat time per file in memory (the watcher asks about the last 30 s)."""
        with self._recent_lock:
            recent = self._recent_editor
            for item in group:
                if item.source == "editor" and item.result is not None:
                    for hb in item.heartbeats:
                        entity = hb.payload.get("entity")
                        if entity and hb.time > recent.get(entity, 0.0):
                            recent[entity] = hb.time
            if len(recent) > RECENT_ENTITIES:
                newest = sorted(recent.items(), key=lambda kv: kv[1])[-RECENT_ENTITIES // 2 :]
                self._recent_editor = dict(newest)

    def editor_heartbeat_since(self, entity: str, since: float) -> bool:
        """Did an editor plugin send a heartbeat for ``entity`` at or after ``since`` (this run)?"""
        with self._recent_lock:
            return self._recent_editor.get(entity, 0.0) >= since

    def last_received_at(self) -> float | None:
        """When the newest heartbeat arrived (None: the store is empty).

        The newest row by id, not max(received_at): that column has no index, and the tray
        asks for status after every change.
        """
        row = self.reader().execute("SELECT received_at FROM heartbeats ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def heartbeat_count(self) -> int:
        return int(self.reader().execute("SELECT count(*) FROM heartbeats").fetchone()[0])

    # ---- destinations and deliveries ------------------------------------------------------

    @staticmethod
    def _destination_names(conn: sqlite3.Connection) -> list[str]:
        return [r[0] for r in conn.execute("SELECT name FROM destinations ORDER BY name")]

    def set_destination(self, name: str, url: str) -> None:
        self._dest_names = None  # re-read on the next insert
        with self.transaction() as conn:
            # A destination new to this table may already have sent rows (a recovered store).
            conn.execute(
                "INSERT INTO destinations(name, url, sent_total) VALUES (?, ?, "
                "(SELECT count(*) FROM deliveries WHERE destination = ? AND state = ?)) "
                "ON CONFLICT(name) DO UPDATE SET url = excluded.url",
                (name, url, name, SENT),
            )

    def destinations(self) -> list[dict[str, Any]]:
        conn = self.reader()
        cur = conn.execute("SELECT * FROM destinations ORDER BY name")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur]

    def destination(self, name: str) -> dict[str, Any]:
        for dest in self.destinations():
            if dest["name"] == name:
                return dest
        raise KeyError(name)

    def update_destination(self, name: str, **fields: Any) -> None:
        allowed = {
            "auth_state", "last_success", "last_error", "last_error_at", "backoff_until",
            "reachable_at", "unreachable_at",
        }  # fmt: skip
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown destination fields: {sorted(unknown)}")
        if not fields:
            return
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as conn:
            conn.execute(f"UPDATE destinations SET {assignments} WHERE name = ?", (*fields.values(), name))

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
        """Queue figures for one destination: O(backlog), not O(history)."""
        conn = self.reader()
        conn.execute("BEGIN")  # one snapshot for every figure
        try:
            pending, in_flight, dead = (
                conn.execute(
                    "SELECT count(*) FROM deliveries WHERE destination = ? AND state = ?", (destination, state)
                ).fetchone()[0]
                for state in (READY, IN_FLIGHT, DEAD)
            )
            # One index seek per (state, priority): a min() over both states would scan them.
            firsts = [
                conn.execute(
                    "SELECT min(time) FROM deliveries WHERE destination = ? AND state = ? AND priority = ?",
                    (destination, state, priority),
                ).fetchone()[0]
                for state in (READY, IN_FLIGHT)
                for priority in (LIVE, HISTORY)
            ]
            oldest = min((t for t in firsts if t is not None), default=None)
            history = conn.execute(
                "SELECT count(*) FROM deliveries WHERE destination = ? AND state IN (?, ?) AND priority = ?",
                (destination, READY, IN_FLIGHT, HISTORY),
            ).fetchone()[0]
            row = conn.execute("SELECT sent_total FROM destinations WHERE name = ?", (destination,)).fetchone()
        finally:
            conn.execute("COMMIT")
        return QueueCounts(
            pending=pending,
            in_flight=in_flight,
            sent=row[0] if row else 0,
            dead=dead,
            oldest_pending=oldest,
            history=history,
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

    # ---- backups ----------------------------------------------------------------------------

    def backup(self, folder: Path, *, now: float, keep: int = BACKUP_KEEP) -> Path | None:
        """Copy the store into ``folder`` with SQLite's online backup API, keep the newest ``keep``
        copies, then let SQLite refresh its query statistics (``PRAGMA optimize``).

        The copy is read through a reader connection, so intake goes on meanwhile (WAL). It is
        never taken while a migration runs: then it returns None and the next day's run makes it.
        """
        if not self._schema_lock.acquire(blocking=False):  # see migrating()
            log.info("store backup skipped: a migration is running")
            return None
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
            target = folder / f"{self.path.stem}-{stamp}{self.path.suffix}"
            partial = target.with_name(target.name + ".partial")
            fd = os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            os.close(fd)
            copy = sqlite3.connect(partial)
            try:
                self.reader().backup(copy)
            finally:
                copy.close()
            os.replace(partial, target)
        finally:
            self._schema_lock.release()
        with self._lock:
            self._conn.execute("PRAGMA optimize")
        for old in self.backups(folder)[:-keep] if keep > 0 else []:
            old.unlink()
        log.info("store backed up to %s", target)
        return target

    def backups(self, folder: Path) -> list[Path]:
        """This store's backups in ``folder``, oldest first (their names sort by time)."""
        return sorted(folder.glob(f"{self.path.stem}-????????-??????{self.path.suffix}"))

    def last_backup_at(self, folder: Path) -> float | None:
        """When the newest backup in ``folder`` was taken (by the clock given to :meth:`backup`)."""
        backups = self.backups(folder)
        if not backups:
            return None
        stamp = backups[-1].stem.removeprefix(f"{self.path.stem}-")
        return float(calendar.timegm(time.strptime(stamp, "%Y%m%d-%H%M%S")))

    @contextlib.contextmanager
    def migrating(self) -> Iterator[None]:
        """Held from the start to the end of a migration; a backup is never taken meanwhile."""
        with self._schema_lock:
            yield

    # ---- cache, notices, meta -------------------------------------------------------------

    def cache_put(self, key: str, value: Any, fetched_at: float | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO server_cache(key, value, fetched_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, fetched_at = excluded.fetched_at",
                (key, json.dumps(value), time.time() if fetched_at is None else fetched_at),
            )

    def cache_get(self, key: str) -> tuple[Any, float] | None:
        row = self.reader().execute("SELECT value, fetched_at FROM server_cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else (json.loads(row[0]), row[1])

    def notices(self, include_dismissed: bool = False) -> list[Notice]:
        sql = "SELECT id, time, level, message FROM notices"
        if not include_dismissed:
            sql += " WHERE dismissed = 0"
        rows = self.reader().execute(sql + " ORDER BY id").fetchall()
        return [{"id": r[0], "time": r[1], "level": r[2], "message": r[3]} for r in rows]

    def dismiss_notice(self, notice_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE notices SET dismissed = 1 WHERE id = ?", (notice_id,))

    def meta_get(self, key: str, default: str | None = None) -> str | None:
        row = self.reader().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def meta_set(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


class StoreCorrupt(sqlite3.DatabaseError):
    """The file opened but failed SQLite's integrity check."""


class StoreTooNew(Exception):
    """The file was written by a newer version of the app; it is left exactly as it is."""

    def __init__(self, path: Path, version: int) -> None:
        super().__init__(
            f"{path} was written by a newer version of Hackatime Desktop (schema {version}; this one reads up "
            f"to {LATEST}): install the newer version, or move the file aside to start a new store"
        )
        self.version = version


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_header(path: Path) -> None:
    """Refuse, before SQLite opens it, a file from a newer version; an empty one is damaged.

    The user version sits at bytes 60-63 of the header (big-endian); reading it here keeps
    a newer store untouched (opening it would create -wal and -shm files beside it).
    """
    with open(path, "rb") as fh:
        header = fh.read(100)
    if not header:
        # A crash while copying, a sync tool: whatever it held is not here.
        raise StoreCorrupt("the file is empty (0 bytes)")
    if len(header) == 100 and header.startswith(_SQLITE_MAGIC):
        version = int.from_bytes(header[60:64], "big")
        if version > LATEST:
            raise StoreTooNew(path, version)


class StoreFull(sqlite3.OperationalError):
    """A write failed because the disk (or the file system holding the store) is full."""


_SQLITE_FULL = 13


def _is_full(exc: BaseException) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == _SQLITE_FULL


_CORRUPTION_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    return isinstance(exc, StoreCorrupt) or getattr(exc, "sqlite_errorcode", None) in _CORRUPTION_CODES


def _rekey(payload: str, old: bytes) -> bytes:
    try:
        return dedup_key_of(payload)
    except (ValueError, TypeError, KeyError):  # a row today's rules cannot read keeps its key
        return old


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


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements: comments dropped first, then split on semicolons
    (migrations hold no semicolons inside string literals)."""
    code = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    return [part.strip() for part in code.split(";") if part.strip()]


RECOVERY_STEP = 1000  # ids read per range
RECOVERY_PROBE = 1000  # ids tried one by one past the highest known, for rows on lost pages at the end


def _recover_into(conn: sqlite3.Connection, damaged: Path) -> tuple[int, int | None]:
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
        old = _connect(source, readonly=True)
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
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
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
