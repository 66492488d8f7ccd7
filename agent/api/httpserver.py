"""A small threaded HTTP/1.1 server on the loopback interface, with routing and clean shutdown.

h11 parses the requests (framing, pipelining, ``Expect: 100-continue``, malformed input);
this module adds what a local API needs around it: one thread per connection, JSON
answers, keep-alive for an editor's CLI or the tray, and limits that keep the intake
answering while something misbehaves. At most ``max_connections`` are open at once: a
new one evicts the longest-idle connection (one waiting for a request, never one being
served), and idle, slow-to-send and slow-to-read connections are timed out. Only a Host
naming this machine's loopback address is served (a web page reaching the port through a
rebinding DNS name carries its own). ``stop()`` closes every connection and joins every
thread, so tests can check that nothing leaks.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import json
import logging
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11

from agent.secrets import redact

log = logging.getLogger(__name__)

MAX_BODY = 8 * 1024 * 1024  # 100 heartbeats of the largest allowed size fit well inside
MAX_HEAD = 64 * 1024  # request line and headers together
MAX_TARGET = 16 * 1024  # a longer request target is answered 414
MAX_HEADERS = 100
MAX_CONNECTIONS = 64  # far more than the tray and a few editors use, far below the usual 1,024 files
BACKLOG = 128
_HEAD_END = re.compile(rb"\n\r?\n")  # the blank line after the headers (h11 accepts bare LFs too)


@dataclass(frozen=True)
class Limits:
    """Timeouts in seconds; tests shorten them to watch a slow client being cut off."""

    idle: float = 60.0  # a keep-alive connection waiting for its next request
    head: float = 10.0  # from a request's first byte to the end of its headers
    body: float = 30.0  # from the end of the headers to the end of the body
    write: float = 30.0  # a client that does not read its answer
    max_connections: int = MAX_CONNECTIONS


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


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # pre-encoded JSON, to skip a second serialisation
    # Run on the connection's thread once the answer is written (the connection then closes):
    # e.g. retiring the listener that carried it (agent.intake_port).
    after: Callable[[], None] | None = None


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


@functools.lru_cache(maxsize=64)  # a handful of distinct values in practice; parsing an address is not free
def loopback_host(host: str) -> bool:
    """Whether a Host header names this machine's loopback interface (a port may follow)."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else ""
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class _Closed(Exception):
    """The client went away, or sent nothing in time: close without an answer."""


