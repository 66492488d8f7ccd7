"""Logging: a rotating file in the platform log dir; keys never appear (last 4 chars at most).

The folder is 0700 and the files 0600 (paths and project names are private). When the disk
is full the file handler drops records quietly instead of printing a traceback for each one
to stderr; it says how many it dropped once it can write again.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
from pathlib import Path

from .secrets import RedactingFilter

LOG_FILE = "agent.log"


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file created 0600 that fails quietly while it cannot write."""

    def __init__(self, path: Path, **kwargs: object) -> None:
        self.dropped = 0
        super().__init__(path, **kwargs)  # type: ignore[arg-type]

    def _open(self):  # type: ignore[no-untyped-def]  # the stdlib's own signature is untyped
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with contextlib.suppress(OSError):
            os.chmod(self.baseFilename, 0o600)  # a file an older version created 0644
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)

    def emit(self, record: logging.LogRecord) -> None:
        dropped = self.dropped
        super().emit(record)
        if dropped and self.dropped == dropped:  # this record got through: say what was lost
            self.dropped = 0
            message = f"{dropped} log records were dropped while the log file could not be written"
            note = logging.LogRecord(record.name, logging.WARNING, __file__, 0, message, None, None)
            super().emit(note)

    def handleError(self, record: logging.LogRecord) -> None:
        # A full disk must not turn every log call into a traceback on stderr; the agent's
        # status says the disk is full, and the count above says what the log is missing.
        self.dropped += 1
        if self.stream is not None:
            with contextlib.suppress(OSError):
                self.stream.close()  # reopened on the next record, which may then succeed
            self.stream = None


def setup_logging(log_dir: Path, *, verbose: bool = False, stderr: bool = True) -> Path:
    log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(log_dir, 0o700)
    path = log_dir / LOG_FILE
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        if getattr(handler, "_hackatime", False):
            root.removeHandler(handler)
            handler.close()
    file_handler = PrivateRotatingFileHandler(path, maxBytes=2_000_000, backupCount=5, encoding="utf-8", delay=True)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handlers: list[logging.Handler] = [file_handler]
    if stderr:
        console = logging.StreamHandler()
        console.setLevel(logging.DEBUG if verbose else logging.WARNING)
        console.setFormatter(logging.Formatter("hackatime-agent: %(message)s"))
        handlers.append(console)
    for handler in handlers:
        handler.addFilter(RedactingFilter())
        handler._hackatime = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    return path
