"""JSON and timestamp text exactly as Rails renders them.

The server's dedup key is an MD5 over Rails' JSON encoding (hackatime-api.md §4.4), so the
byte form matters: compact separators, non-ASCII left raw, and the five characters Rails
escapes for HTML safety (``< > &`` and U+2028/U+2029) written as lower-case ``\\u`` escapes.
Python's float repr is already the shortest round-trip form Ruby prints (``1755864000.25``,
``1755864000.0``) for every value in the heartbeat time window.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

_HTML_SAFE = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_HTML_SAFE_RE = re.compile("[<>&\u2028\u2029]")
# allow_nan=False: Ruby's generator refuses NaN/Infinity, so must we.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False).encode


def dumps(value: Any) -> str:
    """Encode like ``ActiveSupport::JSON.encode`` (these characters only ever occur inside strings)."""
    text = _encode(value)
    # Plain ``in`` scans are much cheaper than a regex search on the hot ingest path.
    if "<" in text or ">" in text or "&" in text or "\u2028" in text or "\u2029" in text:
        text = _HTML_SAFE_RE.sub(lambda m: _HTML_SAFE[m.group()], text)
    return text


def dumpb(value: Any) -> bytes:
    # surrogatepass: a JSON body may carry a lone "\ud800" escape; keep going instead of crashing
    # the request thread (the real server would have rejected it earlier, which tests don't rely on).
    return dumps(value).encode("utf-8", "surrogatepass")


def iso_millis(epoch: float) -> str:
    """Rails' datetime JSON form: UTC, millisecond precision, ``Z`` suffix."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_seconds(epoch: float) -> str:
    """``Time.at(t).strftime("%Y-%m-%dT%H:%M:%SZ")`` as used by the stats endpoint."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_zoned(moment: dt.datetime) -> str:
    """``TimeWithZone#iso8601``: ``Z`` only when the zone *is* UTC, else a ``±HH:MM`` offset."""
    if moment.tzname() in ("UTC", "UCT"):
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat(timespec="seconds")