class _Connection:
    """One client connection, served on its own thread until it closes.

    h11 reads each request's line and headers; the body is then read by its Content-Length
    here (chunked bodies are refused) and answers are written directly: h11's per-event
    bookkeeping on bodies and answers would cost the intake several per cent of its throughput.
    """

    def __init__(self, server: LocalServer, sock: socket.socket, address: tuple[str, int]) -> None:
        self.server = server
        self.sock = sock
        self.address = address
        self.idle = True  # waiting for a request's first byte: the one kind that may be evicted
        self.evicted = False
        self.last_active = time.monotonic()
        self.buffer = b""  # bytes received past the last request (a pipelined next one)

    # ---- reading ------------------------------------------------------------------------

    def _recv(self, deadline: float) -> bytes:
        """The next chunk from the socket; b"" once the client has closed (or was evicted)."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            return self.sock.recv(65536)
        except TimeoutError:
            raise
        except OSError:
            return b""  # a reset or an eviction: the same as a close from here

    def read_request(self) -> tuple[Request, bool] | None:
        """The next complete request and whether the connection stays open after it;
        None when the client closed between requests."""
        limits = self.server.limits
        data = self.buffer.lstrip(b"\r\n")  # RFC 9112 §2.2: blank lines before a request are ignored
        self.buffer = b""
        self.idle = not data
        self.last_active = time.monotonic()
        try:
            while self.idle:
                data = self._recv(self.last_active + limits.idle)
                if not data:
                    return None
                data = data.lstrip(b"\r\n")
                self.idle = not data
            # Gather the head here and hand h11 just that: fed the body too, it would copy it twice.
            deadline = time.monotonic() + limits.head
            scanned = 0
            while (end := _HEAD_END.search(data, scanned)) is None:
                if len(data) > MAX_HEAD:
                    raise _head_too_large(data)
                scanned = max(0, len(data) - 2)
                more = self._recv(deadline)
                if not more:
                    raise _Closed  # gone in the middle of its headers: nobody to answer
                data += more
        except TimeoutError:
            if self.idle:
                raise _Closed from None  # an idle keep-alive connection: close quietly
            raise HTTPError(408, "the request headers took too long to arrive") from None
        if end.end() > MAX_HEAD:
            raise _head_too_large(data)
        parser = h11.Connection(h11.SERVER)
        parser.receive_data(data[: end.end()])
        try:
            event = parser.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            raise HTTPError(status, HTTPStatus(status).phrase, message=f"malformed request: {exc}") from None
        assert isinstance(event, h11.Request)  # the first event of a server connection
        request, length = self._check_head(event)
        rest = data[end.end() :]
        if len(rest) < length and request.headers.get("expect", "").lower() == "100-continue":
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl asks before sending a body
        request.body = self._read_body(rest, length, time.monotonic() + limits.body)
        tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
        keep_alive = event.http_version == b"1.1" and "close" not in tokens
        return request, keep_alive

    def _check_head(self, event: h11.Request) -> tuple[Request, int]:
        if event.http_version not in (b"1.1", b"1.0"):
            raise HTTPError(505, "HTTP Version Not Supported", message="malformed request: HTTP/1.1 only")
        if len(event.target) > MAX_TARGET:
            raise HTTPError(414, "the request line is too long")
        if len(event.headers) > MAX_HEADERS:
            raise HTTPError(431, "too many header lines")
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in event.headers}
        host = headers.get("host")
        if host is not None and not loopback_host(host):
            raise HTTPError(403, "Forbidden: the Host header must name this computer (127.0.0.1 or localhost)")
        encoding = headers.get("transfer-encoding")
        if encoding is not None and "content-length" in headers:
            # Two framings: which one counts differs between servers and proxies (request smuggling).
            raise HTTPError(400, "Bad Request", message="Transfer-Encoding and Content-Length together")
        if encoding is not None:
            raise HTTPError(411, "chunked bodies are not supported; send Content-Length")
        length = int(headers.get("content-length") or 0)  # h11 has checked that it is digits
        if length > MAX_BODY:
            raise HTTPError(413, f"the request body is larger than {MAX_BODY} bytes")
        split = urlsplit(event.target.decode("latin-1"))
        request = Request(
            method=event.method.decode("latin-1"),
            path=split.path,
            query=parse_qs(split.query) if split.query else {},
            headers=headers,
            body=b"",
            client=self.address,
        )
        return request, length

    def _read_body(self, rest: bytes, length: int, deadline: float) -> bytes:
        chunks = [rest]
        got = len(rest)
        while got < length:
            try:
                data = self._recv(deadline)
            except TimeoutError:
                raise HTTPError(408, "the request body took too long to arrive") from None
            if not data:
                raise HTTPError(400, "Bad Request", message="the request body was cut short")
            chunks.append(data)
            got += len(data)
        received = b"".join(chunks) if len(chunks) > 1 else rest
        self.buffer = received[length:]
        return received[:length]

    # ---- writing ------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        self.sock.settimeout(self.server.limits.write)
        try:
            self.sock.sendall(data)
        except OSError:
            # The client went away (the tray aborting a long-poll on quit) or does not read.
            raise _Closed from None

    def send(self, response: Response, *, close: bool) -> None:
        """Write the whole answer in one send."""
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
        self._write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)

    # ---- the loop -----------------------------------------------------------------------

    def serve(self) -> None:
        try:
            while True:
                try:
                    got = self.read_request()
                except HTTPError as exc:
                    self.send(Response(exc.status, exc.body), close=True)  # the framing is unknown now
                    return
                if got is None:
                    return
                request, keep_alive = got
                response = self.server.respond(request)
                if response.after is not None:
                    try:
                        self.send(response, close=True)
                    finally:
                        response.after()  # also when the client went away before reading it
                    return
                self.send(response, close=not keep_alive)
                if not keep_alive:
                    return
        except _Closed:
            return
        finally:
            self.server.forget(self)
            with contextlib.suppress(OSError):
                self.sock.close()


def _head_too_large(data: bytes) -> HTTPError:
    line_end = data.find(b"\n")
    if line_end < 0 or line_end > MAX_TARGET:
        return HTTPError(414, "the request line is too long")
    return HTTPError(431, "the request headers are too large")


class LocalServer:
    """Serve ``router`` on 127.0.0.1:``port`` (0: ephemeral) in background threads."""

    def __init__(self, router: Router, port: int = 0, host: str = "127.0.0.1", limits: Limits | None = None) -> None:
        self.router = router
        self.limits = limits or Limits()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(BACKLOG)
        except OSError:
            self._listener.close()
            raise
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._connections: set[_Connection] = set()  # open ones
        self._threads: list[threading.Thread] = []  # every connection thread that may not have ended yet
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._accept_loop, name="local-api", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join()  # no connection is admitted after this
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for conn in connections:
            _shutdown(conn.sock)  # wakes a thread blocked reading an idle keep-alive connection
        for thread in threads:  # closed connections' threads too: they may still be finishing
            thread.join()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    # ---- accepting --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                self._accept_ready()

    def _accept_ready(self) -> None:
        while not self._stopping:
            try:
                sock, address = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of file descriptors: free one by evicting an idle connection, and never
                    # spin on a listener that stays readable.
                    log.warning("cannot accept a connection: %s", exc.strerror)
                    self._evict_idle()
                    time.sleep(0.05)
                return
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._admit(sock, address)

    def _admit(self, sock: socket.socket, address: tuple[str, int]) -> None:
        with self._lock:
            live = sum(not c.evicted for c in self._connections)
            if live >= self.limits.max_connections and not self._evict_idle_locked():
                busy = True
            else:
                busy = False
                conn = _Connection(self, sock, address)
                thread = threading.Thread(target=conn.serve, name="local-api-conn", daemon=True)
                self._connections.add(conn)
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
        if busy:
            with contextlib.suppress(OSError):
                sock.settimeout(1.0)
                body = b'{"error":"too many connections; try again"}'
                sock.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            sock.close()
            return
        thread.start()

    def _evict_idle(self) -> bool:
        with self._lock:
            return self._evict_idle_locked()

    def _evict_idle_locked(self) -> bool:
        """Close the connection idle the longest; False when none is idle."""
        idle = [c for c in self._connections if c.idle and not c.evicted]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c.last_active)
        victim.evicted = True
        _shutdown(victim.sock)  # its thread sees the close and ends
        return True

    def forget(self, conn: _Connection) -> None:
        with self._lock:
            self._connections.discard(conn)

    # ---- answering --------------------------------------------------------------------------

    def respond(self, request: Request) -> Response:
        try:
            handler, match = self.router.resolve(request.method, request.path)
            request.match = match
            return handler(request)
        except HTTPError as exc:
            return Response(exc.status, exc.body)
        except Exception:
            log.exception("internal error while serving %s %s", request.method, redact(request.path))
            return Response(500, {"error": "Internal Server Error"})
        finally:
            log.debug("%s %s", request.method, redact(request.path))


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
