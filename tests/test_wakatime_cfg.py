"""Editing ~/.wakatime.cfg: minimal line edits, a backup, and an Undo that restores exactly what it changed."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from agent import contract as C
from agent.config import Flags, load_config
from agent.daemon import Agent
from agent.settings import AppSettings
from agent.wakatime_cfg import (
    CfgEditError,
    backup_path,
    edit_lines,
    route_editors,
    routing_state,
    undo_routing,
    write_cfg,
)
from tests.conftest import API_KEY
from tests.standin import HackatimeStandin, basic_header

INTAKE = "http://127.0.0.1:47325/api/hackatime/v1"
UPSTREAM = "https://hackatime.hackclub.com/api/hackatime/v1"
HACKATIME_CFG = f"""# written by the Hackatime setup script
[settings]
api_url = {UPSTREAM}
api_key = {API_KEY}
heartbeat_rate_limit_seconds = 30
exclude_unknown_project = true

[projectmap]
~/work/(.*) = {{0}}
"""


def test_edit_lines_changes_only_what_it_must() -> None:
    edited = edit_lines(HACKATIME_CFG, {"api_url": INTAKE, "heartbeat_rate_limit_seconds": "0"})
    assert edited == HACKATIME_CFG.replace(UPSTREAM, INTAKE).replace("= 30", "= 0")
    # A missing option goes at the end of [settings], before the blank line and the next section.
    added = edit_lines(HACKATIME_CFG, {"hostname": "box"})
    assert "exclude_unknown_project = true\nhostname = box\n\n[projectmap]" in added
    # Removing one, and a value's indented continuation lines go with it.
    removed = edit_lines("[settings]\nexclude =\n    ^/tmp/\n    ^/var/\ndebug = false\n", {"exclude": None})
    assert removed == "[settings]\ndebug = false\n"
    # No [settings] at all: the section is added.
    assert edit_lines("[other]\na = 1", {"api_key": "k"}) == "[other]\na = 1\n\n[settings]\napi_key = k\n"
    assert edit_lines("", {"api_key": "k"}) == "[settings]\napi_key = k\n"


def test_route_editors_backs_up_then_undo_restores_the_two_settings(_isolated_home: Path, tmp_path: Path) -> None:
    cfg = _isolated_home / ".wakatime.cfg"
    cfg.write_text(HACKATIME_CFG, encoding="utf-8")
    os.chmod(cfg, 0o600)
    config_dir = tmp_path / "config"
    assert routing_state(cfg, INTAKE, config_dir).routed is False

    state, upstream = route_editors(cfg, INTAKE, config_dir)
    assert (state.routed, state.rate_limit, state.can_undo, upstream) == (True, "0", True, UPSTREAM)
    assert backup_path(cfg).read_text(encoding="utf-8") == HACKATIME_CFG
    assert oct(cfg.stat().st_mode & 0o777) == "0o600"
    text = cfg.read_text(encoding="utf-8")
    assert f"api_url = {INTAKE}\n" in text and "# written by the Hackatime setup script" in text

    # Routing twice keeps what Undo restores: the original values, not the routed ones.
    route_editors(cfg, INTAKE, config_dir)
    # The user changes something else meanwhile; Undo leaves it.
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("exclude_unknown_project = true", "debug = true"))
    state = undo_routing(cfg, INTAKE, config_dir)
    assert (state.routed, state.can_undo) == (False, False)
    assert cfg.read_text(encoding="utf-8") == HACKATIME_CFG.replace("exclude_unknown_project = true", "debug = true")
    with pytest.raises(CfgEditError, match="nothing to undo"):
        undo_routing(cfg, INTAKE, config_dir)


def test_undo_leaves_a_setting_the_user_changed_since(_isolated_home: Path, tmp_path: Path) -> None:
    cfg = _isolated_home / ".wakatime.cfg"
    cfg.write_text("[settings]\napi_key = k\n", encoding="utf-8")  # no api_url: plugins used WakaTime's default
    route_editors(cfg, INTAKE, tmp_path)
    cfg.write_text(cfg.read_text().replace("heartbeat_rate_limit_seconds = 0", "heartbeat_rate_limit_seconds = 60"))
    undo_routing(cfg, INTAKE, tmp_path)
    assert cfg.read_text() == "[settings]\napi_key = k\nheartbeat_rate_limit_seconds = 60\n"


def test_a_file_that_cannot_be_written_is_left_as_it_was(_isolated_home: Path, tmp_path: Path) -> None:
    cfg = _isolated_home / ".wakatime.cfg"
    cfg.write_text(HACKATIME_CFG, encoding="utf-8")
    (tmp_path / "blocked").write_text("")  # a file where the config dir should be
    with pytest.raises(CfgEditError):
        write_cfg(_isolated_home / "missing-dir" / ".wakatime.cfg", {"api_key": "k"})
    with pytest.raises(CfgEditError, match="could not be saved"):
        route_editors(cfg, INTAKE, tmp_path / "blocked")
    assert cfg.read_text(encoding="utf-8") == HACKATIME_CFG  # nothing half-applied
    assert not backup_path(cfg).exists()


def test_editors_are_routed_and_undone_through_the_running_agent(
    _isolated_home: Path, tmp_path: Path, standin: HackatimeStandin
) -> None:
    cfg = _isolated_home / ".wakatime.cfg"
    wakapi = "https://wakapi.example.org/api"  # a server that is not Hackatime: uploads must keep going there
    cfg.write_text(HACKATIME_CFG.replace(UPSTREAM, wakapi), encoding="utf-8")
    config = load_config(Flags(data_dir=tmp_path / "data", port=0, api_url=standin.api_url), env={
        "WAKATIME_HOME": str(_isolated_home)})  # fmt: skip
    with Agent(config, synchronous="NORMAL", watch=False, keyring_in_child=False) as agent:
        headers = {"Authorization": f"Bearer {agent.token}"}
        with httpx.Client(base_url=agent.control_url, headers=headers, timeout=30) as control:
            state = control.get(C.EDITORS.url()).json()
            assert (state["routed"], state["api_url"], state["can_undo"]) == (False, wakapi, False)
            state = control.post(C.EDITORS_ROUTE.url()).json()
            assert (state["routed"], state["intake_url"], state["can_undo"]) == (True, agent.intake_url, True)
            assert f"api_url = {agent.intake_url}" in cfg.read_text()
            assert AppSettings(config.config_dir / "settings.json").get("api_url") == wakapi
            # wakatime-cli, as routed, now delivers through the agent with the key from the file.
            beat = [{"time": 1755864000.0, "entity": "/p/a.py", "type": "file"}]
            answer = httpx.post(f"{agent.intake_url}/users/current/heartbeats.bulk", json=beat,
                                headers={"Authorization": basic_header(API_KEY)}, timeout=10)  # fmt: skip
            assert answer.status_code == 201
            state = control.post(C.EDITORS_UNDO.url()).json()
            assert (state["routed"], state["api_url"], state["can_undo"]) == (False, wakapi, False)
            assert cfg.read_text() == HACKATIME_CFG.replace(UPSTREAM, wakapi)
            refused = control.post(C.EDITORS_UNDO.url())
            assert refused.status_code == 409 and "nothing to undo" in refused.json()["error"]
