"""The control API the tray uses, over real HTTP to an in-process agent and the stand-in."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from agent.daemon import Agent
from agent.delivery.pacing import Backoff
from tests.conftest import API_KEY
from tests.standin import Fault, HackatimeStandin

T0 = 1755864000.0


def control_client(agent: Agent) -> httpx.Client:
    return httpx.Client(base_url=agent.control_url, headers={"Authorization": f"Bearer {agent.token}"}, timeout=30)


@pytest.fixture
def control(agent: Agent) -> Iterator[httpx.Client]:
    with control_client(agent) as client:
        yield client


def post_beats(agent: Agent, beats: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(
        f"{agent.intake_url}/users/current/heartbeats.bulk",
        json=beats,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    )


def test_pause_acknowledges_but_records_nothing_until_resumed(agent: Agent, control: httpx.Client) -> None:
    status = control.post("/agent/v1/pause", json={"until": time.time() + 3600}).json()
    assert status["paused_until"] is not None
    assert post_beats(agent, [{"time": T0, "entity": "/a.py"}]).status_code == 201
    assert agent.store.heartbeat_count() == 0
    assert control.post("/agent/v1/pause", json={"until": None}).json()["paused_until"] is None
    post_beats(agent, [{"time": T0, "entity": "/a.py"}])
    assert agent.store.heartbeat_count() == 1
    assert control.post("/agent/v1/pause", json={"until": "soon"}).status_code == 400


def test_events_long_poll_wakes_on_a_new_heartbeat(agent: Agent, control: httpx.Client) -> None:
    seq = control.get("/agent/v1/status").json()["seq"]
    answer: dict[str, Any] = {}
    waiting = threading.Event()

    def poll() -> None:
        waiting.set()
        answer.update(control.get("/agent/v1/events", params={"after": seq, "timeout": 30}).json())

    poller = threading.Thread(target=poll)
    poller.start()
    waiting.wait()
    post_beats(agent, [{"time": T0, "entity": "/a.py"}])
    poller.join()
    assert answer["seq"] > seq


def test_a_change_while_the_status_is_built_still_wakes_the_long_poll(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 401 settling between the status's figures and its seq once left the tray on "uploading"
    # for good: the status said seq N over figures from before change N, and the poll waited
    # for N + 1. Here a change lands mid-build, the way a settle on the delivery thread does.
    store = agent.store
    read = store.last_received_at

    def a_change_lands_meanwhile() -> float | None:
        agent.changed()
        return read()

    monkeypatch.setattr(store, "last_received_at", a_change_lands_meanwhile)
    seq = agent.status()["seq"]
    assert agent.wait_for_change(seq, 0) > seq  # the poll after this status answers at once


def test_dead_letters_retry_and_discard(agent: Agent, control: httpx.Client, standin: HackatimeStandin) -> None:
    standin.inject(Fault.BAD_REQUEST_400, times=3)  # 2 → 1 → 1: both items end up dead
    post_beats(agent, [{"time": T0, "entity": "/a.py"}, {"time": T0 + 1, "entity": "/b.py"}])
    assert control.post("/agent/v1/sync").json()["pending"] == 0  # the worker may have got there first
    items = control.get("/agent/v1/dead").json()["items"]
    assert [i["entity"] for i in items] == ["/a.py", "/b.py"] and "400" in items[0]["reason"]
    assert control.post("/agent/v1/dead/discard", json={"ids": [items[1]["id"]]}).json() == {"count": 1}
    assert control.post("/agent/v1/dead/retry", json={}).json() == {"count": 1}
    assert control.post("/agent/v1/sync").json()["pending"] == 0
    assert [row["entity"] for row in standin.heartbeats()] == ["/a.py"]
    status = control.get("/agent/v1/status").json()["destinations"][0]
    assert (status["sent"], status["dead"], status["pending"]) == (1, 0, 0)
    assert control.get("/agent/v1/dead", params={"destination": "nope"}).status_code == 404
    assert control.post("/agent/v1/dead/discard", json={"ids": "all"}).status_code == 400


def test_stats_snapshot_and_project_ranges(agent: Agent, control: httpx.Client) -> None:
    now = time.time()
    post_beats(agent, [{"time": now - 60 + i * 10, "entity": "/p/a.py", "project": "p"} for i in range(4)])
    snapshot = control.get("/agent/v1/stats").json()
    assert snapshot["today"]["local_seconds"] >= 30
    projects = control.get("/agent/v1/stats/projects", params={"range": "today"}).json()
    assert projects["projects"][0]["name"] == "p"
    assert control.get("/agent/v1/stats/projects", params={"range": "decade"}).status_code == 400


def test_a_save_in_a_watched_git_project_reaches_the_server(
    tmp_path: Any, make_config: Callable[..., Any], standin: HackatimeStandin
) -> None:
    repo = tmp_path / "code" / "rocket"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/launch\n")
    (repo / "engine.py").write_text("import os\n")
    config = make_config(api_url=standin.api_url, watch=(tmp_path / "code",))
    with Agent(config, synchronous="NORMAL"):
        (repo / "engine.py").write_text("import os\nimport sys\n\nprint(sys.argv)\n")
        assert standin.wait_for(lambda s: s.count() >= 1, timeout=20)
    row = standin.heartbeats()[0]
    assert row["entity"] == str(repo / "engine.py")
    assert (row["project"], row["branch"], row["language"]) == ("rocket", "launch", "Python")
    assert (row["is_write"], row["category"], row["type"]) == (True, "coding", "file")
    assert row["lines"] == 4
    assert row["line_additions"] is None  # the first save seen has no earlier content to diff against
    assert row["editor"] == "hackatime-desktop"
    assert standin.count() == 1


def test_folders_are_added_and_removed_while_running(
    tmp_path: Any, make_config: Callable[..., Any], standin: HackatimeStandin
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
        (folder / ".wakatime-project").write_text(folder.name + "\n")
    with Agent(make_config(api_url=standin.api_url), synchronous="NORMAL") as agent:
        headers = {"Authorization": f"Bearer {agent.token}"}
        with httpx.Client(base_url=agent.control_url, headers=headers, timeout=30) as control:
            assert control.get("/agent/v1/watch").json() == {"folders": [], "uncovered": []}
            for folder in (one, two):
                assert control.post("/agent/v1/watch", json={"path": str(folder)}).json()["problem"] is None
            (one / "a.py").write_text("x = 1\n")
            assert standin.wait_for(lambda s: s.count() == 1, timeout=20)
            listed = control.post("/agent/v1/watch/remove", json={"path": str(one)}).json()["folders"]
            assert listed == [str(two)]
            (one / "b.py").write_text("y = 2\n")  # no longer watched
            (two / "c.py").write_text("z = 3\n")
            assert standin.wait_for(lambda s: s.count() == 2, timeout=20)
    assert [row["project"] for row in standin.heartbeats()] == ["one", "two"]
    settings = (agent.config.config_dir / "settings.json").read_text()
    assert str(two) in settings and str(one) not in settings


@pytest.fixture
def patient_agent(make_config: Callable[..., Any], standin: HackatimeStandin) -> Iterator[Agent]:
    """An agent whose retries after a failure come minutes later: the backoff a test reads is
    still running however late a loaded machine lets it look (the real first step is 1-2 s)."""
    config = make_config(api_url=standin.api_url)
    with Agent(config, synchronous="NORMAL", keyring_in_child=False, backoff=Backoff(base=600, cap=600)) as running:
        yield running


def test_online_means_the_server_answered(patient_agent: Agent, standin: HackatimeStandin) -> None:
    agent = patient_agent
    with control_client(agent) as control:
        standin.inject(Fault.SERVICE_UNAVAILABLE_503, times=1000)  # down until cleared
        post_beats(agent, [{"time": T0, "entity": "/a.py"}])
        control.post("/agent/v1/sync")
        status = control.get("/agent/v1/status").json()
        assert status["online"] is True  # a 503 is an answer: reachable, not offline
        assert "503" in status["destinations"][0]["last_error"]
        backing_off = status["destinations"][0]
        assert backing_off["backoff_seconds"] > 0  # the backoff is shown while it runs, and when it ends
        expected_until = status["generated_at"] + backing_off["backoff_seconds"]
        assert backing_off["backoff_until"] == pytest.approx(expected_until, abs=0.2)
        standin.clear_faults()
        standin.inject(Fault.CONNECTION_RESET, times=1000)  # offline until cleared
        post_beats(agent, [{"time": T0 + 1, "entity": "/a.py"}])
        control.post("/agent/v1/sync")
        assert control.get("/agent/v1/status").json()["online"] is False
        standin.clear_faults()
        control.post("/agent/v1/sync")
        status = control.get("/agent/v1/status").json()
        assert status["online"] is True
        assert status["destinations"][0]["last_error"] is None  # delivery works again: no stale error
        assert control.post("/agent/v1/refresh").json()["today"]["server_fetched_at"] is not None


def test_a_file_name_that_is_not_utf8_is_sent_as_wakatime_cli_sends_it(
    tmp_path: Any, make_config: Callable[..., Any], standin: HackatimeStandin
) -> None:
    import os

    code = tmp_path / "code" / "legacy"
    code.mkdir(parents=True)
    raw_name = os.fsencode(code) + b"/caf\xe9-\xe2\x82.py"  # Latin-1 é, then a cut-off UTF-8 sequence
    config = make_config(api_url=standin.api_url, watch=(tmp_path / "code",))
    with Agent(config, synchronous="NORMAL"):
        with open(raw_name, "wb") as fh:
            fh.write(b"print('hi')\n")
        assert standin.wait_for(lambda s: s.count() >= 1, timeout=20)
    # Go's JSON encoder puts one U+FFFD in place of each byte that is not UTF-8.
    assert standin.heartbeats()[0]["entity"] == str(code) + "/caf\ufffd-\ufffd\ufffd.py"


def test_the_control_token_is_private_even_when_found_readable(tmp_path: Any) -> None:
    import os
    import stat

    from agent.api.control import load_or_create_token

    token = load_or_create_token(tmp_path)
    path = tmp_path / "control-token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o644)  # restored from a backup, or copied by a sync tool
    assert load_or_create_token(tmp_path) == token
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
