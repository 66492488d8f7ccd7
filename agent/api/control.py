"""The agent control API for the tray app: ``/agent/v1/...`` on the local server.

Authenticated with a random token kept in the data dir (mode 0600); the tray
reads it from there. Every answer is one JSON object.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from agent import contract as C
from agent.imports import ImportBusy
from agent.intake_port import PortRefused
from agent.keys import PLACES, KeyCheck, KeyRefused, KeyStoreError, ServerRefused, Where
from agent.settings import SettingsError
from agent.wakatime_cfg import CfgEditError

from .httpserver import HTTPError, Request, Response, Router
from .intake import parse_body


class Controlled(Protocol):
    """What the control API asks of the agent (``agent.daemon.Agent``), and nothing more."""

    def status(self) -> C.Status: ...
    def stats_snapshot(self) -> C.StatsSnapshot: ...
    def refresh_stats(self) -> C.StatsSnapshot: ...
    def projects(self, range_: str) -> C.ProjectsAnswer: ...
    def sync_now(self) -> C.SyncAnswer: ...
    def set_paused(self, until: float | str | None) -> None: ...
    def destination_names(self) -> list[str]: ...
    def dead_letters(self, destination: str) -> list[C.DeadLetter]: ...
    def retry_dead(self, destination: str, ids: Sequence[int] | None) -> int: ...
    def discard_dead(self, destination: str, ids: Sequence[int]) -> int: ...
    def dismiss_notice(self, notice_id: int) -> None: ...
    def wait_for_change(self, after: int, timeout: float) -> int: ...
    def watched(self) -> C.WatchState: ...
    def watch(self, path: str, *, add: bool) -> C.WatchAnswer: ...
    def key_info(self) -> C.KeyAnswer: ...
    def check_key(self, candidate: str | None = None) -> KeyCheck: ...
    def set_key(self, key: str, where: Where, *, check: bool = True) -> C.KeySetAnswer: ...
    def forget_key(self) -> C.KeyForgetAnswer: ...
    def editors(self) -> C.EditorRouting: ...
    def route_editors(self) -> C.EditorRouting: ...
    def undo_editor_routing(self) -> C.EditorRouting: ...
    def set_server(self, api_url: str) -> C.ServerAnswer: ...
    def capture_rules(self) -> C.CaptureRules: ...
    def preferences(self) -> C.Preferences: ...
    def set_preferences(self, changes: dict[str, Any]) -> C.Preferences: ...
    def set_port(self, port: int, *, route_editors: bool = False) -> tuple[C.PortAnswer, Callable[[], None]]: ...
    def sign_in(self, token: str) -> C.SignInAnswer: ...
    def sign_out(self) -> C.SignInAnswer: ...
    def set_capture_rules(self, changes: dict[str, Any]) -> C.CaptureRules: ...
    def start_import(self, path: str, *, upload: bool = True) -> C.ImportAnswer: ...
    def import_run(self) -> C.ImportAnswer: ...
    def cancel_import(self) -> C.ImportAnswer: ...
    def upload_held(self) -> C.HeldUploadAnswer: ...


def json_object(request: Request) -> dict[str, Any]:
    """A control request's body: a JSON object (parsed as the intake parses); empty means ``{}``."""
    if not request.body.strip():
        return {}
    data = parse_body(request.body)
    if not isinstance(data, dict):
        raise HTTPError(400, "the body must be a JSON object")
    return data


