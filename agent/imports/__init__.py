"""Importing history from export files: WakaTime heartbeat exports, Hackatime v1 dumps and
Hackatime's own export, plain, gzipped or zipped, read as a stream so memory stays flat
whatever the size; heartbeats go into the store (local stats at once) and, unless kept
local, queue for upload behind every live heartbeat.
"""

from .formats import NAMES, Detected, detect
from .job import FINAL, ImportJob, Progress, upload_seconds
from .source import ImportRefused, Source

__all__ = ["FINAL", "NAMES", "Detected", "ImportJob", "ImportRefused", "Progress", "Source", "detect", "upload_seconds"]
