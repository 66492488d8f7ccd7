"""The HTTP client for Hackatime (and any WakaTime-compatible server).

One ``httpx.Client`` per destination with an explicit timeout, the key sent as
``Authorization: Bearer`` (read on every request from the agent's key owner, so a
changed key is used at once), the machine name as ``X-Machine-Name``, and every
request paced by the shared :class:`~agent.delivery.pacing.RateLimiter`. HTTP statuses
are returned, not raised: callers decide what each one means.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from agent.heartbeat import user_agent

from .pacing import RateLimiter


class HackatimeClient:
    def __init__(
        self,
        api_url: str,
        api_key: str | Callable[[], str | None] | None,
        *,
        machine: str = "",
        timeout: float = 30.0,
        limiter: RateLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
        proxy: str | None = None,
        verify: bool = True,
    ) -> None:
        self.set_api_url(api_url)
        # A plain key (one-shot tools, tests) or where to read the key in use (the agent).
        self._key: Callable[[], str | None] = api_key if callable(api_key) else (lambda: api_key)
        self.limiter = limiter
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            proxy=proxy,
            verify=verify,
            # No X-Machine-Name: on the server it overrides the body's ``machine``, and the
            # frozen payload already carries the machine name it was recorded with.
            headers={"User-Agent": user_agent(), "Accept": "application/json"},
        )

    def set_api_url(self, api_url: str) -> None:
        """Send to another server from the next request on (the settings' server URL)."""
        self.api_url = api_url.rstrip("/")
        parts = urlsplit(self.api_url)
        self.origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))

    @property
    def api_key(self) -> str | None:
        return self._key()

    def _headers(self) -> dict[str, str]:
        key = self._key()
        if key and not (key.isascii() and key.isprintable()):
            # httpx would raise UnicodeEncodeError deep inside the request; say what is wrong instead.
            raise httpx.LocalProtocolError("the API key holds characters an HTTP header cannot carry (malformed key)")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _pace(self, stop: threading.Event | None) -> bool:
        return self.limiter is None or self.limiter.acquire(stop)

    def post_bulk(self, body: bytes, stop: threading.Event | None = None) -> httpx.Response | None:
        """POST a JSON array of at most 100 heartbeats; None when ``stop`` was set while pacing."""
        if not self._pace(stop):
            return None
        return self._http.post(
            f"{self.api_url}/users/current/heartbeats.bulk",
            content=body,
            headers={**self._headers(), "Content-Type": "application/json"},
        )

    def get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """GET a path relative to the API URL, e.g. ``users/current/statusbar/today``."""
        self._pace(None)
        return self._http.get(f"{self.api_url}/{path.lstrip('/')}", params=params, headers=self._headers())

    def get_root(self, path: str, params: dict[str, Any] | None = None, *, token: str | None = None) -> httpx.Response:
        """GET a path on the server's origin, e.g. ``/api/v1/users/my/stats``; with ``token``,
        authenticated by that OAuth token instead of the key (``/api/v1/authenticated/*``)."""
        self._pace(None)
        headers = {"Authorization": f"Bearer {token}"} if token else self._headers()
        return self._http.get(f"{self.origin}/{path.lstrip('/')}", params=params, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HackatimeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
