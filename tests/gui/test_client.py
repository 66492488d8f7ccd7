"""The control-API client against a real in-process agent: discovery, errors, and aborting calls in flight."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QThreadPool

from app.client import AgentClient, AgentError, AgentUnavailable, Cancelled
from app.tasks import TaskRunner


def test_no_agent_is_reported_plainly(tmp_path: Path) -> None:
    with pytest.raises(AgentUnavailable, match="the agent is not running"):
        AgentClient(tmp_path).status()


def test_calls_reach_the_agent(agent: Any) -> None:
    client = AgentClient(agent.config.data_dir)
    status = client.status()
    assert status["pid"] == client.endpoint().pid
    today = client.projects("today")
    assert (today["range"], today["projects"]) == ("today", [])
    assert today["source"] in ("server", "local")  # the server's, once the agent has fetched them
    assert client.dead("hackatime") == []
    with pytest.raises(AgentError, match="range must be one of"):
        client.projects("fortnight")
    paused = client.pause(time.time() + 60)
    assert paused["paused_until"] is not None
    assert client.pause(None)["paused_until"] is None


def test_a_wrong_token_is_an_error_not_a_hang(agent: Any) -> None:
    client = AgentClient(agent.config.data_dir)
    client.endpoint()
    (agent.config.data_dir / "control-token").write_text("not-the-token")
    with pytest.raises(AgentError, match="refused the control token"):
        client.status()


def test_close_aborts_a_long_poll_at_once(agent: Any, pool: QThreadPool, runner: TaskRunner, qtbot: Any) -> None:
    client = AgentClient(agent.config.data_dir)
    errors: list[BaseException] = []

    def watch() -> None:  # the model's long-poll, reduced to its loop
        seq = client.status()["seq"]
        while True:
            seq = client.wait_for_change(seq, 50)

    runner.run(watch, None, errors.append)
    qtbot.waitUntil(lambda: client.in_flight == 1, timeout=5000)  # a poll is parked on the agent
    started = time.monotonic()
    with qtbot.waitSignal(runner.idle, timeout=5000):
        client.close()
    assert time.monotonic() - started < 2  # not the 50 s the agent would have held it
    assert isinstance(errors[0], Cancelled)
    with pytest.raises(Cancelled):
        client.status()
