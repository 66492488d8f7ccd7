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
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from . import __version__
from .api.control import Control, load_or_create_token
from .api.httpserver import LocalServer, Router
from .api.intake import Intake
from .config import DEFAULT_API_URL, ENV_API_URL, SETTINGS_FILE, Config, ResolvedKey, is_self_url, reload_capture
from .contract import (
    DESTINATION,
    LOCK_FILE,
    PAUSE_UNTIL_TOMORROW,
    RUNTIME_FILE,
    STORE_FILE,
    CaptureRules,
    DeadLetter,
    DestinationStatus,
    EditorRouting,
    HistoryUpload,
    ImportAnswer,
    ImportProgress,
    KeyAnswer,
    KeyForgetAnswer,
    KeySetAnswer,
    Notice,
    ProjectsAnswer,
    RuntimeInfo,
    ServerAnswer,
    Status,
    SyncAnswer,
    WatchAnswer,
    WatchState,
)
from .delivery.hackatime import HackatimeClient
from .delivery.outbox import Outbox, Outcome
from .delivery.pacing import RateLimiter
from .delivery.recheck import KeyRecheck, RealTime, Waiting
from .heartbeat import as_sent_by_wakatime_cli, normalize, user_agent
from .imports import ImportBusy, upload_seconds
from .jobs import Jobs, next_local_midnight
from .key_watch import KeyFileWatcher
from .keys import (
    KeyCheck,
    KeyInUse,
    KeyOwner,
    ServerRefused,
    Where,
    check_key,
    client_for,
    fingerprint,
    forget_key,
    malformed_reason,
    set_key,
)
from .lock import InstanceLock
from .secrets import mask
from .settings import AppSettings, SettingsError
from .stats.service import StatsService
from .store.store import Store
from .wakatime_cfg import route_editors, routing_state, undo_routing

if TYPE_CHECKING:
    from .capture.watcher import Watcher
    from .imports.job import ImportJob

log = logging.getLogger(__name__)

IDLE_RECHECK = 60.0  # seconds between delivery checks when nothing wakes the worker
STATS_REFRESH = 30.0  # how often the scheduler asks whether a server fetch is due
FORCED_REFRESH = 120.0  # after deliveries, refetch server figures at most this often
STATS_QUIET = 1.0  # after new heartbeats, wait until none came for this long before folding them in
STATS_MAX_DEFER = 30.0  # but fold a never-ending burst in at least this often
CAPTURE_RULES = ("exclude", "include", "hide_file_names", "hide_project_names", "hide_branch_names")
BACKUP_DIR = "backups"  # in the data dir
BACKUP_EVERY = 86400.0  # a store backup a day ...
BACKUP_CHECK = 3600.0  # ... checked for every hour, so an agent that runs a few hours a day makes it too
BACKUP_FIRST = 300.0  # the first check, a few minutes after start
RECORDING_WINDOW = 120.0


