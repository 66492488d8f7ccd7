"""Logging: a rotating file in the platform log dir; keys never appear (last 4 chars at most)."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from .secrets import RedactingFilter

LOG_FILE = "agent.log"


def setup_logging(log_dir: Path, *, verbose: bool = False, stderr: bool = True) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / LOG_FILE
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        if getattr(handler, "_hackatime", False):
            root.removeHandler(handler)
            handler.close()
    file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=5, encoding="utf-8")
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
