"""The one background helper: work off the GUI thread, answers on it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import QObject, QThreadPool

from app.tasks import InlinePool, TaskRunner


def test_result_and_error_arrive_on_the_main_thread(runner: TaskRunner, qtbot: Any) -> None:
    main = threading.get_ident()
    seen: dict[str, Any] = {}

    def work() -> int:
        seen["worker"] = threading.get_ident()
        return 42

    def boom() -> None:
        raise ValueError("no")

    with qtbot.waitSignal(runner.idle, timeout=5000):
        runner.run(work, lambda v: seen.update(result=v, result_thread=threading.get_ident()))
        runner.run(boom, None, lambda e: seen.update(error=e, error_thread=threading.get_ident()))
    assert seen["worker"] != main
    assert seen["result"] == 42 and seen["result_thread"] == main
    assert isinstance(seen["error"], ValueError) and seen["error_thread"] == main
    assert runner.pending == 0


def test_callbacks_of_a_deleted_context_are_dropped(runner: TaskRunner, qtbot: Any) -> None:
    gate = threading.Event()
    calls: list[Any] = []
    context = QObject()
    runner.run(lambda: gate.wait(5), calls.append, context=context)
    context.deleteLater()
    qtbot.waitUntil(lambda: not _valid(context))
    with qtbot.waitSignal(runner.idle, timeout=5000):
        gate.set()
    assert calls == []


class _Held:
    """Notes the thread its last reference was let go on (where Python frees it)."""

    def __init__(self, released: list[int]) -> None:
        self.released = released

    def __del__(self) -> None:
        self.released.append(threading.get_ident())


def test_what_a_task_refers_to_is_let_go_on_the_main_thread(runner: TaskRunner, pool: QThreadPool, qtbot: Any) -> None:
    """A window closed while its call runs is freed on the GUI thread: a Qt object freed on a
    pool thread crashes the app. Here the task's closure and its answer (an error refers to
    what raised it) hold the last references."""
    main = threading.get_ident()
    released: list[int] = []

    def task(fail: bool) -> Callable[[], object]:
        held = _Held(released)

        def call() -> object:
            if fail:
                raise ValueError(held)
            return held.released is released

        return call

    with qtbot.waitSignal(runner.idle, timeout=5000):
        runner.run(task(fail=False), lambda _value: None)
        runner.run(task(fail=True), None, lambda _error: None)
    assert pool.waitForDone(5000)  # the pool has let go of both jobs too
    assert released == [main, main]


def _valid(obj: QObject) -> bool:
    import shiboken6

    return bool(shiboken6.isValid(obj))


def test_unhandled_errors_are_logged_not_lost(
    runner: TaskRunner, qtbot: Any, caplog: pytest.LogCaptureFixture, app_errors_expected: Any
) -> None:
    def fail() -> None:
        raise RuntimeError("kaput")

    def bad_callback(_value: Any) -> None:
        raise KeyError("oops")

    with qtbot.waitSignal(runner.idle, timeout=5000):
        runner.run(fail, name="fail")
        runner.run(lambda: 1, bad_callback, name="cb")
    assert "background task fail failed" in caplog.text and "kaput" in caplog.text
    assert "the callback of background task cb failed" in caplog.text and "oops" in caplog.text


def test_inline_pool_runs_synchronously(qapp: Any, qtbot: Any) -> None:
    inline = TaskRunner(InlinePool())
    got: list[int] = []
    inline.run(lambda: 7, got.append)
    assert got == [7]  # direct connection: same thread, no event loop needed
