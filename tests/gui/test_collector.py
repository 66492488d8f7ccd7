"""Cycles holding Qt objects are freed on the GUI thread, whichever thread allocates (app.collector)."""

from __future__ import annotations

import gc
import threading
from typing import Any

from PySide6.QtCore import QObject, Qt

from app.collector import MainThreadCollector


def allocate(into: list[list[int]], count: int) -> None:
    """What a pool thread does all day: allocate containers, past the collection thresholds many times.

    They are kept (``into``): freed, they would take the young generation's count back down, and
    the collector would have nothing due when the test waits on it.
    """
    into.extend([i] for i in range(count))


def test_a_cycle_holding_a_qt_object_is_freed_on_the_gui_thread(collector: MainThreadCollector, qtbot: Any) -> None:
    assert not gc.isenabled()
    freed_on: list[str] = []
    obj = QObject()
    obj.itself = obj  # type: ignore[attr-defined]  # a reference cycle: only the cyclic collector frees it
    obj.destroyed.connect(lambda: freed_on.append(threading.current_thread().name), Qt.ConnectionType.DirectConnection)
    del obj
    allocated: list[list[int]] = []
    worker = threading.Thread(target=allocate, args=(allocated, 50 * gc.get_threshold()[0]), name="allocating")
    worker.start()
    worker.join()
    assert freed_on == []  # automatic collection on that thread would have freed it there
    qtbot.waitUntil(lambda: freed_on == [threading.main_thread().name], timeout=10_000)
    del allocated


def test_collect_due_follows_the_interpreters_thresholds(collector: MainThreadCollector) -> None:
    gc.collect()  # every count back to zero
    assert collector.collect_due() == 0  # nothing due: nothing looked at
    garbage = []
    for _ in range(gc.get_threshold()[0] + 1):
        pair: list[Any] = []
        pair.append(pair)
        garbage.append(pair)
    del garbage, pair
    assert collector.collect_due() >= gc.get_threshold()[0]  # the young generation was due: its cycles freed
    assert gc.get_count()[1] == 1  # a young collection only: the older ones were not due
