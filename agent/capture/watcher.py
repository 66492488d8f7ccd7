"""Coding activity from file saves in the user's project folders.

Many editors have no WakaTime plugin, and window trackers fail on Wayland; a
save is something every editor does. This module watches the folders the user
chose and turns real saves into heartbeats that look like an editor plugin's.

Pipeline (the observer's handler only filters and enqueues; one worker thread
does the rest — style-anchors.md practice 4):

    inotify / FSEvents / ReadDirectoryChanges (watchdog, native observer)
      └─ handler: created / modified / moved / closed-after-write, deletes → queue
           └─ worker: drop editor temp and swap files, the agent's own files,
              ignored and excluded paths, non-text files
              → mass-change detection per project → per-file coalescing
              → project / branch / language / line counts → privacy → sink

Rules, with their numbers:

* **Watch filter.** Only created / modified / moved / closed-after-write (and
  deletes, to forget state) are asked for. watchdog's default mask also asks
  for opens and reads, whose own events overflow the kernel queue beyond a few
  thousand directories and pin a core (wakatime-clients.md §8).
* **Pruning before watching.** ``.git``, ``node_modules``, virtualenvs (any
  folder with ``pyvenv.cfg``), caches, ``build`` / ``dist`` / ``target`` output
  and whatever the ``.gitignore`` files (and ``.git/info/exclude``) exclude get
  no inotify watch at all.
* **Watch limit.** inotify watches are a per-user kernel budget
  (``fs.inotify.max_user_watches``) shared with editors. The watcher takes at
  most what is left minus 10 %; when a tree needs more, it watches the
  shallowest folders that fit and reports the rest through :meth:`Watcher.uncovered`
  with the command that raises the limit. It never falls back to polling on
  its own (a polling observer costs ~36 % of a core on 20,000 files).
* **Coalescing.** Per file, at most one heartbeat is emitted per 30-second
  window: the first save goes out after a short settle delay (0.3 s, which also
  lets an atomic save's rename arrive), later saves inside the window are merged
  and the last one is emitted when the window closes (trailing edge).
* **Mass changes.** When 20 or more different files of one project (its Git /
  ``.wakatime-project`` root, else the watched folder) change within 2 seconds,
  a tool is at work (checkout, formatter, build). From then until the project
  has been quiet for 2 seconds its changes count as one: **at most one
  heartbeat per project per 30-second window** (the most recently changed text
  file), so a 5,000-file checkout records one heartbeat. Files that became due
  before the threshold was reached — only possible for tools slower than about
  60 files a second — are recorded normally, so at most 19 more.
* **Editors first.** If an editor plugin sent a heartbeat for the same file
  within the window, the watcher adds none.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import logging
import os
import re
import stat
import sys
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import pathspec
from watchdog.events import (
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from agent.heartbeat import HeartbeatError, user_agent

from .language import language_for
from .privacy import CaptureRules, PrivacyRules
from .project import ProjectMapRule, compile_projectmap, detect_project

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver, ObservedWatch

__all__ = [
    "MASS_CHANGE_FILES",
    "MASS_CHANGE_QUIET",
    "MASS_CHANGE_WINDOW",
    "PLUGIN",
    "SOURCE",
    "HeartbeatSink",
    "Watcher",
    "WatcherSettings",
    "inotify_status",
    "is_editor_temp",
    "line_changes",
]

log = logging.getLogger(__name__)

SOURCE = "watcher"
PLUGIN = "hackatime-desktop-watcher"

WINDOW = 30.0  # seconds: at most one heartbeat per file (or per mass change) per window
SETTLE = 0.3  # seconds between a save and its leading-edge heartbeat
MASS_CHANGE_FILES = 20  # different files of one project ...
MASS_CHANGE_WINDOW = 2.0  # ... changed within this many seconds make a mass change
MASS_CHANGE_QUIET = 2.0  # a mass change ends after this many seconds without changes

CONTENT_LIMIT = 1024 * 1024  # files up to this size are read: text check, line count, language tie break
DIFF_LIMIT = 256 * 1024  # files up to this size keep their last content for line additions / deletions
CACHE_BYTES = 4 * 1024 * 1024  # total last-seen content kept for diffs (least recently saved dropped)
SNIFF_BYTES = 8192  # a NUL byte in the first 8 KiB makes a file binary
_DIFF_CELLS = 4_000_000  # above this, count changed lines as a multiset difference (linear time)
_UNCOVERED_LISTED = 20  # folders named in an uncovered report
_COUNT_BEYOND_LIMIT = 100_000  # extra folders counted (not watched) to size an uncovered report

# Folders that never hold hand-written code worth a watch: VCS data, dependencies,
# virtualenvs, caches and build output.
PRUNED_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".bzr", "CVS", "_darcs", ".jj",
        "node_modules", "bower_components", ".pnpm-store", ".yarn",
        "__pycache__", ".venv", "venv", ".tox", ".nox", ".eggs", ".mypy_cache", ".pytest_cache",
        ".ruff_cache", ".hypothesis", ".ipynb_checkpoints", ".pyre", ".pytype",
        "build", "dist", "target", "out", "_build", ".build", ".next", ".nuxt", ".svelte-kit",
        ".parcel-cache", ".turbo", ".angular", ".expo", ".gradle", ".dart_tool", ".cache",
        "coverage", "htmlcov", ".terraform", ".serverless", "DerivedData", "Pods", ".idea", ".vs",
        ".direnv", ".stack-work", "zig-cache", ".zig-cache", "elm-stuff",
    }
)  # fmt: skip
_PRUNED_SUFFIXES = (".egg-info",)
_ENV_MARKERS = ("pyvenv.cfg", "conda-meta")  # a virtualenv or conda env, whatever its name

# Extensions of files that are never text a person types.
BINARY_EXTENSIONS = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".icns", ".webp", ".tif", ".tiff", ".psd", ".xcf",
        ".mp3", ".wav", ".flac", ".ogg", ".m4a", ".mp4", ".mkv", ".mov", ".avi", ".webm",
        ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".tar", ".jar", ".war", ".whl",
        ".o", ".obj", ".a", ".so", ".dylib", ".dll", ".exe", ".bin", ".class", ".pyc", ".pyo", ".pyd",
        ".wasm", ".rlib", ".rmeta", ".pdb", ".ilk", ".lib", ".exp", ".dat", ".pack", ".idx",
        ".sqlite", ".sqlite3", ".db", ".db-wal", ".db-shm", ".db-journal", ".sqlite-wal", ".sqlite-shm",
        ".ttf", ".otf", ".woff", ".woff2", ".eot", ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt",
        ".pptx", ".odt", ".ods", ".odp", ".DS_Store", ".swf", ".blend", ".fbx", ".glb", ".npy", ".npz",
        ".pkl", ".pickle", ".pt", ".onnx", ".h5", ".parquet", ".iso", ".dmg", ".img", ".map",
    }
)  # fmt: skip

# Editor temporary, swap, lock and backup files (a save of the real file follows or precedes them).
_TEMP_NAME = re.compile(
    r"""(
        ^\..*\.sw[a-p]$ | \.sw[a-p]x?$          # vim / nano swap files
      | ~$ | ^~\$ | ^\.~lock\..*\#$             # backups, MS Office and LibreOffice locks
      | ^\.\# | ^\#.*\#$                        # emacs lock and auto-save files
      | ___jb_(tmp|old|bak)___$                 # JetBrains safe write
      | ^\.goutputstream- | \.kate-swp$ | \.crswap$
      | \.(tmp|temp|bak|orig|rej|part|partial|crdownload)$
      | \.tmp[.\-_]?[0-9a-z]{0,12}$ | ^tmp[0-9a-z_]{6,12}$   # tempfile-style atomic writes
      | ^(\.DS_Store|Thumbs\.db|desktop\.ini|\.directory)$
    )""",
    re.VERBOSE | re.IGNORECASE,
)


def _release_free_memory() -> None:
    """Hand the heap left over from walking a big tree back to the OS (glibc only).

    Walking 20,000 folders leaves a few MB of freed but fragmented heap that RSS
    keeps counting; ``malloc_trim`` returns it. Elsewhere this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc (musl, …): nothing to do


