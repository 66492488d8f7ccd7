"""The watched folders: which are watched (those no other watched folder contains),
which are not, and a sentence for each saying why and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.contract import UncoveredFolder

from .inotify import SYSCTL_HINT, Budget
from .observer import Coverage, RootContext
from .prune import Pruner

if TYPE_CHECKING:
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers.api import BaseObserver, ObservedWatch

__all__ = ["Folders", "Root"]

log = logging.getLogger(__name__)


@dataclass
class Root:
    """One folder the user asked to watch."""

    requested: str  # as the user gave it
    path: str  # real path; event paths start with it
    context: RootContext | None = None
    watch: ObservedWatch | None = None
    active: bool = False  # False when another watched folder contains this one
    lost: bool = False


class Folders:
    """The watcher's roots, their inotify budget and the per-root contexts the observer reads.

    ``observer``, ``handler`` and ``event_filter`` are set by the watcher once its
    observer runs (``observer_problem`` says why there is none); until then folders
    are recorded and checked but not scheduled.
    """

    def __init__(self, own_paths: tuple[str, ...], budget: Budget) -> None:
        self.budget = budget
        self.contexts: dict[str, RootContext] = {}  # by real path; the inotify observer reads it
        self.lock = threading.RLock()
        self.observer: BaseObserver | None = None
        self.handler: FileSystemEventHandler | None = None
        self.event_filter: list[type[FileSystemEvent]] = []
        self.uses_inotify = False
        self.observer_problem: str | None = None
        self._own_paths = own_paths
        self._roots: dict[str, Root] = {}
        self._active: tuple[Root, ...] = ()  # replaced whole, so the worker can read it unlocked

    def detach(self) -> None:
        """The observer stopped: no root holds a watch any more."""
        with self.lock:
            self.observer = None
            for root in self._roots.values():
                root.watch = None

    def add(self, path: str | os.PathLike[str]) -> UncoveredFolder | None:
        """Watch ``path`` from now on; its problem report (as in :meth:`uncovered`) or None."""
        requested = os.path.abspath(os.path.expanduser(os.fspath(path)))
        real = os.path.realpath(requested)
        with self.lock:
            root = self._roots.get(real)
            if root is None:
                self._roots[real] = Root(requested=requested, path=real)
            elif root.lost or (root.context is not None and root.context.coverage.reason):
                # Adding it again retries: it may exist again, or the watch limit may be raised.
                root.lost = False
                self._deactivate(root)
            self._reconcile()
            return next((u for u in self.uncovered() if u["path"] == real), None)

    def remove(self, path: str | os.PathLike[str]) -> str | None:
        """Stop watching ``path``; its real path, or None when it was not watched."""
        real = os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(path))))
        with self.lock:
            root = self._roots.pop(real, None)
            if root is None:
                return None
            self._deactivate(root)
            self._reconcile()
        return real

    def listed(self) -> list[str]:
        with self.lock:
            return sorted(r.requested for r in self._roots.values())

    def uncovered(self) -> list[UncoveredFolder]:
        """Folders (or parts of them) whose saves are not recorded, each with a sentence saying why.

        JSON-safe: ``{"folder", "path", "reason", "missing", "missing_count", "message"}``;
        ``reason`` is ``inotify-limit``, ``missing``, ``not-a-folder``, ``deleted``,
        ``unreadable`` or ``no-observer``.
        """
        out: list[UncoveredFolder] = []
        with self.lock:
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
                            f"{self.budget.limit_text} is reached, so saves in them are not recorded "
                            f"({names}). To cover them, {SYSCTL_HINT}, or list big generated folders "
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
                elif root.active and root.watch is None and self.observer_problem:
                    out.append(self._report(root, "no-observer", [], 0, self.observer_problem))
        return out

    @staticmethod
    def _report(root: Root, reason: str, missing: list[str], count: int, why: str) -> UncoveredFolder:
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

    def _activate(self, root: Root) -> None:
        root.active = True
        context = RootContext(Pruner(root.path, self._own_paths), self.budget, Coverage())
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
        if self.observer is None or self.handler is None:
            return
        if self.uses_inotify:
            self.budget.refresh()
        self.contexts[root.path] = context
        try:
            root.watch = self.observer.schedule(
                self.handler, root.path, recursive=True, event_filter=list(self.event_filter)
            )
        except OSError as exc:
            self.contexts.pop(root.path, None)
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
        log.info("watching %s (%d folders in all)", root.path, self.budget.held)

    def _deactivate(self, root: Root) -> None:
        root.active = False
        watch, root.watch = root.watch, None
        if watch is not None and self.observer is not None:
            with contextlib.suppress(KeyError):
                self.observer.unschedule(watch)
        self.contexts.pop(root.path, None)

    def root_for(self, path: str) -> Root | None:
        """The innermost watched root holding ``path``; lock-free, as ``_active`` is replaced whole."""
        best: Root | None = None
        for root in self._active:
            inside = path == root.path or path.startswith(root.path.rstrip(os.sep) + os.sep)
            if inside and (best is None or len(root.path) > len(best.path)):
                best = root
        return best

    def root_deleted(self, folder: str) -> None:
        """``folder`` was deleted: if it is a watched root, report it lost (add it again to retry)."""
        with self.lock:
            root = self._roots.get(folder)
            if root is None or not root.active:
                return
            log.warning("watched folder %s was deleted", root.requested)
            self._deactivate(root)
            root.lost = True
            # A folder it contained that was added on its own cannot be watched either now.
            self._reconcile()
