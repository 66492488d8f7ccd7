"""Importing as a person does: the ``import`` command in a real process, with and without a
running agent, and the upload of the imported history to the stand-in behind live heartbeats."""

from __future__ import annotations

import json
import marshal
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from agent import contract as C
from agent.daemon import Agent
from agent.delivery.hackatime import HackatimeClient
from agent.delivery.outbox import Outbox, Outcome
from agent.delivery.pacing import Backoff
from agent.heartbeat import normalize
from agent.imports import IMPORT_READER_ARG
from agent.imports.job import ImportJob
from agent.store.store import Store
from tests.conftest import API_KEY
from tests.exports import UA, exported, heartbeat, write_export
from tests.standin import Fault, HackatimeStandin
from tests.test_cli import cli

DATA = Path(__file__).parent / "data"


def test_import_without_an_agent_prints_one_json_object(tmp_path: Path, _isolated_home: Path) -> None:
    path = write_export(tmp_path / "w.json.gz", "wakatime", exported("wakatime", 1200), gz=True)
    done = cli(_isolated_home, "--data-dir", str(tmp_path / "data"), "import", str(path), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert {k: summary[k] for k in ("format", "read", "imported", "duplicates", "invalid", "errors")} == {
        "format": "wakatime",
        "read": 1200,
        "imported": 1200,
        "duplicates": 0,
        "invalid": 0,
        "errors": [],
    }
    assert summary["seconds"] > 0 and summary["upload_heartbeats"] == 1200
    # In the local stats at once, and queued for upload.
    stats = json.loads(
        cli(_isolated_home, "--data-dir", str(tmp_path / "data"), "stats", "--range", "all", "--json").stdout
    )
    assert stats["total_seconds"] > 0
    status = json.loads(cli(_isolated_home, "--data-dir", str(tmp_path / "data"), "status", "--json").stdout)
    assert status["history_upload"]["pending"] == 1200 and status["history_upload"]["seconds"] >= 0
    again = cli(_isolated_home, "--data-dir", str(tmp_path / "data"), "import", str(path))
    assert again.returncode == 0 and "0 new heartbeats" in again.stdout and "1,200 already stored" in again.stdout


def test_refusals_and_breaks_exit_non_zero_with_one_line(tmp_path: Path, _isolated_home: Path) -> None:
    data = str(tmp_path / "data")
    daily = cli(_isolated_home, "--data-dir", data, "import", str(DATA / "wakatime-daily-totals-export.json"))
    assert daily.returncode == 1 and daily.stdout == ""
    assert daily.stderr.count("\n") == 1 and "daily-totals export" in daily.stderr and "Heartbeats" in daily.stderr
    whole = write_export(tmp_path / "h.json", "hackatime", exported("hackatime", 50)).read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(whole[: len(whole) // 2])
    broken = cli(_isolated_home, "--data-dir", data, "import", str(cut), "--json")
    assert broken.returncode == 1 and broken.stderr.count("\n") == 1
    assert f"near byte {len(whole) // 2:,}" in broken.stderr and "cut.json" in broken.stderr
    assert json.loads(broken.stdout)["state"] == "broken"
    local = cli(_isolated_home, "--data-dir", data, "import", str(tmp_path / "h.json"), "--no-upload")
    assert local.returncode == 0 and "kept local" in local.stdout


def test_import_through_the_running_agent_uploads_exactly_once_after_live_heartbeats(
    tmp_path: Path, _isolated_home: Path, make_config: Callable[..., Any], standin: HackatimeStandin
) -> None:
    path = write_export(tmp_path / "h.json", "hackatime", exported("hackatime", 450))
    with Agent(make_config(data_dir=tmp_path / "data", api_url=standin.api_url)) as running:
        done = cli(_isolated_home, "--data-dir", str(tmp_path / "data"), "import", str(path), "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["imported"] == 450
        assert standin.wait_for(lambda s: s.count() == 450, timeout=60)
        status = running.status()
        run = status.get("import_run")
        assert run is not None and (run["state"], run["imported"]) == ("done", 450)
        # Importing it again through the agent: nothing new, nothing sent twice.
        again = cli(_isolated_home, "--data-dir", str(tmp_path / "data"), "import", str(path), "--json")
        assert json.loads(again.stdout)["imported"] == 0
        assert running.store.counts("hackatime").pending == 0
    assert standin.count() == 450 and len({r["time"] for r in standin.heartbeats()}) == 450


def test_control_api_refuses_a_second_import_and_bad_bodies(
    tmp_path: Path, make_config: Callable[..., Any], standin: HackatimeStandin
) -> None:
    path = write_export(tmp_path / "h.json.gz", "wakatime", exported("wakatime", 20_000), gz=True)
    with Agent(make_config(data_dir=tmp_path / "data", api_url=standin.api_url)) as running:
        auth = {"Authorization": f"Bearer {running.token}"}
        url = running.control_url
        with httpx.Client(base_url=url, headers=auth, timeout=30) as http:
            assert http.get(C.IMPORT.url()).json() == {"run": None}
            assert http.post(C.IMPORT_START.url(), json={"path": ""}).status_code == 400
            assert http.post(C.IMPORT_START.url(), json={"path": str(path), "upload": "yes"}).status_code == 400
            first = http.post(C.IMPORT_START.url(), json={"path": str(path), "upload": False})
            assert first.status_code == 200 and first.json()["run"]["path"] == str(path)
            second = http.post(C.IMPORT_START.url(), json={"path": str(path)})
            run = http.get(C.IMPORT.url()).json()["run"]
            if run["state"] == "reading":  # the first was still running: one at a time
                assert second.status_code == 409 and "still running" in second.json()["error"]
            cancelled = http.post(C.IMPORT_CANCEL.url()).json()["run"]
            assert cancelled["path"] == str(path)
            # Wait for the run to end through the change feed, as the tray does.
            seq = -1
            while http.get(C.IMPORT.url()).json()["run"]["state"] == "reading":
                seq = http.get(C.EVENTS.url(), params={"after": seq, "timeout": 10}).json()["seq"]
            final = http.get(C.IMPORT.url()).json()["run"]
            assert final["state"] in ("cancelled", "done")
            assert http.post(C.IMPORT_START.url(), json={"path": str(tmp_path / "nope.json")}).status_code == 200


def test_upload_through_faults_and_429s_arrives_exactly_once_live_first(
    tmp_path: Path, standin: HackatimeStandin
) -> None:
    now = [1755950000.0]
    with Store(tmp_path / "store.db") as store:
        store.set_destination("hackatime", standin.api_url)
        path = write_export(tmp_path / "h.json.gz", "hackatime", exported("hackatime", 730), gz=True)
        assert ImportJob(store, path).run().imported == 730
        live = normalize({**heartbeat(10_000, start=now[0] - 60), "user_agent": UA}, machine="box")
        store.add([live], "editor")
        for fault in (Fault.RATE_LIMITED_429, Fault.LOST_AFTER_STORE, Fault.SERVER_ERROR_500, Fault.RATE_LIMITED_429):
            standin.inject(fault, retry_after=3)
        standin.inject(Fault.SHORT_RESPONSES_201, drop=30)
        client = HackatimeClient(standin.api_url, API_KEY, timeout=5)
        outbox = Outbox(store, client, batch_size=100, clock=lambda: now[0], backoff=Backoff(base=1, cap=4))
        try:
            for _ in range(200):
                result = outbox.deliver_once(ignore_backoff=True)
                if result.outcome is Outcome.IDLE:
                    break
                now[0] += result.wait
        finally:
            client.close()
        assert store.counts("hackatime").pending == 0
    assert standin.pending_faults() == 0  # every fault was met
    rows = standin.heartbeats()
    assert len(rows) == 731 and len({(r["time"], r["entity"]) for r in rows}) == 731
    # The live heartbeat went in the first request, ahead of 730 older imported ones.
    assert live.time in [r["time"] for r in rows[:100]]


def test_history_kept_local_is_uploaded_later_exactly_once(
    tmp_path: Path, _isolated_home: Path, make_config: Callable[..., Any], standin: HackatimeStandin
) -> None:
    data = str(tmp_path / "data")
    path = write_export(tmp_path / "h.json", "hackatime", exported("hackatime", 120))
    usage = cli(_isolated_home, "--data-dir", data, "import")
    assert usage.returncode == 2 and "--upload-held" in usage.stderr
    both = cli(_isolated_home, "--data-dir", data, "import", str(path), "--upload-held")
    assert both.returncode == 2
    # Without an agent: kept local, then queued by the command itself.
    local = cli(_isolated_home, "--data-dir", data, "import", str(path), "--no-upload")
    assert local.returncode == 0 and "--upload-held" in local.stdout
    status = json.loads(cli(_isolated_home, "--data-dir", data, "status", "--json").stdout)
    assert status["history_held"] == 120 and status["history_upload"] is None
    held = cli(_isolated_home, "--data-dir", data, "import", "--upload-held", "--json")
    assert held.returncode == 0, held.stderr
    assert json.loads(held.stdout)["queued"] == 120
    # With the agent running: the command asks it, and the history arrives once.
    with Agent(make_config(data_dir=tmp_path / "data", api_url=standin.api_url)) as running:
        assert standin.wait_for(lambda s: s.count() == 120, timeout=60)
        again = cli(_isolated_home, "--data-dir", data, "import", "--upload-held")
        assert again.returncode == 0 and "nothing to upload" in again.stdout
        assert running.status()["history_held"] == 0 and running.store.counts("hackatime").pending == 0
    assert standin.count() == 120


def test_the_agents_own_command_line_is_the_reading_process_a_frozen_agent_starts(tmp_path: Path) -> None:
    # A bundle runs no "-c": the reader is started as ``hackatime-agent --read-import-for-agent``.
    path = write_export(tmp_path / "h.json", "hackatime", exported("hackatime", 3))
    request = {"path": str(path), "prefix": "heartbeats.item", "skip": 0, "default_user_agent": UA, "batch": 2}
    done = subprocess.run(
        [sys.executable, "-m", "agent", IMPORT_READER_ARG],
        input=json.dumps(request).encode() + b"\n",
        capture_output=True,
        timeout=60,
        check=True,
    )
    messages, data = [], done.stdout
    while data:
        (size,) = struct.unpack("<Q", data[:8])
        messages.append(marshal.loads(data[8 : 8 + size]))
        data = data[8 + size :]
    assert [(m[0], m[1]) for m in messages] == [("batch", 2), ("end", 3)]
    assert messages[-1][-2:] == ("done", None)
    first, last = messages
    handed = json.loads(first[6]) if first[6] else []  # a batch given back as JSON for this side to make rows of
    assert len(first[3]) + len(handed) + len(last[3]) == 3  # every heartbeat, once
