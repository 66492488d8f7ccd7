"""Reading an export in a process of its own: the child decompresses and parses the file and
hands the importing process its heartbeats in batches over a pipe, while the importing process
stores the batch before (SQL stays with the store). One process cannot keep up: per heartbeat,
parsing costs about what storing costs, and making the row (checks, payload, key) as much as
both; a thread would share the one GIL with the store's Python. So the work is split: the child
makes the rows of SHARE batches in every SHARE_OF (``rows.row``), and sends the others as parsed
heartbeats for the importing process to make (``make_rows``, the same code), which balances
the two processes' CPU (bench/bench_import.py prints each one's).

The child takes one request on stdin (a JSON object) and answers with frames on stdout: an
8-byte length, then a ``marshal``'d message. Rows and parsed heartbeats hold only marshal's
own types, and marshal writes a batch of rows several times faster than pickle; the child is
the same interpreter (``sys.executable``), so both sides agree on the format.

Messages, each a tuple: ``(BATCH, read, file_bytes, rows, invalid, errors, raws, places)``
after every ``batch`` heartbeats taken from the file, with either the batch's rows (and its
invalid count and errors) or its parsed heartbeats (``raws``) and where in the JSON each was
(``places``); both are empty while a resumed import skips what an earlier run stored. Then
one ``(END, …, state, problem)`` with the last rows and how the file ended; or ``(FAILED,
traceback)`` when the child itself failed. A child that ends without END or FAILED (killed,
crashed) is an error too. ``errors`` are ``(heartbeat, near_byte, message)``, the first
``MAX_ERRORS`` the child met.

The child is killed and reaped whenever the importing side stops early (cancelled, a store
failure, any exception): none outlives its import. Should the importing process die instead,
the child's next write fails on the closed pipe and it exits.
"""

from __future__ import annotations

import contextlib
import gc
import json
import marshal
import os
import struct
import subprocess
import sys
import threading
import traceback
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from . import IMPORT_READER_ARG

BATCH, END, FAILED = "batch", "end", "failed"
# Final states of a read, as the job names them.
DONE, BROKEN, REFUSED = "done", "broken", "refused"
MAX_ERRORS = 10  # errors with their positions sent to the job (it keeps the first ten)
# The child makes the rows of SHARE batches in every SHARE_OF and sends the rest as parsed
# heartbeats for the importing process to make. Under callgrind, per heartbeat: parsing 61k
# instructions, making its row 91k (measured before orjson wrote its payload, which took a
# row from 11 to 8 µs), marshalling the row there and back 8k; a parsed heartbeat (a dict
# with fresh keys) costs marshal several times a row. Making half the rows on each side is
# what balances the two processes' CPU in bench/bench_import.py (14.7 and 14.3 µs per
# heartbeat with orjson).
SHARE, SHARE_OF = 1, 2
_LENGTH = struct.Struct("<Q")
# Windows: no console window for the child, and Ctrl-C goes to the importing side alone.
_CREATION_FLAGS = getattr(subprocess, "CREATE_NO_WINDOW", 0) | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
_CHILD_CODE = "import sys; from agent.imports.reader import child_main; sys.exit(child_main())"


@dataclass(frozen=True)
class Request:
    path: str
    prefix: str  # where the heartbeat objects sit, in ijson's prefix notation
    skip: int  # heartbeats an earlier run of this file stored: counted, not made into rows
    default_user_agent: str
    batch: int


class ReaderFailed(RuntimeError):
    """The reading process failed (not the file: a bad file is a message, not an error)."""


# ---- the child ---------------------------------------------------------------------------------


def messages(request: Request, *, share: int = SHARE) -> Iterator[tuple[Any, ...]]:
    """What the child sends for ``request``, in order; the last one is END. The child makes
    the rows of ``share`` batches in every ``SHARE_OF``; the others go as parsed heartbeats."""
    import ijson

    from .source import ImportRefused, Source

    default_ua, every, skip = request.default_user_agent, request.batch, request.skip
    with Source(Path(request.path)) as source:
        stream = source.stream
        raws: list[Any] = []
        places: list[int] = []  # where in the JSON each heartbeat was (near, the chunk read by then)
        told = sent = 0  # errors told this run; batches sent
        count = 0  # heartbeats taken from the file so far (each a row, invalid, or skipped)
        state, problem = DONE, None
        try:
            for raw in ijson.items(stream, request.prefix, use_float=True):
                count += 1
                if count > skip:
                    raws.append(raw)
                    places.append(stream.count)
                if count % every == 0:
                    if sent % SHARE_OF < share:
                        rows, invalid, errors = make_rows(raws, places, count, default_ua, MAX_ERRORS - told)
                        told += len(errors)
                        yield BATCH, count, source.file_bytes, rows, invalid, errors, [], []
                    else:
                        yield BATCH, count, source.file_bytes, [], 0, [], raws, places
                    sent += 1
                    raws, places = [], []
        except ijson.JSONError as exc:
            state, problem = BROKEN, f"the JSON is not valid near byte {source.json_bytes:,}: {_first_line(exc)}"
        except (EOFError, zlib.error, OSError) as exc:
            where = f"byte {source.file_bytes:,} of {source.size:,}"
            state, problem = BROKEN, f"the {source.kind} file breaks off at {where}: {_first_line(exc)}"
        except ImportRefused as exc:  # a decompression bomb or deep nesting, met while reading
            state, problem = REFUSED, str(exc)
        # Every heartbeat yielded before a break is whole: they go with the last message.
        rows, invalid, errors = make_rows(raws, places, count, default_ua, MAX_ERRORS - told)
        yield END, count, source.file_bytes, rows, invalid, errors, [], [], state, problem