def load_or_create_token(data_dir: Path) -> str:
    path = data_dir / C.TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= 32:
            os.chmod(path, 0o600)  # a copy or another tool may have left it readable to others
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
    def __init__(self, agent: Controlled, token: str) -> None:
        self.agent = agent
        self.token = token

    def register(self, router: Router) -> None:
        routes = (
            (C.STATUS, self.status),
            (C.STATS, self.stats),
            (C.PROJECTS, self.projects),
            (C.REFRESH, self.refresh),
            (C.SYNC, self.sync),
            (C.PAUSE, self.pause),
            (C.DEAD, self.dead),
            (C.DEAD_RETRY, self.dead_retry),
            (C.DEAD_DISCARD, self.dead_discard),
            (C.EVENTS, self.events),
            (C.NOTICE_DISMISS, self.dismiss_notice),
            (C.WATCH, self.watch_list),
            (C.WATCH_ADD, self.watch_add),
            (C.WATCH_REMOVE, self.watch_remove),
            (C.KEY, self.key_show),
            (C.KEY_SET, self.key_set),
            (C.KEY_CHECK, self.key_check),
            (C.KEY_FORGET, self.key_forget),
            (C.EDITORS, self.editors),
            (C.EDITORS_ROUTE, self.editors_route),
            (C.EDITORS_UNDO, self.editors_undo),
            (C.SERVER, self.server),
            (C.CAPTURE, self.capture),
            (C.CAPTURE_SET, self.capture_set),
            (C.IMPORT, self.import_run),
            (C.IMPORT_START, self.import_start),
            (C.IMPORT_CANCEL, self.import_cancel),
            (C.IMPORT_UPLOAD_HELD, self.import_upload_held),
            (C.PREFERENCES, self.preferences),
            (C.PREFERENCES_SET, self.preferences_set),
            (C.PORT, self.port),
            (C.SIGN_IN, self.sign_in),
            (C.SIGN_OUT, self.sign_out),
        )
        for route, handler in routes:
            router.add(route.method, route.pattern, self._guard(handler))

    def _guard(self, handler: Any) -> Any:
        def guarded(request: Request) -> Response:
            if "origin" in request.headers:
                # Browsers add Origin to cross-site requests: a web page has no business here.
                raise HTTPError(403, "Forbidden: the control API does not answer web pages (Origin header)")
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.token.encode()):
                raise HTTPError(401, "Unauthorized: the control token is missing or wrong")
            result: Response = handler(request)
            return result

        return guarded

    def status(self, request: Request) -> Response:
        return Response(200, self.agent.status())

    def stats(self, request: Request) -> Response:
        return Response(200, self.agent.stats_snapshot())

    def refresh(self, request: Request) -> Response:
        return Response(200, self.agent.refresh_stats())

    def projects(self, request: Request) -> Response:
        range_ = request.param("range") or "7d"
        if range_ not in C.RANGES:
            raise HTTPError(400, f"range must be one of {', '.join(C.RANGES)}")
        return Response(200, self.agent.projects(range_))

    def sync(self, request: Request) -> Response:
        return Response(200, self.agent.sync_now())

    def pause(self, request: Request) -> Response:
        until = json_object(request).get("until")
        if until == C.PAUSE_UNTIL_TOMORROW:
            self.agent.set_paused(until)
        elif until is not None and (isinstance(until, bool) or not isinstance(until, (int, float))):
            raise HTTPError(400, f"until must be an epoch time in seconds, {C.PAUSE_UNTIL_TOMORROW!r}, or null")
        else:
            self.agent.set_paused(None if until is None else float(until))
        return Response(200, self.agent.status())

    def _destination(self, value: Any) -> str:
        name = value or C.DESTINATION
        if name not in self.agent.destination_names():
            raise HTTPError(404, f"no destination named {name!r}")
        return str(name)

    def dead(self, request: Request) -> Response:
        dest = self._destination(request.param("destination"))
        answer: C.DeadAnswer = {"destination": dest, "items": self.agent.dead_letters(dest)}
        return Response(200, answer)

    @staticmethod
    def _ids(body: dict[str, Any], required: bool) -> list[int] | None:
        ids = body.get("ids")
        if ids is None and not required:
            return None
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise HTTPError(400, "ids must be a list of heartbeat ids")
        return ids

    def dead_retry(self, request: Request) -> Response:
        body = json_object(request)
        dest = self._destination(body.get("destination"))
        count = self.agent.retry_dead(dest, self._ids(body, required=False))
        return Response(200, {"count": count})

    def dead_discard(self, request: Request) -> Response:
        body = json_object(request)
        dest = self._destination(body.get("destination"))
        ids = self._ids(body, required=True)
        assert ids is not None
        count = self.agent.discard_dead(dest, ids)
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
        self.agent.dismiss_notice(int(request.match.group("id")))
        return Response(200, {"ok": True})

    def watch_list(self, request: Request) -> Response:
        return Response(200, self.agent.watched())

    def _folder(self, request: Request) -> str:
        path = json_object(request).get("path")
        if not isinstance(path, str) or not path.strip():
            raise HTTPError(400, "path must be a folder path")
        return path

    def watch_add(self, request: Request) -> Response:
        return Response(200, self.agent.watch(self._folder(request), add=True))

    def watch_remove(self, request: Request) -> Response:
        return Response(200, self.agent.watch(self._folder(request), add=False))

    # ---- the API key (the settings window and ``hackatime-agent key``) ------------------------------

    def key_show(self, request: Request) -> Response:
        return Response(200, self.agent.key_info())

    def key_check(self, request: Request) -> Response:
        candidate = json_object(request).get("key")
        if candidate is not None and not isinstance(candidate, str):
            raise HTTPError(400, "key must be a string")
        return Response(200, self.agent.check_key(candidate).as_dict())

    def key_set(self, request: Request) -> Response:
        body = json_object(request)
        key, where, check = body.get("key"), body.get("store", "keyring"), body.get("check", True)
        if not isinstance(key, str):
            raise HTTPError(400, "key must be a string", verdict="malformed")
        if where not in PLACES:
            raise HTTPError(400, f"store must be one of {', '.join(PLACES)}")
        if not isinstance(check, bool):
            raise HTTPError(400, "check must be true or false")
        try:
            return Response(200, self.agent.set_key(key, where, check=check))
        except KeyRefused as exc:
            status = {"malformed": 400, "rejected": 422}.get(exc.check.verdict, 503)
            raise HTTPError(status, exc.check.reason, **exc.check.as_dict()) from None
        except KeyStoreError as exc:
            raise HTTPError(409 if exc.no_keyring else 500, str(exc), no_keyring=exc.no_keyring) from None

    def key_forget(self, request: Request) -> Response:
        try:
            return Response(200, self.agent.forget_key())
        except KeyStoreError as exc:
            raise HTTPError(500, str(exc)) from None

    # ---- editor plugins' ~/.wakatime.cfg ------------------------------------------------------------

    def editors(self, request: Request) -> Response:
        try:
            return Response(200, self.agent.editors())
        except CfgEditError as exc:
            raise HTTPError(409, str(exc)) from None

    def editors_route(self, request: Request) -> Response:
        try:
            return Response(200, self.agent.route_editors())
        except CfgEditError as exc:
            raise HTTPError(409, str(exc)) from None

    def editors_undo(self, request: Request) -> Response:
        try:
            return Response(200, self.agent.undo_editor_routing())
        except CfgEditError as exc:
            raise HTTPError(409, str(exc)) from None

    def import_run(self, request: Request) -> Response:
        return Response(200, self.agent.import_run())

    def import_start(self, request: Request) -> Response:
        body = json_object(request)
        path, upload = body.get("path"), body.get("upload", True)
        if not isinstance(path, str) or not path.strip():
            raise HTTPError(400, "path must be the export file's path")
        if not isinstance(upload, bool):
            raise HTTPError(400, "upload must be true or false")
        try:
            return Response(200, self.agent.start_import(path, upload=upload))
        except ImportBusy as exc:
            raise HTTPError(409, str(exc)) from None

    def import_cancel(self, request: Request) -> Response:
        return Response(200, self.agent.cancel_import())

    def import_upload_held(self, request: Request) -> Response:
        return Response(200, self.agent.upload_held())

    def server(self, request: Request) -> Response:
        url = json_object(request).get("api_url")
        if not isinstance(url, str) or not url.strip():
            raise HTTPError(400, "api_url must be the server's API URL")
        try:
            return Response(200, self.agent.set_server(url))
        except ServerRefused as exc:
            raise HTTPError(exc.status, str(exc)) from None

    def capture(self, request: Request) -> Response:
        return Response(200, self.agent.capture_rules())

    def capture_set(self, request: Request) -> Response:
        try:
            return Response(200, self.agent.set_capture_rules(json_object(request)))
        except SettingsError as exc:
            raise HTTPError(400, str(exc)) from None

    def preferences(self, request: Request) -> Response:
        return Response(200, self.agent.preferences())

    def preferences_set(self, request: Request) -> Response:
        try:
            return Response(200, self.agent.set_preferences(json_object(request)))
        except SettingsError as exc:
            raise HTTPError(400, str(exc)) from None

    def port(self, request: Request) -> Response:
        body = json_object(request)
        port, route_editors = body.get("port"), body.get("route_editors", False)
        if isinstance(port, bool) or not isinstance(port, int):
            raise HTTPError(400, "port must be a whole number between 1024 and 65535")
        if not isinstance(route_editors, bool):
            raise HTTPError(400, "route_editors must be true or false")
        try:
            answer, retire = self.agent.set_port(port, route_editors=route_editors)
        except PortRefused as exc:
            raise HTTPError(exc.status, str(exc)) from None
        # The old listener carries this answer: it is retired once the answer has left.
        return Response(200, answer, after=retire)

    def sign_in(self, request: Request) -> Response:
        token = json_object(request).get("token")
        if not isinstance(token, str) or not token.strip() or any(c.isspace() for c in token.strip()):
            raise HTTPError(400, "token must be the access token of a finished sign-in")
        return Response(200, self.agent.sign_in(token.strip()))

    def sign_out(self, request: Request) -> Response:
        return Response(200, self.agent.sign_out())
