"""Whether the first start's welcome window (:mod:`app.first_run`) is still due for a config dir.

Apart from the window so that the tray, which asks at every start, does not load the
window's code (its widgets, the wakatime.cfg reader, autostart) to learn the answer.
"""

from __future__ import annotations

from pathlib import Path

MARKER = "first-run-done"


def needed(config_dir: Path) -> bool:
    return not (config_dir / MARKER).exists()


def mark_done(config_dir: Path) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / MARKER).touch()
