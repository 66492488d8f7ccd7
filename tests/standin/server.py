"""A real loopback HTTP/1.1 server around ``HackatimeApp``, with faults, throttling and a request log."""

from __future__ import annotations

import json
import selectors
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from . import railsjson
from .app import HackatimeApp, Request, Response
from .auth import AuthForm
from .faults import Fault, FaultQueue, FaultScope, Injected
from .ingest import MAX_BULK, count_items
from .oauth import OAuthApp
from .store import Row
from .throttle import Throttle, Throttled, ThrottleLimits, is_heartbeat_post, rate_limited
from .users import DEFAULT_API_KEY, DEFAULT_USER, User

_CLOUDFLARE_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>%d: %s</title></head>"
    b"<body><h1>Error %d</h1><p>%s</p><p>cloudflare</p></body></html>\n"
)
_JOIN_SECONDS = 5.0


@dataclass(frozen=True)
class RequestRecord:
    """One request as the stand-in saw it."""

    method: str
    path: str
    status: int | None  # None: the connection was reset or held without an answer
    items: int  # heartbeats in the body (0 for reads and unparseable bodies)
    auth: AuthForm | None  # which credential source was used or tried
    fault: Fault | None
    at: float  # the stand-in's clock when the request arrived
    # Rows stored once the app had answered: the rows a read was computed over (tests that order
    # deliveries and fetches on purpose use it to know what a figure can hold).
    stored: int


@dataclass
class _Outcome:
    """What the handler thread does with the connection, and what the log records."""

    response: Response | None  # None: answer nothing (reset or hang)
    fault: Fault | None = None
    action: str = "send"  # send | reset | hang | truncate
    items: int = 0
    auth: AuthForm | None = None
    hang: threading.Event | None = None

    @property
    def status(self) -> int | None:
        return self.response.status if self.response is not None and self.action != "reset" else None


@dataclass
class Gate:
    """Holds the next request whose path contains ``path`` at one point until ``release()``:
    ``"before"`` the app looks at it, or ``"after"`` it has (a batch is stored, a figure is
    computed) but before the answer leaves. Tests use it to order deliveries and fetches on
    purpose; ``arrived`` is set when the request reaches the gate."""

    method: str
    path: str
    stage: str
    arrived: threading.Event
    opened: threading.Event

    def release(self) -> None:
        self.opened.set()


