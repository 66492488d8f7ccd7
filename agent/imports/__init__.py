"""Importing history from export files: WakaTime heartbeat exports, Hackatime v1 dumps and
Hackatime's own export, plain, gzipped or zipped, read as a stream so memory stays flat
whatever the size. Heartbeats go into the store (local stats at once) and, unless kept
local, queue for upload behind every live heartbeat.

``job`` runs one import (``ImportJob``, ``Progress``); ``formats`` tells the exports apart;
``source`` opens a file as JSON bytes; ``estimate`` says how long the upload takes. Only
``estimate`` is imported here: the running agent loads the parser when an import starts.
"""

from .estimate import upload_seconds


class ImportBusy(RuntimeError):
    """An import is already running: one at a time per agent."""


__all__ = ["ImportBusy", "upload_seconds"]
