"""A blocking client for the agent's control API (``/agent/v1/...``).

Every method blocks, so the GUI only calls it through :class:`app.tasks.TaskRunner`.
It finds the agent from the runtime and token files in its data dir (``agent.contract``)
and reads them again whenever the agent stops answering, so a restarted agent (new
port, new token) is picked up without restarting the tray.

Why a plain socket and a few lines of HTTP/1.1 rather than httpx or ``http.client``:
the control channel is plain HTTP/1.1 on loopback to our own agent (no TLS, no
proxy, no redirects, every answer with a Content-Length), and the tray must be able
to abort a call in flight — a 25-second long-poll or a sync pass against a slow
server — so quitting never waits for it. Holding the socket lets
:meth:`AgentClient.close` shut it down from the GUI thread, which wakes the worker
at once; httpx offers no public handle on the socket of a request in flight. It
also keeps ``HTTP_PROXY`` settings from ever routing loopback calls elsewhere. And
``http.client`` imports ``ssl``, which maps OpenSSL: about 3 MB resident in a tray
that runs for weeks and never speaks TLS.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

from agent import contract as C

DEFAULT_TIMEOUT = 10.0
SYNC_TIMEOUT = 120.0  # one delivery pass against a slow server, paced: bounded but generous
MAX_LINE = 8192  # of the status line and each header of an answer
MAX_HEADERS = 100


class AgentError(Exception):
    """The agent answered with an error, or could not be asked; the message is for people."""

    def __init__(self, message: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}  # the rest of the agent's error answer (e.g. a key check's verdict)


class AgentUnavailable(AgentError):
    """No agent is listening for this data dir (not started, crashed, or still starting)."""


class Cancelled(AgentError):
    """The client was closed while the call was in flight (the tray is quitting)."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    token: str
    pid: int | None
    version: str | None


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class AgentClient:
    """Thread-safe: calls from several pool threads at once are fine."""

    def __init__(self, data_dir: Path, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.data_dir = Path(data_dir)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._endpoint: Endpoint | None = None
        self._stamps: tuple[Any, Any] | None = None
        self._open: set[socket.socket] = set()
        self._closed = False

    # ---- discovery ----------------------------------------------------------------

    def endpoint(self) -> Endpoint:
        """The running agent's address and token, re-read when either file changed."""
        agent_file = self.data_dir / C.RUNTIME_FILE
        token_file = self.data_dir / C.TOKEN_FILE
        stamps = (_stamp(agent_file), _stamp(token_file))
        with self._lock:
            if self._endpoint is not None and stamps == self._stamps:
                return self._endpoint
        if stamps[0] is None:
            raise AgentUnavailable("the agent is not running")
        try:
            info = json.loads(agent_file.read_text(encoding="utf-8"))
            token = token_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError as exc:
            raise AgentUnavailable("the agent is not running") from exc
        except (OSError, ValueError) as exc:
            # Half-written while the agent starts: treat as not there yet.
            raise AgentUnavailable(f"the agent's address file is unreadable ({exc})") from exc
        url = urlsplit(str(info.get("url", "")))
        if not url.hostname or not url.port:
            raise AgentUnavailable(f"{C.RUNTIME_FILE} has no usable url")
        endpoint = Endpoint(url.hostname, url.port, token, info.get("pid"), info.get("version"))
        with self._lock:
            self._endpoint, self._stamps = endpoint, stamps
        return endpoint

    def forget_endpoint(self) -> None:
        with self._lock:
            self._endpoint = None
            self._stamps = None

    # ---- lifetime -----------------------------------------------------------------

    def close(self) -> None:
        """Abort every call in flight and refuse new ones; safe from any thread."""
        with self._lock:
            self._closed = True
            conns = list(self._open)
        for sock in conns:
            # shutdown(), unlike close(), wakes a thread blocked in recv() on this socket.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_flight(self) -> int:
        """Calls waiting on the agent right now."""
        with self._lock:
            return len(self._open)

    @contextlib.contextmanager
    def _connection(self, endpoint: Endpoint, timeout: float) -> Iterator[socket.socket]:
        if self._closed:
            raise Cancelled("the tray is closing")
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
        try:
            with self._lock:
                # close() may have run while connecting: it found no socket to shut down then.
                if self._closed:
                    raise Cancelled("the tray is closing")
                self._open.add(sock)
            yield sock
        finally:
            with self._lock:
                self._open.discard(sock)
            sock.close()

    # ---- requests -----------------------------------------------------------------

    def request(
        self,
        route: C.Route,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        timeout: float | None = None,
        **params: int,
    ) -> Any:
        """One call, retried once when the agent has moved (new port or token) meanwhile."""
        path = route.url(**params) + ("?" + urlencode(query) if query else "")
        endpoint = self.endpoint()
        try:
            return self._request_once(endpoint, route.method, path, body, timeout)
        except AgentUnavailable:
            moved = self._moved(endpoint)
            if moved is None:
                raise
            return self._request_once(moved, route.method, path, body, timeout)
        except _Unauthorized as exc:
            moved = self._moved(endpoint)
            if moved is None:
                raise AgentError("the agent refused the control token (is another agent using this data dir?)") from exc
            return self._request_once(moved, route.method, path, body, timeout)

    def _moved(self, old: Endpoint) -> Endpoint | None:
        self.forget_endpoint()
        try:
            new = self.endpoint()
        except AgentUnavailable:
            return None
        return new if new != old else None

    def _request_once(self, endpoint: Endpoint, method: str, path: str, body: Any, timeout: float | None) -> Any:
        head = [
            f"{method} {path} HTTP/1.1",
            f"Host: {f'[{endpoint.host}]' if ':' in endpoint.host else endpoint.host}:{endpoint.port}",
            f"Authorization: Bearer {endpoint.token}",
            "Accept: application/json",
            "Connection: close",
        ]
        payload = b""
        if body is not None:
            payload = json.dumps(body).encode()
            head.append("Content-Type: application/json")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(payload)}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + payload
        wait = self.timeout if timeout is None else timeout
        try:
            with self._connection(endpoint, wait) as sock:
                sock.sendall(request)
                status, raw = _read_answer(sock)
        except Cancelled:
            raise
        except TimeoutError as exc:
            raise AgentUnavailable(f"the agent did not answer within {wait:.0f} s") from exc
        except (OSError, _Unreadable) as exc:
            if self._closed:
                raise Cancelled("the tray is closing") from exc
            raise AgentUnavailable(f"the agent is not answering ({_reason(exc)})") from exc
        if status == 401:
            raise _Unauthorized()
        try:
            data = json.loads(raw) if raw else None
        except ValueError as exc:
            raise AgentError(f"the agent sent something that is not JSON (HTTP {status})") from exc
        if status >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            raise AgentError(
                str(message or f"the agent answered HTTP {status}"), data if isinstance(data, dict) else None
            )
        return data

    # ---- the control API --------------------------------------------------------------

    def status(self) -> C.Status:
        return cast("C.Status", self.request(C.STATUS))

    def stats(self) -> C.StatsSnapshot:
        return cast("C.StatsSnapshot", self.request(C.STATS))

    def projects(self, range_: str) -> C.ProjectsAnswer:
        return cast("C.ProjectsAnswer", self.request(C.PROJECTS, query={"range": range_}))

    def sync(self) -> C.SyncAnswer:
        return cast("C.SyncAnswer", self.request(C.SYNC, {}, timeout=SYNC_TIMEOUT))

    def pause(self, until: float | str | None) -> C.Status:
        """Pause recording until ``until`` (a Unix time, or ``PAUSE_UNTIL_TOMORROW``); None resumes.

        Returns the new status."""
        return cast("C.Status", self.request(C.PAUSE, {"until": until}))

    def dead(self, destination: str) -> list[C.DeadLetter]:
        answer: C.DeadAnswer = self.request(C.DEAD, query={"destination": destination})
        return list(answer.get("items") or [])

    def retry_dead(self, destination: str, ids: Sequence[int] | None = None) -> int:
        body: dict[str, Any] = {"destination": destination}
        if ids is not None:
            body["ids"] = list(ids)
        return int(self.request(C.DEAD_RETRY, body).get("count") or 0)

    def discard_dead(self, destination: str, ids: Sequence[int]) -> int:
        body = {"destination": destination, "ids": list(ids)}
        return int(self.request(C.DEAD_DISCARD, body).get("count") or 0)

    def dismiss_notice(self, notice_id: int) -> None:
        """Mark a stored notice read: the agent's status no longer lists it."""
        self.request(C.NOTICE_DISMISS, {}, id=notice_id)

    def wait_for_change(self, after: int, timeout: float) -> int:
        """Long-poll: returns the agent's state seq once it passes ``after``, or after ``timeout`` s."""
        data = self.request(C.EVENTS, query={"after": after, "timeout": int(timeout)}, timeout=timeout + 10)
        return int(data.get("seq") or 0)


