"""The application behind the HTTP socket: routing, authentication, and the endpoints' answers.

It is independent of sockets so that ``rate.py`` can drive exactly the work the server does per
request (parse, authenticate, normalise, hash, store, encode) without HTTP in the way.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from . import auth, durations, railsjson, reports
from .auth import Allowed, AuthForm, AuthResult
from .ingest import BodyError, RequestContext, count_items, extract_heartbeats
from .oauth import OAuthError, OAuthProvider
from .store import HeartbeatStore
from .users import User

JSON = "application/json; charset=utf-8"
Clock = Callable[[], float]


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""
    client_ip: str = "127.0.0.1"

    @classmethod
    def build(
        cls, method: str, target: str, headers: Mapping[str, str], body: bytes = b"", client_ip: str = "127.0.0.1"
    ) -> Request:
        path, _, query = target.partition("?")
        params = {k: v[0] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}
        return cls(method, path, params, {k.lower(): v for k, v in headers.items()}, body, client_ip)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = JSON
    items: int = 0  # heartbeats in the request body, for the log
    auth: AuthForm | None = None


def json_response(status: int, payload: object, *, items: int = 0, auth: AuthForm | None = None) -> Response:
    return Response(status, railsjson.dumpb(payload), items=items, auth=auth)


UNAUTHORIZED = railsjson.dumpb(auth.UNAUTHORIZED)
Handler = Callable[["HackatimeApp", Request, "re.Match[str]"], Response]


class HackatimeApp:
    """Users, keys, the heartbeat store and the clock; ``handle`` answers one request."""

    def __init__(self, keys: Mapping[str, User], clock: Clock) -> None:
        self.store = HeartbeatStore()
        self.clock = clock
        self._keys_lock = threading.Lock()
        self._keys = dict(keys)
        self.oauth = OAuthProvider()
        self.oauth.browser_user = next(iter(self._keys.values()), None)

    # --- accounts --------------------------------------------------------------------------------

    def keys(self) -> dict[str, User]:
        with self._keys_lock:
            return dict(self._keys)

    def set_key(self, key: str, user: User) -> None:
        with self._keys_lock:
            self._keys[key] = user

    def revoke_key(self, key: str) -> None:
        with self._keys_lock:
            self._keys.pop(key, None)

    def update_user(self, user: User) -> None:
        """Replace the account with ``user.id`` under every key that maps to it."""
        with self._keys_lock:
            for key, existing in self._keys.items():
                if existing.id == user.id:
                    self._keys[key] = user

    def users(self) -> list[User]:
        return list({user.id: user for user in self.keys().values()}.values())

    def _authenticate(self, req: Request, allowed: Allowed) -> AuthResult:
        with self._keys_lock:
            return auth.authenticate(req.headers.get("authorization"), req.query.get("api_key"), self._keys, allowed)

    # --- dispatch --------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        for method, pattern, handler in _ROUTES:
            match = pattern.fullmatch(req.path)
            if match and (method is None or method == req.method):
                return handler(self, req, match)
        return json_response(404, {"error": "Not Found", "status": 404})

    # --- /api/hackatime/v1 -----------------------------------------------------------------------

    def post_heartbeats(self, req: Request, match: re.Match[str]) -> Response:
        bulk = match.group(1) is not None
        result = self._authenticate(req, auth.WAKATIME_COMPATIBLE)
        content_type = req.headers.get("content-type", "")
        if result.user is None:
            return Response(401, UNAUTHORIZED, items=count_items(req.body, content_type, bulk=bulk), auth=result.form)
        if result.user.pending_deletion:
            return json_response(403, {"error": "Account pending deletion"}, auth=result.form)
        try:
            items = extract_heartbeats(req.body, content_type, bulk=bulk)
        except BodyError as exc:
            return json_response(400, exc.payload, items=exc.items, auth=result.form)
        ctx = RequestContext(
            user_agent=req.headers.get("user-agent"),
            machine=req.headers.get("x-machine-name"),
            ip_address=req.headers.get("cf-connecting-ip") or req.client_ip,
        )
        now_iso = railsjson.iso_millis(self.clock())
        results = self.store.ingest(result.user.id, items, ctx, now_iso, 201 if bulk else 202)
        if not bulk:
            body, status = results[0]
            return Response(status, body, items=1, auth=result.form)
        parts = b",".join(b"[%s,%d]" % pair for pair in results)
        return Response(201, b'{"responses":[' + parts + b"]}", items=len(items), auth=result.form)

    def _user_get(
        self, req: Request, allowed: Allowed, answer: Callable[[User], tuple[int, reports.Payload]]
    ) -> Response:
        result = self._authenticate(req, allowed)
        if result.user is None:
            return Response(401, UNAUTHORIZED, auth=result.form)
        status, payload = answer(result.user)
        return json_response(status, payload, auth=result.form)

    def statusbar_today(self, req: Request, match: re.Match[str]) -> Response:
        return self._user_get(
            req,
            auth.WAKATIME_COMPATIBLE,
            lambda u: (200, reports.statusbar_today(u, self.store.live_rows(u.id), self.clock())),
        )

    def last_7_days(self, req: Request, match: re.Match[str]) -> Response:
        return self._user_get(
            req,
            auth.WAKATIME_COMPATIBLE,
            lambda u: (200, reports.last_7_days(u, self.store.live_rows(u.id), self.clock())),
        )

    def summaries(self, req: Request, match: re.Match[str]) -> Response:
        return self._user_get(
            req,
            auth.WAKATIME_COMPATIBLE,
            lambda u: reports.summaries(u, self.store.live_rows(u.id), self.clock(), req.query),
        )

    def profile(self, req: Request, match: re.Match[str]) -> Response:
        return self._user_get(req, auth.WAKATIME_COMPATIBLE, lambda u: (200, reports.profile(u)))

    # --- /api/v1 ---------------------------------------------------------------------------------

    def user_stats(self, req: Request, match: re.Match[str]) -> Response:
        """§5.4: ``my`` needs a Bearer key; anyone may read a public user's stats."""
        wanted = urllib.parse.unquote(match.group(1))
        caller = self._authenticate(req, auth.STATS_MY)
        if wanted == "my" and caller.user is None:
            return Response(401, UNAUTHORIZED, auth=caller.form)
        target = caller.user if wanted == "my" else self._find_user(wanted)
        if target is None:
            return json_response(404, {"error": "User not found"}, auth=caller.form)
        if not target.public_stats and (caller.user is None or caller.user.id != target.id):
            return json_response(403, {"error": "user has disabled public stats"}, auth=caller.form)
        status, payload = reports.user_stats(target, self.store.live_rows(target.id), self.clock(), req.query)
        return json_response(status, payload, auth=caller.form)

    def _find_user(self, wanted: str) -> User | None:
        """A numeric id, a Slack UID or a username (case-sensitive)."""
        return next((u for u in self.users() if wanted in (str(u.id), u.username, u.slack_uid)), None)

    def _my_user(self, req: Request) -> AuthResult:
        result = self._authenticate(req, auth.MY_HEARTBEATS)
        if result.user is not None and result.user.pending_deletion:
            return replace(result, user=None)  # restricted users get 401 on /api/v1/my/*
        return result

    def my_heartbeats(self, req: Request, match: re.Match[str]) -> Response:
        """§5.1: rows in ``[start_time, end_time]``, no pagination; a bad time is a 500."""
        result = self._my_user(req)
        if result.user is None:
            return Response(401, UNAUTHORIZED, auth=result.form)
        try:
            start, end = reports.my_heartbeats_window(self.clock(), req.query)
        except ValueError:
            return json_response(500, {"error": "Internal Server Error", "status": 500}, auth=result.form)
        rows = sorted(
            (row for row in self.store.live_rows(result.user.id) if start <= row["time"] <= end),
            key=lambda row: (row["time"], row["id"]),
        )
        head = railsjson.dumps(
            {
                "start_time": railsjson.iso_millis(start),
                "end_time": railsjson.iso_millis(end),
                "total_seconds": durations.duration_seconds(rows),
            }
        )
        body = head[:-1].encode() + b',"heartbeats":[' + b",".join(map(self.store.rendered, rows)) + b"]}"
        return Response(200, body, auth=result.form)

    def most_recent(self, req: Request, match: re.Match[str]) -> Response:
        """§5.2: the newest heartbeat, ``test_entry`` excluded unless asked for."""
        result = self._my_user(req)
        if result.user is None:
            return Response(401, UNAUTHORIZED, auth=result.form)
        source_type = req.query.get("source_type")
        editor = (req.query.get("editor") or "").lower()
        candidates = [
            row
            for row in self.store.live_rows(result.user.id)
            if (row["source_type"] == source_type if source_type else row["source_type"] != "test_entry")
            and (not editor or (row["editor"] or "").lower() == editor)
        ]
        if not candidates:
            payload = {"has_heartbeat": False, "heartbeat": None, "editor": None, "time_ago": None}
            return json_response(200, payload, auth=result.form)
        newest = max(candidates, key=lambda row: (row["time"], row["id"]))
        head = railsjson.dumps(
            {
                "has_heartbeat": True,
                "editor": newest["editor"],
                "time_ago": reports.time_ago(self.clock() - newest["time"]),
            }
        )
        body = head[:-1].encode() + b',"heartbeat":' + self.store.rendered(newest) + b"}"
        return Response(200, body, auth=result.form)

    # --- OAuth (Doorkeeper, §1.2) and /api/v1/authenticated/* (§5.3) ---------------------------------

    def oauth_authorize(self, req: Request, match: re.Match[str]) -> Response:
        try:
            location = self.oauth.authorize(dict(req.query))
        except OAuthError as exc:
            page = f"<html><body><h1>An error has occurred</h1><p>{exc.description}</p></body></html>"
            return Response(400, page.encode(), content_type="text/html; charset=utf-8")
        return Response(302, b"", [("Location", location)], content_type=None)

    def oauth_token(self, req: Request, match: re.Match[str]) -> Response:
        form = {k: v[0] for k, v in urllib.parse.parse_qs(req.body.decode("utf-8", "replace")).items()}
        try:
            return json_response(200, self.oauth.token(form))
        except OAuthError as exc:
            return json_response(400, {"error": exc.error, "error_description": exc.description})

    def oauth_revoke(self, req: Request, match: re.Match[str]) -> Response:
        form = {k: v[0] for k, v in urllib.parse.parse_qs(req.body.decode("utf-8", "replace")).items()}
        self.oauth.revoke(form.get("token", ""))
        return json_response(200, {})

    def authenticated(self, req: Request, match: re.Match[str]) -> Response:
        """``/api/v1/authenticated/{me,api_keys}``: OAuth tokens only, never API keys."""
        endpoint = match.group(1)
        user, status = self.oauth.user_for(req.headers.get("authorization"), "profile")
        if user is None:
            return self.doorkeeper(req, match) if status == 401 else Response(403, b"", content_type=None)
        if user.pending_deletion:
            return Response(401, UNAUTHORIZED)
        if endpoint == "me":
            payload = {
                "id": user.id,
                "emails": [f"{user.username}@example.org"],
                "slack_id": user.slack_uid,
                "github_username": None,
                "trust_factor": {"trust_level": "blue", "trust_value": 0},
            }
            return json_response(200, payload)
        keys = [key for key, owner in self.keys().items() if owner.id == user.id]
        if not keys:  # "creates one if none exists"
            keys = [str(uuid.uuid4())]
            self.set_key(keys[0], user)
        return json_response(200, {"token": keys[0]})

    def authenticated_read(self, req: Request, match: re.Match[str]) -> Response:
        """``/api/v1/authenticated/{hours,streak,projects}``: OAuth tokens with the ``read`` scope."""
        user, status = self.oauth.user_for(req.headers.get("authorization"), "read")
        if user is None:
            return self.doorkeeper(req, match) if status == 401 else Response(403, b"", content_type=None)
        if user.pending_deletion:
            return Response(401, UNAUTHORIZED)
        user = next((u for u in self.users() if u.id == user.id), user)  # as the account is now
        rows, now = self.store.live_rows(user.id), self.clock()
        endpoint = match.group(1)
        if endpoint == "hours":
            code, payload = reports.authenticated_hours(rows, now, req.query)
            return json_response(code, payload)
        if endpoint == "streak":
            return json_response(200, reports.authenticated_streak(user, rows, now))
        return json_response(200, reports.authenticated_projects(user, rows, req.query))

    def doorkeeper(self, req: Request, match: re.Match[str]) -> Response:
        """``/api/v1/authenticated/*`` takes OAuth tokens only: an API key or no token is a 401."""
        header = 'Bearer realm="Doorkeeper", error="invalid_token", error_description="The access token is invalid"'
        return Response(401, b"", [("WWW-Authenticate", header)], content_type=None)


