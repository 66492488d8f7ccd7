"""Reading an export in a process of its own: the child decompresses and parses the file and
hands the importing process its heartbeats in batches over a pipe, while the importing process
stores the batch before (SQL stays with the store). One process cannot keep up: per heartbeat,
parsing (orjson's runs, ``runs.py``) costs about 3 µs, making the row (checks, payload, key)
8 µs and storing it 9 µs; a thread would share the one GIL with the store's Python.

So the rows are made on whichever side has time. The child parses every batch; it makes the
batch's rows itself while the importing side has work queued, and hands the batch over as JSON
text (orjson writes it in well under a microsecond a heartbeat, and reads it back as fast)
when that side is about to run out: ``make_rows`` is the same code on both sides. The importing
side writes one byte back for each batch it has stored, which is how the child knows; the
balance then holds on any machine, however the costs of parsing, rows and SQLite compare there.

The child takes one request on stdin (a JSON line), then those bytes; it answers with frames on
stdout: an 8-byte length, then a ``marshal``'d message. Rows hold only marshal's own types, and
marshal writes a batch of rows several times faster than pickle; the child is the same
interpreter (``sys.executable``), so both sides agree on the format.

Messages, each a tuple: ``(BATCH, read, file_bytes, rows, invalid, errors, text, places)``
after every ``batch`` heartbeats taken from the file, with either the batch's rows (and its
invalid count and errors) or its heartbeats as JSON ``text`` and where in the JSON each was
(``places``); both are empty while a resumed import skips what an earlier run stored. Then
one ``(END, …, state, problem)`` with the last rows and how the file ended; or ``(FAILED,
traceback)`` when the child itself failed. A child that ends without END or FAILED (killed,
crashed) is an error too. ``errors`` are ``(heartbeat, near_byte, message)``, the first
``MAX_ERRORS`` the child met. The importing side makes the rows of a text before it passes the
batch on (``ReaderProcess``), so what an import stores is a ``Batch`` of rows either way.

The child is killed and reaped whenever the importing side stops early (cancelled, a store
failure, any exception): none outlives its import. Should the importing process die instead,
the child's next write fails on the closed pipe and it exits.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import marshal
import os
import struct
import subprocess
import sys
import threading
import traceback
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import ijson
import orjson

from agent.heartbeat import HeartbeatError

from . import IMPORT_READER_ARG
from .rows import Row, row
from .runs import Unexpected, runs
from .source import ImportRefused, Source

BATCH, END, FAILED = "batch", "end", "failed"
# Final states of a read, as the job names them.
DONE, BROKEN, REFUSED = "done", "broken", "refused"
MAX_ERRORS = 10  # errors with their positions sent to the job (it keeps the first ten)
# The child hands a batch over while fewer than this many it sent are still to be stored: the
# importing side is then storing its last one and would wait for the next.
HAND_OVER_BELOW = 2
_LENGTH = struct.Struct("<Q")
EXIT_WAIT_S = 10.0  # a child that sent its last frame is given this long to exit by itself

log = logging.getLogger(__name__)
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
    hand_over_below: int = HAND_OVER_BELOW  # 0: the child makes every row (tests set the split)


class Batch(NamedTuple):
    """What the importing side stores: one message of the child's, its rows made."""

    read: int  # heartbeats taken from the file through this batch
    file_bytes: int
    rows: list[Row]
    invalid: int
    errors: list[tuple[int, int, str]]
    state: str | None = None  # the last batch's: how the file ended (DONE, BROKEN, REFUSED)
    problem: str | None = None


class ReaderFailed(RuntimeError):
    """The reading process failed (not the file: a bad file is a message, not an error)."""


# ---- the child ---------------------------------------------------------------------------------


