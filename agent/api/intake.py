"""The WakaTime-compatible intake that editor plugins point ``api_url`` at.

Same request forms and response shapes as Hackatime (hackatime-api.md §4.1–4.2,
§4.5). A heartbeat is answered 2xx only after the transaction that stores it
has committed. Invalid items in a bulk request get their own 400 (wakatime-cli
drops an item answered 400 instead of re-queueing it forever), including one
that cannot even be parsed on its own (nested too deeply, bytes that are not
UTF-8, a number too long to read) while its neighbours can; a body that is not
JSON at all gets a 400 and stores nothing. A full disk is answered 507 with
"disk full", so the editor's wakatime-cli keeps the heartbeats and sends them
again later.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from agent import fastjson
from agent.heartbeat import Heartbeat, HeartbeatError, normalize, user_agent
from agent.ingest import Ingest
from agent.store import Added, StoreFull

from .httpserver import HTTPError, Request, Response, Router

log = logging.getLogger(__name__)

MAX_BULK = 100
_PREFIXES = r"(?:/api/hackatime/v1|/api/compat/wakatime/v1|/api/v1|/api)?"
BULK_PATH = _PREFIXES + r"/users/[^/]+/heartbeats\.bulk|/|/[^?]*/heartbeats\.bulk"
SINGLE_PATH = _PREFIXES + r"/users/[^/]+/heartbeats|/[^?]*/heartbeats?"
STATUSBAR_PATH = _PREFIXES + r"/users/[^/]+/statusbar/today"
PLUGIN_ERRORS_PATH = _PREFIXES + r"/plugins/errors"


def credentials_match(request: Request, key: str | None) -> bool:
    """Hackatime's three forms (§1.1): Bearer, Basic base64(key), or ?api_key= without either."""
    if not key:
        return False
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    scheme = scheme.lower()
    token = token.strip()
    if scheme == "bearer":
        return hmac.compare_digest(token.encode(), key.encode())
    if scheme == "basic":
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(decoded.encode(), key.encode())
    query_key = request.param("api_key")
    return query_key is not None and hmac.compare_digest(query_key.encode(), key.encode())


