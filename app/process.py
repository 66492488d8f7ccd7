"""What both of the app's processes set up the same way: dirs, logging, Qt, signals.

``hackatime-desktop`` runs either the tray (:mod:`app.main`) or the window process
(:mod:`app.windows.host`); each starts through these.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import APP_ID, APP_TITLE, binding

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication


@dataclass(frozen=True)
class Dirs:
    data: Path
    logs: Path
    config: Path


def resolve_dirs(data_dir: Path | None) -> Dirs:
    """The agent's dirs, as the agent itself resolves them from the same flag and environment."""
    from agent.dirs import default_dirs

    data, logs, config = default_dirs(data_dir, os.environ)
    return Dirs(data, logs, config)


def log_to_file(path: Path) -> None:
    """The tray's log: rotated at midnight, a week kept."""
    import logging.handlers  # here: the window process, which logs to stderr, starts faster without it

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.TimedRotatingFileHandler(path, when="midnight", backupCount=7, encoding="utf-8")
    _install(handler)


def log_to_stderr() -> None:
    """The window process's log: the tray that starts it appends its output to a file of its own."""
    _install(logging.StreamHandler(sys.stderr))


def _install(handler: logging.Handler) -> None:
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def create_app(*, windows: bool = False) -> QApplication:
    """The process's QApplication, set up to outlive its windows (the tray's icon, the window process's keep-alive).

    Qt and the app's Qt modules are imported here, after :func:`binding.cache_no_sources`:
    every source line read on import before it would stay resident (see app.binding).
    """
    binding.cache_no_sources()  # 3 to 6 MB less resident memory (see app.binding)
    from PySide6.QtWidgets import QApplication

    from . import icons
    from .collector import MainThreadCollector

    app = QApplication(sys.argv[:1])
    MainThreadCollector(app)  # cycles of Qt objects freed on this thread only (see app.collector)
    app.setApplicationName(APP_ID)
    if not windows:
        # Qt appends the display name to every window title ("Hackatime — Dashboard — Hackatime"):
        # the windows name the app themselves.
        app.setApplicationDisplayName(APP_TITLE)
    app.setDesktopFileName(APP_ID)
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(icons.app_icon())
    return app


def install_signal_handlers(app: QApplication) -> tuple[object, ...]:
    """Quit cleanly on SIGINT / SIGTERM (logout, Ctrl-C, the tray closing its windows) without a polling timer.

    Python runs signal handlers only between bytecodes, which never happens while
    Qt's loop sleeps; a wake-up socket makes the loop notice at once.
    """
    if os.name != "posix":
        return ()
    from PySide6.QtCore import QSocketNotifier

    rsock, wsock = socket.socketpair()
    rsock.setblocking(False)
    wsock.setblocking(False)
    signal.set_wakeup_fd(wsock.fileno())
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: app.quit())
    notifier = QSocketNotifier(rsock.fileno(), QSocketNotifier.Type.Read, app)

    def drain() -> None:
        try:
            rsock.recv(64)
        except OSError:
            pass

    notifier.activated.connect(drain)
    return (notifier, rsock, wsock)  # the caller keeps these alive for the app's lifetime
