"""The import's short path gives exactly the row ``normalize`` gives: the same payload bytes,
dedup key and columns, for clean heartbeats and for every odd one it hands back to normalize."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agent.heartbeat import HeartbeatError, normalize
from agent.imports.formats import to_heartbeat
from agent.imports.rows import _usual, row, row_of
from tests.exports import UA, UA_ID, as_exported, heartbeat

T = 1755864000.25
DEFAULT_UA = "wakatime/unset (linux-6-x86_64) python/3.11 hackatime-desktop/0 hackatime-desktop-wakatime/0"

_text = st.sampled_from(
    ["", " ", "main", " p\t", "a\x00b", "x" * 5000, "caf\u00e9 <&>", "\ud800", "\x07bell", "Python"]
)
_value = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**33), 2**33), st.sampled_from([0, 1, 5.0, 2.5, float("nan")]), _text,
    st.lists(_text, max_size=3), st.lists(st.integers(), max_size=2), st.dictionaries(st.just("k"), _text, max_size=1),
)  # fmt: skip
_keys = st.sampled_from(
    [
        "entity", "type", "category", "project", "branch", "language", "editor", "operating_system", "machine",
        "user_agent", "plugin", "lineno", "cursorpos", "lines", "line_additions", "is_write", "dependencies",
        "machine_name_id", "user_agent_id", "id", "created_at", "ai_model", "ai_input_tokens",
    ]
)  # fmt: skip
_times = st.sampled_from([T, int(T), T * 1000, "2025-08-22T12:00:00Z", None, True, "x", float("inf"), 10**400])
raw_heartbeats = st.builds(
    lambda fields, t: {**fields, "time": t} if t is not None else fields,
    st.dictionaries(_keys, _value, max_size=12),
    _times,
)


def normalized(raw: dict[str, Any]) -> Any:
    try:
        return row_of(normalize(to_heartbeat(dict(raw)), machine="", default_user_agent=DEFAULT_UA))
    except HeartbeatError as exc:
        return ("error", str(exc))


def short(raw: dict[str, Any]) -> Any:
    try:
        return row(dict(raw), DEFAULT_UA)
    except HeartbeatError as exc:
        return ("error", str(exc))


@settings(max_examples=1500, deadline=None)
@given(raw_heartbeats)
@example({"editor": "x" * 4097, "time": T + 0.25})  # over-long, though the user agent's editor replaces it
def test_the_short_path_gives_what_normalize_gives(raw: dict[str, Any]) -> None:
    assert short(raw) == normalized(raw)


@pytest.mark.parametrize("fmt", ["wakatime", "hackatime_v1", "hackatime"])
def test_exported_heartbeats_of_each_format(fmt: str) -> None:
    for i in range(40):
        raw = as_exported(fmt, heartbeat(i), i)
        assert short(raw) == normalized(raw)


def test_a_clean_heartbeat_takes_the_short_path_and_a_live_twin_shares_its_key() -> None:
    raw = as_exported("wakatime", heartbeat(3), 3)
    got = row(dict(raw), DEFAULT_UA)
    assert _usual(dict(raw), DEFAULT_UA) == got  # not handed to normalize
    live = normalize(
        {k: v for k, v in heartbeat(3).items()} | {"machine": "orpheus-pc", "user_agent": UA_ID}, machine="other"
    )
    assert got == row_of(live)
    v1 = as_exported("hackatime_v1", heartbeat(3), 3)
    assert v1["user_agent_id"] == UA and _usual(v1, DEFAULT_UA) is not None
    assert row(v1, DEFAULT_UA)[9:11] == ("vscode", "linux")  # editor and OS from the dump's user agent
