"""Python's cyclic garbage collection, run on the GUI thread only.

Python collects reference cycles on whichever thread happens to allocate past a threshold,
and many Qt objects live in cycles: a matplotlib canvas and its figure refer to each other,
a tray refers to its own bound methods. A collection on a pool thread (a background agent
call) or on any other thread then deletes widgets, menus and timers off the thread that
owns them, which Qt does not allow: the process can crash, or hang in Qt's C++ where no
Python signal handler or timeout reaches it. (In the GUI tests, collections ran on pool
threads and on the in-process agent's threads while a closed tray's menu and a closed
dashboard's charts sat in cycles.)

So each of the app's processes turns automatic collection off and collects on a timer of
the GUI thread's event loop instead, by the interpreter's own thresholds (Erik Janssens'
recipe, which pyqtgraph and OpenCue's GUI carry too). Plain reference counting is untouched:
an object that is in no cycle still goes the moment its last reference does.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

CHECK_INTERVAL_MS = 2000  # garbage in cycles waits at most this long; a check with nothing due costs ~1 µs


class MainThreadCollector(QObject):
    """Turns automatic collection off while it lives; :meth:`collect_due` does the interpreter's work."""

    def __init__(self, parent: QObject, interval_ms: int = CHECK_INTERVAL_MS) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect_due)
        self._timer.start()

    def collect_due(self) -> int:
        """What automatic collection would do now: the oldest generation whose count passed its threshold."""
        counts = gc.get_count()
        if counts[0] <= self._thresholds[0]:
            return 0  # the interpreter looks at the older generations only once the youngest is due
        for generation in (2, 1):
            if counts[generation] > self._thresholds[generation]:
                return gc.collect(generation)  # the younger generations with it
        return gc.collect(0)

    def stop(self) -> None:
        """Automatic collection as it was before (tests, and a process going back to plain Python)."""
        self._timer.stop()
        if self._was_enabled:
            gc.enable()
