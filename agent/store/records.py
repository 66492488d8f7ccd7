"""The store's small tables: destinations (and their health), notices for the user, the cache of
server figures, and meta (key/value facts such as the key's fingerprint).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, TypedDict, cast

from agent.contract import Notice

from .connection import StoreBase
from .schema import SENT


class DestinationRow(TypedDict):
    """One destination as :meth:`Records.destinations` reads it: where it is and how it fares."""

    name: str
    url: str
    auth_state: str  # unknown | ok | rejected | missing
    last_success: float | None
    last_error: str | None
    last_error_at: float | None
    backoff_until: float | None
    reachable_at: float | None  # the server last answered (any HTTP status)
    unreachable_at: float | None  # a request last failed below HTTP (offline)
    sent_total: int  # deliveries ever marked sent


_DESTINATION_COLUMNS = ", ".join(DestinationRow.__annotations__)


class Records(StoreBase):
    """Destinations, notices, cached server figures, meta."""

    # ---- destinations -----------------------------------------------------------------------

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

    def destinations(self) -> list[DestinationRow]:
        conn = self.reader()
        cur = conn.execute(f"SELECT {_DESTINATION_COLUMNS} FROM destinations ORDER BY name")
        return [cast(DestinationRow, dict(zip(DestinationRow.__annotations__, row, strict=True))) for row in cur]

    def destination(self, name: str) -> DestinationRow:
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

    def cache_clear(self, keys: Sequence[str] | None = None, *, meta_keys: Sequence[str] = ()) -> None:
        """Forget cached server answers (every one, or those of ``keys``) and these meta entries,
        in one transaction."""
        with self.transaction() as conn:
            if keys is None:
                conn.execute("DELETE FROM server_cache")
            else:
                conn.executemany("DELETE FROM server_cache WHERE key = ?", [(key,) for key in keys])
            conn.executemany("DELETE FROM meta WHERE key = ?", [(key,) for key in meta_keys])

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
