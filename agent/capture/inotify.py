"""The inotify watch budget: the kernel's per-user limit, and how much of it others hold.

inotify watches are a per-user kernel budget (``fs.inotify.max_user_watches``) shared
with editors and every other watcher. The watcher takes at most what is left minus
10 %. ``doctor`` reads the same figures; neither needs watchdog for it.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

__all__ = ["SYSCTL_HINT", "Budget", "inotify_status"]

SYSCTL_HINT = (
    "raise it with: echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/60-inotify-watches.conf "
    "&& sudo sysctl --system"
)


def inotify_status() -> dict[str, int | None]:
    """The kernel's per-user watch limit and how many watches this user's processes hold.

    ``used`` counts ``inotify wd:`` lines in /proc/<pid>/fdinfo for every process of
    this user that can be read; None values mean "not Linux" or "cannot tell".
    """
    if not sys.platform.startswith("linux"):
        return {"max_user_watches": None, "used": None}
    try:
        limit: int | None = int(Path("/proc/sys/fs/inotify/max_user_watches").read_text().strip())
    except (OSError, ValueError):
        limit = None
    uid = os.getuid()
    used = 0
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return {"max_user_watches": limit, "used": None}
    for pid in pids:
        base = f"/proc/{pid}"
        try:
            if os.stat(base).st_uid != uid:
                continue
            fds = os.listdir(f"{base}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{base}/fd/{fd}") != "anon_inode:inotify":
                    continue
                with open(f"{base}/fdinfo/{fd}", "rb") as fh:
                    used += fh.read().count(b"inotify wd:")
            except OSError:
                continue
    return {"max_user_watches": limit, "used": used}


class Budget:
    """How many inotify watches this watcher may hold; shared by all its folders."""

    def __init__(self, fixed: int | None) -> None:
        self._fixed = fixed
        self._lock = threading.Lock()
        self.held = 0
        self.cap = fixed if fixed is not None else 0
        self.kernel_limit: int | None = None

    def refresh(self) -> None:
        """Re-read the kernel limit and other processes' use (before adding a folder)."""
        if self._fixed is not None:
            return
        status = inotify_status()
        limit, used = status["max_user_watches"], status["used"]
        with self._lock:
            self.kernel_limit = limit
            if limit is None:
                self.cap = 1 << 30  # not Linux or unreadable: rely on ENOSPC alone
                return
            others = max(0, (used or 0) - self.held)
            reserve = max(256, limit // 10)  # leave room for editors and other watchers
            self.cap = max(0, limit - others - reserve)

    def acquire(self) -> bool:
        with self._lock:
            if self.held >= self.cap:
                return False
            self.held += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.held = max(0, self.held - 1)

    def available(self) -> int:
        with self._lock:
            return max(0, self.cap - self.held)

    def kernel_full(self) -> None:
        """ENOSPC: the kernel refused a watch; stop asking until the next refresh."""
        with self._lock:
            self.cap = self.held

    @property
    def limit_text(self) -> str:
        if self._fixed is not None:
            return f"the watcher's own limit of {self._fixed} watches"
        if self.kernel_limit is not None:
            return f"the inotify watch limit (fs.inotify.max_user_watches = {self.kernel_limit})"
        return "the inotify watch limit"
