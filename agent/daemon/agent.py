"""The long-lived agent: store + intake + delivery + stats (+ watcher), wired together.

``Agent(config).start()`` runs everything on background threads and returns once
the local API is listening; ``stop()`` joins every thread it started. The CLI's
``run`` command and the tests use the same class.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from agent import __version__, intake_port
from agent.api.control import Control, load_or_create_token
from agent.api.httpserver import LocalServer, Router
from agent.api.intake import Intake
from agent.config import SETTINGS_FILE
from agent.contract import (
    DESTINATION,
    PAUSE_UNTIL_TOMORROW,
    RUNTIME_FILE,
    STORE_FILE,
    EditorRouting,
    HeldUploadAnswer,
    ImportAnswer,
    ImportProgress,
    PortAnswer,
    RuntimeInfo,
    Status,
)
from agent.delivery.hackatime import HackatimeClient
from agent.delivery.outbox import Outbox
from agent.delivery.pacing import RateLimiter
from agent.imports import ImportBusy, upload_seconds
from agent.ingest import Ingest
from agent.jobs import next_local_midnight
from agent.key_watch import watch_key_sources
from agent.keys import KEY_CHANGED_FILE
from agent.settings import AppSettings
from agent.stats.service import StatsService
from agent.store.store import Store
from agent.wakatime_cfg import CfgEditError

if TYPE_CHECKING:
    from agent.imports.job import ImportJob
from .account import AccountControl
from .base import FIGURES_FOR
from .capture import CaptureControl
from .delivery import DeliveryLoop
from .sign_in import SignInControl
from .stats import BACKUP_CHECK, BACKUP_FIRST, STATS_REFRESH, StatsJobs
from .status import build_status

log = logging.getLogger(__name__)

RECORDING_WINDOW = 120.0


class Agent(DeliveryLoop, AccountControl, SignInControl, CaptureControl, StatsJobs):
    """The running agent; ``start()`` brings its parts up, ``stop()`` joins every thread."""

    # ---- life cycle -----------------------------------------------------------------------

    def start(self) -> Agent:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(cfg.data_dir, 0o700)
        self.lock.acquire()
        try:
            self._start_parts()
        except BaseException:
            self._teardown()
            raise
        self._started = True
        return self

    def _start_parts(self) -> None:
        cfg = self.config
        self.store = Store(cfg.data_dir / STORE_FILE, synchronous=self._synchronous)
        # Editors' heartbeats (the intake) and the watcher's come in the same way.
        self.ingest = Ingest(self.store, accepting=self.tracking, on_stored=self._stored, on_full=self.changed)
        self.store.set_destination(DESTINATION, cfg.api_url)
        resumed = self.store.resume_in_flight()
        if resumed:
            log.info("%d heartbeats left in flight by the last run are queued again", resumed)
        for notice in cfg.notices:
            log.warning("%s", notice)
        self._reset_auth_if_key_changed()
        if self.store.meta_get(FIGURES_FOR) != self._figures_owner():
            self._forget_server_figures()
        if self.store.destination(DESTINATION)["auth_state"] == "rejected":
            self._recheck.due_now()  # a restart is the user's doing: ask the server again at once
        limiter = self._limiter or (RateLimiter() if self._pacing else None)
        self.client = HackatimeClient(
            cfg.api_url,
            lambda: self.keys.key,
            machine=cfg.machine,
            timeout=cfg.timeout,
            limiter=limiter,
            proxy=cfg.proxy,
            verify=cfg.verify_ssl,
        )
        self.outbox = Outbox(
            self.store,
            self.client,
            DESTINATION,
            batch_size=cfg.batch_size,
            clock=self.clock,
            monotonic=self.monotonic,
            backoff=self._backoff,
            on_change=self.changed,
        )
        self.stats = StatsService(
            self.store, client=self.client, destination=DESTINATION, clock=self.clock, oauth=lambda: self._oauth_token
        )
        self.token = load_or_create_token(cfg.data_dir)
        if not self._serve:
            return

        router = Router()
        Control(self, self.token).register(router)
        Intake(
            self.ingest,
            api_keys=self.keys.accepted_at_intake,
            machine=cfg.machine,
            statusbar=self.stats.statusbar_today,
        ).register(router)
        server = self.server = LocalServer(router, cfg.port)
        server.start()

        self._spawn("delivery", self._delivery_loop)
        if cfg.key_sources is not None:
            # A key fixed in ~/.wakatime.cfg, the settings or the keyring is picked up without a restart.
            cfg.config_dir.mkdir(parents=True, exist_ok=True)
            self.key_files = watch_key_sources(
                self.keys, [cfg.wakatime_cfg, cfg.config_dir / SETTINGS_FILE], cfg.config_dir / KEY_CHANGED_FILE,
                blocked=lambda: self.store.destination(DESTINATION)["auth_state"] in ("missing", "rejected"),
            )  # fmt: skip
        self._spawn("stats-fold", self._stats_loop)
        self._spawn("sign-in", self._load_sign_in)  # a keyring read, off the start path
        self.jobs.every("server-figures", STATS_REFRESH, self._refresh_server_figures, delay=0)
        self.jobs.every("backup", BACKUP_CHECK, self._backup, delay=BACKUP_FIRST)
        self.jobs.start()
        if self._watch and cfg.capture.watch_dirs:
            self._ensure_watcher()
        self._write_runtime_file()
        log.info("agent %s listening on %s (data in %s)", __version__, server.url, cfg.data_dir)

    def stop(self) -> None:
        self._stop.set()
        self._import_cancel.set()
        self._wake.set()
        self._kick.set()  # the worker may be sitting out a backoff
        self._stats_due.set()
        with self._changes:
            self._changes.notify_all()
        self._teardown()

    def _teardown(self) -> None:
        if self.key_files is not None:
            self.key_files.stop()
            self.key_files = None
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        self.jobs.shutdown()
        if self.server is not None:
            self.server.stop()
        with self._port_lock:
            self._tearing_down = True
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        for old in self._retiring:  # moved from, and not yet retired: the answer's hook came too late
            old.stop()
        self._retiring.clear()
        if hasattr(self, "client"):
            self.client.close()
        if hasattr(self, "store"):
            self.store.close()
        with contextlib.suppress(FileNotFoundError):
            if self._started and self._serve:
                (self.config.data_dir / RUNTIME_FILE).unlink()
        self.lock.release()

    def __enter__(self) -> Agent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until stop() is called (by a signal handler)."""
        self._stop.wait()

    def _write_runtime_file(self) -> None:
        info: RuntimeInfo = {
            "pid": os.getpid(),
            "url": self.control_url,
            "started_at": self.started_at,
            "version": __version__,
        }
        path = self.config.data_dir / RUNTIME_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info), encoding="utf-8")
        os.replace(tmp, path)

    # ---- the local API's port ---------------------------------------------------------------------

    def set_port(self, port: int, *, route_editors: bool = False) -> tuple[PortAnswer, Callable[[], None]]:
        """Serve the local API on ``port`` from now on (raises PortRefused: the old one stays).

        Returns the answer and what retires the old listener, to be run once the answer has
        left through it (``agent.intake_port``).
        """
        cfg = self.config
        with self._port_lock:
            old = self.server
            if old is None or port == old.port:
                return self._port_answer(None), lambda: None
            new = intake_port.bind(old.router, port)
            try:
                path = cfg.config_dir / SETTINGS_FILE
                intake_port.keep_upload_server(path, cfg.wakatime_cfg, old.port, self.client.api_url)
                AppSettings(path).set("port", port)
            except BaseException:
                new.stop()
                raise
            new.start()
            self.server, self.config = new, replace(cfg, port=port)
            self._retiring.append(old)
            self._write_runtime_file()
        log.info("the local API moved from port %d to %d", old.port, port)
        editors = None
        if route_editors:
            try:
                editors = self.route_editors()
            except CfgEditError as exc:
                log.warning("editors could not be pointed at the new port: %s", exc)
        answer = self._port_answer(editors, old.port)
        self.changed()

        def retire() -> None:
            old.stop()
            with self._port_lock:
                self._retiring.remove(old)
            self.changed()  # the old port is free now

        def after_answer() -> None:
            # The answer may reach the caller, who stops the agent, before this runs: then the
            # teardown retires the old listener, and no thread is started after it joined them.
            with self._port_lock:
                if not self._tearing_down:
                    self._spawn("retire-intake", retire)

        return answer, after_answer

    def _port_answer(self, editors: EditorRouting | None, old_port: int | None = None) -> PortAnswer:
        warning = None
        if old_port is not None:
            warning = intake_port.editors_warning(self.config.wakatime_cfg, old_port, self.intake_url)
            flags = self.config.key_sources.flags if self.config.key_sources else None
            if flags is not None and flags.port is not None:
                note = f"this agent was started with --port {flags.port}, which its next start uses again"
                warning = f"{warning}; {note}" if warning else note
        assert self.server is not None
        return {"port": self.server.port, "intake_url": self.intake_url, "editors": editors, "warning": warning}

    # ---- importing history -------------------------------------------------------------------------

    def start_import(self, path: str, *, upload: bool = True) -> ImportAnswer:
        """Start importing an export file on a thread of its own; ``ImportBusy`` while one runs.
        Progress and the summary: ``import_run()``, and every batch bumps the change seq."""
        from agent.imports.job import ImportJob  # the parser is loaded only when an import starts

        with self._import_lock:
            if self._import is not None and not self._import.progress.finished:
                raise ImportBusy(f"an import of {self._import.path.name} is still running")
            self._import_cancel = threading.Event()
            job = self._import = ImportJob(
                self.store,
                path,
                upload=upload,
                cancel=self._import_cancel,
                on_progress=lambda p: self.changed(),
                on_stored=self._stored,
                clock=self.monotonic,
            )
            self._import_runs += 1
            job.progress.id = self._import_runs
        self._spawn("import", lambda: self._run_import(job))
        return self.import_run()

    def _run_import(self, job: ImportJob) -> None:
        try:
            job.run()
            # Fold the new history into the rollups now: the dashboard shows it at once.
            self.stats.prepare()
        except Exception:
            log.exception("importing %s failed", job.path)
            job.progress.state, job.progress.problem = "refused", "the import failed unexpectedly; see the log"
        self.changed(wake=True)

    def import_run(self) -> ImportAnswer:
        job = self._import
        return {"run": None if job is None else cast(ImportProgress, job.progress.as_dict())}

    def cancel_import(self) -> ImportAnswer:
        self._import_cancel.set()
        return self.import_run()

    def upload_held(self) -> HeldUploadAnswer:
        """Queue the history imported without upload, behind every live heartbeat."""
        queued = self.store.upload_held()
        if queued:
            self.changed(wake=True)
        return {"queued": queued, "upload_seconds": round(upload_seconds(queued), 1)}

    def set_paused(self, until: float | str | None) -> None:
        """Pause until ``until`` (epoch seconds, or ``"tomorrow"``: the next local midnight, DST
        included); None resumes. The scheduler resumes at the end, so the tray hears of it."""
        if until == PAUSE_UNTIL_TOMORROW:
            until = next_local_midnight(self.clock(), self.jobs.zone)
        elif isinstance(until, str):
            raise ValueError(f"until must be a time, {PAUSE_UNTIL_TOMORROW!r} or None, not {until!r}")
        self.paused_until = until
        if until is None:
            self.jobs.cancel("resume")
        else:
            self.jobs.at("resume", until, self._resume)
        log.info("tracking %s", "resumed" if until is None else f"paused until {time.ctime(until)}")
        self.changed()

    def _resume(self) -> None:
        """The scheduler's job at the end of a pause (a no-op before it, on the agent's clock)."""
        if self.paused_until is not None and self.clock() >= self.paused_until:
            self.set_paused(None)

    # ---- status ----------------------------------------------------------------------------------

    def destination_names(self) -> list[str]:
        return [d["name"] for d in self.store.destinations()]

    def _backoff_remaining(self, destination: str) -> float:
        outbox = getattr(self, "outbox", None)
        return outbox.backoff_remaining() if outbox is not None and outbox.destination == destination else 0.0

    def status(self) -> Status:
        # The seq first: a status then never claims a change its figures do not hold yet. Read
        # last, a settle landing mid-build (a 401 just after the claim) would carry its seq on
        # figures from before it, and a tray polling "after" that seq would never hear of it.
        seq = self._seq
        status = build_status(
            self.store, self.config, key=self.keys.current(), clock=self.clock, backoff=self._backoff_remaining
        )
        with self._recheck_lock:
            status["key"]["next_check_in"] = self._recheck.due_in()
        last = self.store.last_received_at()
        status["pid"] = os.getpid()
        status["started_at"] = self.started_at
        status["intake_url"] = self.intake_url if self.server is not None else None
        status["paused_until"] = None if self.tracking() else self.paused_until
        status["recording"] = bool(last and self.clock() - last < RECORDING_WINDOW and self.tracking())
        status["last_heartbeat_at"] = last
        status["seq"] = seq
        status["watch"] = self.watched()
        status["import_run"] = self.import_run()["run"]
        status["notifications"] = bool(AppSettings(self.config.config_dir / SETTINGS_FILE).get("notifications"))
        return status
