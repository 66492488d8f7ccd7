"""The agent's shared state: what every part of ``Agent`` reads and the few methods they all use."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from agent.api.httpserver import LocalServer
from agent.config import Config, ResolvedKey
from agent.contract import DESTINATION, LOCK_FILE
from agent.delivery.hackatime import HackatimeClient
from agent.delivery.outbox import Outbox
from agent.delivery.pacing import Backoff, RateLimiter
from agent.delivery.recheck import KeyRecheck, RealTime, Waiting
from agent.ingest import Ingest
from agent.jobs import Jobs
from agent.key_watch import KeyFileWatcher
from agent.keys import KeyCheck, KeyInUse, KeyOwner, check_key
from agent.lock import InstanceLock
from agent.secrets import mask
from agent.stats.server_figures import STYLE_KEY
from agent.stats.service import StatsService
from agent.store.store import Store

if TYPE_CHECKING:
    from agent.capture.watcher import Watcher
    from agent.imports.job import ImportJob

log = logging.getLogger(__name__)

FIGURES_FOR = "server_figures_for"  # meta: the server and key fingerprint the cached figures are of


class AgentBase:
    """The agent's state, and what every part of it uses: change notification, threads, the
    local URLs, whether tracking is on, and the key's standing with the server."""

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
        backoff: Backoff | None = None,
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
        self._backoff = backoff  # after a failed delivery; None: the outbox's own
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
            config.key_sources,
            ResolvedKey(config.api_key, config.key_source, keyring=config.keyring),
            keyring_in_child=keyring_in_child,
        )
        self.keys.subscribe(self._key_changed)
        self._waiting = waiting or RealTime(monotonic)
        self._recheck = KeyRecheck(self._waiting)
        self._recheck_lock = threading.Lock()
        self._editors_lock = threading.Lock()
        self._port_lock = threading.Lock()
        # Listeners a port move left behind, until retired (under _port_lock; teardown retires the rest).
        self._retiring: list[LocalServer] = []
        self._tearing_down = False
        self._oauth_token: str | None = None  # "Sign in with Hackatime" (agent.daemon.sign_in)
        self.key_files: KeyFileWatcher | None = None
        self.paused_until: float | None = None
        self.started_at = clock()
        self.lock = InstanceLock(config.data_dir / LOCK_FILE)
        self.store: Store
        self.ingest: Ingest
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

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

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

    def tracking(self) -> bool:
        return self.paused_until is None or self.clock() >= self.paused_until

    def _stored(self, created: int) -> None:
        self._stats_due.set()
        self.changed(wake=True)

    # ---- the key in use ------------------------------------------------------------------------

    def key_rejected(self) -> bool:
        return bool(self.store.destination(DESTINATION)["auth_state"] == "rejected")

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

    def _key_changed(self, before: KeyInUse, after: KeyInUse) -> None:
        """A different key is in use (told apart by fingerprint): its state starts afresh."""
        log.info(
            "the API key changed: now %s from %s (was %s)", mask(after.key), after.source or "nowhere", mask(before.key)
        )
        if hasattr(self, "store"):
            self._reset_auth_if_key_changed()
            with self._recheck_lock:
                self._recheck.reset()
            self._forget_server_figures()
            self.changed(wake=True)

    def _forget_server_figures(self) -> None:
        """The key or the server changed: the cached figures are another account's; fetch anew."""
        if hasattr(self, "stats"):
            self.stats.server.forget()
            self._server_stale.set()
            self._stats_due.set()
        else:  # at start, the last run's figures, fetched with another key or from another server
            self.store.cache_clear(meta_keys=(STYLE_KEY,))
        self.store.meta_set(FIGURES_FOR, self._figures_owner())

    def _figures_owner(self) -> str:
        return f"{self.config.api_url} {self.keys.current().fingerprint or ''}"

    def _reset_auth_if_key_changed(self) -> None:
        current = self.keys.current()
        fingerprint = current.fingerprint or ""
        if self.store.meta_get("key_fingerprint") != fingerprint:
            self.store.meta_set("key_fingerprint", fingerprint)
            self.store.update_destination(DESTINATION, auth_state="unknown" if current.key else "missing")
