"""Handing freed C heap back to the system, for the agent and the app alike.

After a big transient allocation — walking 20,000 folders, closing a window full of
charts — glibc's malloc keeps the freed pages for reuse, fragmented, and resident
memory keeps counting them; ``malloc_trim`` returns them. Elsewhere (macOS, Windows,
musl) there is nothing to call and nothing to do.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

__all__ = ["trim"]


def _find_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim  # the C library the interpreter itself uses
    except (OSError, AttributeError):
        return None  # not glibc
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    return malloc_trim


_malloc_trim = _find_malloc_trim()


def trim() -> bool:
    """Return the C heap's free pages to the system; True when some were returned."""
    return bool(_malloc_trim(0)) if _malloc_trim is not None else False
