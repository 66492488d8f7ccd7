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
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agent.secrets import redact

log = logging.getLogger(__name__)

MAX_BODY = 8 * 1024 * 1024  # 100 heartbeats of the largest allowed size fit well inside
MAX_LINE = 65536
MAX_HEADERS = 100


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


class _Handler(socketserver.StreamRequestHandler):
    """HTTP/1.1 with keep-alive, Content-Length bodies and JSON answers: all the local API needs.

    Not BaseHTTPRequestHandler: its header parsing goes through the email package and took
    a tenth of the agent's CPU under load.
    """

    server: _Server
    timeout = 120  # an idle keep-alive connection is dropped after this
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # the client is gone; nothing left to flush
        finally:
            with self.server.sockets_lock:
                self.server.open_sockets.discard(self.connection)

    def handle(self) -> None:
        while True:
            try:
                request = self._read_request()
            except HTTPError as exc:
                self._send(Response(exc.status, exc.body), close=True)
                return
            except OSError:  # a timeout on an idle connection, a reset, a shutdown
                return
            if request is None:
                return
            response = self._respond(request)
            close = request.headers.get("connection", "").lower() == "close" or response.status == 413
            if not self._send(response, close=close) or close:
                return

    def _read_request(self) -> Request | None:
        line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            return None  # the client closed the connection between requests
        if len(line) > MAX_LINE:
            raise HTTPError(414, "the request line is too long")
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise HTTPError(400, "Bad Request", message="malformed request line")
        method, target, _version = parts
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            raw = self.rfile.readline(MAX_LINE + 1)
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep or len(raw) > MAX_LINE:
                raise HTTPError(400, "Bad Request", message="malformed header line")
            headers[name.strip().lower()] = value.strip()
        else:
            raise HTTPError(431, "too many header lines")
        if headers.get("transfer-encoding", "").lower() == "chunked":
            raise HTTPError(411, "chunked bodies are not supported; send Content-Length")
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            raise HTTPError(400, "Bad Request", message="invalid Content-Length") from None
        if length < 0:
            raise HTTPError(400, "Bad Request", message="negative Content-Length")
        if length > MAX_BODY:
            raise HTTPError(413, f"the request body is larger than {MAX_BODY} bytes")
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl asks before sending a body
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            return None  # the client went away mid-body
        split = urlsplit(target)
        return Request(
            method=method,
            path=split.path,
            query=parse_qs(split.query),
            headers=headers,
            body=body,
            client=self.client_address,
        )

    def _respond(self, request: Request) -> Response:
        try:
            handler, match = self.server.router.resolve(request.method, request.path)
            request.match = match
            return handler(request)
        except HTTPError as exc:
            return Response(exc.status, exc.body)
        except Exception:
            log.exception("internal error while serving %s %s", request.method, request.path)
            return Response(500, {"error": "Internal Server Error"})
        finally:
            log.debug("%s %s", request.method, redact(request.path))

    def _send(self, response: Response, *, close: bool) -> bool:
        """Write the whole answer in one send; False when the client has gone away."""
        payload = response.raw if response.raw is not None else json.dumps(response.body).encode("utf-8")
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        head = [
            f"HTTP/1.1 {response.status} {reason}",
            "Content-Type: application/json; charset=utf-8",
            f"Content-Length: {len(payload)}",
            *(f"{name}: {value}" for name, value in response.headers.items()),
        ]
        if close:
            head.append("Connection: close")
        try:
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        except OSError:
            # The client went away (the tray aborting a long-poll on quit): nothing to answer.
            return False
        return True


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
