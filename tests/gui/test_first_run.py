"""The first start, as a person meets it: with and without a ~/.wakatime.cfg, projects offered but
nothing watched until they say so — against a real agent, real folders, real widgets."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from app import first_run, first_run_marker
from app import main as app_main
from app.first_run import FirstRunWindow
from app.model import AgentModel
from app.settings_window import SettingsWindow
from app.tray import TrayApp
from app.windows import WindowContext
from app.windows.host import WindowHost
from tests.conftest import API_KEY, MemoryKeyring


def make_projects(home: Path) -> dict[str, Path]:
    """A home folder as people have them: repos at several depths, and places never to look."""
    made = {
        "alpha": home / "code" / "alpha",
        "beta": home / "code" / "beta",  # a worktree: .git is a file
        "gamma": home / "work" / "team" / "gamma",
    }
    (made["alpha"] / ".git").mkdir(parents=True)
    (made["alpha"] / "vendor" / "inner" / ".git").mkdir(parents=True)  # inside a project: not offered
    made["beta"].mkdir(parents=True)
    (made["beta"] / ".git").write_text("gitdir: /elsewhere/.git/worktrees/beta\n")
    (made["gamma"] / ".git").mkdir(parents=True)
    (home / "a" / "b" / "c" / "d" / "too-deep" / ".git").mkdir(parents=True)
    (home / ".cache" / "hidden" / ".git").mkdir(parents=True)
    (home / "code" / "node_modules" / "pkg" / ".git").mkdir(parents=True)
    return made


def window(model: AgentModel, home: Path, qtbot: Any) -> FirstRunWindow:
    config_dir = home / "config"
    w = FirstRunWindow(model, config_dir, first_run.existing_setup(), home=home)
    qtbot.addWidget(w)
    w.show()
    return w


def test_an_existing_wakatime_cfg_is_picked_up_and_said_so(model: AgentModel, _isolated_home: Path, qtbot: Any) -> None:
    (_isolated_home / ".wakatime.cfg").write_text(f"[settings]\napi_key = {API_KEY}\n")
    w = window(model, _isolated_home, qtbot)
    text = w.key_label.text()
    assert str(_isolated_home / ".wakatime.cfg") in text and API_KEY[-4:] in text
    assert API_KEY not in text and API_KEY[:-4] not in text  # the last four characters at most
    assert not w.set_key.isVisible()


def test_editors_already_routed_through_the_agent_are_recognised(
    model: AgentModel, _isolated_home: Path, qtbot: Any
) -> None:
    (_isolated_home / ".wakatime.cfg").write_text(
        f"[settings]\napi_key = {API_KEY}\napi_url = http://127.0.0.1:47325/api/hackatime/v1\n"
    )
    assert "already send their heartbeats through this app" in window(model, _isolated_home, qtbot).key_label.text()


def test_without_a_key_the_settings_open_at_the_key_and_the_key_set_there_is_said(
    make_agent: Callable[..., Any],
    make_model: Callable[..., AgentModel],
    _memory_keyring: MemoryKeyring,
    _isolated_home: Path,
    tmp_path: Path,
    qtbot: Any,
) -> None:
    agent = make_agent(api_key=None, keyring_in_child=False)  # the test keyring lives in this process
    model = make_model(agent.config.data_dir)
    model.start()
    qtbot.waitUntil(lambda: model.status is not None, timeout=10_000)
    # The window process, as the first start opens it: the welcome window from its factory.
    host = WindowHost(WindowContext(model, tmp_path, tmp_path / "logs", tmp_path / "config"), keep_alive_s=3600)
    with qtbot.waitSignal(host.opened, timeout=10_000, check_params_cb=lambda name: name == "settings"):
        welcome = host.open("welcome")
    assert isinstance(welcome, FirstRunWindow)
    assert "No Hackatime API key yet: the settings are open at the key" in welcome.key_label.text()
    settings = host.windows["settings"]
    assert isinstance(settings, SettingsWindow) and settings.isVisible()
    qtbot.waitUntil(settings.is_ready, timeout=10_000)
    assert settings.tabs.currentIndex() == 0 and settings.tabs.tabText(0) == "Account"
    assert settings.focusWidget() is settings.key_edit

    # The key goes in where the settings take it (checked, then kept); the welcome window says so.
    settings.key_edit.setText(API_KEY)
    qtbot.waitUntil(settings.save_key_button.isEnabled, timeout=10_000)
    with qtbot.waitSignal(settings.applied, timeout=10_000):
        qtbot.mouseClick(settings.save_key_button, Qt.MouseButton.LeftButton)
    assert list(_memory_keyring.secrets.values()) == [API_KEY]
    qtbot.waitUntil(lambda: "is used; nothing to set up" in welcome.key_label.text(), timeout=10_000)
    assert API_KEY[-4:] in welcome.key_label.text() and API_KEY not in welcome.key_label.text()
    assert not welcome.set_key.isVisible()
    host.close()


def test_the_settings_are_opened_at_the_key_once_then_on_request(
    make_agent: Callable[..., Any], make_model: Callable[..., AgentModel], _isolated_home: Path, qtbot: Any
) -> None:
    agent = make_agent(api_key=None, keyring_in_child=False)
    model = make_model(agent.config.data_dir)
    model.start()
    qtbot.waitUntil(lambda: model.status is not None, timeout=10_000)
    w = FirstRunWindow(model, _isolated_home / "config", first_run.existing_setup(), home=_isolated_home)
    qtbot.addWidget(w)
    asked: list[str] = []
    w.open_window.connect(asked.append)
    w.show()
    # Asked for once the welcome window is up, not while it shows: the window process raises
    # what it shows last, and the settings must end up on top.
    assert asked == []
    qtbot.waitUntil(lambda: asked == ["settings"], timeout=5000)
    assert w.set_key.isVisible()
    model.refresh()  # more answers from the agent, still no key: not opened again by itself
    qtbot.waitSignal(model.changed, timeout=10_000).wait()
    assert asked == ["settings"]
    qtbot.mouseClick(w.set_key, Qt.MouseButton.LeftButton)
    assert asked == ["settings", "settings"]


def test_an_unreadable_wakatime_cfg_is_said_beside_the_missing_key(
    make_agent: Callable[..., Any], make_model: Callable[..., AgentModel], _isolated_home: Path, qtbot: Any
) -> None:
    (_isolated_home / ".wakatime.cfg").write_text("[settings\napi_key = broken\n")
    agent = make_agent(api_key=None, keyring_in_child=False)
    model = make_model(agent.config.data_dir)
    model.start()
    qtbot.waitUntil(lambda: model.status is not None, timeout=10_000)
    w = window(model, _isolated_home, qtbot)
    text = w.key_label.text()
    assert f"{_isolated_home / '.wakatime.cfg'} could not be read" in text and "No Hackatime API key yet" in text


def test_projects_are_offered_and_only_the_checked_ones_watched(
    model: AgentModel, agent: Any, _isolated_home: Path, qtbot: Any
) -> None:
    made = make_projects(_isolated_home)
    w = window(model, _isolated_home, qtbot)
    with qtbot.waitSignal(w.scanned, timeout=10_000) as found:
        w.start_scan()
    assert found.args[0] == sorted(made.values(), key=lambda p: str(p).lower())
    rows = [w.folders.item(i) for i in range(w.folders.count())]
    assert [r.text() for r in rows] == [str(p) for p in found.args[0]]
    assert all(r.checkState() == Qt.CheckState.Unchecked for r in rows)  # nothing without a yes
    assert not w.watch_button.isEnabled()
    assert agent.watched()["folders"] == []

    rows[0].setCheckState(Qt.CheckState.Checked)  # alpha
    rows[2].setCheckState(Qt.CheckState.Checked)  # gamma
    assert w.watch_button.isEnabled()
    with qtbot.waitSignal(w.watched, timeout=10_000):
        qtbot.mouseClick(w.watch_button, Qt.MouseButton.LeftButton)
    watched = sorted(str(Path(p)) for p in agent.watched()["folders"])
    assert watched == sorted(str(made[name].resolve()) for name in ("alpha", "gamma"))
    assert "Watching 2 folders" in w.folders_label.text()


def test_closing_ends_the_first_run_for_good(model: AgentModel, _isolated_home: Path, qtbot: Any) -> None:
    w = window(model, _isolated_home, qtbot)
    assert first_run_marker.needed(w.config_dir)
    w.close()
    assert not first_run_marker.needed(w.config_dir)


def test_the_search_is_bounded(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"p{i:02d}" / ".git").mkdir(parents=True)
    assert len(first_run.find_projects(tmp_path)) == 30
    # The home folder and 5 of its folders looked into: 5 projects, however many there are.
    assert len(first_run.find_projects(tmp_path, max_dirs=6)) == 5
    assert first_run.find_projects(tmp_path, max_depth=0) == []


def test_the_start_at_login_box_writes_and_removes_the_login_entry(
    model: AgentModel, _isolated_home: Path, qtbot: Any
) -> None:
    entry = Path(os.environ["XDG_CONFIG_HOME"]) / "autostart" / "hackatime-desktop.desktop"
    w = window(model, _isolated_home, qtbot)
    assert not w.login.isChecked() and not entry.exists()  # a source checkout: off until asked
    w.login.click()
    assert entry.is_file() and w.login.isChecked()
    w.login.click()
    assert not entry.exists()


def test_the_bundle_starts_at_login_from_its_first_run(tmp_path: Path) -> None:
    entry = Path(os.environ["XDG_CONFIG_HOME"]) / "autostart" / "hackatime-desktop.desktop"
    first_run.start_at_login_by_default(frozen=False)
    assert not entry.exists()  # a source checkout never turns it on by itself
    first_run.start_at_login_by_default(frozen=True)
    assert entry.is_file()


def test_editors_are_routed_through_the_agent_with_a_backup_and_an_exact_undo(
    model: AgentModel, agent: Any, _isolated_home: Path, qtbot: Any
) -> None:
    cfg = _isolated_home / ".wakatime.cfg"
    original = (
        "# my editors' settings\n[settings]\n"
        f"api_url = https://wakapi.example.org/api\napi_key = {API_KEY}\nhide_branch_names = true\n"
    )
    cfg.write_text(original)
    w = window(model, _isolated_home, qtbot)
    assert "straight to the server in" in w.editors_label.text() and w.route.isVisible()
    assert not w.undo_route.isVisible()

    with qtbot.waitSignal(w.routing_changed, timeout=10_000):
        qtbot.mouseClick(w.route, Qt.MouseButton.LeftButton)
    routed = cfg.read_text()
    assert f"api_url = {agent.intake_url}" in routed and "heartbeat_rate_limit_seconds = 0" in routed
    assert "# my editors' settings" in routed and "hide_branch_names = true" in routed
    assert cfg.with_name(".wakatime.cfg.hackatime-desktop.bak").read_text() == original
    assert "now send their heartbeats to this app" in w.editors_label.text() and w.undo_route.isVisible()

    with qtbot.waitSignal(w.routing_changed, timeout=10_000):
        qtbot.mouseClick(w.undo_route, Qt.MouseButton.LeftButton)
    assert cfg.read_text() == original
    assert not w.undo_route.isVisible() and w.route.isVisible()


def test_the_first_start_opens_the_welcome_window_in_the_window_process_once(
    tray: TrayApp, tmp_path: Path, qtbot: Any
) -> None:
    config_dir = tmp_path / "config"
    default_dirs = app_main.parse_args([])  # the platform's own dirs, as a person starts it
    with qtbot.waitSignal(tray.windows.opened, timeout=60_000) as opened:
        app_main.offer_first_run(default_dirs, config_dir, tray)
    assert opened.args == ["welcome"]
    first_run_marker.mark_done(config_dir)  # what closing the window does (tested above)
    asked: list[str] = []
    tray.windows.opened.connect(asked.append)
    app_main.offer_first_run(default_dirs, config_dir, tray)
    # A test's or a portable installation's own data dir never gets one either.
    app_main.offer_first_run(app_main.parse_args(["--data-dir", str(tmp_path)]), tmp_path / "other", tray)
    assert tray.windows._pending == [] and asked == []  # nothing asked of the window process


def test_a_key_kept_elsewhere_is_recognised_through_the_agent(
    model: AgentModel, _isolated_home: Path, qtbot: Any
) -> None:
    w = window(model, _isolated_home, qtbot)  # no ~/.wakatime.cfg; the agent has its key from elsewhere
    assert f"Your API key ({model.status['api_key']}, from " in w.key_label.text()
    assert API_KEY not in w.key_label.text() and not w.set_key.isVisible()