class Intake:
    def __init__(
        self,
        ingest: Ingest,
        *,
        api_keys: Callable[[], Sequence[str | None]],
        machine: str,
        statusbar: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.ingest = ingest  # the store write and what follows it, shared with the watcher
        # The key in use, and the one in ~/.wakatime.cfg that routed editor plugins send.
        self.api_keys = api_keys
        self.machine = machine
        self.statusbar = statusbar
        self.default_ua = user_agent("unknown-editor")

    def register(self, router: Router) -> None:
        router.add("POST", BULK_PATH, self.post_bulk)
        router.add("POST", SINGLE_PATH, self.post_single)
        router.add("GET", STATUSBAR_PATH, self.get_statusbar)
        router.add("POST", PLUGIN_ERRORS_PATH, self.post_plugin_error)

    def _authorize(self, request: Request) -> None:
        if not any(credentials_match(request, key) for key in self.api_keys()):
            raise HTTPError(401, "Unauthorized")

    def _items(self, request: Request, *, bulk: bool) -> list[Any]:
        data = parse_body(request.body)
        if isinstance(data, dict) and "hackatime" in data:
            data = data["hackatime"]
        if bulk:
            if isinstance(data, dict):
                data = data.get("heartbeats")
            if not isinstance(data, list) or not data:
                raise HTTPError(400, "No data provided: send a JSON array of heartbeats")
            if len(data) > MAX_BULK:
                raise HTTPError(400, f"Too many heartbeats in a single request (max {MAX_BULK})")
            return data
        if isinstance(data, list):
            if not data:
                raise HTTPError(400, "No data provided: the array is empty")
            return [data[0]]  # Hackatime uses only the first element here
        if not isinstance(data, dict) or not data:
            raise HTTPError(400, "No data provided: send a heartbeat object")
        return [data]

    def post_bulk(self, request: Request) -> Response:
        self._authorize(request)
        heartbeats, added, refused = self._ingest(self._items(request, bulk=True), request)
        # Splice the frozen payload instead of re-encoding it: same bytes, less work.
        if added is None:
            answers = [f'[{{"id":null,"recorded":false,{hb.payload_json[1:]},201]' for hb in heartbeats]
        else:
            answers = [
                f'[{{"id":{hb_id},{hb.payload_json[1:]},201]' for hb, (hb_id, _) in zip(heartbeats, added, strict=True)
            ]
        for i, exc in refused:  # in order, so each lands at its item's place
            answers.insert(i, json.dumps([{"error": str(exc), "type": "InvalidHeartbeat"}, 400]))
        return Response(201, raw=f'{{"responses":[{",".join(answers)}]}}'.encode())

    def post_single(self, request: Request) -> Response:
        self._authorize(request)
        heartbeats, added, refused = self._ingest(self._items(request, bulk=False), request)
        if refused:
            raise HTTPError(400, str(refused[0][1]), type="InvalidHeartbeat")
        [hb] = heartbeats
        if added is None:
            return Response(202, {**hb.payload, "id": None, "recorded": False})
        return Response(202, {**hb.payload, "id": added[0].id})

    def _ingest(
        self, items: list[Any], request: Request
    ) -> tuple[list[Heartbeat], list[Added] | None, list[tuple[int, HeartbeatError]]]:
        """The one way editor heartbeats come in: normalise every item, store the valid ones in one
        transaction (unless tracking is paused: then ``Added`` is None). Returns the valid ones, in
        order, with what storing them gave, and each refused item's place and reason."""
        heartbeats: list[Heartbeat] = []
        refused: list[tuple[int, HeartbeatError]] = []
        # What the request's headers say holds for each of its heartbeats: read once.
        machine, default_ua = self.machine, self.default_ua
        header_ua, header_machine = request.headers.get("user-agent"), request.headers.get("x-machine-name")
        for i, raw in enumerate(items):
            try:
                if type(raw) is Unparsable:
                    raise HeartbeatError(raw.reason)
                heartbeats.append(
                    normalize(
                        raw,
                        machine=machine,
                        default_user_agent=default_ua,
                        header_user_agent=header_ua,
                        header_machine=header_machine,
                    )
                )
            except HeartbeatError as exc:
                refused.append((i, exc))
        # While tracking is paused, editor heartbeats are acknowledged but not recorded (None).
        return heartbeats, self._add(heartbeats) if heartbeats else None, refused

    def _add(self, heartbeats: list[Heartbeat]) -> list[Added] | None:
        try:
            return self.ingest(heartbeats, "editor")
        except StoreFull as exc:
            raise HTTPError(507, str(exc)) from None

    def get_statusbar(self, request: Request) -> Response:
        self._authorize(request)
        if self.statusbar is None:
            return Response(200, {"data": {"grand_total": {"text": "Start coding!", "total_seconds": 0}}})
        return Response(200, self.statusbar())

    def post_plugin_error(self, request: Request) -> Response:
        self._authorize(request)
        log.info("an editor plugin reported an error (%d bytes)", len(request.body))
        return Response(201, {})


class Unparsable:
    """An element of a bulk array that cannot be parsed on its own; it gets its own 400."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


_SHALLOW = 500  # brackets in a body that orjson reads: far from the json module's depth limit (about 1,000)
_DECODER = json.JSONDecoder()
# A string, or a bracket: enough to find where a value ends without parsing it.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_SCALAR = re.compile(r"[^,\]\s]*")


def parse_body(body: bytes) -> Any:
    """The request's JSON. When the whole fails but it is an array, each element is parsed
    alone and the ones that fail become :class:`Unparsable`: one bad heartbeat must not
    sink the 99 beside it."""
    if not body.strip():
        raise HTTPError(400, "No data provided: the request body is empty")
    # orjson first, when it reads the body as the json module does: a body with this few brackets is
    # never too deep for either (orjson reads 1,024 levels, the json module fewer: its item then gets a
    # 400), and what orjson refuses (NaN, a lone surrogate, UTF-16, an integer of 5,000 digits) the
    # json module reads below. An integer beyond 64 bits it reads as a float: out of every range either way.
    if body.count(b"[") + body.count(b"{") <= _SHALLOW:
        try:
            return fastjson.loads(body)
        except ValueError:
            pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        error = exc
    # Bytes that are not UTF-8 become lone surrogates: the heartbeat holding them is refused alone.
    items = _split_array(body.decode("utf-8", "surrogateescape"))
    if items is None:
        raise HTTPError(400, "Bad Request", message=f"the body is not valid JSON: {error}", status=400)
    return items


def _split_array(text: str) -> list[Any] | None:
    """The elements of a JSON array, each parsed alone; None when ``text`` is not an array."""
    pos = _skip_space(text, 0)
    if text[pos : pos + 1] != "[":
        return None
    items: list[Any] = []
    pos = _skip_space(text, pos + 1)
    if text[pos : pos + 1] == "]":
        return items if not text[pos + 1 :].strip() else None
    while True:
        end: int | None
        try:
            value, end = _DECODER.raw_decode(text, pos)
        except RecursionError:
            value, end = Unparsable("the heartbeat is nested too deeply to read"), _skip_value(text, pos)
        except ValueError as exc:
            value, end = Unparsable(f"the heartbeat is not valid JSON: {exc}"), _skip_value(text, pos)
        if end is None:
            return None
        items.append(value)
        pos = _skip_space(text, end)
        sep = text[pos : pos + 1]
        if sep == "]":
            return items if not text[pos + 1 :].strip() else None
        if sep != ",":
            return None
        pos = _skip_space(text, pos + 1)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\n\r":
        pos += 1
    return pos


def _skip_value(text: str, pos: int) -> int | None:
    """Where the value starting at ``pos`` ends, found without recursion; None if it never does."""
    if text[pos : pos + 1] not in ("[", "{"):
        match = _TOKEN.match(text, pos) if text[pos : pos + 1] == '"' else _SCALAR.match(text, pos)
        return match.end() if match and match.end() > pos else None
    depth = 0
    for token in _TOKEN.finditer(text, pos):
        mark = token.group()
        if mark in ("[", "{"):
            depth += 1
        elif mark in ("]", "}"):
            depth -= 1
            if depth == 0:
                return token.end()
    return None
