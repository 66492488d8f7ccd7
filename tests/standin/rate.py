"""The stand-in's own ingest rate, measured in-process, as the baseline a delivery benchmark divides by."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from .app import HackatimeApp
from .server import HackatimeStandin
from .users import DEFAULT_API_KEY, DEFAULT_USER

SAMPLE_UA = "wakatime/v1.115.2 (linux-6.8.0-x86_64) go1.23 vscode/1.96.0 vscode-wakatime/25.0.0"


def make_bulk_bodies(total: int, batch: int = 100, start: float = 1_755_864_000.0) -> list[bytes]:
    """``total`` distinct heartbeats, 30 s apart, as JSON-array bodies of ``batch`` each."""
    bodies = []
    for first in range(0, total, batch):
        items = [
            {
                "entity": f"/home/orpheus/src/app/module_{n % 50}.py",
                "type": "file",
                "time": start + 30.0 * n,
                "project": "app",
                "branch": "main",
                "language": "Python",
                "category": "coding",
                "is_write": n % 3 == 0,
                "lineno": n % 400,
                "lines": 400,
                "cursorpos": n % 80,
                "dependencies": ["httpx", "pytest"],
                "machine": "orpheus-laptop",
                "user_agent": SAMPLE_UA,
            }
            for n in range(first, min(first + batch, total))
        ]
        bodies.append(json.dumps(items).encode())
    return bodies


@dataclass(frozen=True)
class IngestRate:
    heartbeats: int
    seconds: float  # wall clock
    cpu_seconds: float  # this thread's CPU time: steadier than wall time on a shared machine

    @property
    def per_second(self) -> float:
        return self.heartbeats / self.seconds if self.seconds else float("inf")

    @property
    def per_cpu_second(self) -> float:
        return self.heartbeats / self.cpu_seconds if self.cpu_seconds else float("inf")


def measure_ingest_rate(bodies: list[bytes] | None = None, *, total: int = 100_000, batch: int = 100) -> IngestRate:
    """Feed bulk bodies straight into a fresh app: the work of every request but the socket.

    The bodies are prepared before the clock starts; parsing, authentication, normalisation,
    hashing, storing and encoding the ``responses`` all count.
    """
    bodies = bodies if bodies is not None else make_bulk_bodies(total, batch)
    standin = HackatimeStandin({DEFAULT_API_KEY: DEFAULT_USER})  # never started: no socket
    app: HackatimeApp = standin.app
    started, cpu_started = time.perf_counter(), time.thread_time()
    stored = 0
    for body in bodies:
        response = standin.ingest_direct(body, DEFAULT_API_KEY)
        if response.status != 201:
            raise RuntimeError(f"ingest failed: {response.status} {response.body[:200]!r}")
        stored += response.items
    elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
    if app.store.count() != stored:
        raise RuntimeError(f"stored {app.store.count()} of {stored} heartbeats")
    return IngestRate(stored, elapsed, cpu)
