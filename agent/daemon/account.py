"""The account on the agent: the API key (show, check, set, forget) and the server it uploads to."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, cast
from urllib.parse import urlsplit

from agent.config import DEFAULT_API_URL, ENV_API_URL, SETTINGS_FILE, is_self_url
from agent.contract import DESTINATION, KeyAnswer, KeyForgetAnswer, KeySetAnswer, Preferences, ServerAnswer
from agent.keys import (
    KeyCheck,
    ServerRefused,
    Where,
    check_key,
    client_for,
    fingerprint,
    forget_key,
    malformed_reason,
    set_key,
)
from agent.secrets import mask
from agent.settings import PREFERENCES, AppSettings, checked_preferences

from .base import AgentBase

log = logging.getLogger(__name__)


class AccountControl(AgentBase):
    # ---- the key, for the control API ---------------------------------------------------------

    def key_info(self) -> KeyAnswer:
        with self._recheck_lock:
            next_check = self._recheck.due_in()
        info = self.keys.current().describe(next_check)
        return {
            **info,
            "auth_state": self.store.destination(DESTINATION)["auth_state"],
            "notices": list(self.keys.notices),
            "signed_in": self._oauth_token is not None,
        }

    def check_key(self, candidate: str | None = None) -> KeyCheck:
        """Ask the server about the key in use, or about ``candidate`` (typed in the settings)."""
        if candidate is None:
            return self.recheck_key() if self.key_rejected() else check_key(self.client)
        problem = malformed_reason(candidate.strip())
        if problem:
            return KeyCheck("malformed", problem)
        with client_for(self.config, candidate.strip()) as client:
            return check_key(client)

    def set_key(self, key: str, where: Where, *, check: bool = True) -> KeySetAnswer:
        """Validate and store a new key, then use it at once (raises KeyRefused / KeyStoreError)."""
        stored, verdict = set_key(self.config, key, where, check=check, in_child=self._keyring_in_child)
        self.keys.reload(keyring=True)
        log.info("a new API key %s was %s", mask(key), stored)
        return {"stored": stored, "check": verdict.as_dict(), "key": self.key_info(), "warning": self._outranked(key)}

    def forget_key(self) -> KeyForgetAnswer:
        forgotten = forget_key(self.config.config_dir, in_child=self._keyring_in_child)
        self.keys.reload(keyring=True)
        log.info("the API key was %s", forgotten)
        return {"forgotten": forgotten, "key": self.key_info()}

    def _outranked(self, key: str) -> str | None:
        current = self.keys.current()
        if current.fingerprint == fingerprint(key.strip()):
            return None
        return (
            f"the key from {current.source} ({mask(current.key)}) outranks it and stays in use"
            if current.key
            else "it is not in use: no key could be read back"
        )

    # ---- the server ----------------------------------------------------------------------------------

    def set_server(self, api_url: str) -> ServerAnswer:
        """Upload to another WakaTime-compatible server from now on (raises ServerRefused)."""
        url = api_url.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServerRefused(400, f"{url!r} is not an http(s) URL, such as {DEFAULT_API_URL}")
        if self.server is not None and is_self_url(url, self.server.port):
            raise ServerRefused(400, "that is this agent's own intake: heartbeats would go round in circles")
        flags = self.config.key_sources.flags if self.config.key_sources else None
        env = self.config.key_sources.env if self.config.key_sources else {}
        if (flags and flags.api_url) or env.get(ENV_API_URL):
            raise ServerRefused(400, f"--api-url or {ENV_API_URL} sets the server for this agent; change it there")
        candidate = replace(self.config, api_url=url)
        key = self.keys.key
        if key:
            with client_for(candidate, key) as client:
                verdict = check_key(client)
        else:
            verdict = KeyCheck("missing", "no API key is configured")
        if verdict.verdict == "unreachable":
            raise ServerRefused(502, f"{url} did not answer like a WakaTime-compatible server: {verdict.reason}")
        AppSettings(self.config.config_dir / SETTINGS_FILE).set("api_url", url)
        self.config = candidate
        self.client.set_api_url(url)
        self.store.set_destination(DESTINATION, url)
        self.store.update_destination(DESTINATION, auth_state="unknown" if key else "missing", backoff_until=None)
        with self._recheck_lock:
            self._recheck.reset()
        self._forget_server_figures()
        log.info("uploading to %s from now on (the key there: %s)", url, verdict.verdict)
        self.changed(wake=True)
        return {"api_url": url, "check": verdict.as_dict()}

    # ---- the app's preferences (notifications, the OAuth client id) ------------------------------------

    def preferences(self) -> Preferences:
        settings = AppSettings(self.config.config_dir / SETTINGS_FILE)
        return cast(Preferences, {name: settings.get(name) for name in PREFERENCES})

    def set_preferences(self, changes: dict[str, Any]) -> Preferences:
        """Check every change, then save them in one write (raises SettingsError, nothing saved)."""
        AppSettings(self.config.config_dir / SETTINGS_FILE).update(checked_preferences(changes))
        self.changed()  # the tray hears of it at once (status carries the notifications switch)
        return self.preferences()