def messages(request: Request, hand_over: Callable[[], bool] = lambda: False) -> Iterator[tuple[Any, ...]]:
    """What the child sends for ``request``, in order; the last one is END. A batch goes as
    JSON text for the importing side to make the rows of when ``hand_over()`` says so."""
    default_ua, every, skip = request.default_user_agent, request.batch, request.skip
    heartbeats = Heartbeats(request)
    batch: list[Any] = []  # this batch's heartbeats, after any skipped
    places: list[int] = []  # where in the JSON each one ended (about: the end of its run)
    told = 0  # errors told this run
    count = 0  # heartbeats taken from the file so far (each a row, invalid, or skipped)
    state, problem = DONE, None
    try:
        for items, place in heartbeats:
            at = 0
            while at < len(items):
                take = min(len(items) - at, every - count % every)
                first, count = count, count + take
                if count > skip:
                    kept = at + max(0, skip - first)
                    batch += items[kept : at + take]
                    places += [place] * (at + take - kept)
                at += take
                if count % every == 0:
                    message, told = _batch(batch, places, count, heartbeats, default_ua, told, hand_over)
                    yield message
                    batch, places = [], []
    except ijson.JSONError as exc:
        near = heartbeats.source.json_bytes
        state, problem = BROKEN, f"the JSON is not valid near byte {near:,}: {_first_line(exc)}"
    except (EOFError, zlib.error, OSError) as exc:
        source = heartbeats.source
        where = f"byte {source.file_bytes:,} of {source.size:,}"
        state, problem = BROKEN, f"the {source.kind} file breaks off at {where}: {_first_line(exc)}"
    except ImportRefused as exc:  # a decompression bomb or deep nesting, met while reading
        state, problem = REFUSED, str(exc)
    finally:
        heartbeats.close()
    # Every heartbeat taken before a break is whole: they go with the last message, made here.
    rows, invalid, errors = make_rows(batch, places, count, default_ua, MAX_ERRORS - told)
    yield END, count, heartbeats.source.file_bytes, rows, invalid, errors, b"", [], state, problem


def _batch(
    batch: list[Any],
    places: list[int],
    count: int,
    heartbeats: Heartbeats,
    default_ua: str,
    told: int,
    hand_over: Callable[[], bool],
) -> tuple[tuple[Any, ...], int]:
    """A BATCH message, and the errors told through it."""
    file_bytes = heartbeats.source.file_bytes
    if batch and hand_over():
        try:
            return (BATCH, count, file_bytes, [], 0, [], orjson.dumps(batch), places), told
        except TypeError:
            pass  # what orjson does not write (an integer past 64 bits from ijson): made here
    rows, invalid, errors = make_rows(batch, places, count, default_ua, MAX_ERRORS - told)
    return (BATCH, count, file_bytes, rows, invalid, errors, b"", []), told + len(errors)


