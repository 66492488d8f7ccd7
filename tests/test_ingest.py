"""One ingest path: an editor's heartbeat (the intake, over real HTTP) and the watcher's (its
sink on the agent) are stored, announced and paused alike."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.daemon import Agent
from agent.heartbeat import normalize
from agent.ingest import Ingest
from agent.store import Store
from tests.conftest import API_KEY

WAKATIME_UA = "wakatime/v1.115.2 (linux-6.8.0-x86_64) go1.23 vscode/1.99.0 vscode-wakatime/25.0.0"
COLUMNS = (
    "id, time, dedup_key, payload, entity, type, category, project, branch, language, editor, operating_system, "
    "machine, is_write"
)


@pytest.fixture
def http(agent: Agent) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}", "User-Agent": WAKATIME_UA}
    with httpx.Client(base_url=agent.intake_url, timeout=30, headers=headers) as client:
        yield client


def raw(t: float, **extra: Any) -> dict[str, Any]:
    return {
        "entity": "/home/o/src/p/a.py",
        "type": "file",
        "category": "coding",
        "time": t,
        "project": "p",
        "branch": "main",
        "language": "Python",
        "is_write": True,
        "lines": 40,
        "user_agent": WAKATIME_UA,
        **extra,
    }


def rows(agent: Agent) -> list[tuple[Any, ...]]:
    return agent.store.reader().execute(f"SELECT {COLUMNS} FROM heartbeats ORDER BY id").fetchall()


def post(http: httpx.Client, heartbeat: dict[str, Any]) -> dict[str, Any]:
    r = http.post("/users/current/heartbeats.bulk", json=[heartbeat])
    assert r.status_code == 201, r.text
    [[answer, status]] = r.json()["responses"]
    assert status == 201, answer
    return dict(answer)


def test_a_watcher_heartbeat_and_an_editor_heartbeat_are_stored_identically(agent: Agent, http: httpx.Client) -> None:
    now = time.time()
    seq = agent.status()["seq"]
    agent.submit([raw(now - 60)], "watcher")  # what the watcher hands its sink
    [watched] = rows(agent)
    assert agent.status()["seq"] > seq  # announced: the tray and delivery hear of it
    # The same heartbeat from an editor is the same row: same payload, same key, same columns.
    answer = post(http, json.loads(watched[3]))
    assert answer["id"] == watched[0] and rows(agent) == [watched]

    # And the other way round: what the intake stored, the watcher's sink finds already stored.
    answer = post(http, raw(now - 30))
    [_, edited] = rows(agent)
    assert answer["id"] == edited[0]
    # Nothing new, nothing announced. Asked of the ingest itself: the change counter also moves
    # when delivery, running meanwhile, settles the rows posted above.
    announced: list[int] = []
    on_stored = agent.ingest.on_stored

    def announce(created: int) -> None:
        announced.append(created)
        on_stored(created)

    agent.ingest.on_stored = announce
    agent.submit([json.loads(edited[3])], "watcher")
    assert rows(agent) == [watched, edited]
    assert announced == []
    # Both rows differ only where their heartbeats did: the time.
    differs = [name for name, a, b in zip(COLUMNS.split(", "), watched, edited, strict=True) if a != b]
    assert differs == ["id", "time", "dedup_key", "payload"]
    assert {**json.loads(watched[3]), "time": 0} == {**json.loads(edited[3]), "time": 0}


def test_while_paused_neither_source_records(agent: Agent, http: httpx.Client) -> None:
    agent.set_paused(time.time() + 3600)
    now = time.time()
    agent.submit([raw(now - 60)], "watcher")
    answer = post(http, raw(now - 30))
    assert answer["id"] is None and answer["recorded"] is False  # acknowledged, not recorded
    assert rows(agent) == []
    agent.set_paused(None)
    agent.submit([raw(now - 60)], "watcher")
    assert post(http, raw(now - 30))["id"] is not None and len(rows(agent)) == 2


def test_ingest_announces_only_new_rows(tmp_path: Path) -> None:
    announced: list[int] = []
    accepting = [True]
    with Store(tmp_path / "s.db") as store:
        ingest = Ingest(store, accepting=lambda: accepting[0], on_stored=announced.append, on_full=lambda: None)
        beats = [normalize(raw(1_760_000_000.0 + i), machine="m") for i in range(3)]
        first = ingest(beats[:2], "editor")
        again = ingest(beats, "watcher")
        accepting[0] = False
        paused = ingest([normalize(raw(1_760_000_100.0), machine="m")], "editor")
        assert first is not None and again is not None and paused is None
        assert [a.created for a in again] == [False, False, True] and [a.id for a in again[:2]] == [a.id for a in first]
        assert announced == [2, 1] and store.heartbeat_count() == 3
