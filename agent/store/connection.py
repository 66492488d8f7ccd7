"""The store's file and connections: opening (0600, WAL), migrating with a backup first, moving a
damaged file aside, write transactions, per-thread readers and the daily backups.
"""

from __future__ import annotations

import calendar
import contextlib
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self, TypedDict

from agent.heartbeat import dedup_key_of

from .recovery import recover_into
from .schema import LATEST, MIGRATIONS
from .sqlite import StoreCorrupt, StoreFull, StoreTooNew, check_header, connect, is_corruption, is_full

log = logging.getLogger(__name__)

BACKUP_KEEP = 7  # daily backups kept


class Recovery(TypedDict):
    moved_to: str  # where the damaged file now is
    recovered: int  # heartbeats carried into the fresh store
    lost: int | None  # None: how many it held is unknown
    error: str  # what SQLite said about it


class StoreBase:
    """The open file: one writer connection, per-thread readers, transactions, migrations, backups.

    Every part of :class:`~agent.store.store.Store` builds on this; its state lives here.
    """

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self._lock = threading.RLock()
        self._schema_lock = threading.Lock()  # a migration or a backup, never both
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._dest_names: list[str] | None = None  # cached: every insert needs them
        self.recovery: Recovery | None = None  # set when a damaged file was moved aside at open
        self.full_since: float | None = None  # wall time a write first failed for a full disk
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = self._open()

    # ---- opening, migrating, recovering -------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            return self._open_checked()
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise  # a locked file or a bug is no reason to move the user's data aside
            log.error("the store at %s is damaged (%s); moving it aside", self.path, exc)
            moved = self._move_aside()
            conn = self._open_checked()
            recovered, lost = recover_into(conn, moved)
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
            check_header(self.path)  # before anything can write to it
        os.chmod(self.path, 0o600)
        conn = connect(self.path)
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transactions ---------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, *, synchronous: str | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction; it has committed when the block exits normally.

        A full disk raises :class:`StoreFull` (and is remembered in ``full_since`` until a
        write succeeds again); nothing of the transaction is kept. ``synchronous`` sets SQLite's
        syncing for this transaction alone: the writer lock keeps every other commit at the
        store's own level.
        """
        with self._lock:
            conn = self._conn
            if synchronous is not None:
                conn.execute(f"PRAGMA synchronous = {synchronous}")
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
            finally:
                if synchronous is not None:
                    conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            self._wrote()

    def _classify(self, exc: BaseException) -> BaseException:
        """A write failed: a full disk becomes StoreFull (and is remembered), anything else stays."""
        if isinstance(exc, StoreFull):
            return exc
        if not (isinstance(exc, sqlite3.OperationalError) and is_full(exc)):
            return exc
        if self.full_since is None:
            self.full_since = time.time()
            log.error("the disk holding %s is full: new heartbeats cannot be stored", self.path.parent)
        return StoreFull(f"disk full: the disk holding {self.path.parent} has no room left ({exc})")

    def _wrote(self) -> None:
        if self.full_since is not None:
            self.full_since = None
            log.warning("the disk has room again; storing resumes")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """The calling thread's reader inside one read transaction, so everything read in the
        block comes from one state of the file; a block inside another shares the outer one."""
        conn = self.reader()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def reader(self) -> sqlite3.Connection:
        """A read connection for the calling thread (WAL lets reads run beside the writer)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

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


def _rekey(payload: str, old: bytes) -> bytes:
    try:
        return dedup_key_of(payload)
    except (ValueError, TypeError, KeyError):  # a row today's rules cannot read keeps its key
        return old


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements: comments dropped first, then split on semicolons
    (migrations hold no semicolons inside string literals)."""
    code = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    return [part.strip() for part in code.split(";") if part.strip()]
