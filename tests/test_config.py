"""Configuration order and ~/.wakatime.cfg as Hackatime's setup writes it."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import keyring.backend
import pytest

from agent.config import DEFAULT_API_URL, DEFAULT_PORT, Flags, load_config
from agent.secrets import (
    KEYRING_SERVICE,
    KEYRING_USER,
    RedactingFilter,
    mask,
    read_keyring_in_child,
    redact,
    remember_secret,
)
from agent.settings import AppSettings, SettingsError
from tests.conftest import API_KEY, MemoryKeyring

HACKATIME_CFG = f"""[settings]
api_url = https://hackatime.hackclub.com/api/hackatime/v1
api_key = {API_KEY}
heartbeat_rate_limit_seconds = 30
exclude_unknown_project = true
hostname = orpheus-laptop
hide_branch_names = true
exclude =
    ^/tmp/
    \\.secret$

[projectmap]
^/home/o/work/(\\w+) = client-{{0}}
"""


def write_cfg(home: Path, text: str = HACKATIME_CFG) -> Path:
    path = home / ".wakatime.cfg"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_hackatime_cfg_alone_is_a_full_setup(_isolated_home: Path) -> None:
    write_cfg(_isolated_home)
    config = load_config(Flags(), env={"WAKATIME_HOME": str(_isolated_home)})
    assert config.api_url == DEFAULT_API_URL
    assert config.api_key == API_KEY and config.key_source == "wakatime.cfg"
    assert config.machine == "orpheus-laptop"
    assert config.port == DEFAULT_PORT
    assert config.capture.exclude_unknown_project is True
    assert config.capture.hide_branch_names is True
    assert config.capture.exclude == ("^/tmp/", "\\.secret$")
    assert config.capture.projectmap == (("^/home/o/work/(\\w+)", "client-{0}"),)
    assert API_KEY not in repr(config) and config.api_key == API_KEY


def test_precedence_flags_env_keyring_cfg(_isolated_home: Path, _memory_keyring: MemoryKeyring) -> None:
    write_cfg(_isolated_home)
    env = {"WAKATIME_HOME": str(_isolated_home)}
    other = "11111111-2222-4333-8444-555555555555"
    _memory_keyring.set_password(KEYRING_SERVICE, KEYRING_USER, other)
    assert load_config(Flags(), env=env).key_source == "keyring"
    assert load_config(Flags(), env={**env, "WAKATIME_API_KEY": "env-key-123"}).api_key == "env-key-123"
    assert load_config(Flags(api_key="flag-key-123"), env={**env, "WAKATIME_API_KEY": "x"}).api_key == "flag-key-123"
    assert (
        load_config(Flags(), env={**env, "HACKATIME_API_URL": "https://w.example/api"}).api_url
        == "https://w.example/api"
    )


def test_api_url_pointing_at_the_agent_itself_is_not_followed(_isolated_home: Path) -> None:
    write_cfg(_isolated_home, f"[settings]\napi_url = http://127.0.0.1:{DEFAULT_PORT}/api/hackatime/v1\napi_key = k\n")
    config = load_config(Flags(), env={"WAKATIME_HOME": str(_isolated_home)})
    assert config.api_url == DEFAULT_API_URL
    assert any("points at this agent" in n for n in config.notices)


def test_vault_command_supplies_the_key(_isolated_home: Path) -> None:
    script = _isolated_home / "vault.py"
    script.write_text(f"print({API_KEY!r})\n")
    write_cfg(_isolated_home, f"[settings]\napi_key_vault_cmd = {sys.executable} {script}\n")
    config = load_config(Flags(), env={"WAKATIME_HOME": str(_isolated_home)})
    assert (config.api_key, config.key_source) == (API_KEY, "api_key_vault_cmd")


def test_failing_vault_command_is_reported_without_output(_isolated_home: Path) -> None:
    script = _isolated_home / "vault.py"
    script.write_text(f"import sys; print({API_KEY!r}, file=sys.stderr); sys.exit(3)\n")
    write_cfg(_isolated_home, f"[settings]\napi_key_vault_cmd = {sys.executable} {script}\n")
    config = load_config(Flags(), env={"WAKATIME_HOME": str(_isolated_home)})
    assert config.api_key is None
    assert any("exited with status 3" in n for n in config.notices)
    assert not any(API_KEY in n for n in config.notices)


def test_no_keyring_backend_is_reported_not_raised(_isolated_home: Path) -> None:
    import keyring
    from keyring.backends.fail import Keyring as FailKeyring

    keyring.set_keyring(FailKeyring())
    config = load_config(Flags(), env={"WAKATIME_HOME": str(_isolated_home)})
    assert config.api_key is None
    assert any("no usable OS keyring backend" in n for n in config.notices)


def test_broken_cfg_is_a_notice_not_a_crash(_isolated_home: Path) -> None:
    write_cfg(_isolated_home, "this is not ini\n[settings\n")
    config = load_config(Flags(), env={"WAKATIME_HOME": str(_isolated_home)})
    assert config.api_url == DEFAULT_API_URL
    assert any("could not be parsed" in n for n in config.notices)


def test_settings_are_typed(tmp_path: Path) -> None:
    settings = AppSettings(tmp_path / "settings.json")
    settings.set("batch_size", 50)
    with pytest.raises(SettingsError):
        settings.set("batch_size", "fifty")
    with pytest.raises(SettingsError):
        settings.set("no_such_setting", 1)
    assert AppSettings(tmp_path / "settings.json").get("batch_size") == 50
    assert oct((tmp_path / "settings.json").stat().st_mode & 0o777) == "0o600"


def test_keys_never_reach_a_log(tmp_path: Path) -> None:
    remember_secret(API_KEY)
    assert mask(API_KEY) == "<hidden>6f70"
    assert API_KEY not in redact(f"url?api_key={API_KEY}")
    logger = logging.getLogger("test.redaction")
    path = tmp_path / "log.txt"
    handler = logging.FileHandler(path)
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.warning("bad key %s", API_KEY)
        try:
            raise ValueError(f"server said no to {API_KEY}")
        except ValueError:
            logger.exception("failure")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = path.read_text()
    assert "6f70" in text and API_KEY not in text


# ---- the agent's keyring read, in a child process ------------------------------------------------


class FileKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend (the library's interface) over a JSON file, so that a child
    process can be given it with PYTHON_KEYRING_BACKEND; it notes which process read it."""

    priority = 1  # type: ignore[assignment]
    ENV = "HACKATIME_TEST_KEYRING_FILE"

    def _load(self) -> dict[str, Any]:
        path = Path(os.environ[self.ENV])
        return json.loads(path.read_text()) if path.exists() else {"secrets": {}, "readers": []}

    def _save(self, data: dict[str, Any]) -> None:
        Path(os.environ[self.ENV]).write_text(json.dumps(data))

    def get_password(self, service: str, username: str) -> str | None:
        data = self._load()
        data["readers"].append(os.getpid())
        self._save(data)
        secret = data["secrets"].get(f"{service}/{username}")
        return str(secret) if secret is not None else None

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data["secrets"][f"{service}/{username}"] = password
        self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        data["secrets"].pop(f"{service}/{username}", None)
        self._save(data)


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FileKeyring:
    monkeypatch.setenv(FileKeyring.ENV, str(tmp_path / "keyring.json"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", f"{__name__}.FileKeyring")
    return FileKeyring()


def test_the_agent_reads_the_keyring_in_a_child_and_keeps_its_precedence(
    _isolated_home: Path, file_keyring: FileKeyring
) -> None:
    write_cfg(_isolated_home)
    env = {"WAKATIME_HOME": str(_isolated_home)}
    # Nothing in the keyring: ~/.wakatime.cfg supplies the key, with no notice.
    config = load_config(Flags(), env=env, keyring_in_child=True)
    assert (config.api_key, config.key_source, config.notices) == (API_KEY, "wakatime.cfg", ())

    other = "22222222-3333-4444-8555-666666666666"  # a key no other test has registered as a secret
    file_keyring.set_password(KEYRING_SERVICE, KEYRING_USER, other)
    config = load_config(Flags(), env=env, keyring_in_child=True)
    assert (config.api_key, config.key_source) == (other, "keyring")
    assert other not in redact(f"key={other}")  # registered as a secret here, not only in the child
    readers = json.loads(Path(os.environ[FileKeyring.ENV]).read_text())["readers"]
    assert len(readers) == 2 and os.getpid() not in readers  # read by children, never by this process

    # The environment still outranks the keyring, which is then not asked at all.
    assert load_config(Flags(), env={**env, "WAKATIME_API_KEY": "env-key-123"}, keyring_in_child=True).api_key == (
        "env-key-123"
    )
    assert len(json.loads(Path(os.environ[FileKeyring.ENV]).read_text())["readers"]) == 2


def test_the_childs_keyring_problems_are_reported(_isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cfg(_isolated_home)
    env = {"WAKATIME_HOME": str(_isolated_home)}
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    config = load_config(Flags(), env=env, keyring_in_child=True)
    assert (config.api_key, config.key_source) == (API_KEY, "wakatime.cfg")  # the key is still found
    assert config.notices == ()  # a working key elsewhere: the keyring's absence is no problem

    (_isolated_home / ".wakatime.cfg").unlink()
    config = load_config(Flags(), env=env, keyring_in_child=True)
    assert config.api_key is None
    assert any("no usable OS keyring backend" in n for n in config.notices)

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "no_such_module.Keyring")  # the child fails outright
    result = read_keyring_in_child()
    assert result.key is None and result.problem is not None
    assert "could not be read (the reader exited with status 1)" in result.problem
    assert "did not answer within 0 s" in str(read_keyring_in_child(timeout=0).problem)
