"""Sign in with Hackatime: OAuth 2 authorization code with PKCE, a loopback redirect (RFC 8252).

The server is Doorkeeper (hackatime-api.md §1.2): the app, registered at
``/oauth/applications`` (its client id is the ``oauth_client_id`` setting), opens
``/oauth/authorize`` in the system browser; the user approves; the browser is sent
to a one-shot listener on ``127.0.0.1:<any port>/callback`` that this module runs;
the code is exchanged for a token (with the PKCE verifier, so no client secret is
needed); the token fetches the user's API key (``/api/v1/authenticated/api_keys``)
and profile (``/me``). The agent keeps the token (in the OS keyring); nothing here logs it.
No Qt: the settings window runs :meth:`LoopbackSignIn.finish` on its helper thread.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx

from .secrets import remember_secret

log = logging.getLogger(__name__)

OAUTH_TOKEN_USER = "oauth_token"  # the keyring entry beside the API key
CALLBACK_PATH = "/callback"
SCOPES = "profile read"
SIGN_IN_TIMEOUT = 300.0  # seconds the listener waits for the browser


class SignInError(RuntimeError):
    """Signing in failed; the message says why (never a token or key)."""


@dataclass(frozen=True)
class SignedIn:
    api_key: str
    token: str
    user_id: int | None
    email: str | None

    def describe(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "email": self.email}


def needs_client_id(origin: str) -> str:
    """What to do when no client id is set: Hackatime registers OAuth apps one by one, and
    this app ships with none (a client id is the registering user's, not ours to invent)."""
    return (
        "Sign in with Hackatime needs an OAuth client id: register this app at "
        f"{origin.rstrip('/')}/oauth/applications (redirect URI http://127.0.0.1/callback, scopes "
        f"{SCOPES.replace(' ', ' and ')}, not confidential) and enter its client id here."
    )


def pkce_pair() -> tuple[str, str]:
    """A code verifier (43–128 characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=")
    return verifier, challenge.decode("ascii")


class LoopbackSignIn:
    """One sign-in. Create it (it starts listening), open :attr:`authorize_url` in the browser,
    then call :meth:`finish` off the GUI thread; :meth:`cancel` ends the wait from any thread."""

    def __init__(self, origin: str, client_id: str, *, timeout: float = 15.0) -> None:
        if not client_id:
            raise SignInError(needs_client_id(origin))
        self.origin = origin.rstrip("/")
        self.client_id = client_id
        self.timeout = timeout
        self.state = secrets.token_urlsafe(16)
        self.verifier, challenge = pkce_pair()
        # The listener's module (http.server) is loaded only here: the agent imports this module
        # for the token's keyring entry and its revocation, and never runs a sign-in itself.
        from .oauth_listener import Listener

        self._listener = Listener(self.state)
        self._cancelled = threading.Event()
        self.redirect_uri = f"http://127.0.0.1:{self._listener.server_address[1]}{CALLBACK_PATH}"
        query = {
            "client_id": client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "scope": SCOPES,
            "state": self.state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        self.authorize_url = f"{self.origin}/oauth/authorize?{urllib.parse.urlencode(query)}"

    def cancel(self) -> None:
        self._cancelled.set()

    def finish(self, wait: float = SIGN_IN_TIMEOUT) -> SignedIn:
        """Wait for the browser's redirect, then exchange the code and fetch the key."""
        try:
            answer = self._wait_for_redirect(wait)
        finally:
            self._listener.server_close()
        if answer.get("state") != self.state:
            raise SignInError("the browser's answer did not come from this sign-in (state mismatch)")
        if "code" not in answer:
            raise SignInError(
                f"the server did not sign you in: {answer.get('error_description') or answer.get('error')}"
            )
        with httpx.Client(timeout=self.timeout) as http:
            token = self._exchange(http, answer["code"])
            remember_secret(token)
            bearer = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            keys = _json(http.get(f"{self.origin}/api/v1/authenticated/api_keys", headers=bearer), "api_keys")
            me = _json(http.get(f"{self.origin}/api/v1/authenticated/me", headers=bearer), "me")
        key = keys.get("token")
        if not isinstance(key, str) or not key:
            raise SignInError("the server's answer held no API key")
        remember_secret(key)
        emails = me.get("emails") if isinstance(me.get("emails"), list) else []
        user_id = me.get("id") if isinstance(me.get("id"), int) else None
        return SignedIn(key, token, user_id, str(emails[0]) if emails else None)

    def _wait_for_redirect(self, wait: float) -> dict[str, str]:
        deadline = time.monotonic() + wait
        self._listener.timeout = 0.25  # how often a cancel is noticed
        while self._listener.answer is None:
            if self._cancelled.is_set():
                raise SignInError("signing in was cancelled")
            if time.monotonic() >= deadline:
                raise SignInError(f"no answer from the browser within {wait / 60:.0f} minutes")
            self._listener.handle_request()
        return self._listener.answer

    def _exchange(self, http: httpx.Client, code: str) -> str:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": self.verifier,
        }
        try:
            response = http.post(f"{self.origin}/oauth/token", data=form)
        except httpx.HTTPError as exc:
            raise SignInError(f"{self.origin} could not be reached ({type(exc).__name__})") from None
        body = _json(response, "token")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise SignInError("the server's token answer held no token")
        return token


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 200:
        try:
            reason = response.json().get("error_description") or response.json().get("error")
        except (ValueError, AttributeError):
            reason = None
        raise SignInError(
            f"the server refused the {what} request (HTTP {response.status_code}{': ' + reason if reason else ''})"
        )
    try:
        data = response.json()
    except ValueError:
        raise SignInError(f"the server's {what} answer was not JSON") from None
    if not isinstance(data, dict):
        raise SignInError(f"the server's {what} answer was not understood")
    return data


def revoke(origin: str, client_id: str, token: str) -> None:
    """Revoke the token at the server, best effort: offline, it is forgotten here all the same
    (the agent deletes it from the keyring) and can be revoked on the website."""
    try:
        httpx.post(f"{origin.rstrip('/')}/oauth/revoke", data={"token": token, "client_id": client_id}, timeout=10)
    except httpx.HTTPError as exc:
        log.info("the sign-in token could not be revoked at %s (%s)", origin, type(exc).__name__)


def server_origin(api_url: str) -> str:
    parts = urllib.parse.urlsplit(api_url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", "", ""))
