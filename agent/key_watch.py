"""Notice, within a second, that a file a key may come from was changed.

``~/.wakatime.cfg`` (or ``$WAKATIME_HOME/.wakatime.cfg``) and the app's
``settings.json`` are watched with watchdog, each through a non-recursive
watch of its folder: editors save by writing a new file and renaming it over
the old one, which a watch on the file itself would lose. A burst of events
(truncate, write, rename) is settled for a quarter of a second, then the
callback runs once, on this module's own thread.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)

SETTLE = 0.25  # seconds without another event before the files are read


class _Handler(FileSystemEventHandler):
    def __init__(self, names: set[str], poke: Callable[[], None]) -> None:
        self.names = names
        self.poke = poke

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(os.path.normcase(os.fsdecode(p)) in self.names for p in paths if p):
            self.poke()


class KeyFileWatcher:
    """Calls ``on_change`` after any of ``files`` was created, written, replaced or removed."""

    def __init__(self, files: Iterable[Path], on_change: Callable[[], object]) -> None:
        self.files = [Path(f).absolute() for f in files]
        self.on_change = on_change
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._poked = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> KeyFileWatcher:
        names = {os.path.normcase(str(f)) for f in self.files}
        observer = Observer()
        handler = _Handler(names, self._poked.set)
        for folder in sorted({f.parent for f in self.files}):
            if not folder.is_dir():
                # No folder yet (no WAKATIME_HOME, no config dir): nothing there can change the key.
                log.info("not watching %s: the folder does not exist", folder)
                continue
            observer.schedule(handler, str(folder), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._thread = threading.Thread(target=self._run, name="key-files", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._poked.wait()
            if self._stop.is_set():
                return
            # Settle: an editor's save is several events; read the files once they are quiet.
            while True:
                self._poked.clear()
                if not self._poked.wait(SETTLE) or self._stop.is_set():
                    break
            if self._stop.is_set():
                return
            try:
                self.on_change()
            except Exception:
                log.exception("re-reading the key after a configuration change failed")

    def stop(self) -> None:
        self._stop.set()
        self._poked.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join()
            self._observer = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
