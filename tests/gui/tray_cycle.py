"""A day of the tray in a few seconds, run as a child process by ``test_windows``.

It starts the tray the way ``hackatime-desktop`` does (agent supervision aside: the
test runs the agent), opens and closes every window twice, refreshes as the tray's
timers do for an hour (120 status refreshes, 30 with stats, the menu opened each
time), quits, and prints the heavy modules it ended up holding.

    python -m tests.gui.tray_cycle DATA_DIR
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEventLoop, QTimer

from app import main as app_main
from app import process
from app.windows import WINDOWS

HEAVY = ("matplotlib", "numpy", "PIL", "app.charts", "app.dashboard")
TIMEOUT_MS = 60_000


def wait(signal: Any, action: Callable[[], object], what: str) -> None:
    """Do ``action`` and run the event loop until ``signal`` fires (or fail after TIMEOUT_MS)."""
    loop = QEventLoop()
    fired: list[object] = []

    def done(*args: object) -> None:
        fired.append(args)
        loop.quit()

    signal.connect(done)
    QTimer.singleShot(TIMEOUT_MS, loop.quit)
    action()
    if not fired:
        loop.exec()
    signal.disconnect(done)
    if not fired:
        raise SystemExit(f"timed out waiting for {what}")


def main(data_dir: str) -> int:
    qapp = process.create_app()
    session = app_main.start(qapp, app_main.parse_args(["--data-dir", data_dir, "--no-agent"]))
    if session is None:
        raise SystemExit("another tray holds this data dir")
    model, tray = session.model, session.tray
    if model.stats is None:
        wait(model.stats_changed, lambda: None, "the first figures")
    for _ in range(2):
        for name in WINDOWS:
            wait(session.windows.opened, lambda n=name: tray.open_window(n), f"the {name} to open")
            wait(session.windows.closed, lambda n=name: session.windows.close_window(n), f"the {name} to close")
    for i in range(120):  # a status refresh every 30 s for an hour, stats every 2 minutes
        tray.menu.aboutToShow.emit()
        stats = i % 4 == 0
        signal = model.stats_changed if stats else model.changed
        wait(signal, lambda s=stats: model.refresh(stats=s), "a refresh")
    session.stop()
    held = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY or m in HEAVY)
    print(json.dumps({"heavy": held, "windows": sorted(WINDOWS)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