class Agent:
    def __init__(
        self,
        config: Config,
        *,
        synchronous: str = "FULL",
        pacing: bool | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        watch: bool = True,
        limiter: RateLimiter | None = None,
        serve: bool = True,
        keyring_in_child: bool = True,
        waiting: Waiting | None = None,
        zone: ZoneInfo | None = None,
    ) -> None:
        self.config = config
        self.clock = clock  # wall time: stored facts, pauses "until" a time of day
        self.monotonic = monotonic  # waiting
        self._synchronous = synchronous
        self._pacing = config.pacing if pacing is None else pacing
        self._limiter = limiter
        self._watch = watch
        # serve=False: store + delivery only, for the one-shot ``sync`` command (no listener,
        # no background worker competing with its drain).
        self._serve = serve
        self._stop = threading.Event()
        self._wake = threading.Event()  # new work for the delivery worker
        self._kick = threading.Event()  # the user asked for a sync: ignore backoff once
        self._stats_due = threading.Event()  # new heartbeats to fold into the stats rollups
        self._server_stale = threading.Event()  # deliveries made the cached server figures old
        self._last_forced_refresh = 0.0
        self._changes = threading.Condition()
        self._seq = 0
        self._threads: list[threading.Thread] = []
        self._watch_lock = threading.Lock()
        # The one owner of the key: status, the client, the stats fetcher and the intake read it.
        self._keyring_in_child = keyring_in_child
        self.keys = KeyOwner(
            config.key_sources, ResolvedKey(config.api_key, config.key_source), keyring_in_child=keyring_in_child
        )
        self.keys.subscribe(self._key_changed)
        self._waiting = waiting or RealTime(monotonic)
        self._recheck = KeyRecheck(self._waiting)
        self._recheck_lock = threading.Lock()
        self._editors_lock = threading.Lock()
        self.key_files: KeyFileWatcher | None = None
        self.paused_until: float | None = None
        self.started_at = clock()
        self.lock = InstanceLock(config.data_dir / LOCK_FILE)
        self.store: Store
        self.client: HackatimeClient
        self.outbox: Outbox
        self.stats: StatsService
        self.server: LocalServer | None = None
        self.token = ""
        self.watcher: Watcher | None = None
        self._import: ImportJob | None = None  # the running import, else the last one
        self._import_cancel = threading.Event()
        self._import_lock = threading.Lock()
        self._import_runs = 0
        self.jobs = Jobs(zone, clock=clock)  # wall-clock jobs; started with the local API
        self._refresh_lock = threading.Lock()  # the scheduler's refresh and the one after deliveries
        self._started = False

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
        self.store.set_destination(DESTINATION, cfg.api_url)
        resumed = self.store.resume_in_flight()
        if resumed:
            log.info("%d heartbeats left in flight by the last run are queued again", resumed)
        for notice in cfg.notices:
            log.warning("%s", notice)
        self._reset_auth_if_key_changed()
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
            on_change=self.changed,
        )
        self.stats = StatsService(self.store, client=self.client, destination=DESTINATION, clock=self.clock)
        self.token = load_or_create_token(cfg.data_dir)
        if not self._serve:
            return

        router = Router()
        Control(self, self.token).register(router)
        Intake(
            self.store,
            api_keys=self.keys.accepted_at_intake,
            machine=cfg.machine,
            statusbar=self.stats.statusbar_today,
            on_stored=self._stored,
            accepting=self.tracking,
            on_full=self.changed,
        ).register(router)
        server = self.server = LocalServer(router, cfg.port)
        server.start()

        self._spawn("delivery", self._delivery_loop)
        if cfg.key_sources is not None:
            # A key fixed in ~/.wakatime.cfg or the settings is picked up without a restart.
            cfg.config_dir.mkdir(parents=True, exist_ok=True)
            self.key_files = KeyFileWatcher(
                [cfg.wakatime_cfg, cfg.config_dir / SETTINGS_FILE], self.keys.reload
            ).start()
        self._spawn("stats-fold", self._stats_loop)
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
        for thread in self._threads:
            thread.join()
        self._threads.clear()
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

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

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

    @property
    def control_url(self) -> str:
        if self.server is None:
            raise RuntimeError("this agent does not serve the local API (serve=False)")
        return self.server.url

    @property
    def intake_url(self) -> str:
        return f"{self.control_url}/api/hackatime/v1"

    # ---- state changes and long-poll --------------------------------------------------------

    def changed(self, wake: bool = False) -> None:
        with self._changes:
            self._seq += 1
            self._changes.notify_all()
        if wake:
            self._wake.set()

    def wait_for_change(self, after: int, timeout: float) -> int:
        with self._changes:
            self._changes.wait_for(lambda: self._seq > after or self._stop.is_set(), timeout)
            return self._seq

    # ---- delivery ----------------------------------------------------------------------------

    def _delivery_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            kicked = self._kick.is_set()
            self._kick.clear()
            try:
                with self._recheck_lock:
                    due = self._recheck.due_in()
                if due == 0:
                    self.recheck_key()
                result = self.outbox.deliver_once(self._stop, ignore_backoff=kicked)
            except Exception:
                log.exception("delivery pass failed unexpectedly")
                self._stop.wait(IDLE_RECHECK)
                continue
            if result.outcome is Outcome.DELIVERED:
                if result.sent:
                    # The server's figures now lag what it holds: refetch them (lists and day
                    # bars included) once the burst of deliveries settles; until then the
                    # figures are merged with the work sent since they were fetched.
                    self._server_stale.set()
                    self._stats_due.set()
                    with self._recheck_lock:
                        self._recheck.reset()
                continue
            if result.outcome in (Outcome.RATE_LIMITED, Outcome.UNREACHABLE, Outcome.BACKING_OFF):
                # Sit out the wait; only an explicit sync request (or stop) cuts it short.
                self._kick.wait(result.wait)
            elif result.outcome is Outcome.DISK_FULL:
                # A heartbeat stored again means the disk has room: try at once, else every few seconds.
                self._wake.wait(result.wait)
            elif result.outcome is Outcome.AUTH_REJECTED:
                # Wait for the next re-check of the same key, or a new key (which wakes this loop).
                with self._recheck_lock:
                    self._recheck.rejected()
                    due = self._recheck.due_in()
                self._waiting.wait(self._wake, due)
            else:
                self._wake.wait(IDLE_RECHECK)

    def recheck_key(self) -> KeyCheck:
        """Ask the server whether it accepts the key in use again; resume delivery if it does."""
        used = self.keys.current()
        result = check_key(self.client)
        if self.keys.current().fingerprint != used.fingerprint:
            return result  # the key changed meanwhile: its own state was reset by _key_changed
        with self._recheck_lock:
            if result.verdict == "accepted":
                self._recheck.accepted()
            else:
                self._recheck.still_rejected()
            wait = self._recheck.due_in()
        if result.verdict == "accepted":
            if self.store.destination(DESTINATION)["auth_state"] == "rejected":
                log.info("the server accepts the API key %s again; delivery resumes", mask(used.key))
                self.store.update_destination(DESTINATION, auth_state="unknown")
            self.changed(wake=True)
        else:
            log.info("API key %s: %s; next check in %.0f min", mask(used.key), result.reason, (wait or 0) / 60)
        return result

    def sync_now(self) -> SyncAnswer:
        """Deliver everything deliverable now (the tray's Sync now, the CLI's sync)."""
        self.keys.reload(keyring=True)
        if self.store.destination(DESTINATION)["auth_state"] == "rejected":
            self.recheck_key()  # the user asked: don't make them wait for the next scheduled check
        result = self.outbox.drain(self._stop)
        self.changed()
        return {
            "delivered": result.sent,
            "dead": result.dead,
            "pending": result.pending,
            "outcome": result.outcome.value,
            "error": result.error,
        }

    def key_rejected(self) -> bool:
        return bool(self.store.destination(DESTINATION)["auth_state"] == "rejected")

    def refresh_stats(self) -> dict[str, Any]:
        """Fetch the server's figures now (a dashboard's Refresh), then answer the stats snapshot."""
        # While the key is rejected, the server's figures are not fetched: they would look fresh
        # ("updated just now") beside heartbeats the server refuses to take.
        if not self.key_rejected() and self.stats.refresh_server(force=True):
            self.changed()
        return self.stats.snapshot()

    def stats_snapshot(self) -> dict[str, Any]:
        return self.stats.snapshot()

    def projects(self, range_: str) -> ProjectsAnswer:
        """A range's projects, the server's merged with unsynced work or this store's (the
        tray's menu lists today's, the dashboard's table any range's), with their source."""
        answer: ProjectsAnswer = self.stats.projects(range_)  # type: ignore[assignment]
        return answer

    # ---- dead letters and notices ----------------------------------------------------------------

    def dead_letters(self, destination: str) -> list[DeadLetter]:
        return self.store.dead_letters(destination)

    def retry_dead(self, destination: str, ids: Sequence[int] | None) -> int:
        """Dead letters back to the queue (all of them when ``ids`` is None); delivery wakes up."""
        count = self.store.retry_dead(destination, ids)
        self.changed(wake=True)
        return count

    def discard_dead(self, destination: str, ids: Sequence[int]) -> int:
        count = self.store.discard_dead(destination, ids)
        self.changed()
        return count

    def dismiss_notice(self, notice_id: int) -> None:
        self.store.dismiss_notice(notice_id)
        self.changed()

    # ---- the key, for the control API ---------------------------------------------------------

    def key_info(self) -> KeyAnswer:
        with self._recheck_lock:
            next_check = self._recheck.due_in()
        info = self.keys.current().describe(next_check)
        return {
            **info,
            "auth_state": self.store.destination(DESTINATION)["auth_state"],
            "notices": list(self.keys.notices),
        }

    def check_key(self, candidate: str | None = None) -> KeyCheck:
        """Ask the server about the key in use, or about ``candidate`` (typed in the settings)."""
        if candidate is None:
            return self.recheck_key() if self.key_rejected() else check_key(self.client)
        problem = malformed_reason(candidate.strip())
        if problem:
            return KeyCheck("malformed", problem)
        with client_for(self.config, candidate.strip()) as client:
            return check_key(client)

    def set_key(self, key: str, where: Where, *, check: bool = True) -> KeySetAnswer:
        """Validate and store a new key, then use it at once (raises KeyRefused / KeyStoreError)."""
        stored, verdict = set_key(self.config, key, where, check=check, in_child=self._keyring_in_child)
        self.keys.reload(keyring=True)
        log.info("a new API key %s was %s", mask(key), stored)
        return {"stored": stored, "check": verdict.as_dict(), "key": self.key_info(), "warning": self._outranked(key)}

    def forget_key(self) -> KeyForgetAnswer:
        forgotten = forget_key(self.config.config_dir, in_child=self._keyring_in_child)
        self.keys.reload(keyring=True)
        log.info("the API key was %s", forgotten)
        return {"forgotten": forgotten, "key": self.key_info()}

    def _outranked(self, key: str) -> str | None:
        current = self.keys.current()
        if current.fingerprint == fingerprint(key.strip()):
            return None
        return (
            f"the key from {current.source} ({mask(current.key)}) outranks it and stays in use"
            if current.key
            else "it is not in use: no key could be read back"
        )

    # ---- capture rules (Tracking in the settings) -------------------------------------------------------

    def capture_rules(self) -> CaptureRules:
        settings = AppSettings(self.config.config_dir / SETTINGS_FILE)
        return cast(CaptureRules, {name: settings.get(name) for name in CAPTURE_RULES})

    def set_capture_rules(self, changes: dict[str, Any]) -> CaptureRules:
        """Validate every change first (nothing is saved if one is bad), save, then capture with them."""
        for name, value in changes.items():
            if name not in CAPTURE_RULES:
                raise SettingsError(f"{name!r} is not a capture rule (one of {', '.join(CAPTURE_RULES)})")
            if name in ("exclude", "include"):
                if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                    raise SettingsError(f"{name} must be a list of patterns")
                for pattern in value:
                    try:
                        re.compile(pattern)
                    except re.error as exc:
                        raise SettingsError(f"{name}: {pattern!r} is not a valid pattern ({exc})") from None
            elif not isinstance(value, bool):
                raise SettingsError(f"{name} must be true or false")
        settings = AppSettings(self.config.config_dir / SETTINGS_FILE)
        for name, value in changes.items():
            settings.set(name, value)
        if self.config.key_sources is not None:
            with self._watch_lock:
                self.config = replace(self.config, capture=reload_capture(self.config.key_sources))
                if self.watcher is not None:
                    # The watcher reads its rules when it starts: start it again with the new ones.
                    self.watcher.stop()
                    self.watcher = None
                    if self.config.capture.watch_dirs:
                        self._ensure_watcher()
        log.info("capture rules changed: %s", ", ".join(sorted(changes)))
        self.changed()
        return self.capture_rules()

    # ---- the server ----------------------------------------------------------------------------------

    def set_server(self, api_url: str) -> ServerAnswer:
        """Upload to another WakaTime-compatible server from now on (raises ServerRefused)."""
        url = api_url.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServerRefused(400, f"{url!r} is not an http(s) URL, such as {DEFAULT_API_URL}")
        if self.server is not None and is_self_url(url, self.server.port):
            raise ServerRefused(400, "that is this agent's own intake: heartbeats would go round in circles")
        flags = self.config.key_sources.flags if self.config.key_sources else None
        env = self.config.key_sources.env if self.config.key_sources else {}
        if (flags and flags.api_url) or env.get(ENV_API_URL):
            raise ServerRefused(400, f"--api-url or {ENV_API_URL} sets the server for this agent; change it there")
        candidate = replace(self.config, api_url=url)
        key = self.keys.key
        if key:
            with client_for(candidate, key) as client:
                verdict = check_key(client)
        else:
            verdict = KeyCheck("missing", "no API key is configured")
        if verdict.verdict == "unreachable":
            raise ServerRefused(502, f"{url} did not answer like a WakaTime-compatible server: {verdict.reason}")
        AppSettings(self.config.config_dir / SETTINGS_FILE).set("api_url", url)
        self.config = candidate
        self.client.set_api_url(url)
        self.store.set_destination(DESTINATION, url)
        self.store.update_destination(DESTINATION, auth_state="unknown" if key else "missing", backoff_until=None)
        with self._recheck_lock:
            self._recheck.reset()
        self._server_stale.set()
        log.info("uploading to %s from now on (the key there: %s)", url, verdict.verdict)
        self.changed(wake=True)
        return {"api_url": url, "check": verdict.as_dict()}

    # ---- editors (~/.wakatime.cfg) ------------------------------------------------------------------

    def editors(self) -> EditorRouting:
        cfg = self.config
        return routing_state(cfg.wakatime_cfg, self.intake_url, cfg.config_dir).as_dict(self.client.api_url)

    def route_editors(self) -> EditorRouting:
        """Point editor plugins at this agent; uploads keep going where the file pointed before."""
        cfg = self.config
        with self._editors_lock:
            state, upstream = route_editors(cfg.wakatime_cfg, self.intake_url, cfg.config_dir)
            settings = AppSettings(cfg.config_dir / SETTINGS_FILE)
            if upstream and not settings.get("api_url") and upstream.rstrip("/") != DEFAULT_API_URL:
                # After a restart the file's api_url (now this agent) is skipped; keep its server.
                settings.set("api_url", upstream.rstrip("/"))
        log.info("editor plugins now send to %s (%s backed up)", self.intake_url, cfg.wakatime_cfg)
        self.changed()
        return state.as_dict(self.client.api_url)

    def undo_editor_routing(self) -> EditorRouting:
        cfg = self.config
        with self._editors_lock:
            state = undo_routing(cfg.wakatime_cfg, self.intake_url, cfg.config_dir)
        log.info("editor routing undone in %s", cfg.wakatime_cfg)
        self.changed()
        return state.as_dict(self.client.api_url)

    def _key_changed(self, before: KeyInUse, after: KeyInUse) -> None:
        """A different key is in use (told apart by fingerprint): its state starts afresh."""
        log.info(
            "the API key changed: now %s from %s (was %s)", mask(after.key), after.source or "nowhere", mask(before.key)
        )
        if hasattr(self, "store"):
            self._reset_auth_if_key_changed()
            with self._recheck_lock:
                self._recheck.reset()
            self._server_stale.set()
            self.changed(wake=True)

    def _reset_auth_if_key_changed(self) -> None:
        current = self.keys.current()
        fingerprint = current.fingerprint or ""
        if self.store.meta_get("key_fingerprint") != fingerprint:
            self.store.meta_set("key_fingerprint", fingerprint)
            self.store.update_destination(DESTINATION, auth_state="unknown" if current.key else "missing")

    # ---- stats ---------------------------------------------------------------------------------

    def _stats_loop(self) -> None:
        try:
            # After a migration or a recovery the rollups are rebuilt here (seconds on years of
            # history) rather than on the first editor's statusbar request.
            rebuilt = self.stats.prepare()
            if rebuilt:
                log.info("stats rollups brought up to date (%d heartbeats folded in)", rebuilt)
        except Exception:
            log.exception("preparing the stats rollups failed")
        while not self._stop.is_set():
            self._stats_due.wait()
            self._wait_until_quiet()
            if self._stop.is_set():
                return
            try:
                self.stats.prepare()  # fold new heartbeats into the rollups, off the intake path
                if self._server_stale.is_set():
                    self._refresh_server_figures()  # deliveries settled: now, not at the next period
            except Exception:
                log.exception("folding new heartbeats into the stats failed")

    def _refresh_server_figures(self) -> None:
        """Fetch the server's figures that are due (all of them, at most every FORCED_REFRESH,
        once deliveries made the cached ones lag): every STATS_REFRESH on the scheduler, and
        when a burst of deliveries settles."""
        with self._refresh_lock:
            force = self._server_stale.is_set() and self.monotonic() - self._last_forced_refresh >= FORCED_REFRESH
            if force:
                self._server_stale.clear()
                self._last_forced_refresh = self.monotonic()
            if not self.key_rejected() and self.stats.refresh_server(force=force):
                self.changed()

    def _backup(self) -> None:
        """The scheduler's hourly job: a store backup once a day on the agent's clock (the last 7 kept).

        A clock set back makes the last backup look newer than now: that counts as due.
        """
        folder = self.config.data_dir / BACKUP_DIR
        now = self.clock()
        last = self.store.last_backup_at(folder)
        if last is not None and 0 <= now - last < BACKUP_EVERY:
            return
        self.store.backup(folder, now=now)

    def _wait_until_quiet(self) -> None:
        """Wait until a burst of new heartbeats is over: none for STATS_QUIET, or STATS_MAX_DEFER.

        Folding competes with the intake for the writer lock and the GIL, and an editor
        flushing its offline queue or an import sends thousands a second; folding once
        after the burst does the same work without slowing it. Queries fold on demand
        (``StatsService._read``), so no answer is stale meanwhile.
        """
        deadline = self.monotonic() + STATS_MAX_DEFER
        while not self._stop.is_set():
            self._stats_due.clear()
            left = deadline - self.monotonic()
            if left <= 0 or not self._stats_due.wait(min(STATS_QUIET, left)):
                return

    # ---- pause and capture ---------------------------------------------------------------------

    def tracking(self) -> bool:
        return self.paused_until is None or self.clock() >= self.paused_until

    # ---- importing history -------------------------------------------------------------------------

    def start_import(self, path: str, *, upload: bool = True) -> ImportAnswer:
        """Start importing an export file on a thread of its own; ``ImportBusy`` while one runs.
        Progress and the summary: ``import_run()``, and every batch bumps the change seq."""
        from .imports.job import ImportJob  # the parser is loaded only when an import starts

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

    def _stored(self, created: int) -> None:
        self._stats_due.set()
        self.changed(wake=True)

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

    def submit(self, heartbeats: list[dict[str, Any]], source: str) -> None:
        """The watcher's sink: normalise and store (raises HeartbeatError on bad input)."""
        if not self.tracking():
            return
        ua = user_agent(f"{source}")
        normalized = [
            normalize(as_sent_by_wakatime_cli(raw), machine=self.config.machine, default_user_agent=ua)
            for raw in heartbeats
        ]
        added = self.store.add(normalized, source)
        created = sum(a.created for a in added)
        if created:
            self._stored(created)

    def _ensure_watcher(self) -> Watcher:
        if self.watcher is None:
            from .capture.watcher import Watcher

            cfg = self.config
            # The token is a secret that survives restarts, so hidden project names keep
            # their pseudonyms; the agent's own folders are never recorded.
            self.watcher = Watcher(
                self,
                cfg.capture,
                secret=self.token.encode(),
                ignore_paths=[cfg.data_dir, cfg.log_dir, cfg.config_dir],
            )
            self.watcher.start()
        return self.watcher

    def watched(self) -> WatchState:
        if self.watcher is None:
            return {"folders": [], "uncovered": []}
        return {"folders": self.watcher.folders(), "uncovered": self.watcher.uncovered()}

    def watch(self, path: str, *, add: bool) -> WatchAnswer:
        """Add or remove a watched folder now, and remember it in the app settings."""
        folder = str(Path(path).expanduser().resolve())
        with self._watch_lock:
            if add:
                problem = self._ensure_watcher().add_folder(folder)
            else:
                problem = None
                if self.watcher is not None:
                    self.watcher.remove_folder(folder)
            settings = AppSettings(self.config.config_dir / "settings.json")
            saved = [p for p in settings.get("watch_dirs") if str(Path(p).expanduser().resolve()) != folder]
            settings.set("watch_dirs", [*saved, folder] if add else saved)
        self.changed()
        return {**self.watched(), "problem": problem}

    def editor_heartbeat_since(self, entity: str, since: float) -> bool:
        return self.store.editor_heartbeat_since(entity, since)

    # ---- status ----------------------------------------------------------------------------------

    def destination_names(self) -> list[str]:
        return [d["name"] for d in self.store.destinations()]

    def _backoff_remaining(self, destination: str) -> float:
        outbox = getattr(self, "outbox", None)
        return outbox.backoff_remaining() if outbox is not None and outbox.destination == destination else 0.0

    def status(self) -> Status:
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
        status["seq"] = self._seq
        status["watch"] = self.watched()
        status["import_run"] = self.import_run()["run"]
        return status