def make_rows(
    raws: list[Any], places: list[int], last: int, default_ua: str, tell: int = MAX_ERRORS
) -> tuple[list[Any], int, list[tuple[int, int, str]]]:
    """The rows of consecutive heartbeats (the last is heartbeat number ``last`` of the file),
    how many were invalid, and the first ``tell`` errors: (heartbeat, near_byte, message)."""
    from agent.heartbeat import HeartbeatError

    from .rows import row

    rows = []
    errors: list[tuple[int, int, str]] = []
    invalid = 0
    for i, raw in enumerate(raws):
        try:
            rows.append(row(raw, default_ua))
        except HeartbeatError as exc:
            if len(errors) < tell:
                errors.append((last - len(raws) + 1 + i, places[i], str(exc)[:300]))
            invalid += 1
    return rows, invalid, errors


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """The cyclic garbage collector run every 50,000 new containers instead of every 700, while
    an import makes millions of them (a dict per parsed heartbeat, a tuple per row), all freed
    by their reference counts: none is in a cycle. Its passes were 7 % of the reading process's
    CPU and about 5 % of the storing one's."""
    before = gc.get_threshold()
    gc.set_threshold(50_000, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def child_main() -> int:
    """The reading process: one request on stdin, frames on stdout until END or FAILED."""
    out = sys.stdout.buffer
    try:
        request = Request(**json.loads(sys.stdin.buffer.readline()))
        with fewer_collections():
            for message in messages(request):
                _send(out, message)
    except BrokenPipeError:
        return 1  # the importing process is gone or stopped reading: nobody to tell
    except BaseException:  # every failure crosses the pipe, said in full
        try:
            _send(out, (FAILED, traceback.format_exc()))
        except OSError:
            pass  # the importing process is gone
        return 1
    return 0


def _send(out: IO[bytes], message: tuple[Any, ...]) -> None:
    data = marshal.dumps(message)
    out.write(_LENGTH.pack(len(data)))
    out.write(data)
    out.flush()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# ---- the importing side ------------------------------------------------------------------------


class ReaderProcess:
    """The child for one request: iterate for its messages; ``close`` kills and reaps it
    (whatever state it is in). Use as a context manager."""

    def __init__(self, request: Request) -> None:
        self._proc = subprocess.Popen(
            _child_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_child_env(),
            # Out of the terminal's process group: Ctrl-C asks the importing side to cancel,
            # which then stops the child, rather than killing the child mid-batch.
            start_new_session=os.name == "posix",
            creationflags=_CREATION_FLAGS,
        )
        assert self._proc.stdout is not None
        self._frames = _Prefetch(self._proc.stdout)
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(asdict(request)).encode() + b"\n")
            self._proc.stdin.close()
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        return self._proc.pid

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while True:
            data = self._frames.next()
            if data is None:
                raise ReaderFailed(self._died())
            message = marshal.loads(data)
            if message[0] == FAILED:
                raise ReaderFailed(f"the import's reading process failed:\n{message[1]}")
            yield message
            if message[0] == END:
                return

    def _died(self) -> str:
        code = self._proc.wait()
        said = self._proc.stderr.read().decode(errors="replace").strip() if self._proc.stderr else ""
        return f"the import's reading process ended without finishing (exit code {code})" + (
            f": {said[-2000:]}" if said else ""
        )

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._frames.close()  # the child is gone, so its pipe is at an end: the thread ends now
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> ReaderProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Prefetch:
    """The child's frames read on a thread of their own, up to ``AHEAD`` ahead of the caller.

    Without it the child could hand over its next batch only once the caller had stored the
    last one and come back to read: each process waited on the other in turn, and the import
    ran at about 85 % of what its busier process could do alone. Reading a pipe releases the
    GIL, so the thread costs the storing side almost nothing."""

    AHEAD = 2  # frames held (each a batch: about 2 MB), so peak memory grows by about 4 MB

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._frames: deque[bytes | None] = deque()  # None: the stream ended (or broke) there
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="import-reader-frames", daemon=True)
        self._thread.start()

    def next(self) -> bytes | None:
        """The next frame's bytes; None once the child's output ends without a whole frame."""
        with self._ready:
            self._ready.wait_for(lambda: bool(self._frames))
            frame = self._frames.popleft()
            if frame is None:
                self._frames.append(None)  # asked again, it ends again
            self._ready.notify_all()
            return frame

    def _run(self) -> None:
        try:
            while (frame := self._read_frame()) is not None:
                with self._ready:
                    self._ready.wait_for(lambda: len(self._frames) < self.AHEAD or self._closed)
                    if self._closed:
                        return
                    self._frames.append(frame)
                    self._ready.notify_all()
        finally:  # however the reading ended, the caller hears it ended (then asks the child why)
            with self._ready:
                self._frames.append(None)
                self._ready.notify_all()

    def _read_frame(self) -> bytes | None:
        head = self._stream.read(_LENGTH.size)
        if len(head) < _LENGTH.size:
            return None
        (size,) = _LENGTH.unpack(head)
        data = self._stream.read(size)
        return data if len(data) == size else None

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        self._thread.join()


def _child_command() -> list[str]:
    if getattr(sys, "frozen", False):
        # A PyInstaller bundle runs no "-c": its executable is the agent's own command line.
        return [sys.executable, IMPORT_READER_ARG]
    return [sys.executable, "-c", _CHILD_CODE]


def _child_env() -> dict[str, str]:
    # The child imports this package from wherever this process found it (a source checkout
    # run with ``python -m agent`` is on no path of its own).
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env
