"""Workarounds for the Qt binding in use (PySide6 6.12 on Python 3.11), in one place.

1. A reference-count bug (:func:`install`, :func:`contained`).
2. Source caching on import (:func:`lean_imports`, :func:`cache_no_sources`).

Each says when it can go.

**Reference counts.** The PySide6 6.12 wheel in use (abi3, tagged cp310) drops one reference to ``None``
on every call of a C++ method that returns ``void`` (and to ``True`` on every
``Signal.emit``). Python 3.12 made those objects immortal (PEP 683), so the bug
is invisible there; on 3.11 the count reaches zero after a few thousand calls
and the interpreter aborts with "none_dealloc: deallocating None".

:func:`install` first checks whether the running binding has the bug (ten calls
of a void method); only then does it raise the three singletons' counts by 2**40,
which no process lives long enough to use up. It does nothing on Python ≥ 3.12,
on other interpreters, or once PySide6 is fixed. Remove both when the
project requires Python ≥ 3.12 or a PySide6 without the bug.

**Sources.** Once PySide6 is imported, its ``__feature__`` import hook reads the
source of every module imported after it (``inspect.getsource``, to see whether
the module uses ``from __feature__ import ...``), and ``linecache`` keeps every
line read for the life of the process: about 23 MB of resident memory for
matplotlib and numpy, and 3 to 6 MB for the tray's own imports and the dashboard's
(measured with ``bench/bench_tray.py``). Around one import, :func:`lean_imports`
keeps nothing; :func:`cache_no_sources` does the same for the rest of the process
(the tray's ``main`` calls it). Remove both when PySide6 stops reading sources on
import.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import linecache
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec

P = ParamSpec("P")
log = logging.getLogger(__name__)

_HEADROOM = 1 << 40
_installed = False


def binding_drops_references() -> bool:
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(10):
        probe.setObjectName("")
    return sys.getrefcount(None) - before <= -10


def install() -> bool:
    """Apply the guard if needed; returns True when it was applied (now or before)."""
    global _installed
    if _installed:
        return True
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if not binding_drops_references():
        return False
    for obj in (None, True, False):
        # CPython ≤ 3.11: ob_refcnt is the first field of every object.
        ctypes.c_ssize_t.from_address(id(obj)).value += _HEADROOM
    _installed = True
    return True


def contained(method: Callable[P, None]) -> Callable[P, None]:
    """Keep an exception from crossing back into Qt from a virtual override or a slot.

    With the binding above, an exception escaping a Python override of a Qt
    virtual (``showEvent``, ``paintEvent``, ...) leaves a reference count wrong
    and the process crashes later, far from the cause. The error is logged with
    its traceback instead (and the GUI tests fail on any logged error).
    """

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            method(*args, **kwargs)
        except Exception:
            log.exception("%s failed", method.__qualname__)

    return wrapper


class _NoCache(dict[str, Any]):
    """A ``linecache.cache`` that keeps no lines: lookups still read the file.

    Lazy entries (a 1-tuple holding a loader's ``get_source``, no lines) are kept:
    ``linecache`` reads one back right after storing it, for modules whose file is
    not on disk — every module in the PyInstaller bundle.
    """

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, tuple) and len(value) == 1:
            super().__setitem__(key, value)


def cache_no_sources() -> None:
    """From now on keep no source lines in ``linecache``, and drop those kept so far (see the module docs).

    Tracebacks, warnings and ``inspect`` still show source lines: each reads the file again.
    """
    linecache.cache = _NoCache()


@contextlib.contextmanager
def lean_imports() -> Iterator[None]:
    """Import big packages without leaving their sources in ``linecache`` (see the module docs).

    Tracebacks and ``inspect`` still work meanwhile (the file is simply read again);
    the previous cache is put back afterwards, untouched.
    """
    saved = linecache.cache
    linecache.cache = _NoCache()
    try:
        yield
    finally:
        linecache.cache = saved
