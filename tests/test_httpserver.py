"""The local HTTP server at the byte level: framing edges, limits, slow and idle clients.

A real ``LocalServer`` on a loopback port with a tiny router, spoken to through raw sockets
(the edges a client library would never produce).
"""

from __future__ import annotations

import json
import resource
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agent.api.httpserver import (
    MAX_BODY,
    MAX_CONNECTIONS,
    MAX_HEAD,
    Limits,
    LocalServer,
    Request,
    Response,
    Router,
    loopback_host,
)
from agent.daemon import Agent
from tests.conftest import API_KEY


def echo(request: Request) -> Response:
    return Response(200, {"method": request.method, "path": request.path, "body": request.body.decode("utf-8")})


def serve(limits: Limits | None = None) -> LocalServer:
    router = Router()
    router.add("POST", "/echo", echo)
    router.add("GET", "/echo", echo)
    server = LocalServer(router, 0, limits=limits)
    server.start()
    return server


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = serve()
    yield srv
    srv.stop()


class Peer:
    """A raw client connection that reads responses one at a time (pipelined ones too)."""

    def __init__(self, server: LocalServer) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.buffer = b""

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def close(self) -> None:
        self.sock.close()

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, what: str) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed by the server in the {what}: {self.buffer!r}")
        self.buffer += chunk

    def read_head(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            self._fill("head")
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return head + b"\r\n\r\n"

    def response(self) -> tuple[int, dict[str, str], Any]:
        """One response: status, lower-case headers, the JSON body."""
        lines = self.read_head().decode("latin-1").rstrip("\r\n").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._fill("body")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, json.loads(body) if length else None

    def closed_by_server(self) -> bool:
        """Block until the server closes the connection (True) or sends something more (False)."""
        try:
            return not self.buffer and self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def connect(server: LocalServer) -> Peer:
    return Peer(server)


def exchange(server: LocalServer, data: bytes) -> tuple[int, dict[str, str], Any]:
    with connect(server) as peer:
        peer.sendall(data)
        return peer.response()


def post(body: bytes, *extra: str, host: str = "127.0.0.1") -> bytes:
    head = ["POST /echo HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_a_plain_request_and_keep_alive(server: LocalServer) -> None:
    with connect(server) as sock:
        for i in range(3):
            sock.sendall(post(b"hello %d" % i))
            status, headers, body = sock.response()
            assert (status, body["body"]) == (200, f"hello {i}")
            assert "connection" not in headers  # the connection stays open


def test_pipelined_requests_are_answered_in_order(server: LocalServer) -> None:
    with connect(server) as sock:
        sock.sendall(post(b"one") + post(b"two") + b"GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answers = [sock.response()[2] for _ in range(3)]
    assert [(a["method"], a["body"]) for a in answers] == [("POST", "one"), ("POST", "two"), ("GET", "")]


def test_expect_100_continue(server: LocalServer) -> None:
    with connect(server) as sock:
        sock.sendall(post(b"", "Expect: 100-continue").replace(b"Content-Length: 0", b"Content-Length: 4"))
        assert sock.read_head() == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"body")
        status, _, body = sock.response()
    assert (status, body["body"]) == (200, "body")


def test_expect_100_continue_with_a_body_too_large_is_refused_before_it_is_sent(server: LocalServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n")
        sock.sendall(b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1))
        status, headers, body = sock.response()
        assert (status, headers["connection"]) == (413, "close")
        assert "larger than" in body["error"]


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"GARBAGE\r\n\r\n", 400, "malformed request"),
        (b"GET /echo HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n", 505, "malformed request"),
        (b"GET /echo HTTP/1.1\r\n\r\n", 400, "Host"),  # HTTP/1.1 requires a Host
        (b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n", 400, "malformed request"),
        (b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n", 400, "malformed request"),
        (b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411, "chunked"),
        (
            b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
            400,
            "Transfer-Encoding and Content-Length",
        ),
        (b"GET /" + b"a" * (MAX_HEAD + 10) + b" HTTP/1.1\r\n\r\n", 414, "request line"),
        (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414, "request line"),
        (b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * MAX_HEAD + b"\r\n\r\n", 431, "too large"),
        (b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n", 431, "too many"),
    ],
    ids=[
        "garbage",
        "version",
        "no-host",
        "header-line",
        "length",
        "chunked",
        "te-and-cl",
        "414",
        "414-parsed",
        "431",
        "431-count",
    ],
)
def test_malformed_requests_get_a_clear_error_and_a_close(
    server: LocalServer, data: bytes, status: int, words: str
) -> None:
    with connect(server) as sock:
        sock.sendall(data)
        got, headers, body = sock.response()
        assert got == status
        assert words in json.dumps(body)
        assert headers["connection"] == "close"
        assert sock.closed_by_server()


def test_a_truncated_body_is_400_and_nothing_is_served(server: LocalServer) -> None:
    with connect(server) as sock:
        sock.sendall(post(b"x" * 50).replace(b"Content-Length: 50", b"Content-Length: 100"))
        sock.sock.shutdown(socket.SHUT_WR)  # the client gives up sending but waits for an answer
        status, _, body = sock.response()
    assert status == 400 and "cut short" in body["message"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8080", "localhost", "LOCALHOST:1", "[::1]:80", "127.1.2.3"])
def test_loopback_hosts_are_served(server: LocalServer, host: str) -> None:
    assert exchange(server, post(b"", host=host))[0] == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "192.168.1.2", "[::2]", "localhost.evil", ""])
def test_other_hosts_are_refused(server: LocalServer, host: str) -> None:
    assert not loopback_host(host)
    status, _, body = exchange(server, post(b"", host=host))
    assert status in (400, 403) and "Host" in json.dumps(body)


def test_http_1_0_without_a_host_is_served_and_closed(server: LocalServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /echo HTTP/1.0\r\n\r\n")
        status, headers, _ = sock.response()
        assert (status, headers["connection"]) == (200, "close")
        assert sock.closed_by_server()


def test_a_slow_client_is_cut_off_with_408() -> None:
    srv = serve(Limits(head=0.3, body=0.3))
    try:
        with connect(srv) as sock:
            sock.sendall(b"GET /echo HTTP/1.1\r\nHost: 127")  # ...and nothing more
            status, headers, body = sock.response()
            assert (status, headers["connection"]) == (408, "close") and "too long" in body["error"]
            assert sock.closed_by_server()
        with connect(srv) as sock:
            sock.sendall(post(b"part").replace(b"Content-Length: 4", b"Content-Length: 9"))
            status, _, body = sock.response()
            assert status == 408 and "body" in body["error"]
    finally:
        srv.stop()


def test_an_idle_connection_is_closed_quietly() -> None:
    srv = serve(Limits(idle=0.2))
    try:
        with connect(srv) as sock:
            sock.sendall(post(b"first"))
            assert sock.response()[0] == 200
            assert sock.closed_by_server()  # nothing sent for 0.2 s after the answer: closed, no 408
    finally:
        srv.stop()


def test_connections_over_the_cap_evict_the_longest_idle() -> None:
    srv = serve(Limits(max_connections=4))
    idle: list[Peer] = []
    try:
        idle += [connect(srv) for _ in range(4)]
        with connect(srv) as sock:
            sock.sendall(post(b"still served"))
            assert sock.response()[2]["body"] == "still served"
        assert idle[0].closed_by_server()  # the oldest idle one made room
    finally:
        for peer in idle:
            peer.close()
        srv.stop()


def test_a_burst_of_connections_is_held_by_the_listen_backlog() -> None:
    """100 quick connects while nothing accepts yet all complete (with a backlog of 5, the kernel
    dropped all but 6 of them, each then waiting for a SYN retry a second later, and more)."""
    srv = LocalServer(Router(), 0)  # listening, not started: the backlog alone holds them
    socks: list[socket.socket] = []
    try:
        with selectors.DefaultSelector() as selector:
            for _ in range(100):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", srv.port))
                socks.append(sock)
                selector.register(sock, selectors.EVENT_WRITE)
            connected = 0
            while connected < len(socks):
                ready = selector.select(10)  # a dropped connect does not complete while nothing accepts
                if not ready:
                    break
                for key, _ in ready:
                    selector.unregister(key.fileobj)
                    connected += key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0  # type: ignore[union-attr]
        assert connected == 100
    finally:
        for sock in socks:
            sock.close()
        srv.stop()


# Opens ``count`` connections to ``port`` in a process of its own (its own open-file limit),
# prints how many the server closed once ``expect`` were, or once it closed none for 30 s (well
# inside the server's 60 s idle timeout, which would close them all), and holds the rest open
# until its stdin closes.
_HOLDER = """
import resource, selectors, socket, sys
port, count, expect = map(int, sys.argv[1:4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 100)), hard))
socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
closed = 0
with selectors.DefaultSelector() as selector:
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
    while closed < expect:
        ready = selector.select(30)
        if not ready:
            break
        for key, _ in ready:
            selector.unregister(key.fileobj)
            closed += 1
print(closed, flush=True)
sys.stdin.read()
"""


@pytest.fixture
def common_file_limit() -> Iterator[None]:
    """This process (the agent's) under the common 1,024 open-file limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the open-file limit ({hard}) is too low for a client holding 1,100 connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _heartbeat_round_trip(client: httpx.Client, i: int) -> float:
    """Seconds to store one heartbeat over a new connection, as an editor's wakatime-cli does."""
    started = time.monotonic()
    r = client.post(
        "/users/current/heartbeats.bulk",
        json=[{"entity": "/p/a.py", "type": "file", "time": 1_760_000_000.0 + i}],
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert r.status_code == 201
    return time.monotonic() - started


def test_1100_idle_connections_do_not_stop_an_editor(agent: Agent, common_file_limit: None) -> None:
    assert agent.server is not None
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection for every request
    with httpx.Client(base_url=agent.intake_url, timeout=10, limits=fresh) as client:
        # The same request without idle connections, before and after the measured one: what this
        # machine's load alone makes it take, so the bound below tests the server, not the load.
        alone = [_heartbeat_round_trip(client, i) for i in range(3)]
        expected = 1100 - MAX_CONNECTIONS  # all accepted, all but the server's cap closed to make room
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(agent.server.port), "1100", str(expected)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdin is not None
            assert holder.stdout.readline().strip() == str(expected)
            among_idle = _heartbeat_round_trip(client, 10)
        finally:
            holder.communicate(timeout=60)  # stdin closed: the holder lets its connections go
        alone += [_heartbeat_round_trip(client, 20 + i) for i in range(3)]
    assert holder.returncode == 0
    assert agent.store.heartbeat_count() == 7
    # Without the cap this request waited out its whole timeout; with the listen backlog full it
    # waited a SYN retry (1 s). Under a second more than the same request alone, measured beside it.
    assert among_idle < 1.0 + max(alone), f"the editor waited {among_idle:.2f} s (alone: {max(alone):.2f} s)"
