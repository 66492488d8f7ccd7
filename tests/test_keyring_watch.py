"""A key changed in the OS keyring by another program is in use within seconds, without a restart.

The agent reads the keyring in child processes, as it does for real; the keyring is a
file-backed backend (``tests.file_keyring``), or GNOME Keyring on a private session bus
(``tests.secret_service``), that other processes change: the keyring's own command line
(``python -m keyring set``) and another ``save_key`` process.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from agent.config import Flags, load_config
from agent.daemon import Agent
from agent.keyring_signals import KeyringSignals
from agent.keys import KEYRING_POLL_BLOCKED, KEYRING_POLL_IDLE, fingerprint
from agent.secrets import KEYRING_SERVICE, KEYRING_USER, SECRET_SERVICE_SIGNALS, KeyringResult, read_keyring_in_child
from tests.conftest import API_KEY
from tests.file_keyring import BACKEND, FILE_ENV, UNNAMED_ENV, FileKeyring
from tests.secret_service import SecretServiceBus
from tests.standin import HackatimeStandin
from tests.test_keys import SAME_LAST_FOUR, post_beats, wait_state

OTHER_KEY = "33333333-4444-4555-8666-777777777777"  # not known to the stand-in


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FileKeyring:
    monkeypatch.setenv(FILE_ENV, str(tmp_path / "keyring" / "secrets.json"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", BACKEND)
    (tmp_path / "keyring").mkdir()
    return FileKeyring()


@pytest.fixture
def keyring_agent(
    _isolated_home: Path, tmp_path: Path, standin: HackatimeStandin
) -> Iterator[Callable[[str | None], Agent]]:
    """An agent whose key comes from the keyring (read in child processes), ``cfg_key`` in ~/.wakatime.cfg."""
    started: list[Agent] = []

    def start(cfg_key: str | None) -> Agent:
        lines = ["[settings]", f"api_url = {standin.api_url}"] + ([f"api_key = {cfg_key}"] if cfg_key else [])
        (_isolated_home / ".wakatime.cfg").write_text("\n".join(lines) + "\n", encoding="utf-8")
        env = {"WAKATIME_HOME": str(_isolated_home), "XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"]}
        config = load_config(Flags(data_dir=tmp_path / "data", port=0), env=env, keyring_in_child=True)
        agent = Agent(config, synchronous="NORMAL", keyring_in_child=True, watch=False)
        started.append(agent.start())
        return agent

    yield start
    for agent in started:
        agent.stop()


def wait_key(agent: Agent, key: str, timeout: float = 30) -> float:
    """Wait until ``key`` is in use; the seconds it took."""
    began = time.monotonic()
    seq = -1
    while agent.keys.current().fingerprint != fingerprint(key):
        if time.monotonic() - began > timeout:
            raise AssertionError("the key in the keyring was never taken up")
        seq = agent.wait_for_change(seq, 1)
    return time.monotonic() - began


def keyring_cli(op: str, service: str = KEYRING_SERVICE, user: str = KEYRING_USER, secret: str = "") -> None:
    """``keyring set``/``del`` by the keyring's own command line, in another process."""
    done = subprocess.run(
        [sys.executable, "-m", "keyring", op, service, user],
        input=secret,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def keyring_cli_set(key: str) -> None:
    keyring_cli("set", secret=key)


def test_a_key_set_in_the_keyring_by_another_program_is_used_at_once(
    file_keyring: FileKeyring, keyring_agent: Callable[[str | None], Agent], standin: HackatimeStandin
) -> None:
    file_keyring.set_password(KEYRING_SERVICE, KEYRING_USER, SAME_LAST_FOUR)  # a key the server does not know
    agent = keyring_agent(None)
    assert agent.status()["key_source"] == "keyring"
    post_beats(agent, 6, SAME_LAST_FOUR)
    wait_state(agent, "rejected")
    # The backend named its store: it is watched, and never polled.
    assert agent.keys.keyring_stores() == (os.environ[FILE_ENV],)
    assert agent.keys.keyring_poll(blocked=True) is None
    reads = file_keyring.reads

    keyring_cli_set(API_KEY)
    took = wait_key(agent, API_KEY)
    assert standin.wait_for(lambda s: s.count() == 6, 30)  # delivery resumed by itself
    wait_state(agent, "ok")
    status = agent.status()
    assert (status["key_source"], status["key"]["last4"]) == ("keyring", "6f70")  # same last four, new key
    # One read for the change (and none of its own reads was taken for another change).
    assert file_keyring.reads - reads == 1, f"{file_keyring.reads - reads} reads"
    print(f"keyring change taken up in {took:.2f} s")


def test_a_keyring_whose_store_is_unknown_is_polled_while_delivery_waits_for_a_key(
    file_keyring: FileKeyring,
    keyring_agent: Callable[[str | None], Agent],
    standin: HackatimeStandin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(UNNAMED_ENV, "1")
    agent = keyring_agent(OTHER_KEY)  # a rejected key in ~/.wakatime.cfg, none in the keyring
    post_beats(agent, 4, OTHER_KEY)
    wait_state(agent, "rejected")
    assert agent.keys.keyring_stores() == ()
    assert agent.keys.keyring_poll(blocked=True) == KEYRING_POLL_BLOCKED
    assert agent.keys.keyring_poll(blocked=False) == KEYRING_POLL_IDLE  # delivery runs: a slow check only

    keyring_cli_set(API_KEY)  # nothing announces it: the poll finds it
    wait_key(agent, API_KEY)
    assert standin.wait_for(lambda s: s.count() == 4, 30)
    assert agent.status()["key_source"] == "keyring"


def test_another_process_storing_a_key_tells_the_running_agent(
    file_keyring: FileKeyring,
    keyring_agent: Callable[[str | None], Agent],
    standin: HackatimeStandin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(UNNAMED_ENV, "1")  # no store to watch, and delivery runs: no fast poll either
    agent = keyring_agent(API_KEY)
    wait_state(agent, "unknown")
    assert agent.keys.keyring_poll(blocked=False) == KEYRING_POLL_IDLE
    code = (
        "import sys; from pathlib import Path; from agent.keys import save_key; "
        "print(save_key(sys.stdin.read(), 'keyring', Path(sys.argv[1]), Path(sys.argv[2]), in_child=False))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(agent.config.config_dir), str(agent.config.wakatime_cfg)],
        input=SAME_LAST_FOUR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "stored in the OS keyring" in done.stdout, done.stderr
    wait_key(agent, SAME_LAST_FOUR)  # long before the slow check: the process said so
    assert agent.status()["key_source"] == "keyring"


# ---- a Secret Service on the session bus: its own signals tell of a change ----------------------------


@pytest.fixture
def secret_service(
    _isolated_home: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SecretServiceBus]:
    """GNOME Keyring on a private session bus; this process and its children use it as their keyring."""
    with SecretServiceBus(tmp_path_factory.mktemp("bus"), _isolated_home) as bus:
        for name, value in bus.env.items():
            monkeypatch.setenv(name, value)
        yield bus


def test_a_key_changed_in_the_secret_service_by_another_program_is_heard_while_delivery_runs(
    secret_service: SecretServiceBus, keyring_agent: Callable[[str | None], Agent], standin: HackatimeStandin
) -> None:
    keyring_cli_set(API_KEY)
    agent = keyring_agent(None)
    assert agent.status()["key_source"] == "keyring"
    post_beats(agent, 3, API_KEY)
    assert standin.wait_for(lambda s: s.count() == 3, 30)
    # Nothing on disk to watch, and no timer: the keyring's signals are listened to instead.
    assert agent.keys.keyring_stores() == ()
    assert agent.keys.keyring_signals() == (SECRET_SERVICE_SIGNALS,)
    assert agent.key_files is not None and agent.key_files.poll() is None
    reads = agent.keys.keyring_reads

    keyring_cli_set(SAME_LAST_FOUR)  # no key-changed file, no store: only the keyring itself says so
    took = wait_key(agent, SAME_LAST_FOUR)
    assert agent.status()["key"]["last4"] == "6f70"
    assert agent.keys.keyring_reads - reads == 1, f"{agent.keys.keyring_reads - reads} reads"
    print(f"Secret Service change taken up in {took:.2f} s")


def test_a_good_key_set_in_the_secret_service_resumes_delivery(
    secret_service: SecretServiceBus, keyring_agent: Callable[[str | None], Agent], standin: HackatimeStandin
) -> None:
    keyring_cli_set(SAME_LAST_FOUR)  # a key the server does not know
    agent = keyring_agent(None)
    post_beats(agent, 5, SAME_LAST_FOUR)
    wait_state(agent, "rejected")
    assert agent.key_files is not None and agent.key_files.poll() is None  # no fast poll while it waits

    keyring_cli_set(API_KEY)
    wait_key(agent, API_KEY)
    assert standin.wait_for(lambda s: s.count() == 5, 30)  # delivery resumed by itself
    wait_state(agent, "ok")
    status = agent.status()
    assert (status["key_source"], status["key"]["last4"]) == ("keyring", "6f70")


def test_the_listener_hears_only_the_items_the_key_lives_under(secret_service: SecretServiceBus) -> None:
    heard: queue.Queue[str] = queue.Queue()
    listener = KeyringSignals([SECRET_SERVICE_SIGNALS], heard.put, address=secret_service.address).start()
    try:
        # Another program's secret, then ours: the first word heard is about ours. The
        # signals come in the order the keyring sent them, on one thread.
        keyring_cli("set", "another-app", KEYRING_USER, "not-our-key")
        keyring_cli("set", KEYRING_SERVICE, "another-user", "not-our-key-either")
        keyring_cli_set(API_KEY)
        ours = heard.get(timeout=30)
        assert ours.startswith("/org/freedesktop/secrets/collection/"), ours
        keyring_cli("set", "another-app", KEYRING_USER, "changed")
        keyring_cli("del")  # ours, deleted: heard, though it can no longer be asked for its attributes
        assert heard.get(timeout=30) == ours
        assert heard.empty()
    finally:
        listener.stop()
    assert not listener.alive()


def test_a_change_made_before_the_listener_subscribed_is_told_at_once(secret_service: SecretServiceBus) -> None:
    """The agent reads the keyring before it can know to listen: what changed in between is not lost."""
    heard: queue.Queue[str] = queue.Queue()
    address = secret_service.address

    def listen(since: KeyringResult) -> str | None:
        listener = KeyringSignals([SECRET_SERVICE_SIGNALS], heard.put, address=address).start(since=since)
        listener.stop()
        return None if heard.empty() else heard.get_nowait()  # told on the caller's thread, before start returns

    keyring_cli_set(API_KEY)
    answer = read_keyring_in_child()
    assert answer.key == API_KEY and answer.problem is None
    assert listen(answer) is None  # nothing since that read
    # The same item, changed after a read that began a minute earlier: an item of ours is named.
    assert (listen(replace(answer, asked_at=answer.asked_at - 60)) or "").startswith("/org/freedesktop/secrets/")
    keyring_cli("del")
    assert listen(answer) == "/org/freedesktop/secrets"  # it held a key, and there is none now
    assert listen(replace(answer, key=None)) is None  # it held none, and still does
    assert listen(replace(answer, key=None, problem="the OS keyring did not answer")) == "/org/freedesktop/secrets"
