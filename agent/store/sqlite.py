"""SQLite plumbing the store's modules share: opening a connection, checking a file's header
before SQLite touches it, and telling a full disk and a damaged file apart from other failures.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .schema import LATEST


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, timeout=10, isolation_level=None, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


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


SQLITE_MAGIC = b"SQLite format 3\x00"


def check_header(path: Path) -> None:
    """Refuse, before SQLite opens it, a file from a newer version; an empty one is damaged.

    The user version sits at bytes 60-63 of the header (big-endian); reading it here keeps
    a newer store untouched (opening it would create -wal and -shm files beside it).
    """
    with open(path, "rb") as fh:
        header = fh.read(100)
    if not header:
        # A crash while copying, a sync tool: whatever it held is not here.
        raise StoreCorrupt("the file is empty (0 bytes)")
    if len(header) == 100 and header.startswith(SQLITE_MAGIC):
        version = int.from_bytes(header[60:64], "big")
        if version > LATEST:
            raise StoreTooNew(path, version)


class StoreFull(sqlite3.OperationalError):
    """A write failed because the disk (or the file system holding the store) is full."""


_SQLITE_FULL = 13


def is_full(exc: BaseException) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == _SQLITE_FULL


_CORRUPTION_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    return isinstance(exc, StoreCorrupt) or getattr(exc, "sqlite_errorcode", None) in _CORRUPTION_CODES
