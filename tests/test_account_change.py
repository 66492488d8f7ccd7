"""Server figures belong to one account on one server: a new key or another server never shows
the old account's figures, not even from a fetch that was on its way when the key changed."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import Flags, load_config
from agent.daemon import Agent
from tests.conftest import API_KEY
from tests.standin import HackatimeStandin, User

T = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC).timestamp()
ALICE_KEY = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
ORPHEUS = User(id=1, username="orpheus", timezone="Pacific/Auckland")  # 01:00 the next day at T
ALICE = User(id=2, username="alice", timezone="UTC")
ORPHEUS_TODAY = 49 * 60  # 50 heartbeats a minute apart
ALICE_TODAY = 9 * 60


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def beats(n: int, project: str) -> list[dict[str, Any]]:
    return [{"time": T - 3000 + i * 60, "entity": f"/src/{project}/f{i}.py", "project": project} for i in range(n)]


@pytest.fixture
def accounts() -> Iterator[tuple[HackatimeStandin, Clock]]:
    clock = Clock(T)
    with HackatimeStandin(keys={API_KEY: ORPHEUS, ALICE_KEY: ALICE}, now=clock) as srv:
        srv.seed(beats(50, "orpheus-secret"), API_KEY)
        srv.seed(beats(10, "alice-app"), ALICE_KEY)
        yield srv, clock


@pytest.fixture
def start_agent(
    _isolated_home: Path, tmp_path: Path, accounts: tuple[HackatimeStandin, Clock]
) -> Iterator[Callable[[str], Agent]]:
    clock = accounts[1]
    started: list[Agent] = []

    def start(api_url: str) -> Agent:
        cfg = f"[settings]\napi_url = {api_url}\napi_key = {API_KEY}\n"
        (_isolated_home / ".wakatime.cfg").write_text(cfg, encoding="utf-8")
        config = load_config(Flags(data_dir=tmp_path / "data", port=0), env={"WAKATIME_HOME": str(_isolated_home)})
        agent = Agent(config, synchronous="NORMAL", keyring_in_child=False, watch=False, clock=clock)
        started.append(agent.start())
        return agent

    yield start
    for agent in started:
        agent.stop()


def orpheus_in(snapshot: dict[str, Any]) -> list[str]:
    """Whatever of orpheus's account the snapshot shows."""
    found = []
    if "orpheus-secret" in json.dumps(snapshot):
        found.append("his project")
    if snapshot["today"]["total_seconds"] == ORPHEUS_TODAY:
        found.append("his today")
    if snapshot["timezone"] == ORPHEUS.timezone:
        found.append("his time zone")
    return found


def alices_figures(agent: Agent) -> dict[str, Any]:
    snapshot = agent.refresh_stats()
    assert orpheus_in(snapshot) == []
    assert snapshot["today"]["total_seconds"] == ALICE_TODAY and snapshot["today"]["source"] == "server"
    assert snapshot["timezone"] == "UTC"
    assert [p["name"] for p in snapshot["server_projects"]["projects"]] == ["alice-app"]
    return snapshot


def test_a_key_for_another_user_never_shows_the_old_users_figures(
    accounts: tuple[HackatimeStandin, Clock], start_agent: Callable[[str], Agent]
) -> None:
    srv, clock = accounts
    agent = start_agent(srv.api_url)
    snapshot = agent.refresh_stats()
    assert len(orpheus_in(snapshot)) == 3  # his figures, fetched with his key

    # The next fetch of today's figure is on its way when the key changes to alice's.
    clock.now += 300
    gate = srv.hold("GET", "statusbar/today")
    fetch = threading.Thread(target=agent.refresh_stats, name="test-refresh")
    fetch.start()
    assert gate.arrived.wait(30)
    agent.set_key(ALICE_KEY, "keyring")
    assert orpheus_in(agent.stats_snapshot()) == []  # dropped at once, before anything is fetched
    gate.release()  # orpheus's figure lands now: it is not kept
    fetch.join()
    assert orpheus_in(agent.stats_snapshot()) == []

    alices_figures(agent)


def test_a_restart_with_another_key_drops_the_last_runs_figures(
    accounts: tuple[HackatimeStandin, Clock], start_agent: Callable[[str], Agent], _isolated_home: Path
) -> None:
    srv, _ = accounts
    agent = start_agent(srv.api_url)
    assert len(orpheus_in(agent.refresh_stats())) == 3
    agent.stop()
    # The key is changed while no agent runs (an editor's plugin, a text editor).
    cfg = _isolated_home / ".wakatime.cfg"
    cfg.write_text(cfg.read_text().replace(API_KEY, ALICE_KEY), encoding="utf-8")
    config = load_config(Flags(data_dir=agent.config.data_dir, port=0), env={"WAKATIME_HOME": str(_isolated_home)})
    with Agent(config, synchronous="NORMAL", keyring_in_child=False, watch=False, clock=agent.clock) as again:
        assert orpheus_in(again.stats_snapshot()) == []
        alices_figures(again)


def test_another_server_drops_the_figures_of_the_first(
    accounts: tuple[HackatimeStandin, Clock], start_agent: Callable[[str], Agent]
) -> None:
    srv, clock = accounts
    agent = start_agent(srv.api_url)
    assert len(orpheus_in(agent.refresh_stats())) == 3
    with HackatimeStandin(keys={API_KEY: ALICE}, now=clock) as other:  # the same key, another server's account
        other.seed(beats(10, "alice-app"), API_KEY)
        agent.set_server(other.api_url)
        assert orpheus_in(agent.stats_snapshot()) == []
        alices_figures(agent)
