"""One tray per user and data dir: a second launch brings the first one's dashboard forward.

A ``QLockFile`` decides who is first (aw-qt's ``_acquire_single_instance_lock``);
the first instance also listens on a ``QLocalServer`` so later launches can ask
it to show itself instead of silently exiting.
"""

from __future__ import annotations

import getpass
import hashlib
from pathlib import Path

import shiboken6
from PySide6.QtCore import QLockFile, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

ACTIVATE = b"show\n"


class SingleInstance(QObject):
    activated = Signal()

    def __init__(self, data_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = QLockFile(str(data_dir / "tray.lock"))
        # 0: never time a lock out by age; a lock is stale only when its process is gone.
        self._lock.setStaleLockTime(0)
        digest = hashlib.sha256(f"{getpass.getuser()}\0{data_dir.resolve()}".encode()).hexdigest()[:16]
        self.name = f"hackatime-desktop-{digest}"
        self._server: QLocalServer | None = None

    def acquire(self) -> bool:
        """True when this process is the first; it then listens for later launches."""
        if not self._lock.tryLock(100):
            return False
        QLocalServer.removeServer(self.name)  # a socket left by a crashed first instance
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            return True  # still the only tray; it just cannot be woken by later launches
        server.newConnection.connect(self._connection)
        self._server = server
        return True

    def _connection(self) -> None:
        assert self._server is not None
        while (socket := self._server.nextPendingConnection()) is not None:
            socket.readyRead.connect(self._read)
            socket.disconnected.connect(socket.deleteLater)

    def _read(self) -> None:
        socket = self.sender()
        if isinstance(socket, QLocalSocket) and bytes(socket.readAll().data()).startswith(ACTIVATE.strip()):
            self.activated.emit()

    def activate_running(self, timeout_ms: int = 2000) -> bool:
        """Ask the first instance to show its dashboard (blocking: this launch is about to exit)."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(timeout_ms):
            return False
        socket.write(ACTIVATE)
        ok = socket.waitForBytesWritten(timeout_ms)
        socket.disconnectFromServer()
        return ok

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            # Deleted now, with its connections, while the application still exists.
            shiboken6.delete(self._server)
            self._server = None
        self._lock.unlock()
