"""The one background helper: run a blocking call on a thread pool, deliver on the GUI thread.

Picard's ``run_task`` pattern (``picard/util/thread.py``): ``func`` runs on a
``QThreadPool``; its result, or the exception it raised, is handed to a callback on
the main thread. Every agent call in the tray goes through :meth:`TaskRunner.run`,
so the event loop never waits on the network.

The pool is a constructor argument: the app passes its own (a few threads, one of
them usually parked in the agent's long-poll), tests pass one they drain in
teardown, and :class:`InlinePool` runs tasks synchronously where a test wants that.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import shiboken6
from PySide6.QtCore import QObject, QRunnable, Signal, Slot

log = logging.getLogger(__name__)

ResultFn = Callable[[Any], None]
ErrorFn = Callable[[BaseException], None]


class Pool(Protocol):
    def start(self, runnable: QRunnable) -> None: ...


@dataclass
class _Pending:
    on_result: ResultFn | None
    on_error: ErrorFn | None
    context: QObject | None
    name: str


class _Job(QRunnable):
    """Runs on a pool thread; reports back through the runner's queued signal."""

    def __init__(self, runner: TaskRunner, task_id: int, func: Callable[[], Any]) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._runner = runner
        self._task_id = task_id
        self._func = func

    def run(self) -> None:
        try:
            value, error = self._func(), None
        except BaseException as exc:  # delivered to the caller, who decides what it means
            value, error = None, exc
        try:
            # The runner lives on the main thread, so this emit is queued to it.
            self._runner._finished.emit(self._task_id, value, error)
        except RuntimeError:
            pass  # the runner was deleted during shutdown: nobody is left to tell


class TaskRunner(QObject):
    """Start blocking calls off the GUI thread; callbacks run on the GUI thread."""

    _finished = Signal(int, object, object)
    idle = Signal()  # no task left in flight (tests and benchmarks wait on it)

    def __init__(self, pool: Pool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._finished.connect(self._deliver)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def run(
        self,
        func: Callable[[], Any],
        on_result: ResultFn | None = None,
        on_error: ErrorFn | None = None,
        *,
        context: QObject | None = None,
        name: str = "",
    ) -> None:
        """Run ``func()`` on the pool; then ``on_result(value)`` or ``on_error(exc)`` here.

        With ``context``, the callbacks are dropped if that object has been deleted
        by the time the result arrives (a window closed while its data loaded).
        """
        task_id = next(self._ids)
        self._pending[task_id] = _Pending(on_result, on_error, context, name or getattr(func, "__name__", "task"))
        self._pool.start(_Job(self, task_id, func))

    @Slot(int, object, object)
    def _deliver(self, task_id: int, value: Any, error: BaseException | None) -> None:
        pending = self._pending.pop(task_id, None)
        try:
            if pending is None or (pending.context is not None and not shiboken6.isValid(pending.context)):
                return
            if error is None:
                if pending.on_result is not None:
                    pending.on_result(value)
            elif pending.on_error is not None:
                pending.on_error(error)
            else:
                log.error("background task %s failed", pending.name, exc_info=error)
        except Exception:
            # A bug in a callback must not escape into Qt's event loop (see app.binding).
            log.exception("the callback of background task %s failed", pending.name if pending else task_id)
        finally:
            if not self._pending:
                self.idle.emit()


class InlinePool:
    """Runs each task at once on the calling thread (Picard's ``FakeThreadPool``)."""

    def start(self, runnable: QRunnable) -> None:
        runnable.run()
