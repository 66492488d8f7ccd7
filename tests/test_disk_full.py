"""A full disk: the agent says so (to the editor, in status, as a notice), keeps what the server
acknowledged, and carries on by itself once there is room again.

As root (CI) the data dir is a small tmpfs filled to the last block; otherwise SQLite's own
page limit stands in for the disk (a real SQLITE_FULL, but only for writes that grow the file).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.daemon import Agent
from agent.logs import PrivateRotatingFileHandler
from tests.conftest import API_KEY
from tests.standin import Fault, HackatimeStandin

T0 = 1_760_000_000.0


class SmallDisk:
    """A folder on a file system that can be filled up and emptied again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"
        self.mounted = False
        self.agent: Agent | None = None  # for the page-limit stand-in

    def fill(self) -> None:
        if not self.mounted:
            assert self.agent is not None
            store = self.agent.store
            with store._lock:  # the writer connection's own limit: new pages fail with SQLITE_FULL
                pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
                store._conn.execute(f"PRAGMA max_page_count = {pages}")
            return
        for name, size in (("filler", 65536), ("crumbs", 512)):  # then the last few bytes too
            with open(self.root / name, "wb", buffering=0) as fh:
                try:
                    while True:
                        fh.write(b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC

    def free(self) -> None:
        if not self.mounted:
            assert self.agent is not None
            with self.agent.store._lock:
                self.agent.store._conn.execute("PRAGMA max_page_count = 1073741823")
            return
        for name in ("filler", "crumbs"):
            with contextlib.suppress(FileNotFoundError):
                (self.root / name).unlink()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    root = tmp_path / "disk"
    root.mkdir()
    disk = SmallDisk(root)
    if os.geteuid() == 0:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(root)], capture_output=True
        )
        disk.mounted = mounted.returncode == 0
    try:
        yield disk
    finally:
        if disk.mounted:
            subprocess.run(["umount", str(root)], check=True)


def post(agent: Agent, beats: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(
        f"{agent.intake_url}/users/current/heartbeats.bulk",
        json=beats,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=30,
    )


def beats(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"entity": f"/home/o/src/module_{i}.py", "type": "file", "time": T0 + i, "project": "p", "lines": 10 * i}
        for i in range(start, start + n)
    ]


def wait_for_status(agent: Agent, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
    """The status once ``predicate`` holds, woken by the agent's own change notifications."""
    seq = -1
    for _ in range(200):
        status: dict[str, Any] = dict(agent.status())
        if predicate(status):
            return status
        seq = agent.wait_for_change(seq if seq >= 0 else status["seq"], timeout)
    raise AssertionError(f"never reached: {status}")


def test_a_full_disk_is_said_and_survived(
    small_disk: SmallDisk, make_config: Callable[..., Any], standin: HackatimeStandin
) -> None:
    config = make_config(api_url=standin.api_url, data_dir=small_disk.root / "data")
    with Agent(config, synchronous="NORMAL") as agent:
        small_disk.agent = agent
        if small_disk.mounted:
            # The server takes a batch and its answer is held while the disk fills up.
            standin.inject(Fault.HELD_201)
            assert post(agent, beats(100)).status_code == 201
            assert standin.wait_for(lambda s: s.count() == 100, timeout=30)
            small_disk.fill()
            standin.release_hangs()
            status = wait_for_status(agent, lambda s: s["disk_full"])
            assert status["destinations"][0]["in_flight"] == 100  # acknowledged, not yet recorded
        else:
            small_disk.fill()

        refused = post(agent, beats(100, start=1000))
        assert refused.status_code == 507
        assert refused.json()["error"].startswith("disk full")
        status = wait_for_status(agent, lambda s: s["disk_full"])
        assert any("is full" in n["message"] and n["level"] == "error" for n in status["notices"])

        small_disk.free()
        assert post(agent, beats(1, start=5000)).status_code == 201  # room again: stored, delivery woken
        expected = 101 if small_disk.mounted else 1
        status = wait_for_status(
            agent, lambda s: s["destinations"][0]["sent"] == expected and s["destinations"][0]["in_flight"] == 0
        )
        assert not status["disk_full"]
        assert not any("is full" in n["message"] for n in status["notices"])
    assert standin.count() == expected
    # The held batch was recorded as sent from memory, not sent a second time.
    assert sum(r.items for r in standin.requests() if r.method == "POST") == expected


def test_logging_on_a_full_disk_is_quiet_and_says_what_it_dropped(
    small_disk: SmallDisk, capfd: pytest.CaptureFixture[str]
) -> None:
    if not small_disk.mounted:
        pytest.skip("needs a file system that can really fill up (root, to mount a tmpfs)")
    handler = PrivateRotatingFileHandler(small_disk.root / "agent.log", maxBytes=1_000_000, backupCount=1)
    logger = logging.getLogger("test.full-disk")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("before")
        small_disk.fill()
        for i in range(50):
            logger.warning("while full %d %s", i, "x" * 4096)
        assert handler.dropped > 0
        assert "Logging error" not in capfd.readouterr().err
        small_disk.free()
        logger.warning("after")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = (small_disk.root / "agent.log").read_text()
    assert "before" in text and "after" in text
    assert "log records were dropped while the log file could not be written" in text
    assert oct(os.stat(small_disk.root / "agent.log").st_mode & 0o777) == oct(0o600)
