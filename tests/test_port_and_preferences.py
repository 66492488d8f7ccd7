"""The local API moved to another port while running, and the app's preferences, through the control API."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.daemon import Agent
from agent.settings import AppSettings
from tests.conftest import API_KEY
from tests.standin import HackatimeStandin

T0 = 1755864000.0


@pytest.fixture
def control(agent: Agent) -> Iterator[httpx.Client]:
    with httpx.Client(headers={"Authorization": f"Bearer {agent.token}"}, timeout=30) as client:
        yield client


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_closed(agent: Agent, port: int) -> None:
    seq = -1
    for _ in range(100):
        if not accepts(port):
            return
        seq = agent.wait_for_change(seq, 5)
    raise AssertionError(f"port {port} still accepts connections")


def move(agent: Agent, control: httpx.Client, port: object, **body: object) -> httpx.Response:
    return control.post(f"{agent.control_url}/agent/v1/port", json={"port": port, **body})


def settings(agent: Agent) -> AppSettings:
    return AppSettings(agent.config.config_dir / "settings.json")


def test_the_intake_moves_to_another_port_at_once(agent: Agent, control: httpx.Client) -> None:
    old = agent.server.port if agent.server else 0
    port = free_port()
    answer = move(agent, control, port)
    assert answer.status_code == 200, answer.text
    assert answer.json()["port"] == port and answer.json()["intake_url"] == f"http://127.0.0.1:{port}/api/hackatime/v1"
    runtime = json.loads((agent.config.data_dir / "agent.json").read_text())
    assert runtime["url"] == f"http://127.0.0.1:{port}"  # the tray follows it
    assert settings(agent).get("port") == port  # and so does the next start
    posted = httpx.post(
        f"{answer.json()['intake_url']}/users/current/heartbeats.bulk",
        json=[{"time": T0, "entity": "/a.py"}],
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    )
    assert posted.status_code == 201
    wait_closed(agent, old)  # the old port is let go once the answer left through it
    assert (
        control.get(f"{agent.control_url}/agent/v1/status").json()["intake_url"].startswith(f"http://127.0.0.1:{port}/")
    )


def test_a_port_in_use_or_out_of_range_is_refused_and_the_old_one_stays(agent: Agent, control: httpx.Client) -> None:
    old_url = agent.control_url
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        refused = move(agent, control, busy)
        assert refused.status_code == 409 and f"port {busy} is in use by" in refused.json()["error"]
    for bad, why in ((80, "between 1024 and 65535"), (70000, "between 1024 and 65535"), ("x", "whole number")):
        refused = move(agent, control, bad)
        assert refused.status_code == 400 and why in refused.json()["error"], refused.text
    assert agent.control_url == old_url and settings(agent).get("port") == 0
    assert control.get(f"{old_url}/agent/v1/status").status_code == 200


def test_editors_are_pointed_at_the_new_port_on_request_and_undo_still_restores_the_original(
    agent: Agent, control: httpx.Client, _isolated_home: Path
) -> None:
    cfg = _isolated_home / ".wakatime.cfg"
    cfg.write_text(f"[settings]\napi_key = {API_KEY}\napi_url = https://example.org/api\n", encoding="utf-8")
    agent.route_editors()
    port = free_port()
    answer = move(agent, control, port, route_editors=True).json()
    assert answer["editors"]["routed"]
    assert "still send" not in (answer["warning"] or "")  # only that the agent was started with --port
    assert f"api_url = http://127.0.0.1:{port}/api/hackatime/v1" in cfg.read_text()
    backup = answer["editors"]["backup"]
    assert backup is not None and f":{port}/" not in Path(backup).read_text()  # the file as it was before
    agent.undo_editor_routing()
    assert "api_url = https://example.org/api" in cfg.read_text()  # not the port before the move


def test_editors_left_on_the_old_port_are_told_of_and_uploads_never_go_there(
    agent: Agent, control: httpx.Client, _isolated_home: Path
) -> None:
    cfg = _isolated_home / ".wakatime.cfg"
    cfg.write_text(f"[settings]\napi_key = {API_KEY}\n", encoding="utf-8")
    agent.route_editors()
    routed = agent.intake_url
    answer = move(agent, control, free_port()).json()
    assert f"editor plugins still send to {routed}" in answer["warning"]
    assert answer["editors"] is None and routed in cfg.read_text()
    # At the next start the cfg's api_url no longer points at the agent; the settings' one outranks it.
    assert settings(agent).get("api_url") == agent.client.api_url


def test_preferences_are_checked_then_saved_together(agent: Agent, control: httpx.Client) -> None:
    url = f"{agent.control_url}/agent/v1/preferences"
    assert control.get(url).json() == {"notifications": True, "oauth_client_id": ""}
    refused = control.post(url, json={"notifications": False, "oauth_client_id": "two words"})
    assert refused.status_code == 400 and "one word" in refused.json()["error"]
    assert control.post(url, json={"notifications": "no"}).status_code == 400
    assert control.post(url, json={"colour": "red"}).status_code == 400
    assert control.get(url).json()["notifications"] is True  # nothing of a refused change was saved
    saved = control.post(url, json={"notifications": False, "oauth_client_id": " my-app-id "}).json()
    assert saved == {"notifications": False, "oauth_client_id": "my-app-id"}
    assert control.get(f"{agent.control_url}/agent/v1/status").json()["notifications"] is False


def test_the_listener_moved_from_is_stopped_with_the_agent_when_it_stops_before_the_answer_left(
    make_config: Callable[..., Any], standin: HackatimeStandin
) -> None:
    """The old listener is retired after its answer has left; a caller that stops the agent as
    soon as it has the answer may be first (a thread-leak failure under load)."""
    with Agent(make_config(api_url=standin.api_url), synchronous="NORMAL", keyring_in_child=False) as agent:
        assert agent.server is not None
        old_port = agent.server.port
        _answer, after_answer = agent.set_port(free_port())
    after_answer()  # the answer's hook, later than the stop: starts nothing
    assert not accepts(old_port)
