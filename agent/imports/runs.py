"""An export's heartbeats read as runs: whole heartbeats cut from the JSON bytes and parsed at
once by orjson. ijson builds a heartbeat event by event, 7.8 µs each on the benchmark's file
with the decompression; a run costs 3.4 µs a heartbeat, and the import's reading process
spent half its time there.

The walk is over the two layouts ``formats.detect`` finds (prefix ``heartbeats.item`` or
``days.item.heartbeats.item``): objects and lists as real exports nest them, every other value
of the envelope skipped whole. Anything else (a list where an object belongs, bytes orjson
refuses, a break in the file) raises ``Unexpected``, and the caller reads the file again with
ijson, skipping the heartbeats already taken: ijson then finds the same heartbeats and says
what is wrong and where, as it did before this path existed.

Why a cut is safe: a run is cut after a ``}`` and parsed as ``[`` + run + ``]``. That text is
valid JSON only when the ``}`` ends a heartbeat of the list: a cut inside a string leaves the
string open, a cut inside a heartbeat's own object or list leaves a bracket open. A cut past
the list's end closes the text's list at the list's own ``]`` and leaves content after it,
which orjson reports with its position: the run is then the list up to there. So a run orjson
accepts is exactly whole heartbeats of one list; one it refuses is cut again at an earlier ``}``.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import orjson

READ = 1 << 18  # bytes asked of the stream at a time, and about the most a run spans
MAX_VALUE = 64 << 20  # the longest heartbeat, or skipped envelope value, taken on this path
TRIES = 4  # cuts tried in a window before it grows (a heartbeat longer than the window)
_WS = re.compile(rb"[ \t\n\r]*")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
# What a nested value's extent depends on: its strings (whose brackets do not count) and brackets.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_SCALAR = re.compile(rb"[^\s,\]}]+")
_AFTER_LIST = "unexpected content after document"  # orjson's words for text after the top value
_OPEN = {ord("{"), ord("[")}


class Unexpected(Exception):
    """Not a shape this path reads: the caller reads the file with ijson instead."""


class _Stream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


Run = tuple[list[Any], int]  # heartbeats, and the JSON byte just after the last one


def runs(stream: _Stream, prefix: str) -> Iterator[Run]:
    """The heartbeats at ``prefix`` (as ``detect`` names it) in runs, in file order."""
    return _Walk(stream).runs(prefix.split("."))


class _Walk:
    def __init__(self, stream: _Stream) -> None:
        self._stream = stream
        self._buf = b""  # bytes read and not yet passed: from _pos on
        self._pos = 0
        self._base = 0  # the JSON offset of _buf[0]
        self._ended = False

    def runs(self, path: list[str]) -> Iterator[Run]:
        if path not in (["heartbeats", "item"], ["days", "item", "heartbeats", "item"]):
            raise Unexpected(f"no walk for {'.'.join(path)}")
        self._expect(b"{")
        yield from self._object(path)
        while True:  # only whitespace may follow, to the stream's end
            self._pos = _WS.match(self._buf, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._buf):
                raise Unexpected("content after the export's object")
            if not self._fill(1):
                return

    # ---- structure -----------------------------------------------------------------------------

    def _object(self, path: list[str]) -> Iterator[Run]:
        """The members of an object whose ``{`` was read; heartbeats from the one ``path`` names."""
        return self._members(b"}", lambda: self._member(path))

    def _member(self, path: list[str]) -> Iterator[Run]:
        key = self._key()
        self._expect(b":")
        if key != path[0]:
            self._skip_value()
            return
        self._expect(b"[")
        if len(path) == 2:
            yield from self._members(b"]", self._heartbeat_run)
        else:  # a list of objects (the days)
            yield from self._members(b"]", lambda: self._element_object(path[2:]))

    def _element_object(self, path: list[str]) -> Iterator[Run]:
        self._expect(b"{")
        yield from self._object(path)

    def _heartbeat_run(self) -> Iterator[Run]:
        items, end = self._run()
        self._pos = end
        yield items, self._base + end

    def _members(self, closer: bytes, member: Callable[[], Iterator[Run]]) -> Iterator[Run]:
        """The members of an object or list whose opening bracket was read, to its ``closer``."""
        if self._next() == closer[0]:
            self._pos += 1
            return
        while True:
            yield from member()
            if self._after_member(closer):
                return

    def _after_member(self, closer: bytes) -> bool:
        """Past the ``,`` after a member (False) or the closing bracket (True)."""
        found = self._next()
        self._pos += 1
        if found == closer[0]:
            return True
        if found != ord(","):
            raise Unexpected(f"{chr(found)!r} where a comma or {closer.decode()} belongs")
        return False

    # ---- runs ----------------------------------------------------------------------------------

    def _run(self) -> Run:
        """The longest run of whole heartbeats from _pos within a window; the window grows for
        a heartbeat longer than it. Returns the heartbeats and where in _buf the run ends."""
        size = READ
        while True:
            whole = self._fill(size)  # which may move the buffer's start: _pos is read after it
            start = self._pos
            found = self._cut(start, min(len(self._buf), start + size))
            if found is not None:
                return found
            if not whole or size >= MAX_VALUE:
                raise Unexpected("no whole heartbeat in a window")
            size *= 2

    def _cut(self, start: int, end: int) -> Run | None:
        buf = self._buf
        # Where the list ends inside the window, "}]" (as minified exports write it) ends its last
        # heartbeat; the first such pair that parses is the list's end.
        close = buf.find(b"}]", start, end)
        for _ in range(TRIES):
            if close < 0:
                break
            found = self._parse(start, close + 1)
            if isinstance(found, tuple):
                return found
            close = buf.find(b"}]", close + 2, end)
        cut = end
        for _ in range(TRIES):
            cut = buf.rfind(b"}", start, cut)
            if cut < 0:
                return None
            found = self._parse(start, cut + 1)
            if isinstance(found, tuple):
                return found
            # A cut past where orjson stopped (a string it refuses, say) stops there again.
            cut = min(cut, found)
        return None

    def _parse(self, start: int, stop: int) -> Run | int:
        """The run from ``start`` to ``stop``, else where in the buffer orjson stopped."""
        text = b"[" + self._buf[start:stop] + b"]"
        try:
            return orjson.loads(text), stop
        except orjson.JSONDecodeError as exc:
            stopped = start + exc.pos - 1
            if not exc.msg.startswith(_AFTER_LIST):
                return stopped
            # The list ended inside the run: its "]" closed the text's list. The run is the list.
            head = text[: exc.pos].rstrip()
            try:
                items = orjson.loads(head)
            except orjson.JSONDecodeError:
                return stopped
            # Nothing before the "]" is a comma before the list's end: not JSON, so ijson's to say.
            return (items, start + len(head) - 2) if items else stopped

    # ---- tokens --------------------------------------------------------------------------------

    def _next(self) -> int:
        """The next byte that is not whitespace (left unread)."""
        while True:
            self._pos = _WS.match(self._buf, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill(1):
                raise Unexpected("the file ends inside the export")

    def _expect(self, char: bytes) -> None:
        found = self._next()
        if found != char[0]:
            raise Unexpected(f"{chr(found)!r} where {char.decode()} belongs")
        self._pos += 1

    def _key(self) -> str:
        if self._next() != ord('"'):
            raise Unexpected("an object key that is not a string")
        key: str = self._value()
        return key

    def _skip_value(self) -> None:
        self._next()
        self._value()  # orjson reads it: the envelope must be valid JSON too

    def _value(self) -> Any:
        """The JSON value at _pos (past whitespace), read as far as it needs; _pos moves past it."""
        size = READ
        while True:
            whole = self._fill(size)  # which may move the buffer's start: _pos is read after it
            start = self._pos
            end = _value_end(self._buf, start, whole)
            if end is not None:
                try:
                    value = orjson.loads(self._buf[start:end])
                except orjson.JSONDecodeError as exc:
                    # A string cut off by the buffer's end can fake an extent: read on, then decide.
                    if not whole or size >= MAX_VALUE:
                        raise Unexpected(f"orjson refuses a value of the envelope: {exc}") from None
                else:
                    self._pos = end
                    return value
            elif not whole or size >= MAX_VALUE:
                raise Unexpected("a value of the envelope is too long or breaks off")
            size *= 2

    # ---- the stream ----------------------------------------------------------------------------

    def _fill(self, need: int) -> bool:
        """At least ``need`` bytes from _pos on in the buffer; False when the stream ends first."""
        while len(self._buf) - self._pos < need:
            if self._ended:
                return False
            try:
                data = self._stream.read(max(READ, need))
            except (EOFError, zlib.error, OSError) as exc:  # a break: ijson reads it again and says where
                raise Unexpected(f"the stream breaks: {exc}") from None
            if not data:
                self._ended = True
                return False
            self._base += self._pos
            self._buf = self._buf[self._pos :] + data
            self._pos = 0
        return True


def _value_end(buf: bytes, start: int, more: bool) -> int | None:
    """The end of the JSON value at ``start``; None when it may go on past the buffer (``more``:
    the stream has more bytes). Only the extent: the caller has orjson check the value."""
    first = buf[start]
    if first == ord('"'):
        found = _STRING.match(buf, start)
        return found.end() if found else None
    if first in _OPEN:
        depth = 0
        for token in _TOKEN.finditer(buf, start):
            mark = token.group()
            if mark in (b"{", b"["):
                depth += 1
            elif mark in (b"}", b"]"):
                depth -= 1
                if depth == 0:
                    return token.end()
        return None
    scalar = _SCALAR.match(buf, start)
    if scalar is None or (scalar.end() == len(buf) and more):
        return None
    return scalar.end()
