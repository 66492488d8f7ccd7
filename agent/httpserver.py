"""A small threaded HTTP/1.1 server on 127.0.0.1 with routing and clean shutdown.

The standard library's server, because the local API is tiny and must start in
milliseconds; keep-alive so an editor's CLI or the tray reuses its connection.
``stop()`` closes idle keep-alive connections and joins every handler thread,
so tests can check that nothing leaks.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .secrets import redact

log = logging.getLogger(__name__)

MAX_BODY = 8 * 1024 * 1024  # 100 heartbeats of the largest allowed size fit well inside


class HTTPError(Exception):
    def __init__(self, code: int, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.status = code
        self.body = {"error": error, **extra}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    match: re.Match[str] | None = None
    client: tuple[str, int] | None = None

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        if not self.body.strip():
            raise HTTPError(400, "No data provided: the request body is empty")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, "Bad Request", message=f"the body is not valid JSON: {exc}", status=400) from None


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # pre-encoded JSON, to skip a second serialisation


Handler = Callable[[Request], Response]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(pattern), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, re.Match[str]]:
        allowed = False
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match:
                if route_method == method:
                    return handler, match
                allowed = True
        if allowed:
            raise HTTPError(405, "Method Not Allowed")
        raise HTTPError(404, "Not Found")


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # handler threads are joined on close (no leaks)
    block_on_close = True
    allow_reuse_address = True
    router: Router
    open_sockets: set[socket.socket]
    sockets_lock: threading.Lock


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 120  # an idle keep-alive connection is dropped after this
    # Headers and body leave in two writes; with Nagle's algorithm and the client's delayed
    # ACK that costs ~40 ms per request on keep-alive connections.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.sockets_lock:
                self.server.open_sockets.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), redact(format % args))

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        length_header = self.headers.get("Content-Length")
        try:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                raise HTTPError(411, "chunked bodies are not supported; send Content-Length")
            length = int(length_header) if length_header else 0
            if length < 0:
                raise HTTPError(400, "Bad Request", message="negative Content-Length")
            if length > MAX_BODY:
                self.close_connection = True  # the unread body would poison the next request
                raise HTTPError(413, f"the request body is larger than {MAX_BODY} bytes")
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                client=self.client_address,
            )
            handler, match = self.server.router.resolve(self.command, split.path)
            request.match = match
            response = handler(request)
        except HTTPError as exc:
            response = Response(exc.status, exc.body)
        except ValueError:
            response = Response(400, {"error": "Bad Request", "message": "invalid Content-Length"})
        except Exception:
            log.exception("internal error while serving %s %s", self.command, split.path)
            response = Response(500, {"error": "Internal Server Error"})
        self._send(response)

    def _send(self, response: Response) -> None:
        payload = response.raw if response.raw is not None else json.dumps(response.body).encode("utf-8")
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away (the tray aborting a long-poll on quit): nothing to answer.
            self.close_connection = True

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_DELETE = _dispatch


class LocalServer:
    """Serve ``router`` on 127.0.0.1:``port`` (0: ephemeral) in a background thread."""

    def __init__(self, router: Router, port: int = 0, host: str = "127.0.0.1") -> None:
        self._server = _Server((host, port), _Handler)
        self._server.router = router
        self._server.open_sockets = set()
        self._server.sockets_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="local-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        # Wake handler threads blocked reading an idle keep-alive connection.
        with self._server.sockets_lock:
            for sock in list(self._server.open_sockets):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._server.server_close()  # joins the handler threads
        if self._thread is not None:
            self._thread.join()
