"""The window process: ``hackatime-desktop --window NAME [--page PAGE]``.

The tray runs for weeks and must stay small, so every window (and the charts
library the dashboard needs) lives here instead: a process started on demand,
one at a time per user and data dir, that talks to the agent's control API
itself. A later request — from the tray, or a second ``--window`` launch — shows
the window in this process (:mod:`app.single`). Once its last window is closed it
stays alive, hidden, for a keep-alive (the ``window_keep_alive_s`` setting), so
that reopening is instant, then exits and hands its memory back to the system.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import QTabWidget, QWidget

from agent.settings import AppSettings
from app import process
from app.client import AgentClient
from app.model import AgentModel
from app.single import Reply, SingleInstance, request_line, split_line
from app.tasks import TaskRunner
from app.windows import WINDOWS, WindowContext

log = logging.getLogger(__name__)

POOL_THREADS = 4  # the long-poll, status, stats, and the charts' import or a window's call
KEEP_ALIVE_SETTING = "window_keep_alive_s"
QUIT_WAIT_MS = 500  # for the pool's agent calls to return once aborted


class WindowHost(QObject):
    """The windows of this process by name: built on first request, then shown again; a keep-alive when none is."""

    opened = Signal(str)  # a window was shown (with its figures, where it says when those are in)
    expired = Signal()  # no window was shown for the whole keep-alive: time to exit

    def __init__(self, context: WindowContext, keep_alive_s: float, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.windows: dict[str, QWidget] = {}
        self.keep_alive = QTimer(self)
        self.keep_alive.setSingleShot(True)
        self.keep_alive.setInterval(max(0, int(keep_alive_s * 1000)))
        self.keep_alive.timeout.connect(self.expired)
        self._idle_check = QTimer(self)
        self._idle_check.setSingleShot(True)
        self._idle_check.setInterval(0)
        self._idle_check.timeout.connect(self._check_idle)

    def handle(self, request: str, reply: Reply) -> None:
        """A request from another process (app.single): ``open NAME [PAGE]`` or ``close NAME``.

        "open" is answered with what it asked, page and all, so the asker can tell its requests apart."""
        verb, name, page = split_line(request)
        if name not in WINDOWS or verb not in ("open", "close") or (page and verb != "open"):
            reply(f"error unknown request {request[:40]!r}")
        elif verb == "open":
            self.open(name, lambda: reply(request_line("opened", name, page)), page=page)
        else:
            window = self.windows.get(name)
            if window is not None:
                window.close()  # as its close button does: hidden, kept for the keep-alive
            reply(request_line("closed", name))

    def open(self, name: str, when_shown: Callable[[], None] | None = None, *, page: str | None = None) -> QWidget:
        """Show the window ``name``, built on first request; ``page``: bring that page of it to the front
        (a window with pages offers ``show_tab``); None leaves it on the page it shows."""
        window = self.windows.get(name)
        if window is None:
            window = WINDOWS[name].factory(self.context)
            window.installEventFilter(self)
            self.windows[name] = window
            wants = getattr(window, "open_window", None)
            if wants is not None:
                wants.connect(self.open)  # the welcome window opens the settings at the key
        if page is not None:
            show_tab = getattr(window, "show_tab", None)
            # Before it is shown, so that a new window shows that page from its first paint.
            if show_tab is None or not show_tab(page):
                log.warning("the %s has no page %r; shown as it is", name, page)
        self.keep_alive.stop()
        window.show()
        if window.isMinimized():
            window.showNormal()
        window.raise_()
        window.activateWindow()
        self.context.model.refresh()

        def shown() -> None:
            self.opened.emit(name)
            if when_shown is not None:
                when_shown()

        ready = getattr(window, "ready", None)
        is_ready = getattr(window, "is_ready", None)
        if ready is not None and is_ready is not None and not is_ready():
            _once(ready, shown)
        else:
            shown()
        return window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Show:
            self.keep_alive.stop()
        elif event.type() in (QEvent.Type.Hide, QEvent.Type.Close):
            self._idle_check.start()  # on the next pass: the window is not hidden yet during its close event
        return False

    def _check_idle(self) -> None:
        if not any(window.isVisible() for window in self.windows.values()) and not self.keep_alive.isActive():
            log.info("no window shown; exiting in %d s unless one is asked for", self.keep_alive.interval() // 1000)
            self.keep_alive.start()

    def close(self) -> None:
        self.keep_alive.stop()
        for window in self.windows.values():
            window.removeEventFilter(self)
            window.close()
            window.deleteLater()
        self.windows.clear()


def _once(signal: object, slot: Callable[[], None]) -> None:
    """Run ``slot`` the next time ``signal`` fires, once."""

    def fire() -> None:
        signal.disconnect(fire)  # type: ignore[attr-defined]
        slot()

    signal.connect(fire)  # type: ignore[attr-defined]


def report_timing(host: WindowHost) -> None:
    """For bench/bench_tray.py: a JSON line on stdout when a window is shown, and when its charts are drawn."""

    def emit(event: str, name: str, **extra: object) -> None:
        cpu = time.process_time()  # this process's CPU so far: a figure a busy machine disturbs less than wall time
        print(json.dumps({"event": event, "window": name, "at": time.time(), "cpu": cpu, **extra}), flush=True)

    def opened(name: str) -> None:
        window = host.windows[name]
        tabs = window.findChild(QTabWidget)
        # The page it shows, for the tests that ask for one through a real window process.
        emit("opened", name, **({"tab": tabs.tabText(tabs.currentIndex()).casefold()} if tabs is not None else {}))
        if not hasattr(window, "charts_ready"):
            return

        def drawn() -> None:
            window.repaint()  # every visible chart drawn now, as the next paint would
            emit("charts", name)

        if getattr(window, "charts_loaded", False):
            drawn()
        else:
            _once(window.charts_ready, drawn)

    host.opened.connect(opened)


def keep_alive_seconds(context: WindowContext) -> float:
    settings = AppSettings(context.config_dir / "settings.json")
    if settings.problem:
        log.warning("%s", settings.problem)
    return float(max(0, settings.get(KEEP_ALIVE_SETTING)))


def run(args: argparse.Namespace) -> int:
    """The window process's life: hand the request to a running one, or become it."""
    name: str = args.window
    page: str | None = args.page
    dirs = process.resolve_dirs(args.data_dir)
    app = process.create_app(windows=True)
    instance = SingleInstance(dirs.data, role="windows")
    if not instance.acquire():
        answer = instance.ask(request_line("open", name, page))
        if answer != request_line("opened", name, page):
            print(f"hackatime-desktop: the running window process did not show the {name} ({answer or 'no answer'})")
            return 1
        return 0
    process.log_to_stderr()
    faulthandler.enable()  # a crash in Qt's C++ leaves its Python stack in the log
    keep = process.install_signal_handlers(app)
    pool = QThreadPool()
    pool.setMaxThreadCount(POOL_THREADS)
    model = AgentModel(AgentClient(dirs.data), TaskRunner(pool))
    context = WindowContext(model=model, data_dir=dirs.data, log_dir=dirs.logs, config_dir=dirs.config)
    host = WindowHost(context, keep_alive_seconds(context))
    instance.requested.connect(host.handle)
    host.expired.connect(app.quit)
    if args.timing:
        report_timing(host)
    model.start()  # the first figures are asked for while the window is being built
    host.open(name, page=page)
    log.info("window process %d started with the %s", os.getpid(), name)
    code = app.exec()
    model.stop()  # aborts the agent calls in flight
    instance.release()
    log.info("window process %d exits", os.getpid())
    if not pool.waitForDone(QUIT_WAIT_MS):
        # Only the charts' import can still run: it cannot be interrupted, and the window
        # process holds nothing to save (the agent keeps every figure), so it does not wait.
        logging.shutdown()
        os._exit(code)
    host.close()
    del keep
    return code
