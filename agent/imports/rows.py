"""An exported heartbeat straight to the row the store keeps for it, at import speed.

``normalize`` (agent/heartbeat.py) accepts anything a client may send and repairs what the
server repairs. An export's heartbeats are nearly always already clean: times in seconds,
strings of the right type, whole numbers in range. ``row`` takes that common case on a short
path and hands everything else to ``normalize``, so the row, its payload and its dedup key are
exactly what ``normalize`` gives for the same heartbeat (tests/test_import_rows.py holds the
two paths to that): an imported heartbeat and the same one captured live are one row.
"""

from __future__ import annotations

import hashlib
from typing import Any

from agent import fastjson
from agent.heartbeat import (
    INT_FIELDS,
    MAX_DEPENDENCIES,
    MAX_STRING,
    STRING_FIELDS,
    TIME_MAX,
    TIME_MIN,
    Heartbeat,
    key_needs_context,
    normalize,
    parse_user_agent,
)

from .formats import to_heartbeat

# A stored heartbeat as the import writes it: the columns of ``heartbeats`` after ``source``
# and ``received_at``, which are the same for a whole import.
Row = tuple[
    float, bytes, str, str | None, str | None, str | None, str | None, str | None, str | None,
    str | None, str | None, str | None, int | None,
]  # fmt: skip

_TYPES: dict[str, Any] = {
    **{k: str for k in STRING_FIELDS},
    **{k: int for k in INT_FIELDS},
    "is_write": bool,
    "dependencies": list,
}
_INT_MIN, _INT_MAX = -(2**31), 2**31
_NUL = b"\\u0000"  # how the encoder writes a NUL character inside a string
# orjson writes a payload's bytes as agent.heartbeat.encode_payload would, several times faster: making the row
# is the largest cost per imported heartbeat, and the payload's JSON was half of it.
_write = fastjson.load_sorted_writer()


def row_of(hb: Heartbeat) -> Row:
    """The row for a heartbeat ``normalize`` made (the path every unusual heartbeat takes)."""
    p = hb.payload
    is_write = p.get("is_write")
    return (
        hb.time, hb.dedup_key, hb.payload_json, p.get("entity"), p.get("type"), p.get("category"),
        p.get("project"), p.get("branch"), p.get("language"), hb.editor, hb.operating_system,
        p.get("machine"), None if is_write is None else int(is_write),
    )  # fmt: skip


def row(raw: Any, default_user_agent: str) -> Row:
    """The row for one exported heartbeat; raises ``HeartbeatError`` as ``normalize`` does."""
    fast = _usual(raw, default_user_agent) if type(raw) is dict else None
    if fast is not None:
        return fast
    return row_of(normalize(to_heartbeat(raw), machine="", default_user_agent=default_user_agent))


def _usual(raw: dict[str, Any], default_user_agent: str) -> Row | None:
    """The row when ``raw`` needs none of normalize's repairs, else None (normalize decides)."""
    t = raw.get("time")
    if type(t) is int:
        if not TIME_MIN <= t < TIME_MAX:
            return None
        t = float(t)
    elif type(t) is not float or not TIME_MIN <= t < TIME_MAX:
        return None  # ms/µs/ns, a string, a bad value: normalize rescales, parses or refuses
    p: dict[str, Any] = {"time": t}
    types = _TYPES
    for key, value in raw.items():
        kind = types.get(key)
        if kind is None or value is None:
            continue
        if type(value) is not kind:
            return None
        if kind is str:
            if len(value) > MAX_STRING:
                return None  # normalize refuses it, even in a field the user agent then replaces
        elif kind is int:
            if not _INT_MIN <= value < _INT_MAX:
                return None
        elif kind is list:
            if not value:
                continue  # the server hashes an empty list and a missing one alike
            if len(value) > MAX_DEPENDENCIES or not all(type(d) is str for d in value):
                return None
        p[key] = value
    if "machine" not in p:
        machine = raw.get("machine_name_id")
        if type(machine) is str and "machine" not in raw:
            p["machine"] = machine
    project = p.get("project")
    if project is not None:
        if not project.isprintable():
            return None
        p["project"] = project.strip()
    if "category" not in p:
        p["category"] = "browsing" if p.get("type") in ("domain", "url") else "coding"
    plugin = p.pop("plugin", None)
    ua = p.get("user_agent")
    if not ua and "user_agent" not in raw:
        agent = raw.get("user_agent_id")
        if type(agent) is str:
            ua = agent
    ua = ua or plugin or default_user_agent
    if ua:
        p["user_agent"] = ua
    editor, os_name = parse_user_agent(ua)
    body_editor = p.pop("editor", None)
    body_os = p.pop("operating_system", None)
    editor = editor or (body_editor if body_editor and not body_editor.isspace() else None)
    os_name = os_name or (body_os if body_os and not body_os.isspace() else None)
    if editor:
        p["editor"] = editor
    if os_name:
        p["operating_system"] = os_name
    if key_needs_context(p):
        return None  # a key with the server's inferred language or a placeholder: normalize's rules
    try:
        encoded = _write(p)
    except TypeError:
        return None  # a lone surrogate: normalize says which field
    # A payload this short holds no string over MAX_STRING; a NUL needs stripping first.
    if len(encoded) > MAX_STRING or _NUL in encoded:
        return None
    payload_json = encoded.decode("utf-8")
    is_write = p.get("is_write")
    return (
        t, hashlib.md5(encoded, usedforsecurity=False).digest(), payload_json, p.get("entity"), p.get("type"),
        p["category"], p.get("project"), p.get("branch"), p.get("language"), editor, os_name, p.get("machine"),
        None if is_write is None else int(is_write),
    )  # fmt: skip
