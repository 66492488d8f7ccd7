"""Workarounds for the Qt binding in use, in one place: source caching on import
(:func:`lean_imports`, :func:`cache_no_sources`), and :func:`contained` for overrides.

**Reference counts.** PySide6 6.12's abi3 wheel drops a reference to ``None`` on every call
of a C++ method returning ``void`` (and to ``True`` / ``False`` on every ``Signal.emit``);
on Python 3.11, where those objects are not immortal (PEP 683 came with 3.12), the
interpreter aborts after a few thousand calls. pyproject.toml pins the binding to 6.11.3,
the last release without the bug, on Python < 3.12, and
``tests/gui/test_binding.py`` makes 100,000 calls of each kind and checks the counts, so
an upgrade that brings the bug back fails CI instead of aborting a user's tray.

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
import functools
import linecache
import logging
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec

P = ParamSpec("P")
log = logging.getLogger(__name__)


def contained(method: Callable[P, None]) -> Callable[P, None]:
    """Keep an exception from crossing back into Qt from a virtual override or a slot.

    An exception escaping a Python override of a Qt virtual (``showEvent``,
    ``paintEvent``, ...) or a slot is printed by the binding and otherwise lost, and
    with some PySide6 releases leaves a reference count wrong, so the process
    crashes later, far from the cause. The error is logged with its traceback
    instead (and the GUI tests fail on any logged error).
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
