"""The tray's side of the window process: ask it for a window, start it when none runs, notice when it dies.

A request goes over the window process's local socket (:mod:`app.single`); when
nobody listens, the tray starts ``hackatime-desktop --window NAME`` and keeps
asking until it does. Only one window process is ever started at a time, and
requests made meanwhile (a double click, the menu) join the one in flight.
A request may name a page of the window as well (``open dashboard sync``: the
dashboard at its Sync tab); a new window process is given it on its command line
too (``--page sync``), so that it shows that page from its first paint.

If the process the tray started ends other than by its own keep-alive — a crash,
``kill -9`` — the tray says so once and restarts nothing: the next request starts
a new one. Its output (log lines, tracebacks, a fatal error's stack) is appended
to ``window.log`` in the log dir, which the notice offers to open.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import shiboken6
from PySide6.QtCore import QIODevice, QObject, QProcess, QTimer, Signal
from PySide6.QtNetwork import QLocalSocket

from app import APP_TITLE
from app.single import request_line, server_name, split_line
from app.state import Notice
from app.windows import WINDOWS

log = logging.getLogger(__name__)

LOG_NAME = "window.log"
LOG_ROLL_BYTES = 1 << 20  # one older file kept beside it
RETRY_MS = 50  # while the process the tray started is not listening yet
START_TIMEOUT_MS = 60_000  # a first start on a slow machine, cold caches: generous
STOP_TIMEOUT_MS = 3000
ANSWERS = {"opened": "open", "closed": "close"}  # the answer's verb → the request's (app.single)


def window_command(name: str, data_dir: Path | None, page: str | None = None) -> list[str]:
    """How to run the window process from this installation: the same executable as the tray."""
    command = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "app.main"]
    command += ["--window", name]
    if page:
        command += ["--page", page]
    # Only an explicit data dir is passed on: naming the default one would make it a
    # self-contained installation, with its settings beside it (agent.dirs.default_dirs).
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    return command


class WindowLauncher(QObject):
    opened = Signal(str)  # the window process says this window is shown
    closed = Signal(str)  # ... or closed, when asked to close it
    started = Signal(int)  # pid of a window process this tray started
    exited = Signal(int, bool)  # exit code of that process, and whether it ended unexpectedly
    notice = Signal(object)  # state.Notice: it ended unexpectedly

    def __init__(
        self,
        data_dir: Path,
        log_dir: Path,
        *,
        data_dir_arg: Path | None = None,
        extra_args: Sequence[str] = (),
        parent: QObject | None = None,
    ) -> None:
        """``data_dir_arg``: the data dir the tray was given, if any; passed on to the window process as is."""
        super().__init__(parent)
        self.server = server_name(data_dir.resolve(), "windows")
        self.log_path = log_dir / LOG_NAME
        self.data_dir_arg = data_dir_arg
        self.extra_args = list(extra_args)  # benchmarks
        self.process: QProcess | None = None
        self._pending: list[str] = []  # windows asked for and not shown yet, in order
        self._socket: QLocalSocket | None = None
        self._buffer = b""
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.setInterval(RETRY_MS)
        self._retry.timeout.connect(self._connect)
        self._waited_ms = 0
        self._connected = False
        self._last_asked = "dashboard"  # named in the notice if the process dies
        self._closing = False

    @property
    def running(self) -> bool:
        """A window process this tray started is running."""
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    @property
    def busy(self) -> bool:
        """A request is on its way: asked and not answered, or waiting for the window process to listen."""
        return bool(self._pending) or self._retry.isActive() or self._socket is not None

    def open(self, name: str, page: str | None = None) -> None:
        """Show the window ``name``: in the running window process, else in a new one.

        ``page``: one of its pages to bring to the front (the dashboard's "sync"); None leaves
        it on the page it shows."""
        if name not in WINDOWS:
            raise ValueError(f"no window named {name!r}")
        if page is not None and (not page or page.split() != [page]):
            raise ValueError(f"no page named {page!r}")  # one word: requests are space-separated lines
        self._last_asked = name
        self._ask(request_line("open", name, page))

    def close_window(self, name: str) -> None:
        """Close the window ``name`` if a window process shows it (as its close button does); never starts one."""
        if name not in WINDOWS:
            raise ValueError(f"no window named {name!r}")
        self._ask(request_line("close", name))

    def _ask(self, request: str) -> None:
        if request in self._pending and not self._connected:
            return  # not sent yet: the one on its way will do (a double click starts one process)
        # Sent already, it is sent again: the window may have been closed before it was ready.
        self._pending.append(request)
        if self._socket is not None and self._connected:
            self._socket.write(f"{request}\n".encode())
        elif self._socket is None and not self._retry.isActive():
            self._waited_ms = 0
            self._connect()

    # ---- talking to the window process --------------------------------------------------

    def _connect(self) -> None:
        if not self._pending or self._closing:
            return
        socket = QLocalSocket(self)
        self._socket = socket
        self._buffer = b""
        self._connected = False
        socket.connected.connect(self._send)
        socket.readyRead.connect(self._read)
        socket.errorOccurred.connect(self._failed)
        socket.disconnected.connect(self._disconnected)
        socket.connectToServer(self.server)

    def _send(self) -> None:
        self._connected = True
        if self._socket is not None:
            self._socket.write("".join(f"{request}\n" for request in self._pending).encode())

    def _read(self) -> None:
        socket = self._socket
        if socket is None:
            return
        self._buffer += bytes(socket.readAll().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            answer = raw.decode("utf-8", "replace").strip()
            verb, name, page = split_line(answer)  # "opened dashboard sync": what was asked, page and all
            request = request_line(ANSWERS.get(verb, ""), name, page)
            if request in self._pending:
                self._pending.remove(request)
            elif self._pending:
                self._pending.pop(0)  # an error answers the oldest request
            if verb == "opened":
                self.opened.emit(name)
            elif verb == "closed":
                self.closed.emit(name)
            else:
                log.warning("the window process refused a request: %s", answer[:200])
        if not self._pending:
            self._drop_socket()

    def _failed(self, error: QLocalSocket.LocalSocketError) -> None:
        socket = self._socket
        if socket is None:
            return
        if self._connected:
            return  # the peer closed after answering, or mid-request: _disconnected decides
        log.debug("no window process listens (%s)", error.name)
        self._drop_socket()
        # Nobody listens: start the window process (once), then keep knocking while it starts.
        # Nothing to close in a process that does not run; a window to open starts one.
        if not self.running:
            self._pending = [r for r in self._pending if r.startswith("open ")]
            if not self._pending or not self._start(self._pending[0]):
                self._pending.clear()
                return
        self._waited_ms += RETRY_MS
        if self._waited_ms > START_TIMEOUT_MS:
            log.error("the window process did not answer within %d s", START_TIMEOUT_MS // 1000)
            self._pending.clear()
            return
        self._retry.start()

    def _disconnected(self) -> None:
        if self._socket is None:
            return
        self._drop_socket()
        self._pending = [r for r in self._pending if r.startswith("open ")]  # a closed process closed its windows
        if self._pending and not self.running:
            # It went away before answering (exiting on its keep-alive that very moment,
            # or one the tray did not start): ask again; a new one is started if none listens.
            QTimer.singleShot(0, self._connect)
        # Ours: its exit decides (_finished): asked again after a clean exit, dropped after a crash.

    def _drop_socket(self) -> None:
        socket, self._socket = self._socket, None
        self._connected = False
        if socket is not None:
            socket.blockSignals(True)  # its last signals, from abort() included, must not come back here
            socket.abort()
            socket.deleteLater()

    # ---- the process --------------------------------------------------------------------

    def _start(self, request: str) -> bool:
        """Start the window process for ``request`` ("open NAME [PAGE]"), which it is also sent once it listens."""
        _, name, page = split_line(request)
        command = window_command(name, self.data_dir_arg, page) + self.extra_args
        self._roll_log()
        proc = QProcess(self)
        proc.setProgram(command[0])
        proc.setArguments(command[1:])
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        proc.setStandardInputFile(QProcess.nullDevice())
        proc.setStandardOutputFile(str(self.log_path), QIODevice.OpenModeFlag.Append)
        proc.finished.connect(lambda code, status, p=proc: self._finished(p, code, status))
        proc.start()
        if not proc.waitForStarted(10_000):
            log.error("could not start the window process (%s): %s", command, proc.errorString())
            self.notice.emit(
                Notice("window-crashed", APP_TITLE, f"{WINDOWS[name].label} could not start: {proc.errorString()}",
                       warning=True)
            )  # fmt: skip
            proc.deleteLater()
            return False
        self.process = proc
        log.info("started the window process, pid %d: %s", proc.processId(), " ".join(command))
        self.started.emit(proc.processId())
        return True

    def _roll_log(self) -> None:
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            if self.log_path.stat().st_size > LOG_ROLL_BYTES:
                os.replace(self.log_path, self.log_path.with_name(LOG_NAME + ".1"))
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not roll %s: %s", self.log_path, exc)

    def _finished(self, proc: QProcess, code: int, status: QProcess.ExitStatus) -> None:
        if proc is not self.process or not shiboken6.isValid(proc):
            return  # an old one, or this one being destroyed with the tray
        self.process = None
        proc.deleteLater()
        crashed = status == QProcess.ExitStatus.CrashExit or code != 0
        if crashed:
            # What it was asked dies with it: restarting for it could crash again and again.
            self._retry.stop()
            self._drop_socket()
            self._pending.clear()
        elif self._pending and self._socket is None and not self._retry.isActive():
            QTimer.singleShot(0, self._connect)  # it exited on its keep-alive as it was asked: a new one
        if crashed and not self._closing:
            log.warning("the window process exited unexpectedly (code %d, %s)", code, status.name)
            label = WINDOWS[self._last_asked].label
            self.notice.emit(
                Notice(
                    "window-crashed",
                    APP_TITLE,
                    f"{label} closed unexpectedly. Click to open its log.",
                    warning=True,
                )
            )
        else:
            log.info("the window process exited (code %d)", code)
        self.exited.emit(code, crashed)

    def close(self) -> None:
        """Stop the window process this tray started, windows and all (the tray quits)."""
        self._closing = True
        self._retry.stop()
        self._drop_socket()
        self._pending.clear()
        proc = self.process
        if proc is not None and proc.state() != QProcess.ProcessState.NotRunning:
            proc.terminate()  # the window process quits cleanly on SIGTERM
            if not proc.waitForFinished(STOP_TIMEOUT_MS):
                proc.kill()
                proc.waitForFinished(STOP_TIMEOUT_MS)
        self.process = None
        self._closing = False
