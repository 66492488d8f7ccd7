"""The agent's log: private from its first line, even where an older version left it readable."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from agent.logs import LOG_FILE, setup_logging


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_log_and_its_folder_are_private(tmp_path: Path) -> None:
    old = tmp_path / "old-logs"
    old.mkdir(mode=0o755)
    (old / LOG_FILE).write_text("from an older version\n")
    os.chmod(old, 0o755)
    os.chmod(old / LOG_FILE, 0o644)
    fresh = tmp_path / "fresh" / "logs"
    root = logging.getLogger()
    try:
        for folder in (old, fresh):
            path = setup_logging(folder, stderr=False)
            logging.getLogger("agent.test").warning("a line")
            assert (mode(folder), mode(path)) == (0o700, 0o600), folder
            assert "a line" in path.read_text()
    finally:
        for handler in list(root.handlers):
            if getattr(handler, "_hackatime", False):
                root.removeHandler(handler)
                handler.close()
