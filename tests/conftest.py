"""Fixtures shared by every test: isolation from the real home and keyring, and a thread-leak check."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import pytest

API_KEY = "0b6a3e1e-6c1f-4d1e-9a5b-2f3c4d5e6f70"


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend (the library's own interface) that keeps secrets in memory."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.secrets.pop((service, username), None)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never read the developer's ~/.wakatime.cfg, settings or keyring."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WAKATIME_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local/share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local/state"))
    for var in ("WAKATIME_API_KEY", "HACKATIME_API_URL", "HACKATIME_DESKTOP_DATA_DIR", "HACKATIME_DESKTOP_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(autouse=True)
def _memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    """A test that leaves a thread running fails (watchdog's own test suite does the same)."""
    before = {t.ident for t in threading.enumerate()}
    yield
    leaked = [
        t
        for t in threading.enumerate()
        if t.ident not in before and t.is_alive() and not isinstance(t, threading._DummyThread)
    ]
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"


@pytest.fixture
def standin() -> Iterator[Any]:
    from tests.standin import HackatimeStandin, User

    with HackatimeStandin(keys={API_KEY: User(id=1, username="orpheus", timezone="UTC")}) as srv:
        yield srv


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Any]:
    """Build an agent Config for a temp data dir, as the CLI would from flags."""
    from agent.config import Flags, load_config

    def make(api_url: str = "http://127.0.0.1:9/api/hackatime/v1", api_key: str | None = API_KEY, **kw: Any) -> Any:
        data_dir = kw.pop("data_dir", tmp_path / "data")
        return load_config(Flags(data_dir=data_dir, port=0, api_url=api_url, api_key=api_key, **kw), env={})

    return make


@pytest.fixture
def agent(make_config: Callable[..., Any], standin: Any) -> Iterator[Any]:
    """An in-process agent (local API on an ephemeral port) delivering to the stand-in."""
    from agent.daemon import Agent

    # The keyring is this process's test backend, never a real one a child process would find.
    with Agent(make_config(api_url=standin.api_url), synchronous="NORMAL", keyring_in_child=False) as running:
        yield running
