"""The normaliser: what is kept, what is rescaled, what is refused — and that it never crashes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import fastjson
from agent.heartbeat import HeartbeatError, encode_payload, normalize, normalize_time, parse_user_agent, user_agent

T = 1755864000.25


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (T, T),
        (int(T * 1000), 1755864000.25),
        (1755864000250000, 1755864000.25),
        (1755864000250000000, 1755864000.25),
        ("1755864000.25", T),
        ("2025-08-22T12:00:00.25Z", T),
        ("2025-08-22T14:00:00.25+02:00", T),
    ],
)
def test_time_is_rescaled_to_seconds(raw: object, expected: float) -> None:
    assert normalize_time(raw) == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("raw", [None, True, "yesterday", "2025-08-22T12:00:00", math.nan, math.inf, 5, 3e19, [], {}])
def test_bad_times_are_refused_with_a_sentence(raw: object) -> None:
    with pytest.raises(HeartbeatError) as info:
        normalize_time(raw)
    assert "time" in str(info.value)


def test_only_permitted_fields_are_kept_and_defaults_filled() -> None:
    hb = normalize(
        {"time": T, "entity": "/p/a.py", "evil": "x", "project": "  p\x00\x07 ", "plugin": "vim/9 vim-wakatime/1"},
        machine="box",
    )
    assert hb.payload == {
        "time": T,
        "entity": "/p/a.py",
        "project": "p",
        "category": "coding",
        "user_agent": "vim/9 vim-wakatime/1",
        "machine": "box",
        "editor": "vim",  # what the server derives from the user agent, and hashes
    }
    assert json.loads(hb.payload_json) == hb.payload
    assert hb.editor == "vim"


def test_browsing_default_and_headers() -> None:
    hb = normalize(
        {"time": T, "entity": "example.com", "type": "domain", "machine": "body"},
        machine="cfg",
        header_user_agent="wakatime/v1 (darwin-21-arm64) go1.22 firefox/1 firefox-wakatime/4",
        header_machine="header",
    )
    assert hb.payload["category"] == "browsing"
    assert hb.payload["machine"] == "header"  # X-Machine-Name wins, as on the server
    assert (hb.editor, hb.operating_system) == ("firefox", "macos")


def test_own_user_agent_is_wakatime_shaped_and_names_this_app() -> None:
    ua = user_agent("hackatime-desktop-watcher")
    assert ua.startswith("wakatime/unset (")
    assert parse_user_agent(ua) == ("hackatime-desktop", "linux")  # what the server shows


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("entity", 5),
        ("lineno", "12"),
        ("lines", 1.5),
        ("is_write", "yes"),
        ("dependencies", "numpy"),
        ("dependencies", [1, 2]),
        ("entity", "x" * 5000),
    ],
)
def test_wrong_types_are_refused(field: str, value: object) -> None:
    with pytest.raises(HeartbeatError) as info:
        normalize({"time": T, field: value}, machine="m")
    assert field in str(info.value)


def test_identical_heartbeats_share_a_dedup_key_and_differ_otherwise() -> None:
    a = normalize({"time": T, "entity": "/a"}, machine="m")
    b = normalize({"entity": "/a", "time": T * 1000}, machine="m")
    c = normalize({"time": T, "entity": "/a", "lineno": 3}, machine="m")
    assert a.dedup_key == b.dedup_key
    assert a.dedup_key != c.dedup_key


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
FIELDS = ["time", "entity", "type", "project", "lineno", "lines", "is_write", "dependencies", "category", "branch"]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=8) | json_values)
def test_normalize_accepts_or_refuses_anything_without_crashing(raw: object) -> None:
    try:
        hb = normalize(raw, machine="m")
    except HeartbeatError as exc:
        assert str(exc)
        return
    # What is accepted is a frozen, re-parseable payload whose time is in Hackatime's window.
    assert json.loads(hb.payload_json) == hb.payload
    assert 1e9 <= hb.payload["time"] < 2e9
    assert set(hb.payload) <= {*FIELDS, "machine", "user_agent", "editor", "operating_system"}


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e9, max_value=2e9, exclude_max=True))
def test_seconds_survive_every_scale(seconds: float) -> None:
    for scale in (1, 1000, 1_000_000):
        assert normalize_time(seconds * scale) == pytest.approx(seconds, rel=1e-12)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _json_values, max_size=8))
def test_the_payload_encoder_writes_what_the_json_module_writes(payload: dict[str, Any]) -> None:
    expected = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode(payload)
    assert encode_payload(payload) == expected


# What normalize can put in a payload: any text (controls, quotes, non-ASCII, lone surrogates),
# 32-bit integers, booleans, lists of text, and a time in Hackatime's window.
_texts = st.text(st.characters(codec=None), max_size=12) | st.sampled_from(
    ["", '"', "\\", "\x00", "\x7f", "\u2028", "é"]
)
_heartbeat_values = st.fixed_dictionaries(
    {"time": st.floats(min_value=1e9, max_value=2e9, exclude_max=True)},
    optional={
        "entity": _texts,
        "project": _texts,
        "branch": _texts,
        "language": _texts,
        "lineno": st.integers(-(2**31), 2**31 - 1),
        "lines": st.integers(-(2**31), 2**31 - 1),
        "is_write": st.booleans(),
        "dependencies": st.lists(_texts, max_size=3),
        "user_agent": _texts,
    },
)


@settings(max_examples=500, deadline=None)
@given(_heartbeat_values)
def test_a_heartbeats_bytes_are_what_the_json_module_writes(raw: dict[str, Any]) -> None:
    """The payload is written by orjson (agent/fastjson.py): byte for byte what the json module
    writes, or the dedup keys of heartbeats stored before would no longer match."""
    fastjson.loads(b"0")  # as the intake's first request does: payloads are written by orjson from then on
    assert fastjson.sorted_writer() is not None
    try:
        hb = normalize(raw, machine="m")
    except HeartbeatError as exc:
        assert "not valid Unicode" in str(exc)  # a lone surrogate: refused as before
        return
    assert hb.payload_json == encode_payload(hb.payload)
    assert json.loads(hb.payload_json) == hb.payload


def test_a_heartbeat_made_before_any_request_leaves_orjson_unloaded() -> None:
    """An agent that only watches folders does without orjson's memory: the watcher's heartbeats
    are written by the json module until the intake has read a request (agent/fastjson.py)."""
    code = (
        "import sys; from agent.heartbeat import normalize; "
        "hb = normalize({'entity': '/p/a.py', 'type': 'file', 'time': 1700000000.5}, machine='m'); "
        "print('orjson' in sys.modules, hb.payload_json)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert out[0] == "False"
    fastjson.loads(b"0")
    same = normalize({"entity": "/p/a.py", "type": "file", "time": 1700000000.5}, machine="m")
    assert out[1].strip() == same.payload_json  # written by orjson now, by the json module there