def build_status(
    store: Store | None,
    config: Config,
    *,
    key: KeyInUse | None = None,
    clock: Callable[[], float] = time.time,
    backoff: Callable[[str], float] | None = None,
) -> Status:
    """The queue and health picture; used by the control API and by ``status`` without a daemon
    (``store`` None: nothing recorded yet). ``backoff(name)``: seconds until the running agent
    next tries that destination; ``key``: the key in use (else the configuration's)."""
    key = key or KeyInUse(config.api_key, config.key_source)
    destinations: list[DestinationStatus] = []
    online: bool | None = None
    now = clock()
    # The backoff is read before the stored rows: the outbox stores a failure's reason before it
    # publishes the backoff, so in this order a status never shows a wait without its reason.
    names = [] if store is None else [dest["name"] for dest in store.destinations()]
    waits = {name: round(backoff(name), 1) if backoff is not None else 0.0 for name in names}
    queues = [] if store is None else [(dest, store.counts(dest["name"])) for dest in store.destinations()]
    for dest, counts in queues:
        wait = waits.get(dest["name"], 0.0)
        destinations.append(
            {
                "name": dest["name"],
                "url": dest["url"],
                "pending": counts.pending,
                "in_flight": counts.in_flight,
                "sent": counts.sent,
                "dead": counts.dead,
                "oldest_pending": counts.oldest_pending,
                "last_success": dest["last_success"],
                "last_error": dest["last_error"],
                "last_error_at": dest["last_error_at"],
                # Backoff lives on the running agent's monotonic clock; shown here as a wall time.
                "backoff_until": now + wait if wait else None,
                "backoff_seconds": wait,
                "auth_state": dest["auth_state"],
            }
        )
        # Offline means no HTTP answer at all; a server answering 5xx or 401 is reachable.
        if dest["reachable_at"] or dest["unreachable_at"]:
            online = (dest["reachable_at"] or 0) >= (dest["unreachable_at"] or 0)
    return {
        "version": __version__,
        "data_dir": str(config.data_dir),
        "log_dir": str(config.log_dir),
        "api_key": mask(key.key),
        "key_source": key.source,
        "key": key.describe(),
        "online": online,
        "destinations": destinations,
        "disk_full": store is not None and store.full_since is not None,
        "notices": (store.notices() if store is not None else [])
        + [{"id": None, "time": None, "level": "warning", "message": n} for n in config.notices]
        + _disk_notice(store),
        "history_upload": _history_upload(sum(counts.history for _, counts in queues)),
        "generated_at": now,
    }


def _history_upload(pending: int) -> HistoryUpload | None:
    return {"pending": pending, "seconds": round(upload_seconds(pending), 1)} if pending else None


def _disk_notice(store: Store | None) -> list[Notice]:
    """A full disk, said where the tray shows notices (it cannot be written to the store)."""
    if store is None or store.full_since is None:
        return []
    message = (
        f"The disk holding {store.path.parent} is full: new heartbeats cannot be stored (editors keep "
        "theirs and send them again). Free some space; the agent carries on by itself."
    )
    return [{"id": None, "time": store.full_since, "level": "error", "message": message}]


def read_runtime_file(data_dir: Path) -> RuntimeInfo | None:
    try:
        info = json.loads((data_dir / RUNTIME_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return cast("RuntimeInfo", info) if isinstance(info, dict) else None


__all__ = ["Agent", "build_status", "read_runtime_file"]
