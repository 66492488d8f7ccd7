"""The agent's stored notices the tray has already popped up, kept across its restarts.

The agent lists a stored notice on every status until the user dismisses it on the
dashboard's Sync tab, and the tray pops each one up once (state.NotificationTracker).
Remembered in memory only, an undismissed notice popped up again at every start of
the tray; so the tray keeps them in a small file of its own in the config dir, beside
the first-run marker. Only notices the agent still lists are kept (the tracker drops
the rest), so the file is never longer than that list.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from .state import NoticeKey

log = logging.getLogger(__name__)

FILE = "shown-notices.json"


def load(config_dir: Path) -> set[NoticeKey]:
    """What was shown before; nothing when the file is missing or unreadable (at worst a notice shows again)."""
    path = config_dir / FILE
    try:
        pairs = json.loads(path.read_text(encoding="utf-8"))
        return {(int(ident), float(when)) for ident, when in pairs}
    except FileNotFoundError:
        return set()
    except (OSError, ValueError, TypeError) as exc:
        log.warning("could not read %s (%s); its notices may pop up again", path, exc)
        return set()


def save(config_dir: Path, shown: Iterable[NoticeKey]) -> None:
    path = config_dir / FILE
    temp = path.with_name(FILE + ".tmp")
    try:
        config_dir.mkdir(parents=True, exist_ok=True)
        temp.write_text(json.dumps(sorted(shown)), encoding="utf-8")
        os.replace(temp, path)  # whole or not at all: a crash mid-write must not lose what was there
    except OSError as exc:
        log.warning("could not write %s (%s); its notices may pop up again at the next start", path, exc)
