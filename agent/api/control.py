"""The agent control API for the tray app: ``/agent/v1/...`` on the local server.

Authenticated with a random token kept in the data dir (mode 0600); the tray
reads it from there. Every answer is one JSON object.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .httpserver import HTTPError, Request, Response, Router

if TYPE_CHECKING:
    from agent.daemon import Agent

TOKEN_FILE = "control-token"
RANGES = ("today", "7d", "30d", "all")


def load_or_create_token(data_dir: Path) -> str:
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= 32:
            return token
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token)
    os.chmod(path, 0o600)
    return token


class Control:
    def __init__(self, agent: Agent, token: str) -> None:
        self.agent = agent
        self.token = token

    def register(self, router: Router) -> None:
        routes = (
            ("GET", "/agent/v1/status", self.status),
            ("GET", "/agent/v1/stats", self.stats),
            ("GET", "/agent/v1/stats/projects", self.projects),
            ("POST", "/agent/v1/refresh", self.refresh),
            ("POST", "/agent/v1/sync", self.sync),
            ("POST", "/agent/v1/pause", self.pause),
            ("GET", "/agent/v1/dead", self.dead),
            ("POST", "/agent/v1/dead/retry", self.dead_retry),
            ("POST", "/agent/v1/dead/discard", self.dead_discard),
            ("GET", "/agent/v1/events", self.events),
            ("POST", r"/agent/v1/notices/(?P<id>\d+)/dismiss", self.dismiss_notice),
            ("GET", "/agent/v1/watch", self.watch_list),
            ("POST", "/agent/v1/watch", self.watch_add),
            ("POST", "/agent/v1/watch/remove", self.watch_remove),
        )
        for method, path, handler in routes:
            router.add(method, path, self._guard(handler))

    def _guard(self, handler: Any) -> Any:
        def guarded(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.token.encode()):
                raise HTTPError(401, "Unauthorized: the control token is missing or wrong")
            result: Response = handler(request)
            return result

        return guarded

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        if not request.body.strip():
            return {}
        try:
            data = json.loads(request.body)
        except ValueError:
            raise HTTPError(400, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise HTTPError(400, "the body must be a JSON object")
        return data

    def status(self, request: Request) -> Response:
        return Response(200, self.agent.status())

    def stats(self, request: Request) -> Response:
        return Response(200, self.agent.stats.snapshot())

    def refresh(self, request: Request) -> Response:
        return Response(200, self.agent.refresh_stats())

    def projects(self, request: Request) -> Response:
        range_ = request.param("range") or "7d"
        if range_ not in RANGES:
            raise HTTPError(400, f"range must be one of {', '.join(RANGES)}")
        local = self.agent.stats.local(range_)
        return Response(200, {"range": range_, "projects": local["projects"]})

    def sync(self, request: Request) -> Response:
        return Response(200, self.agent.sync_now())

    def pause(self, request: Request) -> Response:
        until = self._body(request).get("until")
        if until is not None and (isinstance(until, bool) or not isinstance(until, (int, float))):
            raise HTTPError(400, "until must be an epoch time in seconds, or null to resume")
        self.agent.set_paused(None if until is None else float(until))
        return Response(200, self.agent.status())

    def _destination(self, value: Any) -> str:
        name = value or "hackatime"
        if name not in self.agent.destination_names():
            raise HTTPError(404, f"no destination named {name!r}")
        return str(name)

    def dead(self, request: Request) -> Response:
        dest = self._destination(request.param("destination"))
        return Response(200, {"destination": dest, "items": self.agent.store.dead_letters(dest)})

    @staticmethod
    def _ids(body: dict[str, Any], required: bool) -> list[int] | None:
        ids = body.get("ids")
        if ids is None and not required:
            return None
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise HTTPError(400, "ids must be a list of heartbeat ids")
        return ids

    def dead_retry(self, request: Request) -> Response:
        body = self._body(request)
        dest = self._destination(body.get("destination"))
        count = self.agent.store.retry_dead(dest, self._ids(body, required=False))
        self.agent.changed(wake=True)
        return Response(200, {"count": count})

    def dead_discard(self, request: Request) -> Response:
        body = self._body(request)
        dest = self._destination(body.get("destination"))
        ids = self._ids(body, required=True)
        assert ids is not None
        count = self.agent.store.discard_dead(dest, ids)
        self.agent.changed()
        return Response(200, {"count": count})

    def events(self, request: Request) -> Response:
        try:
            after = int(request.param("after") or "-1")
            timeout = min(60.0, max(0.0, float(request.param("timeout") or "30")))
        except ValueError:
            raise HTTPError(400, "after must be an integer and timeout a number of seconds") from None
        return Response(200, {"seq": self.agent.wait_for_change(after, timeout)})

    def dismiss_notice(self, request: Request) -> Response:
        assert request.match is not None
        self.agent.store.dismiss_notice(int(request.match.group("id")))
        self.agent.changed()
        return Response(200, {"ok": True})

    def watch_list(self, request: Request) -> Response:
        return Response(200, self.agent.watched())

    def _folder(self, request: Request) -> str:
        path = self._body(request).get("path")
        if not isinstance(path, str) or not path.strip():
            raise HTTPError(400, "path must be a folder path")
        return path

    def watch_add(self, request: Request) -> Response:
        return Response(200, self.agent.watch(self._folder(request), add=True))

    def watch_remove(self, request: Request) -> Response:
        return Response(200, self.agent.watch(self._folder(request), add=False))
