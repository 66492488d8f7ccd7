"""The Qt binding keeps Python's reference counts: an upgrade that brings back PySide6 6.12's
bug (a reference to None dropped per void call, to True / False per ``Signal.emit``) fails here
instead of aborting a user's tray after a few thousand calls (see ``app.binding``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CALLS = 100_000

# In a child process: with the bug, Python 3.11 aborts ("deallocating None") long before the end.
_PROBE = f"""
import json, sys
from PySide6.QtCore import QObject, Signal

class Emitter(QObject):
    flag = Signal(bool)
    bare = Signal()

probe, emitter = QObject(), Emitter()
seen = []
emitter.flag.connect(lambda value: None)
emitter.bare.connect(lambda: None)
before = [sys.getrefcount(o) for o in (None, True, False)]
for _ in range({CALLS}):
    probe.setObjectName("")  # a C++ method returning void
    emitter.flag.emit(True)
    emitter.flag.emit(False)
    emitter.bare.emit()
after = [sys.getrefcount(o) for o in (None, True, False)]
print(json.dumps({{"before": before, "after": after}}))
"""


def test_void_calls_and_emits_keep_the_counts_of_none_true_and_false() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    child = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert child.returncode == 0, f"the binding aborted the interpreter: {child.stderr[-500:]}"
    counts = json.loads(child.stdout.splitlines()[-1])
    for name, before, after in zip(("None", "True", "False"), counts["before"], counts["after"], strict=True):
        # Immortal objects (Python >= 3.12) keep one fixed count; elsewhere a few references may come
        # and go with the interpreter's own work, never one per call.
        assert abs(after - before) < CALLS // 100, f"{name}: {before} → {after} references after {CALLS} calls"
