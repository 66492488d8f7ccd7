"""orjson for the hot paths: request bodies read, heartbeat payloads written (intake and import).

It reads and writes JSON several times faster than the json module, which was a fifth of the
agent's CPU per heartbeat. What it is given here it writes byte for byte as the json module
does (compact, keys sorted, non-ASCII kept raw; tests/test_heartbeat.py checks), and what it
refuses to read or write, its callers hand to the json module. It is loaded by the intake's first
request, not at start, and payloads are written by it only from then on: an agent that only
watches folders does without its 0.4 MiB (the watcher's few heartbeats a minute gain nothing from it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import Any


def loads(data: bytes) -> Any:
    """A JSON document; ValueError for what orjson does not read (the json module may)."""
    return _orjson().loads(data)


def sorted_writer() -> Callable[[Any], bytes] | None:
    """orjson's compact UTF-8 writer with sorted keys once :func:`loads` has loaded orjson, else
    None (the caller writes with the json module, the same bytes). It raises TypeError for what
    orjson does not write (a lone surrogate, an integer beyond 64 bits); NaN and infinities it
    writes as null: never give it those."""
    return _writer


def load_sorted_writer() -> Callable[[Any], bytes]:
    """The same writer, orjson loaded now if it was not yet: for an import, which writes a
    payload for each of up to millions of heartbeats."""
    _orjson()
    assert _writer is not None  # set by _orjson
    return _writer


_writer: Callable[[Any], bytes] | None = None


@functools.cache
def _orjson() -> ModuleType:
    global _writer
    import orjson

    _writer = functools.partial(orjson.dumps, option=orjson.OPT_SORT_KEYS)
    return orjson
