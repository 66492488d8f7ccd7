"""Capture on the agent: the watcher and its folders, the watcher's heartbeats, the capture
rules (Tracking in the settings) and routing editor plugins through ~/.wakatime.cfg.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from agent.config import DEFAULT_API_URL, SETTINGS_FILE, reload_capture
from agent.contract import CaptureRules, EditorRouting, WatchAnswer, WatchState
from agent.heartbeat import as_sent_by_wakatime_cli, normalize, user_agent
from agent.settings import AppSettings, SettingsError
from agent.wakatime_cfg import route_editors, routing_state, undo_routing

if TYPE_CHECKING:
    from agent.capture.watcher import Watcher
from .base import AgentBase

log = logging.getLogger(__name__)

CAPTURE_RULES = ("exclude", "include", "hide_file_names", "hide_project_names", "hide_branch_names")


class CaptureControl(AgentBase):
    # ---- capture rules (Tracking in the settings) -------------------------------------------------------

    def capture_rules(self) -> CaptureRules:
        settings = AppSettings(self.config.config_dir / SETTINGS_FILE)
        return cast(CaptureRules, {name: settings.get(name) for name in CAPTURE_RULES})

    def set_capture_rules(self, changes: dict[str, Any]) -> CaptureRules:
        """Validate every change first (nothing is saved if one is bad), save, then capture with them."""
        for name, value in changes.items():
            if name not in CAPTURE_RULES:
                raise SettingsError(f"{name!r} is not a capture rule (one of {', '.join(CAPTURE_RULES)})")
            if name in ("exclude", "include"):
                if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                    raise SettingsError(f"{name} must be a list of patterns")
                for pattern in value:
                    try:
                        re.compile(pattern)
                    except re.error as exc:
                        raise SettingsError(f"{name}: {pattern!r} is not a valid pattern ({exc})") from None
            elif not isinstance(value, bool):
                raise SettingsError(f"{name} must be true or false")
        settings = AppSettings(self.config.config_dir / SETTINGS_FILE)
        for name, value in changes.items():
            settings.set(name, value)
        if self.config.key_sources is not None:
            with self._watch_lock:
                self.config = replace(self.config, capture=reload_capture(self.config.key_sources))
                if self.watcher is not None:
                    # The watcher reads its rules when it starts: start it again with the new ones.
                    self.watcher.stop()
                    self.watcher = None
                    if self.config.capture.watch_dirs:
                        self._ensure_watcher()
        log.info("capture rules changed: %s", ", ".join(sorted(changes)))
        self.changed()
        return self.capture_rules()

    # ---- editors (~/.wakatime.cfg) ------------------------------------------------------------------

    def editors(self) -> EditorRouting:
        cfg = self.config
        return routing_state(cfg.wakatime_cfg, self.intake_url, cfg.config_dir).as_dict(self.client.api_url)

    def route_editors(self) -> EditorRouting:
        """Point editor plugins at this agent; uploads keep going where the file pointed before."""
        cfg = self.config
        with self._editors_lock:
            state, upstream = route_editors(cfg.wakatime_cfg, self.intake_url, cfg.config_dir)
            settings = AppSettings(cfg.config_dir / SETTINGS_FILE)
            if upstream and not settings.get("api_url") and upstream.rstrip("/") != DEFAULT_API_URL:
                # After a restart the file's api_url (now this agent) is skipped; keep its server.
                settings.set("api_url", upstream.rstrip("/"))
        log.info("editor plugins now send to %s (%s backed up)", self.intake_url, cfg.wakatime_cfg)
        self.changed()
        return state.as_dict(self.client.api_url)

    def undo_editor_routing(self) -> EditorRouting:
        cfg = self.config
        with self._editors_lock:
            state = undo_routing(cfg.wakatime_cfg, self.intake_url, cfg.config_dir)
        log.info("editor routing undone in %s", cfg.wakatime_cfg)
        self.changed()
        return state.as_dict(self.client.api_url)

    # ---- the watcher ---------------------------------------------------------------------------

    def submit(self, heartbeats: list[dict[str, Any]], source: str) -> None:
        """The watcher's sink: normalise as wakatime-cli would send them, then the one ingest path
        the intake uses too (raises HeartbeatError on bad input, StoreFull on a full disk)."""
        ua = user_agent(source)
        normalized = [
            normalize(as_sent_by_wakatime_cli(raw), machine=self.config.machine, default_user_agent=ua)
            for raw in heartbeats
        ]
        self.ingest(normalized, source)

    def _ensure_watcher(self) -> Watcher:
        if self.watcher is None:
            from agent.capture.watcher import Watcher

            cfg = self.config
            # The token is a secret that survives restarts, so hidden project names keep
            # their pseudonyms; the agent's own folders are never recorded.
            self.watcher = Watcher(
                self,
                cfg.capture,
                secret=self.token.encode(),
                ignore_paths=[cfg.data_dir, cfg.log_dir, cfg.config_dir],
            )
            self.watcher.start()
        return self.watcher

    def watched(self) -> WatchState:
        if self.watcher is None:
            return {"folders": [], "uncovered": []}
        return {"folders": self.watcher.folders(), "uncovered": self.watcher.uncovered()}

    def watch(self, path: str, *, add: bool) -> WatchAnswer:
        """Add or remove a watched folder now, and remember it in the app settings."""
        folder = str(Path(path).expanduser().resolve())
        with self._watch_lock:
            if add:
                problem = self._ensure_watcher().add_folder(folder)
            else:
                problem = None
                if self.watcher is not None:
                    self.watcher.remove_folder(folder)
            settings = AppSettings(self.config.config_dir / "settings.json")
            saved = [p for p in settings.get("watch_dirs") if str(Path(p).expanduser().resolve()) != folder]
            settings.set("watch_dirs", [*saved, folder] if add else saved)
        self.changed()
        return {**self.watched(), "problem": problem}

    def editor_heartbeat_since(self, entity: str, since: float) -> bool:
        return self.store.editor_heartbeat_since(entity, since)
