"""Importing export files into a real store: every format plain, gzipped and zipped; files that
are not exports or are damaged; cancel, resume and re-import; dedup against live capture."""

from __future__ import annotations

import gc
import gzip
import itertools
import json
import os
import signal
import sqlite3
import threading
import zipfile
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent.heartbeat import normalize
from agent.imports import upload_seconds
from agent.imports.job import ImportJob, Progress
from agent.imports.reader import ReaderFailed, ReaderProcess, Request
from agent.imports.report import upload_time
from agent.store import HISTORY, Store
from tests.exports import FORMATS, T0, UA, UA_ID, exported, heartbeat, write_export

DATA = Path(__file__).parent / "data"


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(tmp_path / "store.db", synchronous="NORMAL") as s:
        s.set_destination("hackatime", "http://127.0.0.1:9/api/hackatime/v1")
        yield s


def run(store: Store, path: Path, **kw: Any) -> Progress:
    return ImportJob(store, path, **kw).run()


def stored(store: Store) -> list[dict[str, Any]]:
    rows = store.reader().execute("SELECT payload FROM heartbeats ORDER BY time").fetchall()
    return [json.loads(r[0]) for r in rows]


def test_hackatime_time_as_history_ids_and_priority(store: Store, tmp_path: Path) -> None:
    path = write_export(tmp_path / "h.json", "hackatime", exported("hackatime", 3))
    result = run(store, path)
    assert (result.state, result.format, result.read, result.imported, result.invalid) == ("done", "hackatime", 3, 3, 0)
    rows = stored(store)
    assert [r["time"] for r in rows] == [T0 + 0.25, T0 + 30.25, T0 + 60.25]  # ISO times back to epoch seconds
    assert {r["machine"] for r in rows} == {"orpheus-pc"} and {r["user_agent"] for r in rows} == {UA}
    assert not any("id" in r or "source_type" in r or "created_at" in r for r in rows)
    queued = store.reader().execute("SELECT DISTINCT priority FROM deliveries").fetchall()
    assert queued == [(HISTORY,)]


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_small(store: Store, tmp_path: Path, fmt: str, gz: bool) -> None:
    path = write_export(tmp_path / "export", fmt, exported(fmt, 25), gz=gz, per_day=10)
    result = run(store, path)
    assert (result.state, result.format, result.read, result.imported) == ("done", fmt, 25, 25)
    assert result.bytes_read == result.bytes_total == path.stat().st_size
    first = stored(store)[0]
    assert first["machine"] == "orpheus-pc"  # machine_name_id, or the export's machine
    if fmt == "wakatime":
        assert first["user_agent"] == UA_ID  # no user-agents list in a file: the id is kept, as the server does
    else:
        assert first["user_agent"] == UA and first["editor"] == "vscode" and first["operating_system"] == "linux"
    assert store.heartbeat_count() == 25


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_large_gzipped(store: Store, tmp_path: Path, fmt: str) -> None:
    n = 30_000
    path = write_export(tmp_path / "export.json.gz", fmt, exported(fmt, n), gz=True)
    seen: list[Progress] = []
    result = run(store, path, on_progress=lambda p: seen.append(Progress(**p.as_dict())), batch=5000)
    assert (result.state, result.read, result.imported, result.duplicates) == ("done", n, n, 0)
    assert store.heartbeat_count() == n
    # Progress came in batches, bytes rising to the file's size.
    assert len(seen) >= n // 5000
    assert [p.read for p in seen[:3]] == [5000, 10000, 15000]
    assert all(a.bytes_read <= b.bytes_read for a, b in itertools.pairwise(seen))
    assert seen[-1].bytes_read == path.stat().st_size
    assert result.upload_heartbeats == n and result.upload_seconds == pytest.approx(upload_seconds(n), abs=0.1)


def test_a_zipped_hackatime_export(store: Store, tmp_path: Path) -> None:
    inner = write_export(tmp_path / "heartbeats.json", "hackatime", exported("hackatime", 40))
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(inner, "hackatime-export/heartbeats.json")
    assert (run(store, path).state, store.heartbeat_count()) == ("done", 40)


def test_upload_estimate_follows_hackatimes_limits() -> None:
    # 10,000 requests of 100 at 97 % of 10,000 an hour, after the bucket's 200: about an hour.
    assert 3600 < upload_seconds(1_000_000) < 3800
    assert upload_seconds(100) == 0.0


