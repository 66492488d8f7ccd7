"""The settings window as a person uses it: offscreen Qt, a real agent in-process and the stand-in."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import keyring
import pytest
from keyring.backends.fail import Keyring as FailKeyring
from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from agent.config import Flags, load_config
from agent.daemon import Agent
from agent.oauth import OAUTH_TOKEN_USER
from agent.secrets import KEYRING_SERVICE
from agent.settings import AppSettings
from app.client import AgentClient
from app.settings_window import SettingsWindow
from app.tasks import TaskRunner
from tests.conftest import API_KEY, MemoryKeyring
from tests.standin import HackatimeStandin, User
from tests.test_key_cli import assert_no_key
from tests.test_oauth import Browser

NEW_KEY = "11111111-2222-4333-8444-555555556f70"  # the same last four as API_KEY
REJECTED = "99999999-9999-4999-8999-999999999999"


@pytest.fixture
def running(_isolated_home: Path, tmp_path: Path, standin: HackatimeStandin) -> Iterator[Agent]:
    cfg = f"[settings]\napi_url = {standin.api_url}\napi_key = {API_KEY}\n"
    (_isolated_home / ".wakatime.cfg").write_text(cfg, encoding="utf-8")
    env = {"WAKATIME_HOME": str(_isolated_home)}
    config = load_config(Flags(data_dir=tmp_path / "data", port=0), env=env)
    with Agent(config, synchronous="NORMAL", watch=False, keyring_in_child=False) as agent:
        yield agent


@pytest.fixture
def opened(
    qtbot: QtBot, runner: TaskRunner, running: Agent, tmp_path: Path
) -> Iterator[tuple[SettingsWindow, list[QUrl]]]:
    urls: list[QUrl] = []
    folder = tmp_path / "project"
    folder.mkdir()
    client = AgentClient(running.config.data_dir)
    window = SettingsWindow(
        client, runner, open_url=urls.append, choose_folder=lambda w: str(folder), config_dir=running.config.config_dir
    )
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.loaded, timeout=30_000):
        window.show()
    yield window, urls
    client.close()


def shown_text(window: SettingsWindow) -> str:
    return "\n".join(label.text() for label in window.findChildren(QLabel))


def type_key(qtbot: QtBot, window: SettingsWindow, key: str) -> dict[str, Any]:
    with qtbot.waitSignal(window.key_checked, timeout=30_000) as checked:
        window.key_edit.setText(key)
    answer: dict[str, Any] = checked.args[0]
    return answer


def test_a_new_key_is_checked_as_typed_and_used_at_once(
    qtbot: QtBot,
    opened: tuple[SettingsWindow, list[QUrl]],
    running: Agent,
    standin: HackatimeStandin,
    _memory_keyring: MemoryKeyring,
) -> None:
    window, urls = opened
    assert "key ending in 6f70, from ~/.wakatime.cfg" in window.key_label.text()
    assert type_key(qtbot, window, "not-a-key")["verdict"] == "malformed"
    assert "not shaped like a Hackatime key" in window.typed_verdict.text()
    assert not window.save_key_button.isEnabled()
    assert type_key(qtbot, window, REJECTED)["verdict"] == "rejected"
    assert "rejected" in window.typed_verdict.text() and not window.save_key_button.isEnabled()

    standin.add_key(NEW_KEY, User(id=1, username="orpheus"))
    answer = type_key(qtbot, window, NEW_KEY)
    assert (answer["verdict"], answer["username"]) == ("accepted", "orpheus")
    assert window.save_key_button.isEnabled()
    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.save_key_button.click()
    assert running.keys.current().key == NEW_KEY and running.keys.current().source == "keyring"
    qtbot.waitUntil(lambda: "from the system keyring" in window.key_label.text(), timeout=30_000)
    assert window.key_edit.text() == ""

    window.get_key_button.click()
    assert urls == [QUrl(standin.url + "/api-key")]
    assert_no_key(shown_text(window))


def test_without_a_keyring_the_window_asks_where_the_key_goes(
    qtbot: QtBot, opened: tuple[SettingsWindow, list[QUrl]], running: Agent, standin: HackatimeStandin
) -> None:
    window, _ = opened
    keyring.set_keyring(FailKeyring())
    standin.add_key(NEW_KEY, User(id=1, username="orpheus"))
    type_key(qtbot, window, NEW_KEY)
    with qtbot.waitSignal(window.refused, timeout=30_000) as refused:
        window.save_key_button.click()
    assert refused.args[0] == "key" and "no usable OS keyring" in refused.args[1]
    assert window.store_choice.isVisible()
    assert "no usable OS keyring" in window.typed_verdict.text()
    assert running.keys.current().key == API_KEY  # nothing half-applied

    file_choice = next(b for b in window.store_group.buttons() if b.property("store") == "file")
    file_choice.setChecked(True)
    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.save_key_button.click()
    assert running.keys.current().source == "settings (plaintext)"
    assert AppSettings(running.config.config_dir / "settings.json").get("plaintext_key") == NEW_KEY
    assert not window.store_choice.isVisible()
    assert_no_key(shown_text(window))


def test_editors_are_routed_and_undone_from_the_window(
    qtbot: QtBot, opened: tuple[SettingsWindow, list[QUrl]], running: Agent, _isolated_home: Path
) -> None:
    window, _ = opened
    cfg = _isolated_home / ".wakatime.cfg"
    before = cfg.read_text()
    assert window.route_button.isEnabled() and not window.undo_button.isEnabled()
    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.route_button.click()
    assert f"api_url = {running.intake_url}" in cfg.read_text()
    assert "send their heartbeats to this app" in window.editors_state.text()
    assert window.undo_button.isEnabled() and not window.route_button.isEnabled()
    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.undo_button.click()
    assert cfg.read_text() == before
    assert window.route_button.isEnabled()


def test_folders_and_pause_apply_at_once(
    qtbot: QtBot, opened: tuple[SettingsWindow, list[QUrl]], running: Agent, tmp_path: Path
) -> None:
    window, urls = opened
    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.add_folder_button.click()
    assert [window.folders.item(i).text() for i in range(window.folders.count())] == [str(tmp_path / "project")]
    assert running.watched()["folders"] == [str(tmp_path / "project")]
    window.folders.setCurrentRow(0)
    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.remove_folder_button.click()
    assert window.folders.count() == 0

    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.pause_button.click()
    assert not running.tracking() and window.pause_button.text() == "Resume tracking"
    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.pause_button.click()
    assert running.tracking()
    window.log_button.click()
    assert urls == [QUrl.fromLocalFile(str(running.config.log_dir))]


def test_sign_in_with_hackatime_uses_the_accounts_key_and_sign_out_forgets_the_token(
    qtbot: QtBot,
    opened: tuple[SettingsWindow, list[QUrl]],
    running: Agent,
    standin: HackatimeStandin,
    _memory_keyring: MemoryKeyring,
) -> None:
    window, _ = opened
    # No client id registered yet: no broken flow, but where one comes from.
    assert not window.sign_in_button.isEnabled()
    assert window.signin_label.text().startswith("Sign in with Hackatime needs an OAuth client id: ")
    assert f"{standin.url}/oauth/applications" in window.signin_label.text()

    heidi = User(id=2, username="heidi")
    standin.add_key(NEW_KEY, heidi)
    standin.sign_in_browser(heidi)
    standin.register_oauth_app("desktop-test")
    window.client_id_edit.setText("two words")
    with qtbot.waitSignal(window.refused, timeout=30_000) as refused:
        window.client_id_button.click()
    assert "one word" in refused.args[1] and not window.sign_in_button.isEnabled()
    window.client_id_edit.setText(" desktop-test ")
    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.client_id_button.click()
    assert AppSettings(running.config.config_dir / "settings.json").get("oauth_client_id") == "desktop-test"
    assert window.sign_in_button.isEnabled()
    browsers: list[Browser] = []
    window.open_url = lambda url: browsers.append(Browser(bytes(url.toEncoded().data()).decode()))
    with qtbot.waitSignal(window.applied, timeout=30_000) as applied:
        window.sign_in_button.click()
    assert applied.args[0] == "signin"
    assert "Signed in" in browsers[0].join().text
    assert running.keys.current().key == NEW_KEY and running.keys.current().source == "keyring"
    assert "heidi@example.org" in window.signin_label.text()
    token = _memory_keyring.get_password(KEYRING_SERVICE, OAUTH_TOKEN_USER)  # kept by the agent
    assert token and running.signed_in()

    qtbot.waitUntil(window.sign_out_button.isEnabled, timeout=30_000)  # once the window knows
    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.sign_out_button.click()
    assert not running.signed_in()
    assert _memory_keyring.get_password(KEYRING_SERVICE, OAUTH_TOKEN_USER) is None
    assert (
        httpx.get(f"{standin.url}/api/v1/authenticated/me", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    assert_no_key(shown_text(window))


def test_another_server_is_checked_then_used_at_once(
    qtbot: QtBot, opened: tuple[SettingsWindow, list[QUrl]], running: Agent, standin: HackatimeStandin
) -> None:
    window, _ = opened
    assert window.server_edit.text() == standin.api_url
    for bad, reason in (("not a url", "is not an http(s) URL"), ("http://127.0.0.1:9/api", "did not answer")):
        window.server_edit.setText(bad)
        with qtbot.waitSignal(window.refused, timeout=30_000) as refused:
            window.server_button.click()
        assert reason in refused.args[1] and reason in window.server_reason.text()
    assert running.client.api_url == standin.api_url  # nothing half-applied

    with HackatimeStandin(keys={API_KEY: User(id=7, username="wakapi-user")}) as other:
        window.server_edit.setText(other.api_url)
        with qtbot.waitSignal(window.applied, timeout=30_000):
            window.server_button.click()
        assert "wakapi-user" in window.server_reason.text()
        running.submit([{"time": 1755864000.0, "entity": "/p/a.py"}], "watcher")
        assert other.wait_for(lambda s: s.count() == 1, 30)
        assert AppSettings(running.config.config_dir / "settings.json").get("api_url") == other.api_url


def test_exclusions_and_privacy_switches_are_refused_in_place_or_applied_at_once(
    qtbot: QtBot, opened: tuple[SettingsWindow, list[QUrl]], running: Agent, tmp_path: Path
) -> None:
    window, _ = opened
    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.add_folder_button.click()  # a watcher runs: it must be restarted with the new rules
    watcher = running.watcher
    window.exclude_edit.setPlainText("secret/\nunclosed(")
    with qtbot.waitSignal(window.refused, timeout=30_000) as refused:
        window.capture_button.click()
    assert "'unclosed(' is not a valid pattern" in refused.args[1] and "unclosed(" in window.capture_reason.text()
    assert running.config.capture.exclude == ()  # nothing half-applied

    window.exclude_edit.setPlainText("secret/")
    window.hide_boxes["hide_project_names"].setChecked(True)
    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.capture_button.click()
    assert running.config.capture.exclude == ("secret/",) and running.config.capture.hide_project_names is True
    assert AppSettings(running.config.config_dir / "settings.json").get("exclude") == ["secret/"]
    assert running.watcher is not None and running.watcher is not watcher
    assert running.watched()["folders"] == [str(tmp_path / "project")]


def test_start_at_login_is_switched_on_and_off_from_the_window(
    qtbot: QtBot, opened: tuple[SettingsWindow, list[QUrl]], _isolated_home: Path
) -> None:
    window, _ = opened
    entry = _isolated_home / ".config" / "autostart" / "hackatime-desktop.desktop"
    assert not window.autostart_box.isChecked() and not entry.exists()
    with qtbot.waitSignal(window.applied, timeout=10_000) as applied:
        window.autostart_box.click()
    assert applied.args == ["autostart"] and entry.is_file() and "Exec=" in entry.read_text(encoding="utf-8")
    assert "Starts at login" in window.autostart_reason.text()
    with qtbot.waitSignal(window.applied, timeout=10_000):
        window.autostart_box.click()
    assert not entry.exists() and not window.autostart_box.isChecked()


def test_start_at_login_that_cannot_be_written_is_refused_in_place(
    qtbot: QtBot, opened: tuple[SettingsWindow, list[QUrl]], _isolated_home: Path
) -> None:
    window, _ = opened
    (_isolated_home / ".config").mkdir(exist_ok=True)
    (_isolated_home / ".config" / "autostart").write_text("a file where the folder should be", encoding="utf-8")
    with qtbot.waitSignal(window.refused, timeout=10_000) as refused:
        window.autostart_box.click()
    assert refused.args[0] == "autostart" and "Could not change starting at login" in refused.args[1]
    assert not window.autostart_box.isChecked()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_port_is_changed_from_the_agent_tab_refused_in_place_when_taken(
    qtbot: QtBot, opened: tuple[SettingsWindow, list[QUrl]], running: Agent, _isolated_home: Path
) -> None:
    window, _ = opened
    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.route_button.click()  # editors send to the agent's intake
    qtbot.waitUntil(lambda: window.port_editors_box.isChecked(), timeout=30_000)
    assert window.port_spin.value() == running.server.port  # type: ignore[union-attr]
    assert "offline queue" in window.port_reason.text()  # what changing it means for the editors

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        window.port_spin.setValue(busy)
        with qtbot.waitSignal(window.refused, timeout=30_000) as refused:
            window.port_button.click()
    assert f"port {busy} is in use" in refused.args[1] and refused.args[1] in window.port_reason.text()
    assert running.server is not None and running.server.port != busy

    port = free_port()
    window.port_spin.setValue(port)
    with qtbot.waitSignal(window.applied, timeout=30_000) as applied:
        window.port_button.click()
    assert applied.args[0] == "port"
    assert running.intake_url == f"http://127.0.0.1:{port}/api/hackatime/v1"
    assert f"api_url = {running.intake_url}" in (_isolated_home / ".wakatime.cfg").read_text()
    assert "Editors send there now" in window.port_reason.text()
    # The window follows the agent to its new port: the next answers come from there.
    qtbot.waitUntil(lambda: window.intake_label.text() == running.intake_url, timeout=30_000)
    assert AppSettings(running.config.config_dir / "settings.json").get("port") == port


def test_notifications_are_switched_from_the_system_tab(
    qtbot: QtBot, opened: tuple[SettingsWindow, list[QUrl]], running: Agent
) -> None:
    window, _ = opened
    assert window.notifications_box.isChecked()
    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.notifications_box.setChecked(False)
    assert running.status()["notifications"] is False
    assert AppSettings(running.config.config_dir / "settings.json").get("notifications") is False
    with qtbot.waitSignal(window.applied, timeout=30_000):
        window.notifications_box.setChecked(True)
    assert running.status()["notifications"] is True
