"""``hackatime-desktop``: the tray app's entry point.

Start-up order is chosen for a fast icon: Qt, the icon (drawn, not loaded), the
first agent call in the background; the agent is started (if needed) once that
call says nobody answers; matplotlib is imported only when the dashboard is
first wanted, or in the background a few seconds after start so that opening it
stays quick.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSocketNotifier, QThreadPool, QTimer
from PySide6.QtWidgets import QApplication

from . import APP_ID, APP_TITLE, binding, icons
from .client import AgentClient
from .model import AgentModel
from .single import SingleInstance
from .supervisor import AgentSupervisor, default_command, settings_file
from .tasks import TaskRunner
from .tray import TrayApp

log = logging.getLogger("app")

POOL_THREADS = 4  # one usually parked in the long-poll; the rest for status, stats and actions
WARMUP_DELAY_MS = 3000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hackatime-desktop", description="Hackatime Desktop tray app")
    parser.add_argument("--data-dir", type=Path, help="the agent's data directory (default: the platform's)")
    parser.add_argument("--no-agent", action="store_true", help="never start or restart the agent")
    parser.add_argument("--dashboard", action="store_true", help="open the dashboard at start")
    parser.add_argument("--no-warmup", action="store_true", help=argparse.SUPPRESS)
    # Benchmarks: print when the icon is up, then quit.
    parser.add_argument("--quit-after-start", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def resolve_dirs(data_dir: Path | None) -> tuple[Path, Path]:
    from agent.config import Flags, default_dirs

    data, logs, _ = default_dirs(Flags(data_dir=data_dir), os.environ)
    return data, logs


def setup_logging(log_dir: Path) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.TimedRotatingFileHandler(
        log_dir / "tray.log", when="midnight", backupCount=7, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def install_signal_handlers(app: QApplication) -> tuple[object, ...]:
    """Quit cleanly on SIGINT / SIGTERM (logout, Ctrl-C) without a polling timer.

    Python runs signal handlers only between bytecodes, which never happens while
    Qt's loop sleeps; a wake-up socket makes the loop notice at once.
    """
    if os.name != "posix":
        return ()
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


def warm_up_charts() -> threading.Thread:
    """Import matplotlib on a plain thread while the user is not looking.

    Its import costs about half a second; paid here, the first dashboard opens
    within budget. A daemon thread: it never holds up quitting.
    """

    def work() -> None:
        try:
            from . import charts  # noqa: F401 - the import is the work

        except Exception:  # the dashboard will report the real error when opened
            log.exception("warming up the charts failed")

    thread = threading.Thread(target=work, name="charts-warmup", daemon=True)
    thread.start()
    return thread


@dataclass
class Session:
    """Everything :func:`start` set up, for :meth:`stop` to take down in order (benchmarks drive it too)."""

    app: QApplication
    pool: QThreadPool
    runner: TaskRunner
    model: AgentModel
    tray: TrayApp
    supervisor: AgentSupervisor | None
    instance: SingleInstance
    keep_alive: tuple[object, ...]
    warmup: threading.Thread | None = None

    def warm_up(self) -> None:
        self.warmup = warm_up_charts()

    def stop(self) -> None:
        # Abort the agent calls in flight (the long-poll included) so the pool drains at once.
        self.model.stop()
        self.pool.waitForDone(5000)
        if self.supervisor is not None:
            self.supervisor.detach()
        self.tray.close()
        self.instance.release()


def create_app() -> QApplication:
    """The process's QApplication, set up for a tray that outlives its windows."""
    binding.cache_no_sources()  # 3 to 6 MB less resident memory (see app.binding)
    app = QApplication(sys.argv[:1])
    app.setApplicationName(APP_ID)
    app.setApplicationDisplayName(APP_TITLE)
    app.setDesktopFileName(APP_ID)
    app.setQuitOnLastWindowClosed(False)  # closing the dashboard leaves the tray running
    app.setWindowIcon(icons.app_icon())
    return app


def start(app: QApplication, args: argparse.Namespace) -> Session | None:
    """The tray, its model and the agent's supervision, started; None when another tray runs already."""
    data_dir, log_dir = resolve_dirs(args.data_dir)
    instance = SingleInstance(data_dir)
    if not instance.acquire():
        shown = instance.activate_running()
        print(f"hackatime-desktop is already running{'; its dashboard was brought forward' if shown else ''}.")
        return None
    setup_logging(log_dir)
    keep_alive = install_signal_handlers(app)

    pool = QThreadPool()
    pool.setMaxThreadCount(POOL_THREADS)
    runner = TaskRunner(pool)
    model = AgentModel(AgentClient(data_dir), runner)
    supervisor = None
    if not args.no_agent:
        supervisor = AgentSupervisor(
            log_dir,
            default_command(args.data_dir),
            agent_available=lambda: model.available,
            settings=settings_file(args.data_dir),
        )
        model.availability_changed.connect(lambda up: None if up else supervisor.ensure_running())
    tray = TrayApp(model, supervisor=supervisor)
    tray.quit_requested.connect(app.quit)
    instance.activated.connect(tray.open_dashboard)
    session = Session(app, pool, runner, model, tray, supervisor, instance, keep_alive)
    tray.start()
    model.start()
    if args.dashboard:
        tray.open_dashboard()
    elif not args.no_warmup:
        QTimer.singleShot(WARMUP_DELAY_MS, session.warm_up)
    log.info("tray started (data dir %s)", data_dir)
    return session


def main(argv: Sequence[str] | None = None) -> int:
    started = time.time()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    app = create_app()
    session = start(app, args)
    if session is None:
        return 0
    if args.quit_after_start:

        def report() -> None:
            shown = session.tray.icon.isVisible()
            print(json.dumps({"shown_at": time.time(), "started_at": started, "tray": shown}))
            sys.stdout.flush()
            app.quit()

        QTimer.singleShot(0, report)

    code = app.exec()
    log.info("tray quitting; the agent keeps running for the editors")
    session.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
