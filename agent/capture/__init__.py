"""Capture: coding activity from file saves in watched folders, with wakatime-cli's rules
for project, branch, language and privacy applied before anything is stored.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .coalesce import Coalescer
from .inotify import inotify_status
from .language import language_for
from .privacy import CaptureRules, PrivacyRules
from .project import ProjectInfo, detect_project

if TYPE_CHECKING:
    from .watcher import Watcher

__all__ = [
    "CaptureRules",
    "Coalescer",
    "PrivacyRules",
    "ProjectInfo",
    "Watcher",
    "detect_project",
    "inotify_status",
    "language_for",
]


def __getattr__(name: str) -> Any:
    # The watcher (and watchdog under it) loads on first use: ``doctor`` and the stats
    # need this package's small modules, not an observer.
    if name == "Watcher":
        return importlib.import_module(".watcher", __name__).Watcher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
