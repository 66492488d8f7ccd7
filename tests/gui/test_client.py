"""The control-API client against a real in-process agent: discovery, errors, and aborting calls in flight."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QThreadPool

from agent import contract as C
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


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n", "an answer that is not HTTP"),  # another program took the agent's port
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}", "connection closed"),  # cut short
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2", "connection closed"),  # cut in the headers
    ],
)
def test_an_answer_that_is_not_the_agent_s_is_a_clear_error(tmp_path: Path, answer: bytes, reason: str) -> None:
    """Whatever answers on the agent's port, the client says what it got and never hangs or crashes."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        (tmp_path / C.RUNTIME_FILE).write_text(json.dumps({"url": f"http://127.0.0.1:{port}", "pid": 1}))
        (tmp_path / C.TOKEN_FILE).write_text("token")

        def answer_once() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

        thread = threading.Thread(target=answer_once)
        thread.start()
        try:
            with pytest.raises(AgentUnavailable, match=reason):
                AgentClient(tmp_path).status()
        finally:
            thread.join(10)
