"""The import's runs (orjson parsing whole heartbeats at once) give exactly the heartbeats ijson
gives, for every layout and way of writing an export; what they do not read, they leave to ijson,
and the reading process then gives ijson's heartbeats from the same one on."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import ijson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.imports import runs as runs_module
from agent.imports.reader import Heartbeats, Request, messages
from agent.imports.runs import Unexpected, runs
from tests.exports import FORMATS, UA, exported, heartbeat, write_export

DAYS, FLAT = "days.item.heartbeats.item", "heartbeats.item"


def by_ijson(data: bytes, prefix: str) -> list[Any]:
    return list(ijson.items(io.BytesIO(data), prefix, use_float=True))


def by_runs(data: bytes, prefix: str) -> list[Any]:
    return [h for items, _ in runs(io.BytesIO(data), prefix) for h in items]


def prefix_of(fmt: str) -> str:
    return FLAT if fmt == "hackatime" else DAYS


LAYOUTS = {
    "minified": {"separators": (",", ":")},
    "spaced": {},
    "indented": {"indent": 2},
    "wide": {"indent": "\t\t", "separators": (" ,\n", " :  ")},
}


@pytest.fixture(params=[runs_module.READ, 997], ids=["windows", "small-windows"])
def window(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    # Small windows cut runs everywhere: mid-heartbeat, mid-string, between a day's lists.
    monkeypatch.setattr(runs_module, "READ", request.param)
    return int(request.param)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_and_layout_gives_ijsons_heartbeats(tmp_path: Path, fmt: str, layout: str, window: int) -> None:
    written = write_export(tmp_path / "h.json", fmt, exported(fmt, 700), per_day=37).read_bytes()
    data = json.dumps(json.loads(written), **LAYOUTS[layout]).encode()  # type: ignore[arg-type]
    expected = by_ijson(data, prefix_of(fmt))
    assert len(expected) == 700
    assert by_runs(data, prefix_of(fmt)) == expected


def test_a_run_ends_where_its_list_ends_and_says_where(tmp_path: Path) -> None:
    data = write_export(tmp_path / "h.json", "wakatime", exported("wakatime", 120), per_day=50).read_bytes()
    found = list(runs(io.BytesIO(data), DAYS))
    assert [len(items) for items, _ in found] == [50, 50, 20]  # one run a day: a window holds all three
    for items, end in found:  # each run ends at its last heartbeat's closing brace
        assert data[end - 1 : end] == b"}" and data[end : end + 1] == b"]"
        assert json.loads(b"[" + data[end - len(json.dumps(items[-1]).encode()) : end] + b"]") == [items[-1]]


_strings = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["}", "}]", "},{", '"}', "\\", "[{", "]}", '\\"}]'],
)
# ijson's parser overflows at -2**63 itself, and JSON has no infinities.
_numbers = st.integers(-(2**62), 2**62) | st.floats(allow_nan=False, allow_infinity=False)
_scalars = st.none() | st.booleans() | _numbers | _strings
_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_strings, inner, max_size=3), max_leaves=8
)
_heartbeats = st.lists(st.dictionaries(_strings, _values, max_size=6) | _values, max_size=12)


@settings(max_examples=400, deadline=None)
@given(
    days=st.lists(_heartbeats, max_size=4),
    envelope=st.dictionaries(st.sampled_from(["user", "range", "x"]), _values, max_size=3),
    layout=st.sampled_from(sorted(LAYOUTS)),
    read=st.integers(1, 300),
)
def test_any_valid_export_gives_ijsons_heartbeats(
    days: list[list[Any]], envelope: dict[str, Any], layout: str, read: int
) -> None:
    # Strings full of braces and brackets, nested values, heartbeats that are not objects,
    # windows smaller than a heartbeat: the cut is only ever where ijson ends a heartbeat.
    document = {**envelope, "days": [{"date": "d", "heartbeats": hbs, "n": len(hbs)} for hbs in days]}
    data = json.dumps(document, **LAYOUTS[layout]).encode()  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runs_module, "READ", read)
        assert by_runs(data, DAYS) == by_ijson(data, DAYS)


@pytest.mark.parametrize(
    "data",
    [
        b'{"heartbeats": [{"a": 1}, ]}',  # a trailing comma
        b'{"heartbeats": [{"a": 1}] x',  # content after the export
        b'{"heartbeats": [{"a": "\\ud800"}]}',  # a lone surrogate: ijson keeps it, orjson refuses it
        b'{"heartbeats": {"item": {"a": 1}}}',  # ijson's prefix also names an object's "item" key
        b'{"days": [null, {"heartbeats": [{"a": 1}]}]}',  # a day that is not an object
        b'{"heartbeats": [{"a": 1}, {"b": 2',  # the file breaks off
        b'{"heartbeats": [1e400]}',  # a number orjson and ijson both refuse
        b'{"heartbeats": [{"a": 1}]} ]',
        b'{"heartbeats": [{"a": 1}], "more": ',  # the file ends inside the export
        b'{"heartbeats": [{"a": 1}], 7: 1}',  # a key that is not a string
        b'{"user": tru, "heartbeats": [{"a": 1}]}',  # an envelope value that is not JSON
        b'{"user": "orph',  # one that breaks off
        b'{"days": [{"heartbeats": [{"a": 1}]}], "user": {"a": [}}',
    ],
)
def test_what_runs_do_not_read_is_left_to_ijson(data: bytes) -> None:
    prefix = DAYS if data.startswith(b'{"days"') else FLAT
    with pytest.raises(Unexpected):
        by_runs(data, prefix)


def test_a_compressed_stream_that_breaks_is_left_to_ijson(tmp_path: Path) -> None:
    data = gzip.compress(write_export(tmp_path / "h.json", "hackatime", exported("hackatime", 3000)).read_bytes())
    with gzip.GzipFile(fileobj=io.BytesIO(data[: len(data) // 2])) as cut, pytest.raises(Unexpected, match="breaks"):
        for _ in runs(cut, FLAT):
            pass


def test_ints_past_64_bits_are_the_one_value_read_differently() -> None:
    # ijson calls the whole file broken at such a number; orjson reads it as a float, and the
    # heartbeat is then refused on its own (a line number must be an integer) while its
    # neighbours are imported.
    data = b'{"heartbeats": [{"lineno": 123456789012345678901234567890}, {"lineno": 2}]}'
    assert by_runs(data, FLAT) == [{"lineno": 1.2345678901234568e29}, {"lineno": 2}]
    with pytest.raises(ijson.JSONError):
        by_ijson(data, FLAT)


def _request(path: Path, prefix: str) -> Request:
    return Request(str(path), prefix, 0, UA, batch=100)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_the_reading_process_takes_over_with_ijson_from_the_same_heartbeat(tmp_path: Path, gz: bool) -> None:
    # A lone surrogate in heartbeat 1500: orjson's runs stop before it, ijson reads the file
    # again from its start and goes on from there. Every heartbeat once, in order.
    items: list[Any] = [heartbeat(i) for i in range(3000)]
    items[1500]["branch"] = "\ud800"
    path = tmp_path / ("h.json.gz" if gz else "h.json")
    with (gzip.open if gz else open)(path, "wb") as fh:  # type: ignore[operator]
        fh.write(json.dumps({"heartbeats": items}).encode("utf-8", "surrogatepass"))
    read = Heartbeats(_request(path, FLAT))
    try:
        got = [(h, place) for hbs, place in read for h in hbs]
    finally:
        read.close()
    assert read.fell_back == "no whole heartbeat in a window"  # the one with the surrogate
    raw = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
    assert [h for h, _ in got] == by_ijson(raw, FLAT)
    assert [h["time"] for h, _ in got] == [heartbeat(i)["time"] for i in range(3000)]
    places = [place for _, place in got]
    assert places == sorted(places) and places[0] > 0 and places[-1] <= len(raw)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("layout", ["minified", "indented"])
def test_exports_as_written_are_read_without_ijson(tmp_path: Path, fmt: str, layout: str) -> None:
    written = write_export(tmp_path / "h.json", fmt, exported(fmt, 2000), per_day=300).read_bytes()
    path = tmp_path / "h2.json.gz"
    path.write_bytes(gzip.compress(json.dumps(json.loads(written), **LAYOUTS[layout]).encode()))  # type: ignore[arg-type]
    read = Heartbeats(_request(path, prefix_of(fmt)))
    try:
        assert sum(len(hbs) for hbs, _ in read) == 2000
    finally:
        read.close()
    assert read.fell_back is None


@pytest.mark.parametrize("hand_over", [False, True], ids=["rows-made-here", "handed-over"])
def test_batches_cut_runs_at_exact_counts_and_skip_what_was_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hand_over: bool
) -> None:
    # Runs of a few dozen heartbeats (small windows) against batches of 500, resumed at 1,234:
    # every batch ends at a multiple of 500 of the file's heartbeats, and holds exactly those
    # after the 1,234th, whichever side makes their rows.
    monkeypatch.setattr(runs_module, "READ", 9000)
    path = write_export(tmp_path / "h.json", "wakatime", exported("wakatime", 3100), per_day=70)
    request = Request(str(path), DAYS, 1234, UA, batch=500)
    sent = list(messages(request, lambda: hand_over))
    assert [m[0] for m in sent] == ["batch"] * 6 + ["end"]
    assert [m[1] for m in sent] == [500, 1000, 1500, 2000, 2500, 3000, 3100]
    times: list[float] = []
    for kind, _, _, rows, invalid, errors, text, places, *_ in sent:
        assert invalid == 0 and errors == []
        if text:
            assert kind == "batch" and rows == []
            handed = json.loads(text)
            assert len(places) == len(handed) and places == sorted(places)
            times += [h["time"] for h in handed]
        else:
            times += [r[0] for r in rows]
    assert times == [heartbeat(i)["time"] for i in range(1234, 3100)]
    assert all(bool(m[6]) == hand_over for m in sent[2:-1])  # the first two were all skipped: nothing to hand
