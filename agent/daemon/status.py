"""The status picture (queue, health, notices) with or without a running agent, and the
runtime file that tells the app where a running agent listens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from agent import __version__
from agent.config import Config
from agent.contract import RUNTIME_FILE, DestinationStatus, HistoryUpload, Notice, RuntimeInfo, Status
from agent.imports import upload_seconds
from agent.keys import KeyInUse
from agent.secrets import mask
from agent.store.store import Store


def build_status(
    store: Store | None,
    config: Config,
    *,
    key: KeyInUse | None = None,
    clock: Callable[[], float] = time.time,
    backoff: Callable[[str], float] | None = None,
) -> Status:
    """The queue and health picture; used by the control API and by ``status`` without a daemon
    (``store`` None: nothing recorded yet). ``backoff(name)``: seconds until the running agent
    next tries that destination; ``key``: the key in use (else the configuration's)."""
    key = key or KeyInUse(config.api_key, config.key_source)
    destinations: list[DestinationStatus] = []
    online: bool | None = None
    now = clock()
    # The backoff is read before the stored rows: the outbox stores a failure's reason before it
    # publishes the backoff, so in this order a status never shows a wait without its reason.
    names = [] if store is None else [dest["name"] for dest in store.destinations()]
    waits = {name: round(backoff(name), 1) if backoff is not None else 0.0 for name in names}
    queues = [] if store is None else [(dest, store.counts(dest["name"])) for dest in store.destinations()]
    for dest, counts in queues:
        wait = waits.get(dest["name"], 0.0)
        destinations.append(
            {
                "name": dest["name"],
                "url": dest["url"],
                "pending": counts.pending,
                "in_flight": counts.in_flight,
                "sent": counts.sent,
                "dead": counts.dead,
                "oldest_pending": counts.oldest_pending,
                "last_success": dest["last_success"],
                "last_error": dest["last_error"],
                "last_error_at": dest["last_error_at"],
                # Backoff lives on the running agent's monotonic clock; shown here as a wall time.
                "backoff_until": now + wait if wait else None,
                "backoff_seconds": wait,
                "auth_state": dest["auth_state"],
            }
        )
        # Offline means no HTTP answer at all; a server answering 5xx or 401 is reachable.
        if dest["reachable_at"] or dest["unreachable_at"]:
            online = (dest["reachable_at"] or 0) >= (dest["unreachable_at"] or 0)
    return {
        "version": __version__,
        "data_dir": str(config.data_dir),
        "log_dir": str(config.log_dir),
        "api_key": mask(key.key),
        "key_source": key.source,
        "key": key.describe(),
        "online": online,
        "destinations": destinations,
        "disk_full": store is not None and store.full_since is not None,
        "notices": (store.notices() if store is not None else [])
        + [{"id": None, "time": None, "level": "warning", "message": n} for n in config.notices]
        + _disk_notice(store),
        "history_upload": _history_upload(sum(counts.history for _, counts in queues)),
        "history_held": 0 if store is None else store.held_count(),
        "generated_at": now,
    }


def _history_upload(pending: int) -> HistoryUpload | None:
    return {"pending": pending, "seconds": round(upload_seconds(pending), 1)} if pending else None


def _disk_notice(store: Store | None) -> list[Notice]:
    """A full disk, said where the tray shows notices (it cannot be written to the store)."""
    if store is None or store.full_since is None:
        return []
    message = (
        f"The disk holding {store.path.parent} is full: new heartbeats cannot be stored (editors keep "
        "theirs and send them again). Free some space; the agent carries on by itself."
    )
    return [{"id": None, "time": store.full_since, "level": "error", "message": message}]


def read_runtime_file(data_dir: Path) -> RuntimeInfo | None:
    try:
        info = json.loads((data_dir / RUNTIME_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return cast("RuntimeInfo", info) if isinstance(info, dict) else None
