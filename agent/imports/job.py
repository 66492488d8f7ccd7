"""One import run: read an export file in a stream, store its heartbeats in batches, report
progress, stop cleanly when cancelled, and resume where an earlier run of the same file left off.

Every heartbeat read before a break in the file (truncation, a syntax error, a damaged gzip
stream) is stored; the run then says where the file broke. Running the import again skips
the heartbeats the last run of the same file committed (a checkpoint in the store's meta
table, written after each batch) and de-duplicates everything else by the fields_hash key,
so neither a re-import nor an import of heartbeats captured live stores or uploads anything
twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent import heap
from agent.contract import DESTINATION
from agent.heartbeat import user_agent
from agent.store import Store

from .estimate import upload_seconds
from .formats import Detected, detect
from .reader import BROKEN, DONE, MAX_ERRORS, REFUSED, ReaderProcess, Request, fewer_collections
from .rows import Row
from .source import ImportRefused, Source

log = logging.getLogger(__name__)

BATCH = 5000  # heartbeats per store transaction: big enough that the fsync is noise
CHECKPOINT_PREFIX = "import:"

# Run states. The last four are final (the reader ends a read in one of the first three).
READING, CANCELLED = "reading", "cancelled"
FINAL = (DONE, BROKEN, REFUSED, CANCELLED)


@dataclass
class Progress:
    """What a run has done so far; the final one is the summary. ``as_dict`` is the JSON form
    the CLI, the control API and the Import window show."""

    path: str
    upload: bool = True
    id: int = 0  # tells runs apart (the agent numbers them)
    state: str = READING
    format: str | None = None
    format_name: str | None = None
    bytes_read: int = 0  # of the file (compressed bytes for a compressed file)
    bytes_total: int = 0
    read: int = 0  # heartbeats read from the file, valid or not
    imported: int = 0  # new heartbeats stored by this run
    duplicates: int = 0  # already stored (an earlier import, live capture, or twice in the file)
    invalid: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    rate: float = 0.0  # heartbeats read per second
    eta_seconds: float | None = None
    problem: str | None = None  # one line: what went wrong and where, when state is not done
    upload_heartbeats: int = 0  # what this run queued for upload
    upload_seconds: float | None = None  # how long that takes at Hackatime's limits

    @property
    def finished(self) -> bool:
        return self.state in FINAL

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ImportJob:
    def __init__(
        self,
        store: Store,
        path: Path | str,
        *,
        upload: bool = True,
        cancel: threading.Event | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_stored: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        batch: int = BATCH,
        destination: str = DESTINATION,
    ) -> None:
        self.store = store
        self.path = Path(path).expanduser()
        self.cancel = cancel or threading.Event()
        self.on_progress = on_progress or (lambda p: None)
        self.on_stored = on_stored or (lambda n: None)
        self.clock = clock
        self.batch = max(1, batch)
        self.destination = destination
        self.progress = Progress(path=str(self.path), upload=upload)
        # The HTTP User-Agent the outbox sends: the server falls back to it for a heartbeat
        # without one, so the local key must too.
        self._default_ua = user_agent()
        self._started = 0.0
        self._checkpoint_key = ""
        self._skip = 0

    # ---- the run -------------------------------------------------------------------------------

    def run(self) -> Progress:
        """Import the whole file (or until cancelled); returns the final progress, never raises
        for a bad file: ``state`` and ``problem`` say what happened."""
        self._started = self.clock()
        p = self.progress
        try:
            with Source(self.path) as sniffed:
                p.bytes_total = sniffed.size
                detected = detect(sniffed)
            p.format, p.format_name = detected.format, detected.name
            self._restore_checkpoint()
            state, problem = self._read(detected)
        except ImportRefused as exc:
            state, problem = REFUSED, str(exc)
        self._finish(state, problem)
        return p

    def _read(self, detected: Detected) -> tuple[str, str | None]:
        """Read (in the reading process) and store; returns the final state and problem (set
        by ``_finish``, last)."""
        p = self.progress
        request = Request(str(self.path), detected.prefix, self._skip, self._default_ua, self.batch)
        state, problem = CANCELLED, None
        # So this process's memory stays flat however long the file. Not in the reading process:
        # its memory stayed flat without it (53 MB at 200,000 heartbeats and at 3 million), and
        # there every 256 KiB read became a mapping of its own: 550,000 more page faults per
        # million heartbeats, and the import about 5 % slower.
        heap.fixed_mmap_threshold()
        with ReaderProcess(request) as reader, fewer_collections():
            for batch in reader:
                if self.cancel.is_set():
                    break  # the reader is stopped on the way out; nothing after the last batch is kept
                for index, byte, error in batch.errors:
                    if len(p.errors) < MAX_ERRORS:
                        p.errors.append({"heartbeat": index, "near_byte": byte, "error": error})
                p.invalid += batch.invalid
                self._store(batch.rows, batch.read, batch.file_bytes)
                if batch.state is not None:
                    state, problem = batch.state, batch.problem
            # How the reading process shared the work (bench/bench_import.py's figures, in the log).
            log.debug("import of %s: this side made the rows of %d batches", self.path, reader.handed_over)
        if state == BROKEN:
            kept = "nothing before it was a whole heartbeat"
            if p.read:
                kept = f"the {_count(p.read)} before it are stored; importing the whole file adds only the rest"
            problem = f"{problem} ({kept})"
        return state, problem

    def _store(self, batch: list[Row], read_through: int, file_bytes: int) -> None:
        """Commit a batch; then the checkpoint says everything up to ``read_through`` is in."""
        p = self.progress
        read = max(p.read, read_through)
        if batch or read > p.read:
            key = self._checkpoint_key
            checkpoint = (key, self._checkpoint(read, complete=False)) if key else None
            created = self.store.add_imported(batch, upload=p.upload, meta=checkpoint)
            p.imported += created
            p.duplicates += len(batch) - created
            if created:
                self.on_stored(created)
        p.read = read
        p.bytes_read = file_bytes
        self._tick()

    def _tick(self) -> None:
        p = self.progress
        p.seconds = round(self.clock() - self._started, 3)
        p.rate = round(p.read / p.seconds, 1) if p.seconds > 0 else 0.0
        if 0 < p.bytes_read < p.bytes_total and p.seconds > 0:
            p.eta_seconds = round(p.seconds * (p.bytes_total - p.bytes_read) / p.bytes_read, 1)
        else:
            p.eta_seconds = None
        self.on_progress(p)

    def _finish(self, state: str, problem: str | None) -> None:
        """Complete the summary, then publish it: ``state`` is set last, so whoever reads the
        progress from another thread and sees a final state sees every figure of it."""
        p = self.progress
        if state == DONE:
            p.bytes_read = p.bytes_total
            if self._checkpoint_key:
                self.store.meta_set(self._checkpoint_key, self._checkpoint(p.read, complete=True))
        if p.upload and p.format is not None:
            # Said before the upload gets far: what this run queued, at Hackatime's limits. The
            # status's history_upload then counts down whatever imported history still waits.
            p.upload_heartbeats = p.imported
            p.upload_seconds = round(upload_seconds(p.imported), 1)
        p.seconds = round(self.clock() - self._started, 3)
        p.rate = round(p.read / p.seconds, 1) if p.seconds > 0 else 0.0
        p.eta_seconds = None
        p.problem = problem
        p.state = state
        self.on_progress(p)
        log.info(
            "import of %s: %s; read %d, imported %d, duplicates %d, invalid %d%s",
            p.path, p.state, p.read, p.imported, p.duplicates, p.invalid, f" ({p.problem})" if p.problem else "",
        )  # fmt: skip

    # ---- resuming ------------------------------------------------------------------------------

    def _fingerprint(self) -> str:
        """The file's identity: its size and its first and last 64 KiB (a truncated copy and the
        complete file differ, so the complete one is read from its start and de-duplicated)."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as fh:
            size = fh.seek(0, 2)
            digest.update(str(size).encode())
            fh.seek(0)
            digest.update(fh.read(65536))
            fh.seek(max(0, size - 65536))
            digest.update(fh.read(65536))
        mode = "upload" if self.progress.upload else "local"
        return f"{CHECKPOINT_PREFIX}{mode}:{digest.hexdigest()[:32]}"

    def _restore_checkpoint(self) -> None:
        self._checkpoint_key = self._fingerprint()
        saved = self.store.meta_get(self._checkpoint_key)
        if not saved:
            return
        try:
            state = json.loads(saved)
            read, invalid, errors = int(state["read"]), int(state["invalid"]), list(state["errors"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable import checkpoint for %s", self.path)
            return
        # The heartbeats before ``read`` were committed by an earlier run: counted as already
        # stored (or invalid, as they were then), and not parsed into heartbeats again.
        p = self.progress
        self._skip = read
        p.read = read
        p.invalid = invalid
        p.duplicates = read - invalid
        p.errors = errors[:MAX_ERRORS]

    def _checkpoint(self, read: int, *, complete: bool) -> str:
        p = self.progress
        return json.dumps({"read": read, "invalid": p.invalid, "errors": p.errors, "complete": complete})


def _count(n: int) -> str:
    return "1 heartbeat" if n == 1 else f"{n:,} heartbeats"
