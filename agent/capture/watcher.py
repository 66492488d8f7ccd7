"""Coding activity from file saves in the user's project folders.

Many editors have no WakaTime plugin, and window trackers fail on Wayland; a
save is something every editor does. This module watches the folders the user
chose and turns real saves into heartbeats that look like an editor plugin's.

Pipeline (the observer's handler only filters and enqueues; one worker thread
does the rest — style-anchors.md practice 4):

    inotify / FSEvents / ReadDirectoryChanges (watchdog, native observer: ``observer``)
      └─ handler: created / modified / moved / closed-after-write, deletes → queue
           └─ worker: drop editor temp and swap files, the agent's own files,
              ignored and excluded paths (``prune``), non-text files
              → mass-change detection per project → per-file coalescing (``coalesce``)
              → project / branch / language / line counts → privacy (``heartbeats``) → sink

Rules, with their numbers:

* **Watch filter.** Only created / modified / moved / closed-after-write (and
  deletes, to forget state) are asked for. watchdog's default mask also asks
  for opens and reads, whose own events overflow the kernel queue beyond a few
  thousand directories and pin a core (wakatime-clients.md §8).
* **Pruning before watching**: see :mod:`agent.capture.prune`.
* **Watch limit.** The watcher takes at most what is left of the per-user inotify
  budget minus 10 % (:mod:`agent.capture.inotify`); when a tree needs more, it
  watches the shallowest folders that fit and reports the rest through
  :meth:`Watcher.uncovered` with the command that raises the limit. It never falls
  back to polling on its own (a polling observer costs ~36 % of a core on 20,000 files).
* **Coalescing and mass changes**: see :mod:`agent.capture.coalesce` (at most one
  heartbeat per file, or per project during a mass change, per 30-second window).
* **Editors first.** If an editor plugin sent a heartbeat for the same file
  within the window, the watcher adds none.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent import heap
from agent.contract import UncoveredFolder
from agent.heartbeat import HeartbeatError, user_agent
from agent.store import StoreFull

from .coalesce import DELAY, WINDOW, Coalescer, Taken
from .content import CACHE_BYTES, ContentCache
from .events import EVENT_FILTER, Event, Handler
from .folders import Folders
from .heartbeats import HeartbeatBuilder
from .inotify import Budget
from .observer import INOTIFY_AVAILABLE, INOTIFY_ERRORS, PrunedInotifyObserver
from .privacy import CaptureRules, PrivacyRules
from .project import compile_projectmap
from .prune import BINARY_EXTENSIONS, is_editor_temp

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

__all__ = ["PLUGIN", "SOURCE", "HeartbeatSink", "Watcher", "WatcherSettings"]

log = logging.getLogger(__name__)

SOURCE = "watcher"
PLUGIN = "hackatime-desktop-watcher"
_IS_LINUX = sys.platform.startswith("linux")


class HeartbeatSink(Protocol):
    def submit(self, heartbeats: list[dict[str, Any]], source: str) -> None: ...

    def editor_heartbeat_since(self, entity: str, since: float) -> bool: ...


class WatcherSettings(CaptureRules, Protocol):
    """``agent.config.CaptureSettings``: the privacy rules plus these."""

    @property
    def projectmap(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def watch_dirs(self) -> tuple[Path, ...]: ...


class Watcher:
    """Watches folders and turns saves into heartbeats delivered to ``sink``.

    ``clock`` (epoch seconds), ``window`` and ``delay`` (see :mod:`agent.capture.coalesce`) are injectable so tests can
    drive time; :meth:`flush` emits everything pending now and :meth:`expect_event`
    gives an event to wait on, so tests never sleep. ``secret`` keys the project
    pseudonyms of ``hide_project_names`` (pass one that persists, e.g. from the data
    dir). ``ignore_paths`` are the agent's own folders (data, logs, config).
    ``max_watches`` replaces the inotify budget read from the kernel (tests, and users
    who want a cap). ``observer`` is ``"auto"`` (the native one) or ``"polling"``,
    which is only ever used when asked for.
    """

    def __init__(
        self,
        sink: HeartbeatSink,
        settings: WatcherSettings,
        *,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
        window: float = WINDOW,
        delay: float = DELAY,
        ignore_paths: Iterable[str | os.PathLike[str]] = (),
        max_watches: int | None = None,
        observer: str = "auto",
        poll_interval: float = 1.0,
        submodules: bool = True,
    ) -> None:
        if observer not in ("auto", "polling"):
            raise ValueError(f"observer must be 'auto' or 'polling', not {observer!r}")
        self.sink = sink
        self.settings = settings
        self.clock = clock
        self._observer_kind = observer
        self._poll_interval = poll_interval
        self._own_paths = tuple(os.path.realpath(os.fspath(p)) for p in ignore_paths)
        if secret is None:
            # Pseudonyms then change with every run; the daemon should pass a persistent secret.
            secret = os.urandom(32)
        self.privacy = PrivacyRules(settings, secret)
        rules, problems = compile_projectmap(settings.projectmap)
        self.problems: list[str] = [*self.privacy.problems, *problems]
        for problem in self.problems:
            log.warning("%s", problem)
        self._coalescer = Coalescer(window=window, delay=delay)
        self._cache = ContentCache(CACHE_BYTES)
        self._builder = HeartbeatBuilder(
            self.privacy,
            rules,
            self._cache,
            user_agent=user_agent(plugin=PLUGIN),
            window=self._coalescer.window,
            editor_since=sink.editor_heartbeat_since,
            submodules=submodules,
        )

        self._budget = Budget(max_watches)
        self._folders = Folders(self._own_paths, self._budget)
        self._observer: BaseObserver | None = None

        self._cond = threading.Condition()
        self._queue: deque[Event] = deque()
        self._process_lock = threading.RLock()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._waiters: dict[str, list[threading.Event]] = {}

        self._project_keys: dict[str, str] = {}  # folder → its project folder (mass-change unit)
        self._counts: Counter[str] = Counter()

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the observer and the worker, then watch the configured folders."""
        if self._worker is not None:
            return
        self._stop.clear()
        self._worker = threading.Thread(target=self._run, name="watcher", daemon=True)
        self._worker.start()
        observer, problem = self._make_observer()
        with self._folders.lock:
            self._observer = observer
            self._folders.observer = observer
            # The clock is read when called, so a test that swaps it is seen by the handler too.
            self._folders.handler = Handler(self._enqueue, lambda: self.clock())
            self._folders.event_filter = EVENT_FILTER
            self._folders.uses_inotify = INOTIFY_AVAILABLE and isinstance(observer, PrunedInotifyObserver)
            self._folders.observer_problem = problem
        if observer is not None:
            observer.start()
        for folder in self.settings.watch_dirs:
            self.add_folder(folder)

    def stop(self, *, flush: bool = True) -> None:
        """Stop watching, emit pending trailing-edge heartbeats (``flush``), join every thread."""
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join()
        self._folders.detach()
        worker, self._worker = self._worker, None
        if worker is not None:
            self._stop.set()
            with self._cond:
                self._cond.notify_all()
            worker.join()
        if flush:
            self.flush()

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _make_observer(self) -> tuple[BaseObserver | None, str | None]:
        """The observer to use, or None and the reason there is none."""
        if self._observer_kind == "polling":
            from watchdog.observers.polling import PollingObserverVFS

            log.warning("watching by polling, as configured: this costs CPU on large trees")
            return PollingObserverVFS(os.stat, self._listdir, polling_interval=self._poll_interval), None
        if _IS_LINUX:
            if not INOTIFY_AVAILABLE:
                return None, "inotify is not available on this system"
            try:
                return PrunedInotifyObserver(self._folders.contexts), None
            except INOTIFY_ERRORS as exc:
                problem = (
                    f"cannot start inotify ({exc}); if the per-user instance limit is reached, raise "
                    "fs.inotify.max_user_instances"
                )
                log.error("%s", problem)
                return None, problem
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        if Observer is PollingObserver:
            problem = "no native file-change observer on this platform (polling is not used unasked)"
            log.error("%s", problem)
            return None, problem
        return Observer(), None

    def _listdir(self, path: str | None) -> Iterator[os.DirEntry[str]]:
        text = os.fspath(path) if path is not None else "."
        root = self._folders.root_for(text)
        if root is None or root.context is None:
            yield from os.scandir(text)
            return
        yield from root.context.pruner.listdir(text)

    # ---- folders ---------------------------------------------------------------------------------

    def add_folder(self, path: str | os.PathLike[str]) -> UncoveredFolder | None:
        """Watch ``path`` (and everything below it that is not pruned) from now on.

        Returns the problem report for this folder (as in :meth:`uncovered`) or None.
        """
        report = self._folders.add(path)
        heap.trim()  # walking a big tree leaves a few MB of freed, fragmented heap behind
        return report

    def remove_folder(self, path: str | os.PathLike[str]) -> None:
        """Stop watching ``path``; folders it contained that were added on their own stay watched."""
        removed = self._folders.remove(path)
        if removed is not None:
            with self._process_lock:
                self._forget_tree(removed)

    def folders(self) -> list[str]:
        return self._folders.listed()

    def uncovered(self) -> list[UncoveredFolder]:
        """Folders (or parts of them) whose saves are not recorded, each with a sentence saying why."""
        return self._folders.uncovered()

    # ---- test and status hooks -------------------------------------------------------------------

    def expect_event(self, path: str | os.PathLike[str]) -> threading.Event:
        """An event that is set once the worker has taken in a file event naming ``path``."""
        key = os.path.realpath(os.fspath(path))
        flag = threading.Event()
        with self._cond:
            self._waiters.setdefault(key, []).append(flag)
        return flag

    def stats(self) -> dict[str, Any]:
        with self._process_lock:
            counts = dict(self._counts)
            counts.update(
                pending=self._coalescer.pending,
                mass_changes_active=self._coalescer.mass_changes,
                cached_files=len(self._cache),
                watches=self._budget.held,
            )
            return counts

    # ---- event intake ----------------------------------------------------------------------------

    def _enqueue(self, event: Event) -> None:
        with self._cond:
            self._queue.append(event)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop.is_set():
                    timeout = self._coalescer.next_due_in(self.clock())
                    if timeout is not None and timeout <= 0:
                        break
                    self._cond.wait(timeout)
                if self._stop.is_set():
                    return
            try:
                with self._process_lock:
                    self._drain()
                    self._emit_due(force=False)
            except Exception:  # the worker must outlive any one bad file or sink failure
                log.exception("watcher worker error")

    def flush(self) -> None:
        """Take in every queued event and emit every pending heartbeat now (trailing edges included)."""
        with self._process_lock:
            self._drain()
            self._emit_due(force=True)

    def tick(self) -> None:
        """Take in queued events and emit what is due by ``clock()`` (for tests with a fake clock)."""
        with self._process_lock:
            self._drain()
            self._emit_due(force=False)

    def _drain(self) -> None:
        with self._cond:
            batch = list(self._queue)
            self._queue.clear()
        verdicts: dict[str, str | None] = {}
        for event in batch:
            self._ingest(event, verdicts)
            if self._waiters:
                with self._cond:
                    for name in (event.src, event.dest):
                        for flag in self._waiters.pop(name, []) if name else []:
                            flag.set()

    def _ingest(self, event: Event, verdicts: dict[str, str | None]) -> None:
        self._counts["events"] += 1
        if event.kind == "delete":
            self._forget(event.src)
            return
        if event.kind in ("dir-delete", "dir-move"):
            self._forget_tree(event.src)
            if event.kind == "dir-delete":
                self._folders.root_deleted(event.src)
            return
        path = event.src
        if event.kind == "move":
            if event.synthetic:
                # A folder was renamed: its files did not change.
                self._cache.rename(event.src, event.dest)
                self._coalescer.forget(event.src)
                return
            if self._skip_reason(event.dest, verdicts) is not None:
                # Renamed to a backup or temp name (vim's foo.py -> foo.py~): the real
                # file is written again next; keep what we know about it.
                return
            # An atomic save (temp -> file) or a user's move: a save of the destination.
            self._cache.rename(event.src, event.dest)
            self._coalescer.forget(event.src)
            path = event.dest
        reason = self._skip_reason(path, verdicts)
        if os.path.basename(path) == ".gitignore":
            root = self._folders.root_for(path)
            if root is not None and root.context is not None:
                root.context.pruner.load_dir(os.path.dirname(path))
                verdicts.clear()
        if reason is not None:
            self._counts[f"skipped_{reason}"] += 1
            return
        self._candidate(path, event.time)

    def _skip_reason(self, path: str, verdicts: dict[str, str | None]) -> str | None:
        if path in verdicts:
            return verdicts[path]
        name = os.path.basename(path)
        reason: str | None = None
        if any(path == own or path.startswith(own + os.sep) for own in self._own_paths):
            reason = "own"
        elif is_editor_temp(name):
            reason = "temp"
        elif os.path.splitext(name)[1].lower() in BINARY_EXTENSIONS:
            reason = "binary"
        else:
            root = self._folders.root_for(path)
            if root is None or root.context is None:
                reason = "outside"
            elif root.context.pruner.file_ignored(path):
                reason = "ignored"
            elif self.privacy.path_excluded(path):
                reason = "excluded"
        verdicts[path] = reason
        return reason

    def _forget(self, path: str) -> None:
        self._cache.discard(path)
        self._coalescer.forget(path)

    def _forget_tree(self, folder: str) -> None:
        self._cache.discard_tree(folder)
        self._coalescer.forget_tree(folder)
        prefix = folder.rstrip(os.sep) + os.sep
        for key in [k for k in self._project_keys if k == folder or k.startswith(prefix)]:
            del self._project_keys[key]

    # ---- coalescing -------------------------------------------------------------

    def _project_key(self, path: str) -> str:
        """The project folder a file belongs to, cheaply: nearest Git / .wakatime-project root."""
        root = self._folders.root_for(path)
        top = root.path if root is not None else os.path.dirname(path)
        directory = os.path.dirname(path)
        visited: list[str] = []
        key = top
        while True:
            cached = self._project_keys.get(directory)
            if cached is not None:
                key = cached
                break
            visited.append(directory)
            if os.path.lexists(os.path.join(directory, ".git")) or os.path.exists(
                os.path.join(directory, ".wakatime-project")
            ):
                key = directory
                break
            parent = os.path.dirname(directory)
            if directory == top or parent == directory or not directory.startswith(top):
                key = top
                break
            directory = parent
        if len(self._project_keys) > 8192:
            self._project_keys.clear()
        for folder in visited:
            self._project_keys[folder] = key
        return key

    def _candidate(self, path: str, when: float) -> None:
        self._counts["saves"] += 1
        key = self._project_key(path)
        taken = self._coalescer.add(path, when, key)
        if taken is Taken.MASS_CHANGE_STARTED:
            self._counts["mass_changes"] += 1
            log.info("mass change in %s: recording it as one heartbeat per %.0f s", key, self._coalescer.window)
            self._cache.discard_tree(key)  # a tool rewrote the project: old contents say nothing
        elif taken is Taken.MASS_CHANGE:
            self._cache.discard(path)

    def _emit_due(self, *, force: bool) -> None:
        heartbeats: list[dict[str, Any]] = []
        for due in self._coalescer.due(self.clock(), force=force):
            for path, when in due.choices:
                built = self._builder.build(path, when, mass_change=due.mass_change)
                if isinstance(built, str):
                    self._counts[f"skipped_{built}"] += 1
                    continue
                heartbeats.append(built)
                break
        if heartbeats:
            self._submit(heartbeats)

    def _submit(self, heartbeats: list[dict[str, Any]]) -> None:
        try:
            self.sink.submit(heartbeats, SOURCE)
            self._counts["heartbeats"] += len(heartbeats)
            return
        except HeartbeatError as exc:
            log.warning("the store refused a batch of %d heartbeats (%s); retrying one by one", len(heartbeats), exc)
        except StoreFull as exc:  # said in status and as a notice; a traceback per save adds nothing
            log.warning("%d saves not recorded: %s", len(heartbeats), exc)
            self._counts["store_failures"] += 1
            return
        except Exception:
            log.exception("could not store %d heartbeats", len(heartbeats))
            self._counts["store_failures"] += 1
            return
        for hb in heartbeats:
            try:
                self.sink.submit([hb], SOURCE)
                self._counts["heartbeats"] += 1
            except HeartbeatError as exc:
                log.warning("heartbeat for %s refused: %s", hb.get("entity"), exc)
                self._counts["refused"] += 1
            except Exception:
                log.exception("could not store a heartbeat")
                self._counts["store_failures"] += 1
