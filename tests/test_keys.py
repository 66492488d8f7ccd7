"""The key owner in a running agent: recovery after a 401, keys changed in files, told apart by fingerprint."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import Flags, load_config
from agent.daemon import Agent
from agent.delivery.recheck import RECHECK_DELAYS, KeyRecheck
from agent.keys import KeyInUse, fingerprint
from agent.settings import AppSettings
from tests.conftest import API_KEY
from tests.standin import HackatimeStandin, User

T0 = 1755864000.0
# Not known to the stand-in, and ending in the same four characters as API_KEY.
SAME_LAST_FOUR = "11111111-2222-4333-8444-555555556f70"
ORPHEUS = User(id=1, username="orpheus", timezone="UTC")


class ManualTime:
    """A monotonic clock the test moves by hand. ``advance`` also wakes whoever waits on it,
    so the agent's loop looks at the clock again; ``parked`` says a loop is waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._cond = threading.Condition()
        self._parked: set[threading.Event] = set()

    def monotonic(self) -> float:
        with self._cond:
            return self.now

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        with self._cond:
            self._parked.add(event)
            self._cond.notify_all()
        try:
            return event.wait()  # set by the agent (new work, a new key, stop) or by advance()
        finally:
            with self._cond:
                self._parked.discard(event)

    def wait_parked(self, timeout: float = 30) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._parked), timeout)

    def advance(self, seconds: float) -> None:
        with self._cond:
            self.now += seconds
            parked, self._parked = list(self._parked), set()
        for event in parked:
            event.set()


def write_cfg(home: Path, key: str, api_url: str) -> Path:
    path = home / ".wakatime.cfg"
    path.write_text(f"[settings]\n# my setup\napi_url = {api_url}\napi_key = {key}\n", encoding="utf-8")
    return path


