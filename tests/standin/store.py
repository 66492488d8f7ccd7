"""The stand-in's heartbeats table: rows in memory, deduplicated on ``fields_hash``."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from . import ingest, railsjson
from .ingest import IngestError, PlaceholderState, RequestContext

Row = dict[str, Any]

# The order of the columns in a rendered row (§4.1): the flat object the server answers with.
ROW_KEYS = (
    "id", "user_id", "time", "entity", "type", "category", "project", "branch", "language", "editor",
    "operating_system", "machine", "user_agent", "is_write", "lineno", "cursorpos", "lines",
    "line_additions", "line_deletions", "project_root_count", "dependencies", "source_type",
    "ip_address", "ja4_id", "fields_hash", "deleted_at", "created_at", "updated_at", *ingest.AI_HASH_KEYS,
)  # fmt: skip


def _render(row_id: int, model: dict[str, Any], source: str, digest: str, address: str, stamp: str) -> bytes:
    """A new row's JSON, spliced from the hash source it shares most columns with.

    Encoding each row a second time was a third of the ingest cost. The hashed text already holds
    every column but these few, each encoded the same way; only the key order differs from
    ``ROW_KEYS``, which no JSON reader sees (a test checks the two forms decode equal).
    """
    tail = [
        f'"source_type":"{model["source_type"]}"',
        f'"ip_address":{address}',
        '"ja4_id":null',
        f'"fields_hash":"{digest}"',
        '"deleted_at":null',
        f'"created_at":{stamp}',
        f'"updated_at":{stamp}',
    ]
    tail.extend(f'"{key}":null' for key in ingest.AI_HASH_KEYS if model[key] is None)
    text = f'{{"id":{row_id},{source[1:-1]},{",".join(tail)}}}'
    return text.encode("utf-8", "surrogatepass")


class HeartbeatStore:
    """All rows of all users, behind one lock.

    ``changed`` is a Condition on that same lock, notified after every stored batch (and, by the
    server, after every logged request), so tests wait on it instead of sleeping. Each row's JSON
    is rendered once when it is stored: a resend of the same heartbeat answers with those bytes.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._rows: list[Row] = []  # index = id - 1, deleted rows included
        self._rendered: list[bytes] = []
        self._by_hash: dict[str, int] = {}  # the unique index on fields_hash WHERE deleted_at IS NULL
        self._by_user: dict[int, list[Row]] = defaultdict(list)

    # --- writes ----------------------------------------------------------------------------------

    def ingest(
        self, user_id: int, items: list[Any], ctx: RequestContext, now_iso: str, accepted: int
    ) -> list[tuple[bytes, int]]:
        """HeartbeatIngest in ``:direct`` mode: one ``(body, status)`` per item, in input order.

        ``accepted`` is the status of a stored or matched item: 201 for bulk, 202 for single.
        """
        results: list[tuple[bytes, int]] = [(b"", 0)] * len(items)
        with self.lock:
            placeholders = PlaceholderState(self, user_id)
            entries: list[tuple[int, dict[str, Any], str, str]] = []
            for index, item in enumerate(items):
                try:
                    model = ingest.normalize(item, user_id, ctx, placeholders)
                except IngestError as exc:
                    results[index] = (railsjson.dumpb(exc.body()), 422)
                    continue
                placeholders.remember(model)
                source = ingest.hash_source(model)
                entries.append((index, model, source, ingest.md5_hex(source)))
            try:
                ingest.check_int4([entry[1] for entry in entries])
            except IngestError as exc:
                failed = railsjson.dumpb(exc.body())
                for entry in entries:
                    results[entry[0]] = (failed, 422)
                return results
            stamp = railsjson.dumps(now_iso)
            address = railsjson.dumps(ctx.ip_address)
            for index, model, source, digest in entries:
                position = self._by_hash.get(digest)
                if position is None:  # first sight of this hash, in this batch or ever
                    position = self._insert(model, source, digest, ctx, now_iso)
                    self._rendered.append(_render(position + 1, model, source, digest, address, stamp))
                results[index] = (self._rendered[position], accepted)
            if entries:
                self.changed.notify_all()
        return results

    def _insert(self, model: dict[str, Any], source: str, digest: str, ctx: RequestContext, now_iso: str) -> int:
        position = len(self._rows)
        row: Row = dict.fromkeys(ROW_KEYS)
        row.update(model)
        row.update(id=position + 1, ip_address=ctx.ip_address, fields_hash=digest)
        row.update(created_at=now_iso, updated_at=now_iso)
        self._rows.append(row)
        self._by_hash[digest] = position
        self._by_user[row["user_id"]].append(row)
        return position

    def soft_delete(self, row_id: int, now_iso: str) -> None:
        """Set ``deleted_at``: the row leaves every total, and a resend creates a new row (§4.4)."""
        with self.lock:
            row = self._rows[row_id - 1]
            if row["deleted_at"] is None:
                row["deleted_at"] = row["updated_at"] = now_iso
                self._rendered[row_id - 1] = railsjson.dumpb(row)
                del self._by_hash[row["fields_hash"]]
                self._by_user[row["user_id"]].remove(row)
                self.changed.notify_all()

    # --- reads -----------------------------------------------------------------------------------

    def latest_value(self, user_id: int, project: str, column: str, sentinel: str) -> str | None:
        """The newest non-blank, non-placeholder ``column`` of the user's heartbeats in ``project``."""
        best: Row | None = None
        for row in self._by_user.get(user_id, ()):
            value = row[column]
            newer = best is None or row["time"] > best["time"]
            if newer and row["project"] == project and value and value != sentinel:
                best = row
        return best[column] if best else None

    def live_rows(self, user_id: int) -> list[Row]:
        """The user's rows that are not soft-deleted (shared dicts: read, don't mutate)."""
        with self.lock:
            return list(self._by_user.get(user_id, ()))

    def copies(self, user_id: int | None = None) -> list[Row]:
        """Every stored row (deleted ones too), as independent copies in id order."""
        with self.lock:
            rows = self._rows if user_id is None else [r for r in self._rows if r["user_id"] == user_id]
            return [{**row, "dependencies": list(row["dependencies"])} for row in rows]

    def count(self) -> int:
        with self.lock:
            return len(self._rows)

    def rendered(self, row: Row) -> bytes:
        with self.lock:
            return self._rendered[row["id"] - 1]