class Heartbeats:
    """The heartbeats of the request's file as runs ``(heartbeats, json_byte)``: orjson's runs,
    and where those meet a shape they do not read (see runs.py), ijson's one by one from the
    same heartbeat on, reading the file again from its start. ``source`` is the file as read
    now; ``fell_back`` says why ijson took over, if it did."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self.source = Source(Path(request.path), nesting=False)  # orjson refuses deep nesting itself
        self.fell_back: str | None = None

    def __iter__(self) -> Iterator[tuple[list[Any], int]]:
        prefix, taken = self._request.prefix, 0
        try:
            for items, place in runs(self.source.stream, prefix):
                taken += len(items)
                yield items, place
            return
        except Unexpected as exc:
            self.fell_back = str(exc)
        self.source.close()
        self.source = Source(Path(self._request.path))
        stream = self.source.stream
        for seen, raw in enumerate(ijson.items(stream, prefix, use_float=True), 1):
            if seen > taken:
                yield [raw], stream.count

    def close(self) -> None:
        self.source.close()


def make_rows(
    raws: list[Any], places: list[int], last: int, default_ua: str, tell: int = MAX_ERRORS
) -> tuple[list[Any], int, list[tuple[int, int, str]]]:
    """The rows of consecutive heartbeats (the last is heartbeat number ``last`` of the file),
    how many were invalid, and the first ``tell`` errors: (heartbeat, near_byte, message)."""
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
    # Unbuffered: the acks are read on a daemon thread, and a buffered reader's lock held by it
    # when the process exits aborts the interpreter ("could not acquire lock for <stdin> at
    # interpreter shutdown"). Its readline takes a byte at a time, so no ack is read ahead.
    stdin = open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)  # noqa: SIM115 - lives as long as the process
    try:
        request = Request(**json.loads(stdin.readline()))
        backlog = _Backlog(stdin, request.hand_over_below)
        with fewer_collections():
            for message in messages(request, backlog.hand_over):
                _send(out, message)
                backlog.sent += 1
    except BrokenPipeError:
        return 1  # the importing process is gone or stopped reading: nobody to tell
    except BaseException:  # every failure crosses the pipe, said in full
        try:
            _send(out, (FAILED, traceback.format_exc()))
        except OSError:
            pass  # the importing process is gone
        return 1
    return 0


class _Backlog:
    """Batches sent and not yet stored, from the byte the importing side writes back for each
    one it stored (read on a thread, so the child never waits for them)."""

    def __init__(self, stored: IO[bytes], below: int) -> None:
        self.sent = 0
        self.stored = 0
        self._below = below
        self._acks = stored
        threading.Thread(target=self._count, name="import-stored", daemon=True).start()

    def hand_over(self) -> bool:
        return self.sent - self.stored < self._below

    def _count(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # the importing side is gone: nothing to count
            while data := self._acks.read(4096):
                self.stored += len(data)


def _send(out: IO[bytes], message: tuple[Any, ...]) -> None:
    data = marshal.dumps(message)
    out.write(_LENGTH.pack(len(data)))
    out.write(data)
    out.flush()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# ---- the importing side ------------------------------------------------------------------------


class ReaderProcess:
    """The child for one request: iterate for its messages; ``close`` reaps it, whatever state
    it is in: a child that sent its last batch is let exit by itself (``exit_code`` tells how it
    did), any other is killed. Use as a context manager."""

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
        self._default_ua = request.default_user_agent
        self.handed_over = 0  # batches whose rows this side made
        self.exit_code: int | None = None  # once closed; 0 for a child that finished its request
        self._ended = False  # the child sent its last frame
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(asdict(request)).encode() + b"\n")
            self._proc.stdin.flush()  # and left open: a byte follows for each batch stored
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        return self._proc.pid

    def __iter__(self) -> Iterator[Batch]:
        """The batches, rows made, through the last; the child hears of each one stored when
        the caller asks for the next."""
        while True:
            data = self._frames.next()
            if data is None:
                raise ReaderFailed(self._died())
            message = marshal.loads(data)
            if message[0] == FAILED:
                raise ReaderFailed(f"the import's reading process failed:\n{message[1]}")
            read, file_bytes, rows, invalid, errors, text, places = message[1:8]
            if text:  # handed over: this side makes the rows
                self.handed_over += 1
                rows, invalid, errors = make_rows(orjson.loads(text), places, read, self._default_ua)
            if message[0] == END:
                self._ended = True
                yield Batch(read, file_bytes, rows, invalid, errors, *message[8:10])
                return
            yield Batch(read, file_bytes, rows, invalid, errors)
            self._stored()

    def _stored(self) -> None:
        """One byte to the child: a batch is stored (and this side is ready for more)."""
        stdin = self._proc.stdin
        if stdin is None or stdin.closed:
            return
        try:
            stdin.write(b"\x01")
            stdin.flush()
        except OSError:  # the child has ended (its last batch is already sent): nobody to tell
            with contextlib.suppress(OSError):
                stdin.close()  # which tries the write again, and fails again

    def _died(self) -> str:
        code = self._proc.wait()
        said = self._said()
        return f"the import's reading process ended without finishing (exit code {code})" + (
            f": {said}" if said else ""
        )

    def _said(self) -> str:
        """The end of what the exited child wrote to stderr (a traceback, a fatal error)."""
        return self._proc.stderr.read().decode(errors="replace").strip()[-2000:] if self._proc.stderr else ""

    def close(self) -> None:
        if self._ended:  # it exits by itself once its stdin ends; how it exits is worth knowing
            with contextlib.suppress(OSError):
                if self._proc.stdin is not None:
                    self._proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(EXIT_WAIT_S)
        if self._proc.poll() is None:
            self._proc.kill()
        self.exit_code = self._proc.wait()
        if self._ended and self.exit_code != 0:
            log.warning(
                "the import's reading process exited with code %s after its last batch: %s",
                self.exit_code,
                self._said(),
            )
        self._frames.close()  # the child is gone, so its pipe is at an end: the thread ends now
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):  # a byte for the child still unwritten: it is gone
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
