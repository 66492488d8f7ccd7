"""What the watcher asks the observer for, and what it keeps of each event: a kind, the paths
and a time, stamped on watchdog's dispatcher thread and queued for the watcher's worker."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from watchdog.events import (
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

# Only these are asked for: watchdog's default mask also asks for opens and reads, whose own
# events overflow the kernel queue beyond a few thousand directories (wakatime-clients.md §8).
EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


@dataclass(frozen=True)
class Event:
    kind: str  # "write", "move", "delete", "dir-delete", "dir-move"
    src: str
    dest: str
    time: float
    synthetic: bool


class Handler(FileSystemEventHandler):
    """Runs on watchdog's dispatcher thread: classify, stamp, enqueue — nothing else."""

    def __init__(self, enqueue: Callable[[Event], None], clock: Callable[[], float]) -> None:
        super().__init__()
        self._enqueue = enqueue
        self._clock = clock

    def dispatch(self, event: FileSystemEvent) -> None:
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if event.dest_path else ""
        if isinstance(event, FileMovedEvent):
            kind = "move"
        elif isinstance(event, (FileClosedEvent, FileModifiedEvent, FileCreatedEvent)):
            kind = "write"
        elif isinstance(event, FileDeletedEvent):
            kind = "delete"
        elif isinstance(event, DirDeletedEvent):
            kind = "dir-delete"
        elif isinstance(event, DirMovedEvent):
            kind = "dir-move"
        else:
            return
        self._enqueue(Event(kind, src, dest, self._clock(), bool(event.is_synthetic)))
