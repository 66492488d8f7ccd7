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
import weakref
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
    func: Callable[[], Any]  # kept here, on the GUI thread, until the answer is delivered
    on_result: ResultFn | None
    on_error: ErrorFn | None
    context: QObject | None
    name: str


class _Job(QRunnable):
    """Runs on a pool thread; reports back through the runner's queued signal.

    A pool thread is never the last holder of anything: Python frees an object where its last
    reference goes, and a Qt object freed on a pool thread (a window the task's closure refers
    to, the runner itself) crashes the app. So the call and its answer are handed to the
    runner, which lets go of them on the GUI thread once they are delivered; the runner is
    referred to weakly (its owner keeps it while tasks run).
    """

    def __init__(self, runner: TaskRunner, task_id: int, func: Callable[[], Any]) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._runner = weakref.ref(runner)
        self._task_id = task_id
        self._func: Callable[[], Any] | None = func

    def run(self) -> None:
        func, self._func = self._func, None
        assert func is not None, "a job runs once"
        try:
            answer: tuple[Any, BaseException | None] = (func(), None)
        except BaseException as exc:  # delivered to the caller, who decides what it means
            answer = (None, exc)
        del func  # the runner's pending entry still holds it
        runner = self._runner()
        if runner is None:
            return  # the runner was deleted during shutdown: nobody is left to tell
        runner._answers[self._task_id] = answer
        del answer
        try:
            # The runner lives on the main thread, so this emit is queued to it.
            runner._finished.emit(self._task_id)
        except RuntimeError:
            pass  # its Qt half was deleted during shutdown


class TaskRunner(QObject):
    """Start blocking calls off the GUI thread; callbacks run on the GUI thread."""

    _finished = Signal(int)
    idle = Signal()  # no task left in flight (tests and benchmarks wait on it)

    def __init__(self, pool: Pool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._answers: dict[int, tuple[Any, BaseException | None]] = {}  # set by the pool, read here
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
        self._pending[task_id] = _Pending(func, on_result, on_error, context, name or getattr(func, "__name__", "task"))
        self._pool.start(_Job(self, task_id, func))

    @Slot(int)
    def _deliver(self, task_id: int) -> None:
        pending = self._pending.pop(task_id, None)
        value, error = self._answers.pop(task_id, (None, None))
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
