"""watchdog's inotify observer, pruned and on a budget, in a quarter of the memory.

These subclass watchdog's inotify internals (hence ``watchdog>=7,<8`` in pyproject):
the recursive watch group walks only unpruned folders and holds no more watches
than :class:`~agent.capture.inotify.Budget` allows, recording what it could not
watch in the root's :class:`Coverage`; the reader keeps slim records per watch.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, cast

from .inotify import Budget
from .prune import Pruner

__all__ = ["INOTIFY_AVAILABLE", "INOTIFY_ERRORS", "Coverage", "PrunedInotifyObserver", "RootContext"]

_UNCOVERED_LISTED = 20  # folders named in an uncovered report
_COUNT_BEYOND_LIMIT = 100_000  # extra folders counted (not watched) to size an uncovered report


@dataclass
class Coverage:
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


INOTIFY_AVAILABLE = False
# What starting the observer raises when inotify is there but unusable (instance limit, libc).
INOTIFY_ERRORS: tuple[type[Exception], ...] = (OSError,)
if sys.platform.startswith("linux"):  # pragma: no branch
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

        INOTIFY_AVAILABLE = True
        INOTIFY_ERRORS = (OSError, UnsupportedLibcError)
    except (ImportError, OSError):  # pragma: no cover - a Linux without a usable libc inotify
        INOTIFY_AVAILABLE = False


@dataclass
class RootContext:
    """What the observer needs to know about one watched root."""

    pruner: Pruner
    budget: Budget
    coverage: Coverage


if INOTIFY_AVAILABLE:

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

        context: RootContext | None = None

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
        def __init__(self, *args: Any, contexts: dict[str, RootContext], **kwargs: Any) -> None:
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

    class PrunedInotifyObserver(_BaseObserver):
        def __init__(self, contexts: dict[str, RootContext]) -> None:
            self._inotify_fd = _SlimInotifyFD()
            self._inotify_fd.start()
            super().__init__(_PrunedInotifyEmitter, inotify_fd=self._inotify_fd, contexts=contexts)

        def on_thread_stop(self) -> None:
            super().on_thread_stop()
            self._inotify_fd.stop()
            self._inotify_fd.join()