def test_an_upload_the_limits_allow_at_once_is_said_as_under_a_minute() -> None:
    # The pacing figure of a small upload is 0 s: "takes about 0 s" read as already done.
    assert upload_time(upload_seconds(500)) == "under a minute"
    assert upload_time(upload_seconds(1_000_000)) == "about 61 min"


# ---- refusals and damage -----------------------------------------------------------------------


def test_the_daily_totals_sample_is_refused_with_the_way_to_a_heartbeats_export(store: Store) -> None:
    result = run(store, DATA / "wakatime-daily-totals-export.json")
    assert result.state == "refused" and result.read == 0
    assert result.problem and "daily-totals" in result.problem and '"Heartbeats"' in result.problem
    assert store.heartbeat_count() == 0


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"entity,time\n/a.py,1727905177\n", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'[{"time": 1727905177}]', "bare JSON list"),
        (b'"just a string"', "single JSON value"),
        (b'{"user": {}, "range": {}}', 'no "heartbeats" list (its keys: user, range)'),
        (b'{"heartbeats": {"time": 1727905177}}', '"heartbeats" is a JSON object'),
        (b'{"days": [{"date": "2024-10-02", "heartbeats": "none"}]}', "is a JSON string"),
        (b'\x00\x00{"heartbeats": []}', "not valid JSON"),  # NUL bytes
    ],
)
def test_files_that_are_not_exports_are_refused(store: Store, tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "file.json"
    path.write_bytes(content)
    result = run(store, path)
    assert result.state == "refused" and result.problem and says in result.problem
    assert store.heartbeat_count() == 0


def test_a_raw_nul_byte_breaks_the_file_where_it_is(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "nul.json"
    good = json.dumps(heartbeat(0)).encode()
    path.write_bytes(b'{"heartbeats": [' + good + b', {"time": 1727905177, "entity": "/a\x00b"}]}')
    result = run(store, path)
    assert result.state == "broken" and "JSON is not valid near byte" in (result.problem or "")
    assert store.heartbeat_count() == 1  # the heartbeat before it


def test_a_missing_file_and_a_folder_are_refused(store: Store, tmp_path: Path) -> None:
    assert "cannot read" in (run(store, tmp_path / "nope.json").problem or "")
    assert "is a folder" in (run(store, tmp_path).problem or "")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_a_truncated_file_keeps_what_was_read_and_the_whole_file_adds_the_rest(
    store: Store, tmp_path: Path, gz: bool
) -> None:
    whole = write_export(tmp_path / "whole", "wakatime", exported("wakatime", 3000), gz=gz)
    data = whole.read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(data[: len(data) * 2 // 3])
    broken = run(store, cut, batch=500)
    assert broken.state == "broken" and 0 < broken.read < 3000
    assert broken.problem and f"of {cut.stat().st_size:,}" in broken.problem if gz else "byte" in (broken.problem or "")
    assert f"the {broken.read:,} heartbeats before it are stored" in (broken.problem or "")
    assert store.heartbeat_count() == broken.imported == broken.read
    rest = run(store, whole)
    assert (rest.state, rest.read, rest.imported, rest.duplicates) == ("done", 3000, 3000 - broken.read, broken.read)
    assert store.heartbeat_count() == 3000


def test_the_break_is_placed_at_its_byte(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    text = json.dumps({"heartbeats": [heartbeat(i) for i in range(5)]})
    path.write_text(text[: text.index('"entity"', 400)])
    result = run(store, path)
    assert result.state == "broken" and f"near byte {path.stat().st_size:,}" in (result.problem or "")


def test_bad_heartbeats_are_counted_with_their_position_and_spare_their_neighbours(
    store: Store, tmp_path: Path
) -> None:
    items: list[Any] = [heartbeat(i) for i in range(20)]
    items[3] = {k: v for k, v in items[3].items() if k != "time"}  # no time
    items[5] = "a string"
    items[7] = {**items[7], "lineno": "twelve"}
    items[9] = {**items[9], "entity": "/a\u0000b.py"}  # an escaped NUL: stripped, as the server does
    items[11] = {**items[11], "time": {"nested": [[[1]]]}}
    path = write_export(tmp_path / "h.json", "hackatime", items)
    result = run(store, path)
    assert (result.state, result.read, result.imported, result.invalid) == ("done", 20, 16, 4)
    assert [e["heartbeat"] for e in result.errors] == [4, 6, 8, 12]
    assert "time is required" in result.errors[0]["error"]
    assert "JSON object" in result.errors[1]["error"] and "lineno" in result.errors[2]["error"]
    assert all(0 < e["near_byte"] <= path.stat().st_size for e in result.errors)
    assert any(r["entity"] == "/ab.py" for r in stored(store))


def test_only_the_first_ten_errors_are_kept(store: Store, tmp_path: Path) -> None:
    path = write_export(tmp_path / "h.json", "hackatime", [{"entity": "/x"}] * 25)
    result = run(store, path)
    assert (result.invalid, len(result.errors)) == (25, 10)


def test_a_50_mb_string_is_one_invalid_heartbeat(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with open(path, "w") as fh:
        fh.write('{"heartbeats":[' + json.dumps(heartbeat(0)) + ',{"time":1727905200,"entity":"')
        fh.write("x" * 50_000_000)
        fh.write('"},' + json.dumps(heartbeat(2)) + "]}")
    result = run(store, path)
    assert (result.state, result.read, result.imported, result.invalid) == ("done", 3, 2, 1)
    assert "entity is longer than" in result.errors[0]["error"]


@pytest.mark.parametrize("where", ["envelope", "heartbeat"])
def test_deep_nesting_is_refused_before_the_parser_sees_it(store: Store, tmp_path: Path, where: str) -> None:
    deep = '{"a": "[[[[", "b": ' + "[" * 100_000 + "]" * 100_000 + "}"  # brackets in a string do not count
    first = ", ".join(json.dumps(heartbeat(i)) for i in range(1000))  # more than one read of the parser
    path = tmp_path / "deep.json"
    if where == "envelope":
        path.write_text('{"export_info": ' + deep + ', "heartbeats": [' + first + "]}")
    else:
        path.write_text('{"heartbeats": [' + first + ", " + deep[:-1] + ', "time": 1727905177}]}')
    result = run(store, path)
    assert result.state == "refused" and "nests more than 64 levels deep" in (result.problem or "")
    if where == "envelope":
        assert store.heartbeat_count() == 0
    else:  # what was whole before the deep part is kept
        assert 0 < store.heartbeat_count() == result.read <= 1000


def test_brackets_and_escapes_inside_strings_are_no_nesting(store: Store, tmp_path: Path) -> None:
    odd = [{**heartbeat(i), "entity": "/app/[id]/[[...slug]]" + "[" * 40 + '\\"{' * 30} for i in range(2000)]
    path = write_export(tmp_path / "h.json", "hackatime", odd)
    result = run(store, path)
    assert (result.state, result.imported) == ("done", 2000)


def test_a_gzip_bomb_is_stopped(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bomb.json.gz"
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(b'{"heartbeats": [' + json.dumps(heartbeat(0)).encode() + b",")
        block = b" " * (1 << 20)
        for _ in range(64):
            fh.write(block)
        fh.write(b"]}")
    result = run(store, path)
    assert result.state == "refused" and "decompression bomb" in (result.problem or "")
    assert store.heartbeat_count() == 1  # the heartbeat before it is whole, and kept


# ---- cancel, resume, re-import, live capture ---------------------------------------------------------


def test_cancel_then_resume_adds_only_the_rest(store: Store, tmp_path: Path) -> None:
    path = write_export(tmp_path / "h.json.gz", "wakatime", exported("wakatime", 5000), gz=True)
    cancel = threading.Event()
    first = run(store, path, cancel=cancel, batch=1000, on_progress=lambda p: p.read >= 2000 and cancel.set())
    assert first.state == "cancelled" and first.read == 2000 == store.heartbeat_count()
    again = run(store, path, batch=1000)
    assert (again.state, again.read, again.imported, again.duplicates) == ("done", 5000, 3000, 2000)
    assert store.heartbeat_count() == 5000
    # Done once: a third run reads the file and adds nothing.
    third = run(store, path)
    assert (third.read, third.imported, third.duplicates) == (5000, 0, 5000)
    assert store.counts("hackatime").pending == 5000  # each queued once


def test_reimporting_the_same_history_from_another_file_adds_nothing(store: Store, tmp_path: Path) -> None:
    plain = write_export(tmp_path / "h.json", "hackatime", exported("hackatime", 300))
    assert run(store, plain).imported == 300
    zipped = write_export(tmp_path / "h.json.gz", "hackatime", exported("hackatime", 300), gz=True)
    again = run(store, zipped)  # another file: no checkpoint, so every heartbeat meets its stored twin
    assert (again.read, again.imported, again.duplicates) == (300, 0, 300)
    assert store.counts("hackatime").pending == 300


def test_twins_inside_one_file_collapse(store: Store, tmp_path: Path) -> None:
    hb = heartbeat(0)
    path = write_export(tmp_path / "h.json", "hackatime", [hb, dict(hb), heartbeat(1)])
    result = run(store, path)
    assert (result.read, result.imported, result.duplicates) == (3, 2, 1)


def test_live_capture_of_an_imported_heartbeat_adds_nothing(store: Store, tmp_path: Path) -> None:
    path = write_export(tmp_path / "h.json", "hackatime", exported("hackatime", 5))
    assert run(store, path).imported == 5
    # The editor sends the same heartbeat again, as wakatime-cli would: no editor/OS fields, its UA.
    live = {**heartbeat(2), "user_agent": UA, "machine": "orpheus-pc"}
    added = store.add([normalize(live, machine="this-box")], "editor")
    assert [a.created for a in added] == [False]
    assert store.heartbeat_count() == 5


def test_import_after_live_capture_adds_nothing(store: Store, tmp_path: Path) -> None:
    live = [normalize({**heartbeat(i), "user_agent": UA, "machine": "orpheus-pc"}, machine="x") for i in range(4)]
    store.add(live, "editor")
    path = write_export(tmp_path / "h.json", "hackatime_v1", exported("hackatime_v1", 4))
    # v1 keeps whole seconds, so these are other heartbeats; Hackatime's export keeps the time.
    assert run(store, path).imported == 4
    path = write_export(tmp_path / "h2.json", "hackatime", exported("hackatime", 6))
    result = run(store, path)
    assert (result.imported, result.duplicates) == (2, 4)
    assert store.counts("hackatime").pending == 4 + 4 + 2


def test_no_upload_keeps_them_local(store: Store, tmp_path: Path) -> None:
    path = write_export(tmp_path / "h.json", "hackatime", exported("hackatime", 10))
    result = run(store, path, upload=False)
    assert (result.imported, result.upload_heartbeats, result.upload_seconds) == (10, 0, None)
    assert store.counts("hackatime").pending == 0


def test_history_kept_local_can_be_uploaded_later_once(store: Store, tmp_path: Path) -> None:
    live = normalize({**heartbeat(0), "user_agent": UA, "machine": "orpheus-pc"}, machine="x")
    store.add([live], "editor")
    path = write_export(tmp_path / "h.json.gz", "hackatime", exported("hackatime", 2500), gz=True)
    result = run(store, path, upload=False, batch=1000)
    assert (result.imported, result.duplicates) == (2499, 1)  # the live one was stored already
    assert store.counts("hackatime").pending == 1 and store.held_count() == 2499
    assert store.upload_held() == 2499
    counts = store.counts("hackatime")
    assert (counts.pending, counts.history, store.held_count()) == (2500, 2499, 0)
    queued = store.reader().execute("SELECT count(DISTINCT heartbeat_id) FROM deliveries").fetchone()[0]
    assert queued == 2500  # the live heartbeat is not queued twice
    assert store.upload_held() == 0 and store.counts("hackatime").pending == 2500


def test_history_kept_local_waits_for_a_server_to_upload_to(tmp_path: Path) -> None:
    with Store(tmp_path / "store.db", synchronous="NORMAL") as store:
        path = write_export(tmp_path / "h.json", "hackatime", exported("hackatime", 30))
        assert run(store, path, upload=False).imported == 30
        assert store.upload_held() == 0 and store.held_count() == 30  # no destination yet: still held
        store.set_destination("hackatime", "http://127.0.0.1:9/api/hackatime/v1")
        assert store.upload_held() == 30 and store.counts("hackatime").pending == 30


def test_a_store_failure_stops_the_import_where_it_was_committed(store: Store, tmp_path: Path) -> None:
    path = write_export(tmp_path / "h.json.gz", "wakatime", exported("wakatime", 5000), gz=True)

    def refuse_writes(p: Progress) -> None:
        # A real SQLite refusal on the writer's own connection once the first batch is in.
        store._conn.execute("PRAGMA query_only = ON")

    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        run(store, path, batch=1000, on_progress=refuse_writes)
    store._conn.execute("PRAGMA query_only = OFF")
    assert store.heartbeat_count() == 1000  # the batch committed before the failure, nothing after it
    again = run(store, path, batch=1000)
    assert (again.state, again.imported, again.duplicates) == ("done", 4000, 1000)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_import_stores_the_rows_the_live_path_stores(store: Store, tmp_path: Path, fmt: str) -> None:
    path = write_export(tmp_path / "h.json", fmt, exported(fmt, 60))
    assert run(store, path, batch=7).imported == 60  # batches of 7: the reader makes some rows, this side the rest
    columns = (
        "time, dedup_key, payload, entity, type, category, project, branch, language, editor, operating_system, "
        "machine, is_write"
    )
    imported = store.reader().execute(f"SELECT {columns} FROM heartbeats ORDER BY time").fetchall()
    raws = json.loads(path.read_text())
    items = raws["heartbeats"] if fmt == "hackatime" else [h for day in raws["days"] for h in day["heartbeats"]]
    with Store(tmp_path / "live.db", synchronous="NORMAL") as live:
        # The live intake's path: normalize, then Store.add (the import's own fields mapped as §7.5 says).
        mapped = [
            {
                **h,
                "machine": h.get("machine", h.get("machine_name_id")),
                "user_agent": h.get("user_agent", h.get("user_agent_id")),
            }
            for h in items
        ]
        live.add([normalize(h, machine="") for h in mapped], "import")
        stored = live.reader().execute(f"SELECT {columns} FROM heartbeats ORDER BY time").fetchall()
    assert imported == stored


# ---- the reading process -------------------------------------------------------------------------


def _children() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


@pytest.mark.parametrize("below", [0, 2, 10**9], ids=["reader-makes-all", "balanced", "store-side-makes-all"])
def test_errors_keep_their_order_whichever_process_made_the_rows(tmp_path: Path, below: int) -> None:
    items: list[Any] = [heartbeat(i) for i in range(60)]
    for i in range(2, 60, 3):
        items[i] = {k: v for k, v in items[i].items() if k != "time"}
    path = write_export(tmp_path / "h.json", "hackatime", items)
    request = Request(str(path), "heartbeats.item", 0, UA, batch=4, hand_over_below=below)
    with ReaderProcess(request) as reader:
        batches = list(reader)
    # Never, always (the last one goes with END, made by the child), or whichever side has time.
    assert reader.handed_over == {0: 0, 10**9: 15}.get(below, reader.handed_over)
    assert [b.read for b in batches] == [*range(4, 61, 4), 60]
    assert sum(len(b.rows) for b in batches) == 40 and sum(b.invalid for b in batches) == 20
    assert [b.rows[0][0] for b in batches if b.rows] == sorted(b.rows[0][0] for b in batches if b.rows)
    errors = [e for b in batches for e in b.errors]
    # The child tells the first ten of the rows it made, this side all of its own: in file order,
    # the first ten told are the file's first ten (the ten the job keeps), whoever made them.
    assert [e[0] for e in errors][:10] == list(range(3, 31, 3))
    assert [e[0] for e in errors] == sorted({e[0] for e in errors})
    assert all(0 < e[1] <= path.stat().st_size for e in errors)
    assert all("time is required" in e[2] for e in errors)
    assert batches[-1].state == "done"
    # It ends by itself, cleanly: its thread reading this side's acks once held stdin's buffer
    # lock as the interpreter shut down, which aborted the child after every import (SIGABRT).
    assert reader.exit_code == 0


def test_the_first_ten_errors_are_kept_with_their_positions(store: Store, tmp_path: Path) -> None:
    items: list[Any] = [heartbeat(i) for i in range(60)]
    for i in range(2, 60, 3):
        items[i] = {k: v for k, v in items[i].items() if k != "time"}
    path = write_export(tmp_path / "h.json", "hackatime", items)
    result = run(store, path, batch=4)
    assert (result.state, result.read, result.imported, result.invalid) == ("done", 60, 40, 20)
    assert [e["heartbeat"] for e in result.errors] == list(range(3, 31, 3))
    assert all(0 < e["near_byte"] <= path.stat().st_size for e in result.errors)


def test_cancel_stops_the_reading_process(store: Store, tmp_path: Path) -> None:
    path = write_export(tmp_path / "h.json.gz", "wakatime", exported("wakatime", 5000), gz=True)
    cancel = threading.Event()
    readers: list[psutil.Process] = []

    def cancel_once_reading(p: Progress) -> None:
        readers.extend(_children())
        cancel.set()

    first = run(store, path, cancel=cancel, batch=500, on_progress=cancel_once_reading)
    assert first.state == "cancelled" and first.read == 500
    assert readers and not any(r.is_running() for r in readers)  # killed and reaped
    assert not _children()


def test_a_store_failure_leaves_no_reading_process(store: Store, tmp_path: Path) -> None:
    path = write_export(tmp_path / "h.json.gz", "wakatime", exported("wakatime", 3000), gz=True)

    def refuse_writes(p: Progress) -> None:
        store._conn.execute("PRAGMA query_only = ON")

    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            run(store, path, batch=500, on_progress=refuse_writes)
    finally:
        store._conn.execute("PRAGMA query_only = OFF")
    assert not _children()


def test_a_reading_process_killed_midway_fails_the_import_and_resume_adds_the_rest(
    store: Store, tmp_path: Path
) -> None:
    path = write_export(tmp_path / "h.json.gz", "wakatime", exported("wakatime", 3000), gz=True)

    def kill_reader(p: Progress) -> None:
        for child in _children():
            os.kill(child.pid, signal.SIGKILL)

    with pytest.raises(ReaderFailed, match="ended without finishing"):
        run(store, path, batch=500, on_progress=kill_reader)
    assert not _children()
    kept = store.heartbeat_count()
    assert kept >= 500
    again = run(store, path, batch=500)
    assert (again.state, again.read, again.imported) == ("done", 3000, 3000 - kept)


def test_a_failure_inside_the_reading_process_crosses_the_pipe(tmp_path: Path) -> None:
    path = write_export(tmp_path / "h.json", "hackatime", exported("hackatime", 3))
    request = Request(str(path), "heartbeats.item", 0, UA, batch=0)  # 0: a division by zero in the child
    with ReaderProcess(request) as reader, pytest.raises(ReaderFailed, match="ZeroDivisionError"):
        list(reader)
    assert not _children()


def test_the_reading_process_runs_two_batches_ahead_of_the_store(tmp_path: Path) -> None:
    # While this side stores a batch, the child hands over the next two: without that, each
    # process waited on the other in turn (about 15 % of the import's time).
    path = write_export(tmp_path / "h.json.gz", "wakatime", exported("wakatime", 3000), gz=True)
    request = Request(str(path), "days.item.heartbeats.item", 0, UA, batch=500)
    with ReaderProcess(request) as reader:
        messages = iter(reader)
        first = next(messages)  # and then "store" it for as long as the child needs
        frames = reader._frames
        with frames._ready:
            assert frames._ready.wait_for(lambda: len(frames._frames) == frames.AHEAD, timeout=60)
        rest = list(messages)
    assert [b.read for b in [first, *rest]] == [500, 1000, 1500, 2000, 2500, 3000, 3000]
    assert not _children()


def test_the_collector_runs_less_often_only_while_an_import_runs(store: Store, tmp_path: Path) -> None:
    path = write_export(tmp_path / "h.json.gz", "wakatime", exported("wakatime", 1000), gz=True)
    before = gc.get_threshold()
    seen: list[tuple[str, int]] = []
    run(store, path, batch=500, on_progress=lambda p: seen.append((p.state, gc.get_threshold()[0])))
    *reading, last = seen
    assert reading and set(reading) == {("reading", 50_000)} and last == ("done", before[0])
    assert gc.get_threshold() == before

    def refuse_writes(p: Progress) -> None:
        store._conn.execute("PRAGMA query_only = ON")

    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            run(
                store,
                write_export(tmp_path / "i.json.gz", "wakatime", exported("wakatime", 1000, start=T0 + 9e6), gz=True),
                batch=500,
                on_progress=refuse_writes,
            )
    finally:
        store._conn.execute("PRAGMA query_only = OFF")
    assert gc.get_threshold() == before
