""" "Sign in with Hackatime" on the agent: the OAuth access token, kept in the OS keyring beside
the key, for the figures only the sign-in gives (``agent.stats.server_figures``, OAUTH_ORDER).

The settings window runs the sign-in itself (``agent.oauth``), then hands the token over; the
agent keeps it, reads it again at its next start (in a child process, as the key), and on
sign-out revokes it at the server and forgets it. The token never leaves the agent again.
"""

from __future__ import annotations

import logging

from agent.config import SETTINGS_FILE
from agent.contract import SignInAnswer
from agent.oauth import OAUTH_TOKEN_USER, revoke, server_origin
from agent.secrets import KeyringOp, KeyringResult, keyring_call, keyring_call_in_child, remember_secret
from agent.settings import AppSettings

from .base import AgentBase

log = logging.getLogger(__name__)

SIGNED_IN = "signed_in"  # meta: a sign-in's token is in the keyring (read at start only then)


class SignInControl(AgentBase):
    def _token_keyring(self, op: KeyringOp, token: str | None = None) -> KeyringResult:
        if self._keyring_in_child:
            return keyring_call_in_child(op, token, user=OAUTH_TOKEN_USER)
        return keyring_call(op, token, user=OAUTH_TOKEN_USER)

    def signed_in(self) -> bool:
        return self._oauth_token is not None

    def sign_in(self, token: str) -> SignInAnswer:
        """Keep a finished sign-in's token (in the keyring if there is one) and fetch its figures."""
        remember_secret(token)
        kept = self._token_keyring("set", token)
        self._oauth_token = token
        self.store.meta_set(SIGNED_IN, "1" if kept.problem is None else "")
        self._server_stale.set()
        self._stats_due.set()  # the sign-in's figures are fetched now
        log.info("signed in with Hackatime%s", "" if kept.problem is None else f" (not kept: {kept.problem})")
        self.changed()
        return {"signed_in": True, "kept": kept.problem is None, "problem": kept.problem}

    def sign_out(self) -> SignInAnswer:
        """Revoke the token at the server (best effort), forget it here and drop its figures."""
        token, self._oauth_token = self._oauth_token, None
        if token is not None:
            client_id = str(AppSettings(self.config.config_dir / SETTINGS_FILE).get("oauth_client_id"))
            revoke(server_origin(self.client.api_url), client_id, token)
        deleted = self._token_keyring("delete")
        self.store.meta_set(SIGNED_IN, "")
        self.stats.server.forget_signed_in()
        log.info("signed out of Hackatime")
        self.changed()
        return {"signed_in": False, "kept": False, "problem": deleted.problem}

    def _load_sign_in(self) -> None:
        """At start, on a thread of its own: the token of an earlier sign-in, from the keyring."""
        if not self.store.meta_get(SIGNED_IN):
            return  # never signed in: no keyring read
        found = self._token_keyring("get")
        if found.key and self._oauth_token is None:
            self._oauth_token = found.key
            self._stats_due.set()
            self.changed()
        elif found.problem:
            log.warning("the sign-in's token could not be read from the OS keyring: %s", found.problem)
