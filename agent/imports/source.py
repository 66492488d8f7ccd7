"""Opening an export file as one stream of JSON bytes: plain, gzip or a zip holding one JSON
file (Hackatime emails its export zipped), with the byte counts progress and errors need.

The kind is found from the first bytes, never from the file name. Memory stays flat: every
layer reads in chunks. A stream that expands far beyond what real exports do (a gzip bomb)
is stopped rather than parsed for hours.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path
from typing import Any, Protocol

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
# Heartbeat exports compress 5–20 fold; gzip's ceiling is about 1,000. Past a few MiB, a
# stream expanding more than this is not an export.
BOMB_RATIO = 200
BOMB_GRACE = 16 * 1024 * 1024
# Exports nest 6 deep (days, a day, its heartbeats, one, its dependencies). The parser's
# prefixes grow with depth for every event, so a file nested 100,000 deep would need
# gigabytes; anything deeper than this is refused before the parser sees it.
MAX_DEPTH = 64
_NOT_MARKS = bytes(range(256)).translate(None, b'[]{}"')


class ImportRefused(ValueError):
    """The file is not something to import; ``str()`` is one sentence for the user saying
    what it is and what to do instead. Nothing was stored."""


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...


class _Counting:
    """A read-only binary stream that counts the bytes it hands out."""

    def __init__(self, raw: _Readable) -> None:
        self._raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.count += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:  # gzip rewinds only to start over
        self.count = self._raw.seek(offset, whence)
        return self.count


class _Json(_Counting):
    """The JSON bytes as the parser reads them: counted, and refused when they expand like a
    decompression bomb or (with ``nesting`` checked) nest deeper than ``MAX_DEPTH``."""

    def __init__(self, raw: _Readable, compressed: _Counting | None = None, *, nesting: bool = True) -> None:
        super().__init__(raw)
        self._compressed = compressed
        self._depth = _DepthGauge() if nesting else None

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        packed = self._compressed
        if packed is not None and self.count > BOMB_GRACE and self.count > BOMB_RATIO * max(1, packed.count):
            raise ImportRefused(
                f"the compressed file expands more than {BOMB_RATIO}-fold ({packed.count:,} bytes "
                f"became {self.count:,} so far): that is not an export but a decompression bomb"
            )
        if self._depth is not None and self._depth.feed(data) > MAX_DEPTH:
            raise ImportRefused(
                f"the JSON nests more than {MAX_DEPTH} levels deep before byte {self.count:,}; "
                "an export nests 6, so this is not one"
            )
        return data


class _DepthGauge:
    """An upper bound on the JSON nesting depth seen so far, at C speed per chunk: escapes
    dropped, then only brackets and quotes kept, string contents cut out, and matched pairs
    removed pass by pass (each pass is one level). A bound, not the exact depth: it may
    exceed the true depth by the brackets still open at the chunk's end, never fall below it."""

    def __init__(self) -> None:
        self.depth = 0  # open brackets at the end of the bytes fed so far
        self._in_string = False
        self._backslash = False  # the last chunk ended in an escape's backslash

    def feed(self, chunk: bytes) -> int:
        if self._backslash:
            chunk = b"\\" + chunk
        run = len(chunk) - len(chunk.rstrip(b"\\"))
        self._backslash = run % 2 == 1
        if self._backslash:
            chunk = chunk[:-1]
        if b"\\" in chunk:  # an escaped backslash, then an escaped quote, is no delimiter
            chunk = chunk.replace(b"\\\\", b"").replace(b'\\"', b"")
        # Two quotes with no bracket between them change no bracket's side (inside a string or
        # not): dropped first, they leave the split below a few pieces instead of one per string.
        parts = chunk.translate(None, _NOT_MARKS).replace(b'""', b"").split(b'"')
        brackets = b"".join(parts[1::2] if self._in_string else parts[0::2])
        if len(parts) % 2 == 0:
            self._in_string = not self._in_string
        levels = 0
        while len(brackets) > 1:
            shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
            if len(shorter) == len(brackets):
                break
            brackets = shorter
            levels += 1
            if levels > MAX_DEPTH:
                break
        closers = len(brackets) - len(brackets.lstrip(b"]}"))
        openers = len(brackets) - closers
        peak = self.depth + levels + openers
        self.depth = max(0, self.depth + openers - closers)
        return peak


class Source:
    """An export file opened for reading. ``stream`` yields the JSON bytes; ``json_bytes`` is
    how many it has yielded, ``file_bytes`` about how much of the file that took (progress
    against ``size``).

    ``nesting=False`` leaves the depth unchecked, for a reader that is not ijson: orjson
    refuses deep nesting itself, and the check was a quarter of the reading process's CPU
    (1.3 µs a heartbeat) once ijson's parsing was gone from it."""

    def __init__(self, path: Path, *, nesting: bool = True) -> None:
        self.path = Path(path)
        self._nesting = nesting
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except IsADirectoryError:
            raise ImportRefused(f"{self.path} is a folder; choose the export file inside it") from None
        except OSError as exc:
            raise ImportRefused(f"cannot read {self.path}: {exc.strerror or exc}") from None
        self._closers: list[Any] = [self._file]
        try:
            self.size = self._file.seek(0, 2)
            self._file.seek(0)
            head = self._file.read(4)
            self._file.seek(0)
            raw = _Counting(self._file)
            self.kind = "plain"
            self.stream = _Json(self._file, nesting=nesting)
            self._consumed = lambda: self.stream.count
            if head.startswith(GZIP_MAGIC):
                self.kind = "gzip"
                inner = gzip.GzipFile(fileobj=raw, mode="rb")
                self._closers.append(inner)
                self.stream = _Json(inner, raw, nesting=nesting)
                self._consumed = lambda: raw.count
            elif head.startswith(ZIP_MAGIC):
                self.kind = "zip"
                self._open_zip()
        except BaseException:
            self.close()
            raise

    def _open_zip(self) -> None:
        try:
            archive = zipfile.ZipFile(self._file)
        except zipfile.BadZipFile as exc:
            raise ImportRefused(
                f"{self.path.name} starts like a zip archive but is not a readable one ({exc})"
            ) from None
        self._closers.append(archive)
        members = [m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith(".json")]
        if len(members) != 1:
            names = ", ".join(m.filename for m in archive.infolist()[:5]) or "nothing"
            raise ImportRefused(
                f"{self.path.name} is a zip archive holding {names}; it should hold exactly one .json export "
                f"(unzip it and import the export file)"
            )
        info = members[0]
        if info.file_size > BOMB_GRACE and info.file_size > BOMB_RATIO * max(1, info.compress_size):
            raise ImportRefused(
                f"{info.filename} in {self.path.name} expands more than {BOMB_RATIO}-fold "
                f"({info.compress_size:,} bytes to {info.file_size:,}): that is not an export but a decompression bomb"
            )
        member = archive.open(info)
        self._closers.append(member)
        stream = self.stream = _Json(member, nesting=self._nesting)
        ratio = info.compress_size / max(1, info.file_size)
        self._consumed = lambda: int(stream.count * ratio)

    @property
    def file_bytes(self) -> int:
        return min(self.size, self._consumed())

    @property
    def json_bytes(self) -> int:
        return self.stream.count

    def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                closer.close()
            except (OSError, EOFError, zipfile.BadZipFile):
                pass  # closing a truncated stream complains again; the read already said so
        self._closers.clear()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