class _Unauthorized(AgentError):
    pass


class _Unreadable(Exception):
    """The answer is not HTTP/1.x as the agent writes it."""


class _Closed(ConnectionError):
    """The agent closed the connection before its answer was complete."""


def _read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of the answer on ``sock``; the agent always sends a Content-Length."""
    with sock.makefile("rb") as reader:
        line = reader.readline(MAX_LINE + 1)
        if not line:
            raise _Closed("connection closed")
        version, _, rest = line.partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or len(line) > MAX_LINE or not code.isdigit():
            raise _Unreadable(f"status line {line[:40]!r}")
        length: int | None = None
        for _ in range(MAX_HEADERS + 1):
            line = reader.readline(MAX_LINE + 1)
            if not line:
                raise _Closed("connection closed")
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                if not value.strip().isdigit():
                    raise _Unreadable(f"Content-Length {value.strip()[:20]!r}")
                length = int(value)
        else:
            raise _Unreadable(f"more than {MAX_HEADERS} header lines")
        body = reader.read() if length is None else reader.read(length)  # no length: until the agent closes
        if length is not None and len(body) < length:
            raise _Closed("connection closed")
    return int(code), body


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, _Closed | ConnectionResetError):
        return "connection closed"
    if isinstance(exc, _Unreadable):
        return f"an answer that is not HTTP: {exc}"
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