def post_beats(agent: Agent, n: int, key: str, start: float = T0) -> None:
    beats = [{"time": start + i, "entity": f"/p/f{i}.py", "project": "p"} for i in range(n)]
    answer = httpx.post(
        f"{agent.intake_url}/users/current/heartbeats.bulk",
        json=beats,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text


def wait_state(agent: Agent, state: str, timeout: float = 30) -> None:
    seq = -1
    for _ in range(200):
        if agent.store.destination("hackatime")["auth_state"] == state:
            return
        seq = agent.wait_for_change(seq, timeout)
    raise AssertionError(f"auth state never became {state!r}")


def key_checks(srv: HackatimeStandin) -> list[int | None]:
    return [r.status for r in srv.requests() if r.method == "GET" and r.path.endswith("/users/current")]


@pytest.fixture
def manual_time() -> ManualTime:
    return ManualTime()


@pytest.fixture
def cfg_agent(
    _isolated_home: Path, tmp_path: Path, standin: HackatimeStandin, manual_time: ManualTime
) -> Callable[[str], Agent]:
    """An agent whose key comes from ~/.wakatime.cfg (the common setup), with the test's clock."""
    started: list[Agent] = []

    def start(key: str) -> Agent:
        write_cfg(_isolated_home, key, standin.api_url)
        env = {"WAKATIME_HOME": str(_isolated_home)}
        config = load_config(Flags(data_dir=tmp_path / "data", port=0), env=env)
        agent = Agent(config, synchronous="NORMAL", keyring_in_child=False, waiting=manual_time, watch=False)
        started.append(agent.start())
        return agent

    yield start  # type: ignore[misc]
    for agent in started:
        agent.stop()


@pytest.fixture
def agent_with_clock(
    make_config: Callable[..., Any], standin: HackatimeStandin, manual_time: ManualTime
) -> Iterator[Agent]:
    config = make_config(api_url=standin.api_url)
    with Agent(config, synchronous="NORMAL", waiting=manual_time, watch=False) as running:
        yield running


def test_fingerprints_tell_apart_keys_with_the_same_last_four() -> None:
    a, b = KeyInUse(API_KEY, "keyring"), KeyInUse(SAME_LAST_FOUR, "keyring")
    assert a.describe()["masked"] == b.describe()["masked"] == "<hidden>6f70"
    assert a.fingerprint != b.fingerprint and a.fingerprint == fingerprint(API_KEY)
    shown = str(a.describe())
    assert API_KEY not in shown and API_KEY[:-4] not in shown


def test_recheck_schedule_is_1_2_5_10_then_every_30_minutes(manual_time: ManualTime) -> None:
    recheck = KeyRecheck(manual_time)
    assert recheck.due_in() is None
    recheck.rejected()
    waits = []
    for _ in range(7):
        wait = recheck.due_in()
        assert wait is not None
        waits.append(wait)
        manual_time.advance(wait)
        assert recheck.due_in() == 0
        recheck.still_rejected()
    assert waits == [60, 120, 300, 600, 1800, 1800, 1800]
    assert RECHECK_DELAYS == (60, 120, 300, 600, 1800)
    recheck.rejected()  # a rejection while checks run changes nothing
    assert recheck.due_in() == 1800
    # A check accepted the key but uploads are refused again: the next wait is longer, not 1 min.
    recheck.accepted()
    recheck.rejected()
    assert recheck.due_in() == 1800
    recheck.reset()
    recheck.rejected()
    assert recheck.due_in() == 60


def test_after_a_401_the_same_key_is_rechecked_and_delivery_resumes_by_itself(
    agent_with_clock: Agent, standin: HackatimeStandin, manual_time: ManualTime
) -> None:
    agent = agent_with_clock
    standin.revoke_key(API_KEY)  # a server hiccup, or an account being restored
    post_beats(agent, 30, API_KEY)
    wait_state(agent, "rejected")
    assert manual_time.wait_parked()
    assert standin.count() == 0
    earlier = len(key_checks(standin))  # the stats fetcher asks for the profile too

    manual_time.advance(60)  # the first re-check: still rejected
    assert standin.wait_for(lambda s: key_checks(s)[earlier:] == [401], 30)
    assert manual_time.wait_parked()
    assert agent.status()["key"]["next_check_in"] == 120
    assert agent.store.destination("hackatime")["auth_state"] == "rejected"

    standin.add_key(API_KEY, ORPHEUS)  # the server takes the same key again
    manual_time.advance(120)
    assert standin.wait_for(lambda s: s.count() == 30, 30)
    assert key_checks(standin)[earlier:] == [401, 200]
    wait_state(agent, "ok")
    assert agent.status()["key"]["next_check_in"] is None


def test_no_fresh_server_figures_while_the_key_is_rejected(
    agent_with_clock: Agent, standin: HackatimeStandin, manual_time: ManualTime
) -> None:
    agent = agent_with_clock
    standin.revoke_key(API_KEY)
    post_beats(agent, 3, API_KEY)
    wait_state(agent, "rejected")
    before = len(standin.requests())
    fetched = agent.stats.snapshot()["server"]["fetched_at"]
    snapshot = agent.refresh_stats()
    assert len(standin.requests()) == before  # nothing asked: "updated just now" would be a lie
    assert snapshot["server"]["fetched_at"] == fetched


def test_a_key_fixed_in_the_cfg_is_picked_up_while_running_even_with_the_same_last_four(
    cfg_agent: Callable[[str], Agent], _isolated_home: Path, standin: HackatimeStandin
) -> None:
    agent = cfg_agent(SAME_LAST_FOUR)
    post_beats(agent, 40, SAME_LAST_FOUR)
    wait_state(agent, "rejected")
    status = agent.status()
    assert (status["key"]["last4"], status["key_source"]) == ("6f70", "wakatime.cfg")
    old_fingerprint = status["key"]["fingerprint"]

    # The user pastes the right key into ~/.wakatime.cfg with an editor: no restart, no Sync now.
    write_cfg(_isolated_home, API_KEY, standin.api_url)
    assert standin.wait_for(lambda s: s.count() == 40, 30)
    wait_state(agent, "ok")
    status = agent.status()
    assert status["key"]["last4"] == "6f70" and status["key"]["fingerprint"] != old_fingerprint
    assert status["destinations"][0]["auth_state"] == "ok"
    assert API_KEY not in str(status) and SAME_LAST_FOUR not in str(status)


def test_a_key_saved_in_the_settings_file_is_picked_up_while_running(
    cfg_agent: Callable[[str], Agent], tmp_path: Path, standin: HackatimeStandin
) -> None:
    agent = cfg_agent(SAME_LAST_FOUR)
    post_beats(agent, 5, SAME_LAST_FOUR)
    wait_state(agent, "rejected")
    AppSettings(agent.config.config_dir / "settings.json").set("plaintext_key", API_KEY)
    assert standin.wait_for(lambda s: s.count() == 5, 30)
    assert agent.status()["key_source"] == "settings (plaintext)"


def test_a_restart_with_a_rejected_key_checks_it_at_once(
    cfg_agent: Callable[[str], Agent], standin: HackatimeStandin, manual_time: ManualTime
) -> None:
    agent = cfg_agent(API_KEY)
    standin.revoke_key(API_KEY)
    post_beats(agent, 4, API_KEY)
    wait_state(agent, "rejected")
    agent.stop()
    standin.add_key(API_KEY, ORPHEUS)
    again = cfg_agent(API_KEY)  # no clock moves: the restart itself asks the server
    assert standin.wait_for(lambda s: s.count() == 4, 30)
    wait_state(again, "ok")


def test_the_intake_takes_the_key_editors_send_from_the_cfg_while_another_is_in_use(
    cfg_agent: Callable[[str], Agent], standin: HackatimeStandin
) -> None:
    agent = cfg_agent(SAME_LAST_FOUR)  # what routed editor plugins send
    AppSettings(agent.config.config_dir / "settings.json").set("plaintext_key", API_KEY)
    seq = -1
    while agent.keys.key != API_KEY:
        seq = agent.wait_for_change(seq, 30)
    post_beats(agent, 2, SAME_LAST_FOUR)  # the editors' key: taken, and uploaded with the key in use
    post_beats(agent, 2, API_KEY, start=T0 + 100)
    stranger = httpx.post(
        f"{agent.intake_url}/users/current/heartbeats.bulk",
        json=[{"time": T0, "entity": "/x.py"}],
        headers={"Authorization": "Bearer 99999999-9999-4999-8999-999999999999"},
        timeout=10,
    )
    assert stranger.status_code == 401
    assert standin.wait_for(lambda s: s.count() == 4, 30)