class _Server(ThreadingHTTPServer):
    """Tracks every connection and handler thread so that ``stop()`` can close and join them all."""

    daemon_threads = True
    block_on_close = False  # we join our own threads; socketserver's list would miss daemon ones
    request_queue_size = 128
    timeout = 0  # handle_request() never blocks: our own loop has already seen the socket readable

    def __init__(self, standin: HackatimeStandin) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.standin = standin
        self.conn_lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._process, args=(request, client_address), name="standin-conn", daemon=True
        )
        with self.conn_lock:
            self.connections.add(request)
            # A thread is forgotten only once it has ended: one that dropped itself from the set
            # on its way out could still be running when stop() joins the rest.
            self.threads = {t for t in self.threads if t.is_alive()}
            self.threads.add(thread)
        thread.start()

    def _process(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self.conn_lock:
                self.connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-answer is normal here (faults, timeouts, stop()).
        # Anything else is a stand-in bug: keep it for ``errors()`` rather than print it.
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, ConnectionError | TimeoutError):
            self.standin.record_error(exc)

    def close_connections(self) -> None:
        with self.conn_lock:
            connections = list(self.connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked reading a keep-alive socket
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real client's connection pool expects
    disable_nagle_algorithm = True  # headers and body go out in separate writes; don't wait for ACKs
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is ``requests()``; stderr stays quiet

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise ConnectionResetError("request body cut short")
        return body

    def _serve(self) -> None:
        body = self._read_body()
        request = Request.build(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        standin = self.server.standin
        standin._pass_gate(request, "before")
        outcome = standin._dispatch(request)
        standin._pass_gate(request, "after")
        if outcome.hang is not None:
            outcome.hang.wait()  # set by release_hangs() or stop()
        if outcome.action in ("hang", "reset"):
            self._reset()
        elif outcome.response is not None:
            self._send(outcome.response, truncate=outcome.action == "truncate")

    def _send(self, response: Response, *, truncate: bool = False) -> None:
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if truncate:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(response.body[: len(response.body) // 2] if truncate else response.body)

    def _reset(self) -> None:
        """Close with SO_LINGER 0 so the peer sees a TCP RST, not an orderly FIN."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()  # drop the makefile reference, or close() below would not close the fd
            self.connection.close()
        except OSError:
            pass


def _fault_response(injected: Injected, now: float) -> Response:
    fault = injected.fault
    if fault is Fault.SERVER_ERROR_500:
        return Response(500, railsjson.dumpb({"error": "Internal Server Error", "status": 500}))
    if fault in (Fault.BAD_GATEWAY_502, Fault.SERVICE_UNAVAILABLE_503):
        status, text = (502, b"Bad gateway") if fault is Fault.BAD_GATEWAY_502 else (503, b"Service unavailable")
        page = _CLOUDFLARE_PAGE % (status, text, status, text)
        return Response(status, page, content_type="text/html; charset=UTF-8")
    if fault is Fault.BAD_REQUEST_400:
        payload = {"error": "Bad Request", "message": "injected fault", "status": 400}
        return Response(400, railsjson.dumpb(payload))
    if fault is Fault.UNAUTHORIZED_401:
        return Response(401, railsjson.dumpb({"error": "Unauthorized"}))
    if fault is Fault.RATE_LIMITED_429:
        epoch = int(now)  # reported as the general throttle, the one heartbeat uploads hit first
        body, headers = rate_limited(Throttled(300, injected.retry_after, epoch + injected.retry_after))
        return Response(429, body, headers)
    raise AssertionError(f"{fault} has no canned response")


def _drop_responses(response: Response, drop: int) -> None:
    """Rewrite a bulk answer with its last ``drop`` pairs left out."""
    if response.status == 201:
        pairs = json.loads(response.body)["responses"]
        response.body = railsjson.dumpb({"responses": pairs[: max(0, len(pairs) - drop)]})


class HackatimeStandin:
    """A loopback stand-in of the Hackatime server for tests and benchmarks.

    ``with HackatimeStandin(keys={key: User(...)}) as srv:`` starts it on an ephemeral port;
    leaving the block (or ``stop()``) closes every connection and joins every thread it started.
    """

    def __init__(
        self,
        keys: Mapping[str, User] | None = None,
        *,
        now: Callable[[], float] | float | None = None,
        throttle: ThrottleLimits | None = None,
    ) -> None:
        self._now: Callable[[], float] = time.time
        if now is not None:
            self.set_now(now)
        self.app = HackatimeApp({DEFAULT_API_KEY: DEFAULT_USER} if keys is None else keys, self.now)
        self._faults = FaultQueue()
        self._throttle = Throttle(throttle) if throttle else None
        self._log: list[RequestRecord] = []
        self._errors: list[BaseException] = []
        self._hangs: set[threading.Event] = set()
        self._gates: list[Gate] = []
        self._stopping = False
        self._httpd: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> HackatimeStandin:
        if self._httpd is not None:
            raise RuntimeError("already started")
        self._httpd = _Server(self)
        self._wake_r, self._wake_w = socket.socketpair()
        self._serve_thread = threading.Thread(target=self._serve_forever, name="standin-accept", daemon=True)
        self._serve_thread.start()
        return self

    def _serve_forever(self) -> None:
        # serve_forever() polls for shutdown every 0.5 s, which every test would pay on stop();
        # this loop also watches a wake-up socket, so stop() ends it at once.
        httpd, wake_r = self._httpd, self._wake_r
        assert httpd is not None and wake_r is not None
        with selectors.DefaultSelector() as selector:
            selector.register(httpd, selectors.EVENT_READ)
            selector.register(wake_r, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select():
                    if key.fileobj is wake_r:
                        return
                    httpd.handle_request()

    def stop(self) -> None:
        """Stop accepting, release hangs, close every connection, and join every thread."""
        httpd, accept_thread, wake_r, wake_w = self._httpd, self._serve_thread, self._wake_r, self._wake_w
        if httpd is None or accept_thread is None or wake_r is None or wake_w is None or self._stopping:
            return
        self._stopping = True
        wake_w.send(b"x")
        accept_thread.join(_JOIN_SECONDS)
        self.release_hangs()
        httpd.close_connections()
        with httpd.conn_lock:
            threads = list(httpd.threads)
        for thread in threads:
            thread.join(_JOIN_SECONDS)
        httpd.server_close()
        wake_r.close()
        wake_w.close()
        leaked = [t for t in (accept_thread, *threads) if t.is_alive()]
        if leaked:
            raise RuntimeError(f"stand-in threads did not stop: {leaked}")

    def __enter__(self) -> HackatimeStandin:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/hackatime/v1"

    # --- clock -----------------------------------------------------------------------------------

    def set_now(self, now: Callable[[], float] | float) -> None:
        """Pin the clock (a number) or drive it (a callable returning epoch seconds)."""
        self._now = now if callable(now) else (lambda: float(now))

    def now(self) -> float:
        return self._now()

    # --- accounts --------------------------------------------------------------------------------

    def add_key(self, key: str, user: User) -> None:
        self.app.set_key(key, user)

    def revoke_key(self, key: str) -> None:
        """The key stops working at once, as after a rotation (§8): the client gets 401."""
        self.app.revoke_key(key)

    def register_oauth_app(self, client_id: str, redirect_uri: str = "http://127.0.0.1/callback") -> None:
        """An app registered at /oauth/applications; a loopback redirect URI matches any port."""
        self.app.oauth.register(OAuthApp(client_id, redirect_uri))

    def oauth_token(self, user: User, scopes: tuple[str, ...] = ("profile", "read")) -> str:
        """An access token for ``user``, as if they had signed in with an app."""
        return self.app.oauth.issue(user, scopes)

    def sign_in_browser(self, user: User | None) -> None:
        """Who the web app's browser session belongs to (None: the user declines)."""
        self.app.oauth.browser_user = user

    def update_user(self, user: User) -> None:
        """Change an account's settings (timezone, goal, text mode, ...) by its id."""
        self.app.update_user(user)

    # --- faults and throttling -------------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        times: int = 1,
        *,
        retry_after: int = 60,
        scope: FaultScope = "heartbeats",
        drop: int = 1,
    ) -> None:
        """Queue ``fault`` for the next ``times`` matching requests.

        ``scope``: ``"heartbeats"`` (heartbeat POSTs, the default), ``"reads"`` (GETs) or ``"all"``.
        ``retry_after`` is RATE_LIMITED_429's Retry-After; ``drop`` is how many trailing results
        SHORT_RESPONSES_201 leaves out.
        """
        self._faults.add(fault, times, scope, retry_after, drop)

    def pending_faults(self) -> int:
        return self._faults.pending()

    def clear_faults(self) -> None:
        self._faults.clear()

    def hold(self, method: str, path: str, stage: str = "after") -> Gate:
        """Hold the next ``method`` request whose path contains ``path`` (see ``Gate``)."""
        if stage not in ("before", "after"):
            raise ValueError("stage is 'before' or 'after'")
        gate = Gate(method, path, stage, threading.Event(), threading.Event())
        with self.app.store.lock:
            if self._stopping:
                gate.release()
            self._gates.append(gate)
        return gate

    def _pass_gate(self, req: Request, stage: str) -> None:
        with self.app.store.lock:
            gate = next(
                (g for g in self._gates if g.stage == stage and g.method == req.method and g.path in req.path), None
            )
            if gate is not None:
                self._gates.remove(gate)
        if gate is not None:
            gate.arrived.set()
            gate.opened.wait()

    def wait_until_held(self, timeout: float = 10) -> bool:
        """Block until a request is being held (HANG or HELD_201): a ``release_hangs()`` made
        before the request arrives would let nothing go, and the request would then hang."""
        held = (Fault.HANG, Fault.HELD_201)
        return self.wait_for(lambda s: any(r.fault in held for r in s.requests()), timeout)

    def release_hangs(self) -> None:
        """Let every held connection go: a HANG is then reset, a HELD_201 answered."""
        with self.app.store.lock:
            hangs, self._hangs = self._hangs, set()
            gates, self._gates = self._gates, []
        for event in hangs:
            event.set()
        for gate in gates:
            gate.release()

    def set_throttle(self, limits: ThrottleLimits | None) -> None:
        """Enforce rack-attack's limits (§6) against the stand-in's clock, or stop enforcing."""
        self._throttle = Throttle(limits) if limits else None

    # --- observation -----------------------------------------------------------------------------

    def heartbeats(self, user_id: int | None = None) -> list[Row]:
        """Copies of the stored rows, in id order (soft-deleted ones included)."""
        return self.app.store.copies(user_id)

    def count(self) -> int:
        """How many rows are stored: cheap enough for a ``wait_for`` predicate under load."""
        return self.app.store.count()

    def delete_heartbeat(self, row_id: int) -> None:
        self.app.store.soft_delete(row_id, railsjson.iso_millis(self.now()))

    def requests(self) -> list[RequestRecord]:
        with self.app.store.lock:
            return list(self._log)

    def errors(self) -> list[BaseException]:
        """Exceptions raised inside the stand-in itself (should always be empty)."""
        return list(self._errors)

    def record_error(self, exc: BaseException) -> None:
        self._errors.append(exc)

    def wait_for(self, predicate: Callable[[HackatimeStandin], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds, re-checking on every stored batch and request."""
        with self.app.store.changed:
            return self.app.store.changed.wait_for(lambda: predicate(self), timeout)

    def ingest_direct(self, body: bytes, key: str, *, content_type: str = "application/json") -> Response:
        """Run one bulk POST through the app without HTTP (what ``measure_ingest_rate`` times)."""
        headers = {"authorization": f"Bearer {key}", "content-type": content_type}
        return self.app.handle(Request("POST", "/api/hackatime/v1/users/current/heartbeats.bulk", {}, headers, body))

    def seed(self, items: list[dict[str, Any]], key: str) -> None:
        """Store heartbeats as if the user's client had sent them, 100 a request, without HTTP."""
        for first in range(0, len(items), MAX_BULK):
            response = self.ingest_direct(json.dumps(items[first : first + MAX_BULK]).encode(), key)
            failed = [r for r in json.loads(response.body).get("responses", ()) if r[1] != 201]
            if response.status != 201 or failed:
                raise ValueError(f"seeding failed: {response.status} {failed or response.body[:200]!r}")

    # --- per request (called from handler threads) -----------------------------------------------

    def _dispatch(self, req: Request) -> _Outcome:
        now = self.now()
        try:
            outcome = self._answer(req, now)
        except Exception as exc:  # a stand-in bug: answer 500 and keep it for errors()
            self.record_error(exc)
            outcome = _Outcome(Response(500, railsjson.dumpb({"error": repr(exc)})))
        stored = self.app.store.count()
        record = RequestRecord(
            req.method, req.path, outcome.status, outcome.items, outcome.auth, outcome.fault, now, stored
        )
        with self.app.store.changed:
            self._log.append(record)
            self.app.store.changed.notify_all()
        return outcome

    def _answer(self, req: Request, now: float) -> _Outcome:
        heartbeat_post = is_heartbeat_post(req.method, req.path)
        injected = self._faults.take(is_heartbeat_post=heartbeat_post, is_read=req.method == "GET")
        fault = injected.fault if injected else None

        def items() -> int:
            # Answered in front of the app (a proxy, a crashed worker, rack-attack): nothing is
            # stored, but the log still says how many heartbeats the request carried.
            if not heartbeat_post:
                return 0
            return count_items(req.body, req.headers.get("content-type", ""), bulk=req.path.endswith(".bulk"))

        if injected and not injected.fault.stores:
            if fault is Fault.CONNECTION_RESET:
                return _Outcome(None, fault, "reset", items())
            if fault is Fault.HANG:
                return _Outcome(None, fault, "hang", items(), hang=self._new_hang())
            return _Outcome(_fault_response(injected, now), fault, items=items())

        throttled = self._throttle.check(req.method, req.path, now) if self._throttle else None
        if throttled:
            body, headers = rate_limited(throttled)
            return _Outcome(Response(429, body, headers), fault, items=items())

        response = self.app.handle(req)
        action = "send"
        if fault is Fault.LOST_AFTER_STORE:
            action = "reset"
        elif fault is Fault.TRUNCATED_201:
            action = "truncate"
        elif fault is Fault.MALFORMED_201:
            response.body = response.body[: len(response.body) // 2]
        elif fault is Fault.SHORT_RESPONSES_201 and injected:
            _drop_responses(response, injected.drop)
        elif fault is Fault.HELD_201:
            return _Outcome(response, fault, action, response.items, response.auth, hang=self._new_hang())
        return _Outcome(response, fault, action, response.items, response.auth)

    def _new_hang(self) -> threading.Event:
        """Registered before the request is logged, so a test that saw it can release it."""
        event = threading.Event()
        with self.app.store.lock:
            if self._stopping:
                event.set()
            else:
                self._hangs.add(event)
        return event


__all__ = ["HackatimeStandin", "RequestRecord"]
