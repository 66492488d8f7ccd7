"""``hackatime-desktop``: the tray, or with ``--window NAME`` the window process.

Two processes, one executable (design.md, process model): the tray runs all day
and stays small — icon, menu, notifications, agent supervision — and never
imports the charts library; every window lives in the window process
(:mod:`app.windows.host`), which the tray starts on demand and which exits a few
minutes after its last window closes.

The tray's start-up order is chosen for a fast icon: Qt, the icon (drawn, not
loaded), the first agent call in the background; the agent is started (if
needed) once that call says nobody answers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent import __version__

from .windows import WINDOWS

if TYPE_CHECKING:
    # The tray's parts are imported when the tray starts: the window process needs none of them.
    from PySide6.QtCore import QThreadPool
    from PySide6.QtWidgets import QApplication

    from .model import AgentModel
    from .single import Reply, SingleInstance
    from .supervisor import AgentSupervisor
    from .tasks import TaskRunner
    from .tray import TrayApp
    from .windows.launcher import WindowLauncher

log = logging.getLogger("app")

POOL_THREADS = 4  # one usually parked in the long-poll; the rest for status, stats and actions


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hackatime-desktop", description="Hackatime Desktop tray app")
    parser.add_argument("--data-dir", type=Path, help="the agent's data directory (default: the platform's)")
    parser.add_argument("--no-agent", action="store_true", help="never start or restart the agent")
    parser.add_argument("--dashboard", action="store_true", help="open the dashboard at start")
    parser.add_argument(
        "--window", choices=sorted(WINDOWS), help="show this window (in the running window process, if any)"
    )
    parser.add_argument("--page", help="with --window: show this page of it (the dashboard's tabs: sync, year, ...)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # Set-up commands: each does its job and exits without starting the tray.
    parser.add_argument("--autostart", choices=("on", "off"), help="start Hackatime Desktop at login, or stop")
    parser.add_argument("--install-desktop", action="store_true", help="add it to this user's application menu")
    parser.add_argument("--smoke", action="store_true", help="check this installation without a display")
    # Benchmarks: print when the icon is up, then quit; print when a window is shown and its charts drawn.
    parser.add_argument("--quit-after-start", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timing", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


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
    # Later launches waiting for their window: its name, the page asked for, and how to answer.
    waiting: list[tuple[str, str | None, Reply]] = field(default_factory=list)

    @property
    def windows(self) -> WindowLauncher:
        return self.tray.windows

    def request(self, line: str, reply: Reply) -> None:
        """A later ``hackatime-desktop`` launch asks for a window (app.single): answered once it is shown."""
        from .single import split_line

        verb, name, page = split_line(line)
        if verb != "open" or name not in WINDOWS:
            reply(f"error unknown request {line[:40]!r}")
            return
        self.waiting.append((name, page, reply))
        self.tray.open_window(name, page)

    def window_opened(self, name: str) -> None:
        from .single import request_line

        for entry in [w for w in self.waiting if w[0] == name]:
            self.waiting.remove(entry)
            _, page, reply = entry
            reply(request_line("opened", name, page))

    def stop(self) -> None:
        # Abort the agent calls in flight (the long-poll included) so the pool drains at once.
        self.model.stop()
        self.pool.waitForDone(5000)
        if self.supervisor is not None:
            self.supervisor.detach()
        self.tray.close()  # the window process goes with it
        self.instance.release()


def start(app: QApplication, args: argparse.Namespace) -> Session | None:
    """The tray, its model and the agent's supervision, started; None when another tray runs already."""
    from PySide6.QtCore import QThreadPool

    from . import process
    from .client import AgentClient
    from .model import AgentModel
    from .single import SingleInstance, request_line
    from .supervisor import AgentSupervisor, default_command, settings_file
    from .tasks import TaskRunner
    from .tray import TrayApp
    from .windows.launcher import WindowLauncher

    dirs = process.resolve_dirs(args.data_dir)
    instance = SingleInstance(dirs.data, role="tray")
    if not instance.acquire():
        answer = instance.ask(request_line("open", "dashboard"))
        shown = answer == request_line("opened", "dashboard")
        print(f"hackatime-desktop is already running{'; its dashboard was brought forward' if shown else ''}.")
        return None
    process.log_to_file(dirs.logs / "tray.log")
    keep_alive = process.install_signal_handlers(app)

    pool = QThreadPool()
    pool.setMaxThreadCount(POOL_THREADS)
    runner = TaskRunner(pool)
    model = AgentModel(AgentClient(dirs.data), runner, notices_dir=dirs.config)
    supervisor = None
    if not args.no_agent:
        supervisor = AgentSupervisor(
            dirs.logs,
            default_command(args.data_dir),
            agent_available=lambda: model.available,
            settings=settings_file(args.data_dir),
        )
        model.availability_changed.connect(lambda up: None if up else supervisor.ensure_running())
    windows = WindowLauncher(dirs.data, dirs.logs, data_dir_arg=args.data_dir)
    tray = TrayApp(model, supervisor=supervisor, windows=windows)
    tray.quit_requested.connect(app.quit)
    session = Session(app, pool, runner, model, tray, supervisor, instance, keep_alive)
    instance.requested.connect(session.request)
    windows.opened.connect(session.window_opened)
    tray.start()
    model.start()
    if args.dashboard:
        tray.open_dashboard()
    offer_first_run(args, dirs.config, tray)
    log.info("tray started (data dir %s)", dirs.data)
    return session


def offer_first_run(args: argparse.Namespace, config_dir: Path, tray: TrayApp) -> None:
    """The welcome window, once per user (app.first_run). An explicit data dir is a self-contained
    installation — tests, benchmarks, portable use — and gets none."""
    from agent.dirs import ENV_DATA_DIR

    from . import first_run_marker

    if args.data_dir is not None or os.environ.get(ENV_DATA_DIR) or not first_run_marker.needed(config_dir):
        return
    from . import first_run  # only now: the window's module is big, and the tray asks at every start

    first_run.start_at_login_by_default()
    tray.open_window("welcome")


def main(argv: Sequence[str] | None = None) -> int:
    started = time.time()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.window:
        from .windows import host  # the window process: none of the tray's parts

        return host.run(args)
    if args.autostart or args.install_desktop or args.smoke:
        from . import autostart, desktop_entry, smoke

        if args.smoke:
            return smoke.run()
        return autostart.main(args.autostart == "on") if args.autostart else desktop_entry.main()
    from . import process

    app = process.create_app()  # first: it sets up how everything after it is imported
    session = start(app, args)
    if session is None:
        return 0
    if args.quit_after_start:
        from PySide6.QtCore import QTimer

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