_ROUTES: list[tuple[str | None, re.Pattern[str], Handler]] = [
    ("POST", re.compile(r"/api/hackatime/v1/users/[^/]+/heartbeats(\.bulk)?"), HackatimeApp.post_heartbeats),
    ("GET", re.compile(r"/api/hackatime/v1/users/current/stats/last_7_days"), HackatimeApp.last_7_days),
    ("GET", re.compile(r"/api/hackatime/v1/users/[^/]+/statusbar/today"), HackatimeApp.statusbar_today),
    ("GET", re.compile(r"/api/hackatime/v1/users/[^/]+/summaries"), HackatimeApp.summaries),
    ("GET", re.compile(r"/api/hackatime/v1/users/[^/]+"), HackatimeApp.profile),
    ("GET", re.compile(r"/api/v1/users/([^/]+)/stats"), HackatimeApp.user_stats),
    ("GET", re.compile(r"/api/v1/my/heartbeats"), HackatimeApp.my_heartbeats),
    ("GET", re.compile(r"/api/v1/my/heartbeats/most_recent"), HackatimeApp.most_recent),
    ("GET", re.compile(r"/oauth/authorize"), HackatimeApp.oauth_authorize),
    ("POST", re.compile(r"/oauth/token"), HackatimeApp.oauth_token),
    ("POST", re.compile(r"/oauth/revoke"), HackatimeApp.oauth_revoke),
    ("GET", re.compile(r"/api/v1/authenticated/(me|api_keys)"), HackatimeApp.authenticated),
    ("GET", re.compile(r"/api/v1/authenticated/(hours|streak|projects)"), HackatimeApp.authenticated_read),
    (None, re.compile(r"/api/v1/authenticated/.*"), HackatimeApp.doorkeeper),
]
