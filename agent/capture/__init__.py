"""Capture: coding activity from file saves in watched folders, with wakatime-cli's rules
for project, branch, language and privacy applied before anything is stored.
"""

from .language import language_for
from .privacy import CaptureRules, PrivacyRules
from .project import ProjectInfo, detect_project
from .watcher import Watcher, inotify_status

__all__ = ["CaptureRules", "PrivacyRules", "ProjectInfo", "Watcher", "detect_project", "inotify_status", "language_for"]
