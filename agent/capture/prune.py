"""Pruning: which folders get no watch and which files are not the user's code.

``.git``, ``node_modules``, virtualenvs (any folder with ``pyvenv.cfg``), caches,
``build`` / ``dist`` / ``target`` output and whatever the ``.gitignore`` files (and
``.git/info/exclude``) exclude get no inotify watch at all; editor temp and swap
files and binary files are never a heartbeat.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator

import pathspec

__all__ = ["BINARY_EXTENSIONS", "PRUNED_DIRS", "Pruner", "is_editor_temp"]

log = logging.getLogger(__name__)

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


def is_editor_temp(name: str) -> bool:
    """True for editor temp / swap / backup file names (including vim's ``4913`` probe)."""
    if _TEMP_NAME.search(name):
        return True
    # vim checks that it may create files in a folder by creating 4913, then 5036, 5159 …
    return name.isdigit() and int(name) >= 4913 and (int(name) - 4913) % 123 == 0


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


class Pruner:
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
