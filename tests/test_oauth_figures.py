"""Signed in with Hackatime, the agent adds what only /api/v1/authenticated/* gives: every project of
all time with the archived ones, the all-time total and the streak from its own endpoint; never
another account's, and nothing of it once signed out."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import Flags, load_config
from agent.daemon import Agent
from agent.oauth import OAUTH_TOKEN_USER
from agent.secrets import KEYRING_SERVICE
from tests.conftest import API_KEY, MemoryKeyring
from tests.standin import HackatimeStandin, User

T = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC).timestamp()
ALICE_KEY = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
ORPHEUS = User(id=1, username="orpheus", timezone="UTC", archived_projects=("old-thing",))
ALICE = User(id=2, username="alice", timezone="UTC")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def days_of_work(project: str, days: int, minutes: int) -> list[dict[str, Any]]:
    """``minutes`` a day on each of the last ``days`` days (today included), a minute apart."""
    return [
        {"time": T - 3 * 3600 - d * 86400 + i * 60, "entity": f"/src/{project}/{d}-{i}.py", "project": project,
         "language": "Python"}
        for d in range(days) for i in range(minutes + 1)
    ]  # fmt: skip


@pytest.fixture
def world() -> Iterator[tuple[HackatimeStandin, Clock]]:
    clock = Clock(T)
    with HackatimeStandin(keys={API_KEY: ORPHEUS, ALICE_KEY: ALICE}, now=clock) as srv:
        srv.seed(days_of_work("live-app", 3, 20), API_KEY)  # a 3-day streak
        old = [{**beat, "time": beat["time"] - 40 * 86400} for beat in days_of_work("old-thing", 1, 2)]
        srv.seed(old, API_KEY)  # 40 days ago, archived since
        yield srv, clock


@pytest.fixture
def start(_isolated_home: Path, tmp_path: Path, world: tuple[HackatimeStandin, Clock]) -> Iterator[Callable[[], Agent]]:
    srv, clock = world
    started: list[Agent] = []

    def run() -> Agent:
        cfg = f"[settings]\napi_url = {srv.api_url}\napi_key = {API_KEY}\n"
        (_isolated_home / ".wakatime.cfg").write_text(cfg, encoding="utf-8")
        config = load_config(Flags(data_dir=tmp_path / "data", port=0), env={"WAKATIME_HOME": str(_isolated_home)})
        agent = Agent(config, synchronous="NORMAL", keyring_in_child=False, watch=False, clock=clock).start()
        started.append(agent)
        return agent

    yield run
    for agent in started:
        agent.stop()


def control(agent: Agent, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(
        f"{agent.control_url}/agent/v1/{path}",
        json=body,
        headers={"Authorization": f"Bearer {agent.token}"},
        timeout=30,
    )


def authenticated_calls(srv: HackatimeStandin) -> list[str]:
    return [r.path for r in srv.requests() if r.path.startswith("/api/v1/authenticated/")]


def test_signed_in_the_archived_projects_the_all_time_total_and_the_streak_come_from_the_account(
    world: tuple[HackatimeStandin, Clock],
    start: Callable[[], Agent],
    _memory_keyring: MemoryKeyring,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    srv, clock = world
    agent = start()
    snapshot = agent.refresh_stats()
    assert snapshot["server_projects"]["source"] == "key" and authenticated_calls(srv) == []
    assert not agent.key_info()["signed_in"]

    token = srv.oauth_token(ORPHEUS)
    answer = control(agent, "oauth", {"token": token})
    assert answer.json() == {"signed_in": True, "kept": True, "problem": None}
    assert _memory_keyring.get_password(KEYRING_SERVICE, OAUTH_TOKEN_USER) == token
    clock.now += 61
    snapshot = agent.refresh_stats()
    assert set(authenticated_calls(srv)) == {
        f"/api/v1/authenticated/{e}" for e in ("me", "streak", "projects", "hours")
    }
    projects = snapshot["server_projects"]
    assert projects["source"] == "oauth"
    by_name = {p["name"]: p for p in projects["projects"]}
    assert by_name["old-thing"]["archived"] is True and by_name["live-app"]["archived"] is False
    assert by_name["live-app"]["most_recent_heartbeat"] == "2026-03-10T09:20:00Z"
    # All time, one timeline: 3 days of 20 minutes, 2 minutes 40 days ago, and a capped gap between each.
    assert projects["total_seconds"] == 3 * 20 * 60 + 2 * 60 + 3 * 120
    assert snapshot["streak"]["days"] == 3 and snapshot["streak"]["source"] == "server"
    assert snapshot["streak"]["fetched_at"] == agent.store.cache_get("server.oauth_streak")[1]  # type: ignore[index]
    all_time = {p["name"]: p for p in agent.projects("all")["projects"]}
    assert all_time["old-thing"]["archived"] is True and all_time["live-app"]["archived"] is False
    assert token not in str(agent.status()) and token not in str(snapshot) and token not in str(agent.key_info())
    assert token not in caplog.text and token[:-4] not in caplog.text


def test_a_key_of_another_account_never_shows_the_signed_in_accounts_figures(
    world: tuple[HackatimeStandin, Clock], start: Callable[[], Agent]
) -> None:
    srv, clock = world
    agent = start()
    control(agent, "oauth", {"token": srv.oauth_token(ORPHEUS)})
    assert agent.refresh_stats()["server_projects"]["source"] == "oauth"
    agent.set_key(ALICE_KEY, "keyring")  # alice's key, orpheus's sign-in
    clock.now += 61
    snapshot = agent.refresh_stats()
    assert snapshot["server_projects"]["source"] == "key"
    assert "old-thing" not in str(snapshot) and "live-app" not in str(snapshot)
    assert agent.projects("all")["projects"] == []


def test_signing_out_revokes_the_token_and_a_restart_remembers_a_sign_in(
    world: tuple[HackatimeStandin, Clock], start: Callable[[], Agent], _memory_keyring: MemoryKeyring
) -> None:
    srv = world[0]
    agent = start()
    token = srv.oauth_token(ORPHEUS)
    control(agent, "oauth", {"token": token})
    agent.stop()
    again = start()  # the token is read back from the keyring, off the start path
    seq = -1
    while not again.key_info()["signed_in"]:
        seq = again.wait_for_change(seq, 30)
    assert again.refresh_stats()["server_projects"]["source"] == "oauth"

    assert control(again, "oauth/forget").json()["signed_in"] is False
    me = httpx.get(f"{srv.url}/api/v1/authenticated/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.status_code == 401  # revoked at the server
    assert _memory_keyring.get_password(KEYRING_SERVICE, OAUTH_TOKEN_USER) is None
    assert again.stats_snapshot()["server_projects"]["source"] == "key"
    assert control(again, "oauth", {"token": "two words"}).status_code == 400