def is_editor_temp(name: str) -> bool:
    """True for editor temp / swap / backup file names (including vim's ``4913`` probe)."""
    if _TEMP_NAME.search(name):
        return True
    # vim checks that it may create files in a folder by creating 4913, then 5036, 5159 …
    return name.isdigit() and int(name) >= 4913 and (int(name) - 4913) % 123 == 0


class HeartbeatSink(Protocol):
    def submit(self, heartbeats: list[dict[str, Any]], source: str) -> None: ...

    def editor_heartbeat_since(self, entity: str, since: float) -> bool: ...


class WatcherSettings(CaptureRules, Protocol):
    """``agent.config.CaptureSettings``: the privacy rules plus these."""

    @property
    def projectmap(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def watch_dirs(self) -> tuple[Path, ...]: ...


# ---- inotify budget --------------------------------------------------------------------------------

_SYSCTL_HINT = (
    "raise it with: echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/60-inotify-watches.conf "
    "&& sudo sysctl --system"
)


def inotify_status() -> dict[str, int | None]:
    """The kernel's per-user watch limit and how many watches this user's processes hold.

    ``used`` counts ``inotify wd:`` lines in /proc/<pid>/fdinfo for every process of
    this user that can be read; None values mean "not Linux" or "cannot tell".
    """
    if not sys.platform.startswith("linux"):
        return {"max_user_watches": None, "used": None}
    try:
        limit: int | None = int(Path("/proc/sys/fs/inotify/max_user_watches").read_text().strip())
    except (OSError, ValueError):
        limit = None
    uid = os.getuid()
    used = 0
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return {"max_user_watches": limit, "used": None}
    for pid in pids:
        base = f"/proc/{pid}"
        try:
            if os.stat(base).st_uid != uid:
                continue
            fds = os.listdir(f"{base}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{base}/fd/{fd}") != "anon_inode:inotify":
                    continue
                with open(f"{base}/fdinfo/{fd}", "rb") as fh:
                    used += fh.read().count(b"inotify wd:")
            except OSError:
                continue
    return {"max_user_watches": limit, "used": used}


class _Budget:
    """How many inotify watches this watcher may hold; shared by all its folders."""

    def __init__(self, fixed: int | None) -> None:
        self._fixed = fixed
        self._lock = threading.Lock()
        self.held = 0
        self.cap = fixed if fixed is not None else 0
        self.kernel_limit: int | None = None
        self.exhausted = False

    def refresh(self) -> None:
        """Re-read the kernel limit and other processes' use (before adding a folder)."""
        if self._fixed is not None:
            return
        status = inotify_status()
        limit, used = status["max_user_watches"], status["used"]
        with self._lock:
            self.kernel_limit = limit
            if limit is None:
                self.cap = 1 << 30  # not Linux or unreadable: rely on ENOSPC alone
                return
            others = max(0, (used or 0) - self.held)
            reserve = max(256, limit // 10)  # leave room for editors and other watchers
            self.cap = max(0, limit - others - reserve)
            self.exhausted = False

    def acquire(self) -> bool:
        with self._lock:
            if self.held >= self.cap:
                self.exhausted = True
                return False
            self.held += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.held = max(0, self.held - 1)

    def available(self) -> int:
        with self._lock:
            return max(0, self.cap - self.held)

    def kernel_full(self) -> None:
        """ENOSPC: the kernel refused a watch; stop asking until the next refresh."""
        with self._lock:
            self.cap = self.held
            self.exhausted = True

    @property
    def limit_text(self) -> str:
        if self._fixed is not None:
            return f"the watcher's own limit of {self._fixed} watches"
        if self.kernel_limit is not None:
            return f"the inotify watch limit (fs.inotify.max_user_watches = {self.kernel_limit})"
        return "the inotify watch limit"


# ---- pruning ---------------------------------------------------------------------------------------


def _spec_from_file(path: str) -> pathspec.GitIgnoreSpec | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read(1 << 20).splitlines()
    except OSError:
        return None
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except (ValueError, TypeError) as exc:  # pathspec rejects malformed patterns
        log.debug("ignoring unreadable ignore file %s: %s", path, exc)
        return None


class _Pruner:
    """Decides which folders get no watch and which files are not the user's code, for one root."""

    def __init__(self, root: str, own_paths: tuple[str, ...]) -> None:
        self.root = root
        self.own_paths = own_paths
        self._specs: dict[str, list[pathspec.GitIgnoreSpec]] = {}
        self._dir_verdicts: dict[str, bool] = {}
        self._repo_roots: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._load_above_root()

    def _load_above_root(self) -> None:
        # A watched sub-folder of a repository still obeys the repository's ignore files.
        if self._is_repo_root(self.root):
            return
        parent = os.path.dirname(self.root)
        chain: list[str] = []
        while parent and parent != os.path.dirname(parent):
            chain.append(parent)
            if os.path.isdir(os.path.join(parent, ".git")):
                break
            parent = os.path.dirname(parent)
        else:
            chain = []
        for directory in reversed(chain):
            self.load_dir(directory)

    def load_dir(self, directory: str, names: Iterable[str] | None = None) -> None:
        """(Re)load the ignore files that live in ``directory``."""
        specs: list[pathspec.GitIgnoreSpec] = []
        has_gitignore = ".gitignore" in names if names is not None else True
        if os.path.isdir(os.path.join(directory, ".git")):
            spec = _spec_from_file(os.path.join(directory, ".git", "info", "exclude"))
            if spec is not None:
                specs.append(spec)
        if has_gitignore:
            spec = _spec_from_file(os.path.join(directory, ".gitignore"))
            if spec is not None:
                specs.append(spec)
        with self._lock:
            if specs:
                self._specs[directory] = specs
            else:
                self._specs.pop(directory, None)
            self._dir_verdicts.clear()
            self._repo_roots.clear()

    def _is_repo_root(self, directory: str) -> bool:
        known = self._repo_roots.get(directory)
        if known is None:
            known = os.path.lexists(os.path.join(directory, ".git"))
            if len(self._repo_roots) > 4096:
                self._repo_roots.clear()
            self._repo_roots[directory] = known
        return known

    def _owned(self, path: str) -> bool:
        return any(path == own or path.startswith(own + os.sep) for own in self.own_paths)

    def _gitignored(self, path: str, is_dir: bool) -> bool:
        specs = self._specs
        if not specs:
            return False
        # Ignore files apply inside their own repository only: the walk up stops at the
        # first folder holding .git (a dotfiles repository's "*" must not hide ~/code).
        ancestors: list[str] = []
        directory = os.path.dirname(path)
        while True:
            if directory in specs:
                ancestors.append(directory)
            if self._is_repo_root(directory):
                break
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
        # Outer ignore files first; a deeper file's verdict (ignore or "!" re-include) wins.
        verdict: bool | None = None
        for ancestor in reversed(ancestors):
            rel = os.path.relpath(path, ancestor).replace(os.sep, "/") + ("/" if is_dir else "")
            for spec in specs.get(ancestor, ()):
                result = spec.check_file(rel).include
                if result is not None:
                    verdict = result
        return bool(verdict)

    def _excluded_dir(self, path: str, name: str) -> bool:
        """The rules that need no look inside the folder: its name, ownership, ignore files."""
        return (
            name in PRUNED_DIRS
            or name.endswith(_PRUNED_SUFFIXES)
            or self._owned(path)
            # A nested repository is never hidden by the ignore files of the one around it.
            or (self._gitignored(path, True) and not self._is_repo_root(path))
        )

    def prune_dir(self, path: str, name: str | None = None) -> bool:
        """True when the folder ``path`` gets no watch and its files are ignored."""
        cached = self._dir_verdicts.get(path)
        if cached is not None:
            return cached
        verdict = self._excluded_dir(path, name if name is not None else os.path.basename(path)) or any(
            os.path.exists(os.path.join(path, marker)) for marker in _ENV_MARKERS
        )
        # Bounded: asked for the folders of files that change, not for the whole tree.
        if len(self._dir_verdicts) > 4096:
            self._dir_verdicts.clear()
        self._dir_verdicts[path] = verdict
        return verdict

    def file_ignored(self, path: str) -> bool:
        """True for a file under a pruned folder or matched by an ignore file (for any observer)."""
        directory = os.path.dirname(path)
        while directory.startswith(self.root) and len(directory) > len(self.root):
            if self.prune_dir(directory):
                return True
            directory = os.path.dirname(directory)
        return self._gitignored(path, False)

    def walk(self, top: str) -> Iterator[str]:
        """The folders under ``top`` (itself first, breadth first) that get a watch.

        Breadth first, so that when the watch budget runs out it is the deepest folders
        that go unwatched. Each folder is listed once; a virtualenv is recognised from
        its own listing (pyvenv.cfg, conda-meta) rather than by probing every folder.
        """
        if top != self.root and self.prune_dir(top):
            return
        queue = deque([top])
        while queue:
            directory = queue.popleft()
            try:
                with os.scandir(directory) as it:
                    entries = list(it)
            except OSError:
                if directory == top:
                    yield directory  # let the watch itself report why it cannot be added
                continue  # vanished or unreadable: nothing below it to watch
            names = {e.name for e in entries}
            if directory != self.root and not names.isdisjoint(_ENV_MARKERS):
                continue
            if ".gitignore" in names or ".git" in names:
                self.load_dir(directory, names)
            yield directory
            for entry in entries:
                try:
                    # Symlinked folders are not followed: no loops, no watching outside the tree.
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                except OSError:
                    continue
                if not self._excluded_dir(entry.path, entry.name):
                    queue.append(entry.path)

    def listdir(self, path: str | None) -> Iterator[os.DirEntry[str]]:
        """``os.scandir`` without pruned folders, for the polling observer."""
        with os.scandir(path) as it:
            for entry in it:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir and self.prune_dir(entry.path, entry.name):
                    continue
                yield entry


@dataclass
class _Coverage:
    """What could not be watched below one root, and why."""

    reason: str | None = None
    missing: list[str] = field(default_factory=list)
    missing_count: int = 0
    count_is_lower_bound: bool = False
    detail: str = ""

    def add_missing(self, path: str, reason: str) -> None:
        self.reason = self.reason or reason
        self.missing_count += 1
        parent = os.path.dirname(path)
        # List only the topmost folders: a folder below a listed one adds nothing.
        listed_above = any(parent == m or parent.startswith(m + os.sep) for m in self.missing)
        if not listed_above and len(self.missing) < _UNCOVERED_LISTED:
            self.missing.append(path)


# ---- the inotify observer, with pruning and a watch budget ----------------------------------------

_IS_LINUX = sys.platform.startswith("linux")
_inotify_available = False
if _IS_LINUX:  # pragma: no branch
    try:
        from watchdog.observers.api import BaseObserver as _BaseObserver
        from watchdog.observers.inotify import InotifyEmitter, InotifyWatchGroup
        from watchdog.observers.inotify_c import (
            CallbackId,
            InotifyConstants,
            InotifyEvent,
            InotifyFD,
            Mask,
            Watch,
            WatchCallback,
            WatchDescriptor,
            inotify_add_watch,
        )
        from watchdog.utils import UnsupportedLibcError

        _inotify_available = True
    except (ImportError, OSError):  # pragma: no cover - a Linux without a usable libc inotify
        _inotify_available = False


@dataclass
class _RootContext:
    pruner: _Pruner
    budget: _Budget
    coverage: _Coverage


if _inotify_available:

    class _SlimWatch(MutableMapping["CallbackId", "WatchCallback"]):
        """One inotify watch in watchdog's ``InotifyFD`` bookkeeping, in a quarter of the memory.

        watchdog keeps a ``Watch`` dataclass (with an instance dict) and a ``callbacks``
        dict for every watch: about 330 bytes, 6.4 MiB for 20,000 folders; this is 80. The
        watch is its own callbacks mapping, with the first callback in slots — every
        folder of a watched root has exactly one, its root's watch group — and a dict
        only for more (two roots reaching one folder through a bind mount). ``InotifyFD``
        uses nothing but ``wd``, ``callbacks`` (as a mapping), ``is_used`` and ``short_str``.
        """

        __slots__ = ("_first", "_first_id", "_initial_creation_path", "_more", "mask", "wd")

        def __init__(self, wd: WatchDescriptor, mask: Mask, path: bytes) -> None:
            self.wd = wd
            self.mask = mask
            self._initial_creation_path = path  # as watchdog's Watch: for debugging only
            self._first_id: CallbackId | None = None
            self._first: WatchCallback | None = None
            self._more: dict[CallbackId, WatchCallback] | None = None  # non-empty only with a first

        @property
        def callbacks(self) -> _SlimWatch:
            return self

        @property
        def is_used(self) -> bool:
            return self._first_id is not None

        def short_str(self) -> str:
            return f"<watch wd={self.wd} path={self._initial_creation_path!r}>"

        def __getitem__(self, key: CallbackId) -> WatchCallback:
            if self._first_id is not None and key == self._first_id:
                assert self._first is not None
                return self._first
            if self._more is not None and key in self._more:
                return self._more[key]
            raise KeyError(key)

        def __setitem__(self, key: CallbackId, value: WatchCallback) -> None:
            if self._first_id is None or key == self._first_id:
                self._first_id, self._first = key, value
            else:
                if self._more is None:
                    self._more = {}
                self._more[key] = value

        def __delitem__(self, key: CallbackId) -> None:
            if self._first_id is not None and key == self._first_id:
                if self._more:
                    # Keep the invariant (extras only next to a first): promote the oldest extra.
                    self._first_id = next(iter(self._more))
                    self._first = self._more.pop(self._first_id)
                else:
                    self._first_id = self._first = None
                    self._more = None
            elif self._more is not None and key in self._more:
                del self._more[key]
            else:
                raise KeyError(key)

        def __iter__(self) -> Iterator[CallbackId]:
            if self._first_id is not None:
                yield self._first_id
                if self._more:
                    yield from list(self._more)

        def __len__(self) -> int:
            return 0 if self._first_id is None else 1 + len(self._more or ())

    class _SlimInotifyFD(InotifyFD):
        """watchdog's inotify reader, with :class:`_SlimWatch` bookkeeping."""

        def _get_or_create_watch(self, path: bytes, mask: Mask) -> Watch:
            # watchdog's own method, creating a _SlimWatch instead of a Watch (same duck type).
            wd = inotify_add_watch(self._inotify_fd, path, mask)
            if wd == -1:
                InotifyFD._raise_error()
            watch = self._watch_for_wd.get(wd)
            if watch is None:
                watch = cast("Watch", _SlimWatch(wd, mask, path))
                self._watch_for_wd[wd] = watch
            return watch

    @dataclass
    class _PrunedWatchGroup(InotifyWatchGroup):
        """watchdog's recursive inotify watch group, but walking only unpruned folders and
        holding no more watches than the budget allows.

        watchdog adds a watch to every sub-folder (``os.walk``) and silently skips the
        ones the kernel refuses; here pruned folders are never visited, and a refusal or
        an exhausted budget is recorded so the user can be told.
        """

        context: _RootContext | None = None

        def _add_all_callbacks(self, path: bytes) -> None:
            ctx = self.context
            assert ctx is not None
            refused = 0
            for folder in ctx.pruner.walk(os.fsdecode(path)):
                if refused:
                    # Out of watches: count what is left (up to a bound) for the report.
                    ctx.coverage.add_missing(folder, "inotify-limit")
                    refused += 1
                    if refused > _COUNT_BEYOND_LIMIT:
                        ctx.coverage.count_is_lower_bound = True
                        return
                elif not self._watch(os.fsencode(folder)):
                    refused = 1

        def _add_callback(self, path: bytes) -> None:
            self._watch(path)

        def _watch(self, path: bytes) -> bool:
            """Add one watch; False when the budget or the kernel refused it (recorded)."""
            ctx = self.context
            assert ctx is not None
            if path in self._active_callbacks_by_path:
                return True  # re-adding would make watchdog warn about an overwritten callback
            if not ctx.budget.acquire():
                if path == self.path:
                    raise OSError(errno.ENOSPC, "inotify watch budget exhausted")
                ctx.coverage.add_missing(os.fsdecode(path), "inotify-limit")
                return False
            try:
                wd = self._inotify_fd.add_callback(path, self.event_mask, self._callback, self._id)
            except OSError as exc:
                ctx.budget.release()
                if exc.errno == errno.ENOSPC:
                    ctx.budget.kernel_full()
                    if path != self.path:
                        ctx.coverage.add_missing(os.fsdecode(path), "inotify-limit")
                        return False
                if path == self.path:
                    raise
                return True  # a sub-folder that vanished or cannot be read: nothing to watch there
            self._active_callbacks_by_path[path] = wd
            self._active_callbacks_by_watch[wd] = path
            return True

        def _remove_watch_internally(self, wd: Any) -> None:
            super()._remove_watch_internally(wd)
            if self.context is not None:
                self.context.budget.release()

        def _recursive_simulate(self, src_path: bytes) -> list[InotifyEvent]:
            # Events for what a new folder already holds; watchdog's version walks every
            # sub-folder, pruned ones included.
            ctx = self.context
            assert ctx is not None
            events: list[InotifyEvent] = []
            for folder in ctx.pruner.walk(os.fsdecode(src_path)):
                wd = self._active_callbacks_by_path.get(os.fsencode(folder))
                if wd is None:
                    continue
                try:
                    with os.scandir(folder) as it:
                        for entry in it:
                            is_dir = entry.is_dir(follow_symlinks=False)
                            mask = InotifyConstants.IN_CREATE | (InotifyConstants.IN_ISDIR if is_dir else 0)
                            events.append(InotifyEvent(wd, Mask(mask), 0, os.fsencode(entry.name)))
                except OSError:
                    continue
            return events

    class _PrunedInotifyEmitter(InotifyEmitter):
        def __init__(self, *args: Any, contexts: dict[str, _RootContext], **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._contexts = contexts

        def on_thread_start(self) -> None:
            ctx = self._contexts[self.watch.path]
            self._inotify = _PrunedWatchGroup(
                self._inotify_fd,
                os.fsencode(self.watch.path),
                is_recursive=self.watch.is_recursive,
                event_mask=self.get_event_mask_from_filter(),
                follow_symlink=False,
                context=ctx,
            )

    class _PrunedInotifyObserver(_BaseObserver):
        def __init__(self, contexts: dict[str, _RootContext]) -> None:
            self._inotify_fd = _SlimInotifyFD()
            self._inotify_fd.start()
            super().__init__(_PrunedInotifyEmitter, inotify_fd=self._inotify_fd, contexts=contexts)

        def on_thread_stop(self) -> None:
            super().on_thread_stop()
            self._inotify_fd.stop()
            self._inotify_fd.join()


# ---- content and line changes ----------------------------------------------------------------------


class _ContentCache:
    """Last seen content of recently saved small files, bounded by total size."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, path: str) -> bytes | None:
        return self._items.get(path)

    def put(self, path: str, data: bytes) -> None:
        self.discard(path)
        if len(data) > self._budget:
            return
        self._items[path] = data
        self._size += len(data)
        while self._size > self._budget:
            _, old = self._items.popitem(last=False)
            self._size -= len(old)

    def discard(self, path: str) -> None:
        old = self._items.pop(path, None)
        if old is not None:
            self._size -= len(old)

    def discard_tree(self, folder: str) -> None:
        prefix = folder.rstrip(os.sep) + os.sep
        for path in [p for p in self._items if p.startswith(prefix)]:
            self.discard(path)

    def rename(self, src: str, dest: str) -> None:
        data = self._items.get(src)
        if data is None:
            # An atomic save (temp -> file): what we knew of the file stays its diff baseline.
            return
        self.discard(src)
        self.put(dest, data)

    def __len__(self) -> int:
        return len(self._items)


def line_changes(old: bytes, new: bytes) -> tuple[int, int]:
    """(lines added, lines deleted) going from ``old`` to ``new``, as a line diff counts them."""
    a = old.splitlines()
    b = new.splitlines()
    start = 0
    limit = min(len(a), len(b))
    while start < limit and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    mid_a, mid_b = a[start:end_a], b[start:end_b]
    if not mid_a or not mid_b:
        return len(mid_b), len(mid_a)
    if len(mid_a) * len(mid_b) > _DIFF_CELLS:
        # A rewrite of a large file: count as a multiset difference, which ignores moved lines.
        ca, cb = Counter(mid_a), Counter(mid_b)
        return sum((cb - ca).values()), sum((ca - cb).values())
    added = deleted = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=False).get_opcodes():
        if tag != "equal":
            deleted += i2 - i1
            added += j2 - j1
    return added, deleted


def _count_lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


# ---- the watcher -----------------------------------------------------------------------------------

_EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


@dataclass(frozen=True)
class _Event:
    kind: str  # "write", "move", "delete", "dir-delete", "dir-move"
    src: str
    dest: str
    time: float
    synthetic: bool


@dataclass
class _Pending:
    first: float
    last: float
    key: str


@dataclass
class _Burst:
    """A mass change in one project: its changes are recorded as one heartbeat per window."""

    key: str
    last: float
    dirty_since: float | None = None
    last_emit: float | None = None
    paths: deque[tuple[str, float]] = field(default_factory=lambda: deque(maxlen=8))

    def add(self, path: str, when: float) -> None:
        self.last = max(self.last, when)
        if self.dirty_since is None:
            self.dirty_since = when
        if self.paths and self.paths[-1][0] == path:
            self.paths[-1] = (path, when)
        else:
            self.paths.append((path, when))


@dataclass
class _Root:
    requested: str  # as the user gave it
    path: str  # real path; event paths start with it
    context: _RootContext | None = None
    watch: ObservedWatch | None = None
    active: bool = False  # False when another watched folder contains this one
    lost: bool = False


class _Handler(FileSystemEventHandler):
    """Runs on watchdog's dispatcher thread: classify, stamp, enqueue — nothing else."""

    def __init__(self, watcher: Watcher) -> None:
        super().__init__()
        self._watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if event.dest_path else ""
        if isinstance(event, FileMovedEvent):
            kind = "move"
        elif isinstance(event, (FileClosedEvent, FileModifiedEvent, FileCreatedEvent)):
            kind = "write"
        elif isinstance(event, FileDeletedEvent):
            kind = "delete"
        elif isinstance(event, DirDeletedEvent):
            kind = "dir-delete"
        elif isinstance(event, DirMovedEvent):
            kind = "dir-move"
        else:
            return
        self._watcher._enqueue(_Event(kind, src, dest, self._watcher.clock(), bool(event.is_synthetic)))


class Watcher:
    """Watches folders and turns saves into heartbeats delivered to ``sink``.

    ``clock`` (epoch seconds), ``window`` and ``settle`` are injectable so tests can
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
        settle: float = SETTLE,
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
        self.window = float(window)
        self.settle = float(settle)
        self._observer_kind = observer
        self._poll_interval = poll_interval
        self._submodules = submodules
        self._own_paths = tuple(os.path.realpath(os.fspath(p)) for p in ignore_paths)
        if secret is None:
            # Pseudonyms then change with every run; the daemon should pass a persistent secret.
            secret = os.urandom(32)
        self.privacy = PrivacyRules(settings, secret)
        rules, problems = compile_projectmap(settings.projectmap)
        self._projectmap: tuple[ProjectMapRule, ...] = rules
        self.problems: list[str] = [*self.privacy.problems, *problems]
        for problem in self.problems:
            log.warning("%s", problem)
        self._user_agent = user_agent(plugin=PLUGIN)

        self._budget = _Budget(max_watches)
        self._contexts: dict[str, _RootContext] = {}
        self._roots: dict[str, _Root] = {}
        self._active: tuple[_Root, ...] = ()  # replaced whole, so the worker can read it unlocked
        self._folders_lock = threading.RLock()
        self._observer: BaseObserver | None = None
        self._uses_inotify = False
        self._observer_problem: str | None = None
        self._handler = _Handler(self)

        self._cond = threading.Condition()
        self._queue: deque[_Event] = deque()
        self._process_lock = threading.RLock()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._waiters: dict[str, list[threading.Event]] = {}

        self._pending: dict[str, _Pending] = {}
        self._last_emit: dict[str, float] = {}
        self._recent: dict[str, dict[str, float]] = {}
        self._bursts: dict[str, _Burst] = {}
        self._burst_keys: dict[str, str] = {}
        self._cache = _ContentCache(CACHE_BYTES)
        self._counts: Counter[str] = Counter()
        self._last_housekeeping = 0.0

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the observer and the worker, then watch the configured folders."""
        if self._worker is not None:
            return
        self._stop.clear()
        self._worker = threading.Thread(target=self._run, name="watcher", daemon=True)
        self._worker.start()
        self._observer = self._make_observer()
        self._uses_inotify = _inotify_available and isinstance(self._observer, _PrunedInotifyObserver)
        if self._observer is not None:
            self._observer.start()
        for folder in self.settings.watch_dirs:
            self.add_folder(folder)

    def stop(self, *, flush: bool = True) -> None:
        """Stop watching, emit pending trailing-edge heartbeats (``flush``), join every thread."""
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join()
        with self._folders_lock:
            for root in self._roots.values():
                root.watch = None
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

    def _make_observer(self) -> BaseObserver | None:
        self._observer_problem = None
        if self._observer_kind == "polling":
            from watchdog.observers.polling import PollingObserverVFS

            log.warning("watching by polling, as configured: this costs CPU on large trees")
            return PollingObserverVFS(os.stat, self._listdir, polling_interval=self._poll_interval)
        if _IS_LINUX:
            if not _inotify_available:
                self._observer_problem = "inotify is not available on this system"
                return None
            try:
                return _PrunedInotifyObserver(self._contexts)
            except (OSError, UnsupportedLibcError) as exc:
                self._observer_problem = (
                    f"cannot start inotify ({exc}); if the per-user instance limit is reached, raise "
                    "fs.inotify.max_user_instances"
                )
                log.error("%s", self._observer_problem)
                return None
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        if Observer is PollingObserver:
            self._observer_problem = "no native file-change observer on this platform (polling is not used unasked)"
            log.error("%s", self._observer_problem)
            return None
        return Observer()

    def _listdir(self, path: str | None) -> Iterator[os.DirEntry[str]]:
        text = os.fspath(path) if path is not None else "."
        root = self._root_for(text)
        if root is None or root.context is None:
            yield from os.scandir(text)
            return
        yield from root.context.pruner.listdir(text)

    # ---- folders ---------------------------------------------------------------------------------

    def add_folder(self, path: str | os.PathLike[str]) -> dict[str, Any] | None:
        """Watch ``path`` (and everything below it that is not pruned) from now on.

        Returns the problem report for this folder (as in :meth:`uncovered`) or None.
        """
        requested = os.path.abspath(os.path.expanduser(os.fspath(path)))
        real = os.path.realpath(requested)
        with self._folders_lock:
            root = self._roots.get(real)
            if root is None:
                self._roots[real] = _Root(requested=requested, path=real)
            elif root.lost or (root.context is not None and root.context.coverage.reason):
                # Adding it again retries: it may exist again, or the watch limit may be raised.
                root.lost = False
                self._deactivate(root)
            self._reconcile()
            report = next((u for u in self.uncovered() if u["path"] == real), None)
        _release_free_memory()
        return report

    def remove_folder(self, path: str | os.PathLike[str]) -> None:
        """Stop watching ``path``; folders it contained that were added on their own stay watched."""
        real = os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(path))))
        with self._folders_lock:
            root = self._roots.pop(real, None)
            if root is None:
                return
            self._deactivate(root)
            self._reconcile()
            self._active = tuple(r for r in self._roots.values() if r.active)
        with self._process_lock:
            self._forget_tree(real)

    def folders(self) -> list[str]:
        with self._folders_lock:
            return sorted(r.requested for r in self._roots.values())

    def uncovered(self) -> list[dict[str, Any]]:
        """Folders (or parts of them) whose saves are not recorded, each with a sentence saying why.

        JSON-safe: ``{"folder", "path", "reason", "missing", "missing_count", "message"}``;
        ``reason`` is ``inotify-limit``, ``missing``, ``not-a-folder``, ``deleted``,
        ``unreadable`` or ``no-observer``.
        """
        out: list[dict[str, Any]] = []
        with self._folders_lock:
            roots = sorted(self._roots.values(), key=lambda r: r.path)
            for root in roots:
                cov = root.context.coverage if root.context else None
                if root.lost:
                    out.append(self._report(root, "deleted", [], 0, "it was deleted while watched; add it again"))
                elif cov is not None and cov.reason:
                    if cov.reason == "inotify-limit":
                        count = f"{cov.missing_count}{'+' if cov.count_is_lower_bound else ''}"
                        names = ", ".join(cov.missing[:5]) + (" …" if len(cov.missing) > 5 else "")
                        message = (
                            f"{count} folders under {root.requested} are not watched because "
                            f"{self._budget.limit_text} is reached, so saves in them are not recorded "
                            f"({names}). To cover them, {_SYSCTL_HINT}, or list big generated folders "
                            f"in .gitignore."
                        )
                    else:
                        message = cov.detail or cov.reason
                    out.append(
                        {
                            "folder": root.requested,
                            "path": root.path,
                            "reason": cov.reason,
                            "missing": list(cov.missing),
                            "missing_count": cov.missing_count,
                            "message": message,
                        }
                    )
                elif root.active and root.watch is None and self._observer_problem:
                    out.append(self._report(root, "no-observer", [], 0, self._observer_problem))
        return out

    @staticmethod
    def _report(root: _Root, reason: str, missing: list[str], count: int, why: str) -> dict[str, Any]:
        return {
            "folder": root.requested,
            "path": root.path,
            "reason": reason,
            "missing": missing,
            "missing_count": count,
            "message": f"{root.requested} is not watched: {why}.",
        }

    def _reconcile(self) -> None:
        """Watch exactly the folders that no other watched folder contains."""
        paths = sorted(p for p, r in self._roots.items() if not r.lost)
        for root in self._roots.values():
            covered = any(root.path.startswith(p.rstrip(os.sep) + os.sep) for p in paths if p != root.path)
            if covered and root.active:
                self._deactivate(root)
            elif not covered and not root.active and not root.lost:
                self._activate(root)
        self._active = tuple(r for r in self._roots.values() if r.active)

    def _activate(self, root: _Root) -> None:
        root.active = True
        context = _RootContext(_Pruner(root.path, self._own_paths), self._budget, _Coverage())
        root.context = context
        if not os.path.isdir(root.path):
            exists = os.path.exists(root.path)
            context.coverage.reason = "not-a-folder" if exists else "missing"
            context.coverage.detail = (
                f"{root.requested} is not watched: it is not a folder."
                if exists
                else f"{root.requested} is not watched: it does not exist (add it again once it does)."
            )
            return
        if not os.access(root.path, os.R_OK | os.X_OK):
            context.coverage.reason = "unreadable"
            context.coverage.detail = f"{root.requested} is not watched: this user cannot read it."
            return
        if self._observer is None:
            return
        if self._uses_inotify:
            self._budget.refresh()
        self._contexts[root.path] = context
        try:
            root.watch = self._observer.schedule(
                self._handler, root.path, recursive=True, event_filter=list(_EVENT_FILTER)
            )
        except OSError as exc:
            self._contexts.pop(root.path, None)
            if exc.errno == errno.ENOSPC:
                context.coverage.add_missing(root.path, "inotify-limit")
            else:
                context.coverage.reason = "unreadable"
                context.coverage.detail = f"{root.requested} is not watched: {exc.strerror or exc}."
            log.warning("cannot watch %s: %s", root.path, exc)
            return
        cov = context.coverage
        if cov.missing_count:
            more = "+" if cov.count_is_lower_bound else ""
            log.warning("%s: %d%s folders are not watched (watch limit)", root.path, cov.missing_count, more)
        log.info("watching %s (%d folders in all)", root.path, self._budget.held)

    def _deactivate(self, root: _Root) -> None:
        root.active = False
        watch, root.watch = root.watch, None
        if watch is not None and self._observer is not None:
            with contextlib.suppress(KeyError):
                self._observer.unschedule(watch)
        self._contexts.pop(root.path, None)

    def _root_for(self, path: str) -> _Root | None:
        best: _Root | None = None
        for root in self._active:
            inside = path == root.path or path.startswith(root.path.rstrip(os.sep) + os.sep)
            if inside and (best is None or len(root.path) > len(best.path)):
                best = root
        return best

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
                pending=len(self._pending),
                mass_changes_active=len(self._bursts),
                cached_files=len(self._cache),
                watches=self._budget.held,
            )
            return counts

    # ---- event intake ----------------------------------------------------------------------------

    def _enqueue(self, event: _Event) -> None:
        with self._cond:
            self._queue.append(event)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop.is_set():
                    timeout = self._next_due_in()
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

    def _next_due_in(self) -> float | None:
        """Seconds until the next heartbeat is due, or None when nothing is pending."""
        if not self._pending and not self._bursts:
            return None
        now = self.clock()
        due = [self._due_at(path, p) for path, p in list(self._pending.items())]
        due += [self._burst_due_at(b) for b in list(self._bursts.values())]
        # Bursts without changes still need a wake-up to end.
        due += [b.last + MASS_CHANGE_QUIET for b in list(self._bursts.values())]
        if not due:
            return None
        wait = min(due) - now
        # A little slack so a wake-up never lands just before the due time and spins.
        return 0.0 if wait <= 0 else wait + 0.002

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

    def _ingest(self, event: _Event, verdicts: dict[str, str | None]) -> None:
        self._counts["events"] += 1
        if event.kind == "delete":
            self._forget(event.src)
            return
        if event.kind in ("dir-delete", "dir-move"):
            self._forget_tree(event.src)
            if event.kind == "dir-delete":
                self._root_deleted(event.src)
            return
        path = event.src
        if event.kind == "move":
            if event.synthetic:
                # A folder was renamed: its files did not change.
                self._cache.rename(event.src, event.dest)
                self._pending.pop(event.src, None)
                return
            if self._skip_reason(event.dest, verdicts) is not None:
                # Renamed to a backup or temp name (vim's foo.py -> foo.py~): the real
                # file is written again next; keep what we know about it.
                return
            # An atomic save (temp -> file) or a user's move: a save of the destination.
            self._cache.rename(event.src, event.dest)
            self._pending.pop(event.src, None)
            path = event.dest
        reason = self._skip_reason(path, verdicts)
        if os.path.basename(path) == ".gitignore":
            root = self._root_for(path)
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
            root = self._root_for(path)
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
        self._pending.pop(path, None)

    def _forget_tree(self, folder: str) -> None:
        self._cache.discard_tree(folder)
        prefix = folder.rstrip(os.sep) + os.sep
        for path in [p for p in self._pending if p.startswith(prefix)]:
            del self._pending[path]
        for key in [k for k in self._burst_keys if k == folder or k.startswith(prefix)]:
            del self._burst_keys[key]

    def _root_deleted(self, folder: str) -> None:
        with self._folders_lock:
            root = self._roots.get(folder)
            if root is None or not root.active:
                return
            log.warning("watched folder %s was deleted", root.requested)
            self._deactivate(root)
            root.lost = True
            # A folder it contained that was added on its own cannot be watched either now.
            self._reconcile()

    # ---- coalescing and mass changes -------------------------------------------------------------

    def _burst_key(self, path: str) -> str:
        """The project folder a file belongs to, cheaply: nearest Git / .wakatime-project root."""
        root = self._root_for(path)
        top = root.path if root is not None else os.path.dirname(path)
        directory = os.path.dirname(path)
        visited: list[str] = []
        key = top
        while True:
            cached = self._burst_keys.get(directory)
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
        if len(self._burst_keys) > 8192:
            self._burst_keys.clear()
        for folder in visited:
            self._burst_keys[folder] = key
        return key

    def _candidate(self, path: str, when: float) -> None:
        self._counts["saves"] += 1
        key = self._burst_key(path)
        burst = self._bursts.get(key)
        if burst is None:
            recent = self._recent.setdefault(key, {})
            recent[path] = when
            if len(recent) >= MASS_CHANGE_FILES:
                horizon = when - MASS_CHANGE_WINDOW
                for old in [p for p, t in recent.items() if t < horizon]:
                    del recent[old]
                if len(recent) >= MASS_CHANGE_FILES:
                    burst = self._start_burst(key, when)
        if burst is not None:
            burst.add(path, when)
            self._cache.discard(path)
            return
        pending = self._pending.get(path)
        if pending is None:
            self._pending[path] = _Pending(first=when, last=when, key=key)
        else:
            pending.last = max(pending.last, when)

    def _start_burst(self, key: str, when: float) -> _Burst:
        self._counts["mass_changes"] += 1
        log.info("mass change in %s: recording it as one heartbeat per %.0f s", key, self.window)
        burst = _Burst(key=key, last=when)
        absorbed = sorted(((p.last, path) for path, p in self._pending.items() if p.key == key))
        for last, path in absorbed:
            del self._pending[path]
            burst.add(path, last)
        self._cache.discard_tree(key)
        self._bursts[key] = burst
        self._recent.pop(key, None)
        return burst

    def _due_at(self, path: str, pending: _Pending) -> float:
        last_emit = self._last_emit.get(path)
        due = pending.first + self.settle
        if last_emit is not None:
            due = max(due, last_emit + self.window)
        return due

    def _burst_due_at(self, burst: _Burst) -> float:
        if burst.dirty_since is None:
            return float("inf")
        # When the tool is done (quiet), or a window after the first change if it never stops.
        due = min(burst.last + MASS_CHANGE_QUIET, burst.dirty_since + self.window)
        if burst.last_emit is not None:
            due = max(due, burst.last_emit + self.window)
        return due

    def _emit_due(self, *, force: bool) -> None:
        now = self.clock()
        jobs: list[tuple[list[tuple[str, float]], bool]] = []
        for path, pending in list(self._pending.items()):
            if force or now >= self._due_at(path, pending):
                del self._pending[path]
                self._last_emit[path] = now
                jobs.append(([(path, pending.last)], False))
        for key, burst in list(self._bursts.items()):
            if burst.dirty_since is not None and (force or now >= self._burst_due_at(burst)):
                jobs.append((list(reversed(burst.paths)), True))
                burst.dirty_since = None
                burst.last_emit = now
                burst.paths.clear()
            if burst.dirty_since is None and (force or now >= burst.last + MASS_CHANGE_QUIET):
                del self._bursts[key]
        heartbeats: list[dict[str, Any]] = []
        for choices, is_burst in jobs:
            for path, when in choices:
                hb = self._build(path, when, burst=is_burst)
                if hb is not None:
                    heartbeats.append(hb)
                    break
        if heartbeats:
            self._submit(heartbeats)
        if now - self._last_housekeeping > self.window:
            self._housekeeping(now)

    def _housekeeping(self, now: float) -> None:
        self._last_housekeeping = now
        horizon = now - self.window
        for path in [p for p, t in self._last_emit.items() if t < horizon]:
            del self._last_emit[path]
        for key in list(self._recent):
            recent = self._recent[key]
            if not recent or max(recent.values()) < now - MASS_CHANGE_WINDOW:
                del self._recent[key]

    def _submit(self, heartbeats: list[dict[str, Any]]) -> None:
        try:
            self.sink.submit(heartbeats, SOURCE)
            self._counts["heartbeats"] += len(heartbeats)
            return
        except HeartbeatError as exc:
            log.warning("the store refused a batch of %d heartbeats (%s); retrying one by one", len(heartbeats), exc)
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

    # ---- one heartbeat ---------------------------------------------------------------------------

    def _read(self, path: str) -> tuple[int, bytes, bool] | str:
        """(size, content or its head, whole) — or the reason the file is not a text file we can read."""
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
        flags |= getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            return "gone"
        except OSError as exc:
            # ELOOP: a symlink (its target's own events are the ones that count);
            # EACCES / ENXIO (a socket) / anything else: not a file we can read.
            return "symlink" if exc.errno == errno.ELOOP else "unreadable"
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return "not_a_file"
            want = CONTENT_LIMIT + 1  # one byte more tells a file that grew past the limit
            chunks: list[bytes] = []
            got = 0
            while got < want:
                chunk = os.read(fd, min(1 << 20, want - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            data = b"".join(chunks)
            whole = len(data) <= CONTENT_LIMIT
            return max(st.st_size, len(data)), data[:CONTENT_LIMIT], whole
        except OSError:
            return "unreadable"
        finally:
            os.close(fd)

    def _build(self, path: str, when: float, *, burst: bool) -> dict[str, Any] | None:
        def skip(reason: str) -> None:
            self._counts[f"skipped_{reason}"] += 1

        read = self._read(path)
        if isinstance(read, str):
            if read == "gone":
                self._cache.discard(path)
            skip(read)
            return None
        size, data, whole = read
        if b"\x00" in data[:SNIFF_BYTES]:
            skip("binary")
            self._cache.discard(path)
            return None

        info = detect_project(path, self._projectmap, submodules=self._submodules)
        refusal = self.privacy.project_refusal(info)
        if refusal is not None:
            skip("project_rule")
            return None

        hb: dict[str, Any] = {
            "entity": path,
            "type": "file",
            "category": "coding",
            "time": when,
            "is_write": True,
            "user_agent": self._user_agent,
        }
        project = self.privacy.project_name(info)
        if project:
            hb["project"] = project
        if info.branch:
            hb["branch"] = info.branch
        if info.root_count:
            hb["project_root_count"] = info.root_count
        language = language_for(path, data)
        if language:
            hb["language"] = language
        if whole:
            hb["lines"] = _count_lines(data)
        if burst or not whole or size > DIFF_LIMIT:
            self._cache.discard(path)
        else:
            previous = self._cache.get(path)
            if previous is not None:
                hb["line_additions"], hb["line_deletions"] = line_changes(previous, data)
            self._cache.put(path, data)

        hb = self.privacy.sanitize(hb)
        # An editor plugin's heartbeat for this file in the window says more (cursor, line):
        # prefer it. Editors using wakatime-cli with hide_file_names send the hidden name.
        since = when - self.window
        for entity in {path, str(hb["entity"])}:
            if self.sink.editor_heartbeat_since(entity, since):
                skip("editor")
                return None
        return hb
