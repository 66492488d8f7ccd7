"""One agent per data dir (an OS file lock the kernel releases if the process dies), and
who holds the other thing an agent needs to itself: its port.

The exit codes below are how ``hackatime-agent run`` tells a supervisor (the tray)
that it refused to start rather than crashed: neither is fixed by restarting it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

EXIT_RUNNING = 7  # another agent holds this data dir's lock
EXIT_PORT_IN_USE = 8  # another program listens on the agent's port
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column


class AlreadyRunning(RuntimeError):
    pass


class InstanceLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the process lifetime
        try:
            if sys.platform == "win32":
                import msvcrt

                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise AlreadyRunning(f"another agent (pid {holder}) is already running for {self.path.parent}") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the descriptor drops the lock
            self._fh = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def port_owner(port: int, proc: Path = Path("/proc")) -> str | None:
    """The program listening on ``port`` as "name (pid N)", when this system says (Linux).

    The listening socket's inode comes from /proc/net/tcp{,6}; the process holding it
    is the one with a ``socket:[inode]`` descriptor. Processes of other users cannot
    be looked into without privileges: then None, and the caller says less.
    """
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text(encoding="ascii", errors="replace").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[-1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                name = (entry / "comm").read_text(encoding="utf-8", errors="replace").strip()
                return f"{name or 'a program'} (pid {entry.name})"
        except OSError:  # gone meanwhile, or not ours to look into
            continue
    return None
