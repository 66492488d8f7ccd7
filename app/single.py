"""One process per role, user and data dir: the tray, and the window process.

A ``QLockFile`` decides who is first (aw-qt's ``_acquire_single_instance_lock``);
the first instance also listens on a ``QLocalServer`` so that later ones hand it
their request instead of silently exiting: a second ``hackatime-desktop`` asks the
tray to open the dashboard, a second ``hackatime-desktop --window NAME`` asks the
running window process to show that window, and the tray asks the window process
the same way.

The protocol is one line per request and one line per answer, UTF-8:
``open NAME`` (or ``open NAME PAGE``, the window process only) is answered with
``opened NAME`` (``opened NAME PAGE``) once that window is shown,
``close NAME`` with ``closed NAME``, anything else with ``error TEXT``.
"""

from __future__ import annotations

import getpass
import logging
import zlib
from collections.abc import Callable
from pathlib import Path

import shiboken6
from PySide6.QtCore import QDeadlineTimer, QLockFile, QObject, QThread, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

Reply = Callable[[str], None]
CONNECT_RETRY_MS = 50


def request_line(verb: str, name: str, page: str | None = None) -> str:
    """One line of the protocol above: ``open dashboard``, ``open dashboard sync``, ``opened …``."""
    return f"{verb} {name} {page}" if page else f"{verb} {name}"


def split_line(line: str) -> tuple[str, str, str | None]:
    """A line of the protocol as (verb, name, page or None): the inverse of :func:`request_line`."""
    verb, _, rest = line.partition(" ")
    name, _, page = rest.partition(" ")
    return verb, name, page or None


def server_name(data_dir: Path, role: str) -> str:
    """The local socket's name: per user and data dir, so two users or two installations never meet."""
    # Two checksums, not a cryptographic hash: the name only has to differ between installations
    # (anyone can compute it either way), and hashlib would map OpenSSL, ~3 MB resident, into the tray.
    key = f"{getpass.getuser()}\0{data_dir.resolve()}".encode()
    digest = f"{zlib.crc32(key):08x}{zlib.adler32(key):08x}"
    return f"hackatime-desktop-{role}-{digest}"


class SingleInstance(QObject):
    requested = Signal(str, object)  # a request line from a later process, and the Reply to answer it

    def __init__(self, data_dir: Path, role: str = "tray", parent: QObject | None = None) -> None:
        super().__init__(parent)
        data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = QLockFile(str(data_dir / f"{role}.lock"))
        # 0: never time a lock out by age; a lock is stale only when its process is gone.
        self._lock.setStaleLockTime(0)
        self.name = server_name(data_dir, role)
        self._server: QLocalServer | None = None

    def acquire(self) -> bool:
        """True when this process is the first; it then listens for later ones."""
        if not self._lock.tryLock(100):
            return False
        QLocalServer.removeServer(self.name)  # a socket left by a crashed first instance
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            log.warning("cannot listen on %s: %s", self.name, server.errorString())
            return True  # still the only one; it just cannot be reached by later processes
        server.newConnection.connect(self._connection)
        self._server = server
        return True

    def _connection(self) -> None:
        assert self._server is not None
        while (socket := self._server.nextPendingConnection()) is not None:
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(socket.deleteLater)

    def _read(self, socket: QLocalSocket) -> None:
        while socket.canReadLine():
            line = bytes(socket.readLine().data()).decode("utf-8", "replace").strip()
            if line:
                self.requested.emit(line, _replier(socket))

    def ask(self, request: str, timeout_ms: int = 15_000) -> str | None:
        """Send ``request`` to the first instance and wait for its answer (blocking: for a process about to exit).

        The first instance may hold the lock a moment before it listens: connecting
        is retried until the deadline. None when nobody answered in time.
        """
        deadline = QDeadlineTimer(timeout_ms)
        socket = QLocalSocket()
        try:
            while True:
                socket.connectToServer(self.name)
                if socket.waitForConnected(max(1, min(1000, deadline.remainingTime()))):
                    break
                if deadline.hasExpired():
                    return None
                QThread.msleep(CONNECT_RETRY_MS)  # refused at once: pace the retries
            socket.write(f"{request}\n".encode())
            socket.waitForBytesWritten(max(1, deadline.remainingTime()))
            while not socket.canReadLine():
                if deadline.hasExpired() or not socket.waitForReadyRead(max(1, deadline.remainingTime())):
                    return None
            return bytes(socket.readLine().data()).decode("utf-8", "replace").strip()
        finally:
            socket.abort()

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            # Deleted now, with its connections, while the application still exists.
            shiboken6.delete(self._server)
            self._server = None
        self._lock.unlock()


def _replier(socket: QLocalSocket) -> Reply:
    def reply(text: str) -> None:
        # The asker may have given up and gone meanwhile: then there is nobody to tell.
        if shiboken6.isValid(socket) and socket.state() == QLocalSocket.LocalSocketState.ConnectedState:
            socket.write(f"{text}\n".encode())
            socket.flush()

    return reply
