"""File content: reading a saved file safely, the last-seen content kept for diffs,
and the line additions / deletions between two versions.
"""

from __future__ import annotations

import difflib
import errno
import os
import stat
from collections import Counter, OrderedDict

__all__ = [
    "CACHE_BYTES",
    "CONTENT_LIMIT",
    "DIFF_LIMIT",
    "SNIFF_BYTES",
    "ContentCache",
    "count_lines",
    "line_changes",
    "read_file",
]

CONTENT_LIMIT = 1024 * 1024  # files up to this size are read: text check, line count, language tie break
DIFF_LIMIT = 256 * 1024  # files up to this size keep their last content for line additions / deletions
CACHE_BYTES = 4 * 1024 * 1024  # total last-seen content kept for diffs (least recently saved dropped)
SNIFF_BYTES = 8192  # a NUL byte in the first 8 KiB makes a file binary
_DIFF_CELLS = 4_000_000  # above this, count changed lines as a multiset difference (linear time)


def read_file(path: str) -> tuple[int, bytes, bool] | str:
    """(size, content or its head, whole) — or the reason the file is not a text file we can read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return "gone"
    except OSError as exc:
        # ELOOP: a symlink (its target's own events are the ones that count);
        # EACCES / ENXIO (a socket) / anything else: not a file we can read.
        return "symlink" if exc.errno == errno.ELOOP else "unreadable"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "not_a_file"
        want = CONTENT_LIMIT + 1  # one byte more tells a file that grew past the limit
        chunks: list[bytes] = []
        got = 0
        while got < want:
            chunk = os.read(fd, min(1 << 20, want - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        data = b"".join(chunks)
        whole = len(data) <= CONTENT_LIMIT
        return max(st.st_size, len(data)), data[:CONTENT_LIMIT], whole
    except OSError:
        return "unreadable"
    finally:
        os.close(fd)


class ContentCache:
    """Last seen content of recently saved small files, bounded by total size."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, path: str) -> bytes | None:
        return self._items.get(path)

    def put(self, path: str, data: bytes) -> None:
        self.discard(path)
        if len(data) > self._budget:
            return
        self._items[path] = data
        self._size += len(data)
        while self._size > self._budget:
            _, old = self._items.popitem(last=False)
            self._size -= len(old)

    def discard(self, path: str) -> None:
        old = self._items.pop(path, None)
        if old is not None:
            self._size -= len(old)

    def discard_tree(self, folder: str) -> None:
        prefix = folder.rstrip(os.sep) + os.sep
        for path in [p for p in self._items if p.startswith(prefix)]:
            self.discard(path)

    def rename(self, src: str, dest: str) -> None:
        data = self._items.get(src)
        if data is None:
            # An atomic save (temp -> file): what we knew of the file stays its diff baseline.
            return
        self.discard(src)
        self.put(dest, data)

    def __len__(self) -> int:
        return len(self._items)


def line_changes(old: bytes, new: bytes) -> tuple[int, int]:
    """(lines added, lines deleted) going from ``old`` to ``new``, as a line diff counts them."""
    a = old.splitlines()
    b = new.splitlines()
    start = 0
    limit = min(len(a), len(b))
    while start < limit and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    mid_a, mid_b = a[start:end_a], b[start:end_b]
    if not mid_a or not mid_b:
        return len(mid_b), len(mid_a)
    if len(mid_a) * len(mid_b) > _DIFF_CELLS:
        # A rewrite of a large file: count as a multiset difference, which ignores moved lines.
        ca, cb = Counter(mid_a), Counter(mid_b)
        return sum((cb - ca).values()), sum((ca - cb).values())
    added = deleted = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=False).get_opcodes():
        if tag != "equal":
            deleted += i2 - i1
            added += j2 - j1
    return added, deleted


def count_lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
