"""Notice, within seconds, that a place a key may come from was changed.

``~/.wakatime.cfg`` (or ``$WAKATIME_HOME/.wakatime.cfg``), the app's ``settings.json``
and its ``key-changed`` file (touched by every process that stores or forgets a key,
``agent.keys.announce_key_change``) are watched with watchdog, each through a
non-recursive watch of its folder: editors save by writing a new file and renaming it
over the old one, which a watch on the file itself would lose. A burst of events
(truncate, write, rename) is settled for a quarter of a second, then the callback runs
once, on this module's own thread.

The keyring is read again (in a child process) when it changed. A keyring on the session
bus (the Secret Service: GNOME Keyring, KeePassXC; KWallet) says so itself: its signals are
listened to (``agent.keyring_signals``, loaded only then). Where a backend keeps its secrets
in a known file or folder (``agent.secrets.keyring_stores``), that place is watched. A
keyring that does neither is read again on the owner's cadence (``KeyOwner.keyring_poll``),
on this same thread.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from .secrets import KEYRING_TIMEOUT

if TYPE_CHECKING:
    from .keyring_signals import KeyringSignals
    from .keys import KeyOwner

log = logging.getLogger(__name__)

SETTLE = 0.25  # seconds without another event before the files are read
# Events in the keyring's store this long after our own read of it are that read's doing
# (a backend may note an access time or a reader), not a change: no read is started for them.
OWN_READ_ECHO = 1.0
RECONSIDER = 3.0  # seconds between looks at the poll's cadence, while there is one
# What a watched file's change ends with: a write in place ends with a close, a save by rename
# is a move (or a create when it comes from another folder). On Linux the filter becomes the
# inotify mask, so the writes SQLite makes to the store beside settings.json (an explicit data
# dir is also the config dir) never wake the watcher: every commit's modify events cost the
# intake about a tenth of its CPU. Other platforms report no close events: they keep them all.
FILE_EVENTS = [FileClosedEvent, FileCreatedEvent, FileDeletedEvent, FileMovedEvent] if sys.platform == "linux" else None


def session_bus_address() -> str | None:
    """The session bus's address, or None when this session has none.

    As libdbus finds it (and so the keyring's KWallet backend, through dbus-python): the
    environment's address, else the per-user socket systemd makes in the runtime folder.
    """
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if address:
        return address
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and (Path(runtime) / "bus").is_socket():
        return f"unix:path={Path(runtime) / 'bus'}"
    return None


class _Handler(FileSystemEventHandler):
    def __init__(self, watch: KeyFileWatcher) -> None:
        self.watch = watch

    def on_any_event(self, event: FileSystemEvent) -> None:
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                self.watch._event(os.path.normcase(os.fsdecode(raw)))


class KeyFileWatcher:
    """Calls ``on_change(changed)`` after any of ``files`` (or anything in ``folders``) was
    created, written, replaced or removed; ``changed`` holds the watched paths concerned.

    With ``poll``, also calls ``on_poll()`` whenever ``poll()`` seconds pass without a
    change (``poll()`` answering None: no polling until the next change).
    """

    def __init__(
        self,
        files: Iterable[Path],
        on_change: Callable[[set[Path]], object],
        *,
        poll: Callable[[], float | None] = lambda: None,
        on_poll: Callable[[], object] = lambda: None,
    ) -> None:
        self.files = [Path(f).absolute() for f in files]
        self.on_change = on_change
        self.poll = poll
        self.on_poll = on_poll
        self._names: dict[str, Path] = {}  # normcased path → the watched file or folder
        self._folders: set[str] = set()  # normcased folders whose every entry counts
        self._scheduled: set[Path] = set()
        self._changed: set[Path] = set()
        self._ignore_until: dict[Path, float] = {}
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._handler = _Handler(self)
        self._lock = threading.Lock()
        self._poked = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.companions: list[Callable[[], object]] = []  # their stops, called by stop()

    def start(self) -> KeyFileWatcher:
        observer = Observer()
        observer.daemon = True
        self._observer = observer
        self.watch(self.files)
        observer.start()
        self._thread = threading.Thread(target=self._run, name="key-files", daemon=True)
        self._thread.start()
        return self

    def watch(self, paths: Iterable[Path], *, folders: bool = False) -> None:
        """Watch more files (or, with ``folders``, everything directly in these folders)."""
        for path in (Path(p).absolute() for p in paths):
            name = os.path.normcase(str(path))
            with self._lock:
                if name in self._names:
                    continue
                self._names[name] = path
                if folders:
                    self._folders.add(name)
            parent = path if folders else path.parent
            if parent in self._scheduled or self._observer is None:
                continue
            if not parent.is_dir():
                # No folder yet (no WAKATIME_HOME, no config dir): nothing there can change the key.
                log.info("not watching %s: the folder does not exist", parent)
                continue
            # A keyring's own folder keeps every event: how its backend writes is its own affair.
            events = None if folders else FILE_EVENTS
            self._observer.schedule(self._handler, str(parent), recursive=False, event_filter=events)
            self._scheduled.add(parent)

    def ignore_for(self, paths: Iterable[Path], seconds: float) -> None:
        """Events for ``paths`` in the next ``seconds`` are not changes (our own reads)."""
        until = time.monotonic() + seconds
        with self._lock:
            for path in paths:
                self._ignore_until[Path(path).absolute()] = until

    def announce(self, path: Path) -> None:
        """Act as if ``path`` had just changed (a first look at a source)."""
        with self._lock:
            self._changed.add(Path(path).absolute())
        self._poked.set()

    def _event(self, name: str) -> None:
        with self._lock:
            found = self._names.get(name)
            if found is None:
                folder = os.path.dirname(name)
                found = self._names.get(folder) if folder in self._folders else None
            if found is None or time.monotonic() < self._ignore_until.get(found, 0.0):
                return
            self._changed.add(found)
        self._poked.set()

    def _run(self) -> None:
        last_poll = time.monotonic()
        while not self._stop.is_set():
            interval = self.poll()
            # While polling, the cadence is looked at again every few seconds: it may quicken
            # (delivery began to wait for a key), and a wait decided earlier would not.
            wait = None if interval is None else max(0.0, min(last_poll + interval - time.monotonic(), RECONSIDER))
            if not self._poked.wait(wait):
                if self._stop.is_set():
                    return
                interval = self.poll()
                if interval is not None and time.monotonic() >= last_poll + interval:
                    self._call(self.on_poll)
                    last_poll = time.monotonic()
                continue
            if self._stop.is_set():
                return
            # Settle: an editor's save is several events; read the files once they are quiet.
            while True:
                self._poked.clear()
                if not self._poked.wait(SETTLE) or self._stop.is_set():
                    break
            if self._stop.is_set():
                return
            with self._lock:
                changed, self._changed = self._changed, set()
            self._call(self.on_change, changed)

    def _call(self, func: Callable[..., object], *args: object) -> None:
        try:
            func(*args)
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
        # Last: this thread may have started one while it ran (a keyring read names its signals).
        for stop in self.companions:
            stop()
        self.companions.clear()


def watch_key_sources(
    owner: KeyOwner, files: Iterable[Path], marker: Path, *, blocked: Callable[[], bool]
) -> KeyFileWatcher:
    """Watch every source of ``owner``'s key: ``files`` (the cfg, the settings), the
    ``marker`` other processes touch, and the keyring (its store or its signals, else a poll); ``blocked``
    says whether delivery waits for a key (none, or a rejected one)."""
    marker = marker.absolute()
    watcher: KeyFileWatcher
    signals: KeyringSignals | None = None
    signals_lock = threading.Lock()

    def watch_stores() -> list[Path]:
        # A backend names its store once asked: watch it from then on (a file, or a folder).
        stores = [Path(s) for s in owner.keyring_stores()]
        watcher.watch([s for s in stores if not s.is_dir()])
        watcher.watch([s for s in stores if s.is_dir()], folders=True)
        listen()
        return stores

    def listen() -> None:
        # A backend says once asked whether it announces its changes on the session bus.
        nonlocal signals
        kinds = owner.keyring_signals()
        address = session_bus_address() if kinds else None
        with signals_lock:
            if address is None or signals is not None:
                return
            from .keyring_signals import KeyringSignals  # jeepney, only where it is of use

            listener = KeyringSignals(kinds, heard_change, address=address)
            try:
                signals = listener.start(since=owner.keyring_answer())
            except Exception as exc:  # a bus that refuses: the poll stands in, as before
                log.warning("cannot listen to the keyring's signals (%s): it is read on a timer", type(exc).__name__)
                return
            watcher.companions.append(listener.stop)
            log.info("listening to the keyring's own change signals (%s)", ", ".join(kinds))

    def heard_change(what: str) -> None:
        log.info("the keyring says %s changed: reading it again", what)
        watcher.announce(marker)  # as a process that stored a key would: the keyring is read

    def heard() -> bool:
        with signals_lock:
            return signals is not None and signals.alive()

    def read_keyring() -> None:
        # Events in the store during our own read, and just after it, are the read's doing. A
        # change by another program in that second is found by the next read (poll or event).
        watcher.ignore_for([Path(s) for s in owner.keyring_stores()], KEYRING_TIMEOUT)
        try:
            owner.reload(keyring=True)
        finally:
            watcher.ignore_for(watch_stores(), OWN_READ_ECHO)

    def changed(paths: set[Path]) -> None:
        stores = {Path(s).absolute() for s in owner.keyring_stores()}
        if marker in paths or paths & stores:
            read_keyring()
        else:
            owner.reload()

    watcher = KeyFileWatcher(
        [*files, marker],
        changed,
        poll=lambda: owner.keyring_poll(blocked=blocked(), heard=heard()),
        on_poll=read_keyring,
    )
    watcher.start()
    watch_stores()
    if owner.keyring_decides() and not owner.keyring_asked():
        watcher.announce(marker)  # read the keyring once, off the caller's thread: it names its store
    return watcher
