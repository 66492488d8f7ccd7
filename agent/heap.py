"""Keeping the C heap from holding freed memory, for the agent and the app alike.

After a big transient allocation — walking 20,000 folders, closing a window full of
charts — glibc's malloc keeps the freed pages for reuse, fragmented, and resident
memory keeps counting them; ``malloc_trim`` returns them. A long stream of large buffers
(the batches an import stores) is the other case: see ``fixed_mmap_threshold``.
Elsewhere (macOS, Windows, musl) there is nothing to call and nothing to do.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

__all__ = ["fixed_mmap_threshold", "trim"]

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value


def _find(name: str, *argtypes: type) -> Callable[..., int] | None:
    """A glibc malloc function, from the C library the interpreter itself uses."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None  # not glibc
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return function


_malloc_trim = _find("malloc_trim", ctypes.c_size_t)
_mallopt = _find("mallopt", ctypes.c_int, ctypes.c_int)


def trim() -> bool:
    """Return the C heap's free pages to the system; True when some were returned."""
    return bool(_malloc_trim(0)) if _malloc_trim is not None else False


def fixed_mmap_threshold() -> bool:
    """Serve every block of 128 KiB or more by its own mapping, given back when freed, for the
    rest of the process's life; True where that was set (glibc).

    glibc starts there, but raises the threshold to the size of each mapped block freed, so
    after the first few an import's batches come from the heap, which fragments between them
    and grows with the file: the storing process peaked at 62 MB after 200,000 heartbeats,
    67-70 after a million and 75 after three million; with the threshold fixed, at 59, 61
    and 61."""
    return bool(_mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) if _mallopt is not None else False
