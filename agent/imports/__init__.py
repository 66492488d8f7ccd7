"""Importing history from export files: WakaTime heartbeat exports, Hackatime v1 dumps and
Hackatime's own export, plain, gzipped or zipped, read as a stream so memory stays flat
whatever the size. Heartbeats go into the store (local stats at once) and, unless kept
local, queue for upload behind every live heartbeat.

``job`` runs one import (``ImportJob``, ``Progress``); ``reader`` reads the file into rows in
a process of its own; ``formats`` tells the exports apart; ``source`` opens a file as JSON
bytes; ``estimate`` says how long the upload takes. Only ``estimate`` is imported here: the
running agent loads the parser when an import starts.
"""

from .estimate import upload_seconds

# A frozen agent's own command line for its import reading process (``reader``).
IMPORT_READER_ARG = "--read-import-for-agent"


class ImportBusy(RuntimeError):
    """An import is already running: one at a time per agent."""


__all__ = ["IMPORT_READER_ARG", "ImportBusy", "upload_seconds"]
