"""OAuth 2 (Doorkeeper) as Hackatime runs it (hackatime-api.md §1.2, §5.3): authorization code with PKCE.

The stand-in plays the signed-in browser too: ``GET /oauth/authorize`` answers as if the
user had clicked "Authorize" (a 302 to the client's redirect URI with ``code`` and
``state``), so a test's "browser" only has to follow redirects. Loopback redirect URIs
match whatever the port (RFC 8252 §7.3), as a native app's one-shot listener needs.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import urllib.parse
from dataclasses import dataclass

from .users import User


@dataclass(frozen=True)
class OAuthApp:
    client_id: str
    redirect_uri: str  # e.g. http://127.0.0.1/callback: any port on loopback


@dataclass(frozen=True)
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    scopes: tuple[str, ...]
    user: User


class OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _matches(registered: str, given: str) -> bool:
    want, got = urllib.parse.urlsplit(registered), urllib.parse.urlsplit(given)
    if want.hostname in ("127.0.0.1", "localhost", "::1"):
        return (want.scheme, want.hostname, want.path) == (got.scheme, got.hostname, got.path)
    return registered == given


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


class OAuthProvider:
    """Registered apps, codes and tokens. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.apps: dict[str, OAuthApp] = {}
        self._codes: dict[str, _Grant] = {}
        self._tokens: dict[str, tuple[User, tuple[str, ...]]] = {}
        self.browser_user: User | None = None  # who is signed in to the web app

    def register(self, app: OAuthApp) -> None:
        with self._lock:
            self.apps[app.client_id] = app

    def authorize(self, query: dict[str, str]) -> str:
        """The redirect URL after the user approves (or an error redirect); OAuthError when none is safe."""
        app = self.apps.get(query.get("client_id", ""))
        redirect = query.get("redirect_uri", "")
        if app is None:
            raise OAuthError("invalid_client", "Client authentication failed due to unknown client")
        if not _matches(app.redirect_uri, redirect):
            raise OAuthError("invalid_redirect_uri", "The requested redirect uri is malformed or doesn't match")
        state = query.get("state")

        def back(**params: str) -> str:
            if state is not None:
                params["state"] = state
            return redirect + ("&" if "?" in redirect else "?") + urllib.parse.urlencode(params)

        if query.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return back(error="invalid_request", error_description="PKCE with S256 is required of public clients")
        scopes = tuple((query.get("scope") or "profile").split())
        if any(s not in ("profile", "read") for s in scopes):
            return back(error="invalid_scope")
        if self.browser_user is None:
            return back(error="access_denied")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(app.client_id, redirect, query["code_challenge"], scopes, self.browser_user)
        return back(code=code)

    def token(self, form: dict[str, str]) -> dict[str, object]:
        if form.get("grant_type") != "authorization_code":
            raise OAuthError("unsupported_grant_type", "The authorization grant type is not supported")
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # a code is good once
        if (
            grant is None
            or grant.client_id != form.get("client_id")
            or grant.redirect_uri != form.get("redirect_uri")
            or s256(form.get("code_verifier", "")) != grant.challenge
        ):
            raise OAuthError("invalid_grant", "The provided authorization grant is invalid, expired or revoked")
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (grant.user, grant.scopes)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 16 * 365 * 86400,  # 16 years (§1.2)
            "scope": " ".join(grant.scopes),
            "created_at": 0,
        }

    def issue(self, user: User, scopes: tuple[str, ...]) -> str:
        """A token as a finished sign-in leaves it (for tests that start signed in)."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (user, scopes)
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def user_for(self, authorization: str | None, scope: str) -> tuple[User | None, int]:
        """The token's user, or the Doorkeeper status to answer: 401 bad token, 403 missing scope."""
        scheme, _, token = (authorization or "").partition(" ")
        with self._lock:
            found = self._tokens.get(token.strip()) if scheme == "Bearer" else None
        if found is None:
            return None, 401
        user, scopes = found
        return (user, 200) if scope in scopes else (None, 403)
