"""Agent core benchmark: intake throughput, backlog drain, pacing under Hackatime's limits.

Each figure is printed beside a baseline measured in the same run, because the machines
are noisy: raw batched SQLite inserts for the intake, the stand-in's own ingest rate for
the drain, the allowed request rate for pacing. Budgets are in design.md.

    python bench/bench_agent.py [--heartbeats 100000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.delivery.hackatime import HackatimeClient  # noqa: E402
from agent.delivery.outbox import Outbox  # noqa: E402
from agent.delivery.pacing import RateLimiter, hackatime_buckets  # noqa: E402
from agent.heartbeat import normalize  # noqa: E402
from agent.store.store import Store  # noqa: E402
from tests.standin import DEFAULT_API_KEY, HackatimeStandin, ThrottleLimits, measure_ingest_rate  # noqa: E402

KEY = DEFAULT_API_KEY
T0 = 1_760_000_000.0
INTAKE_BUDGET = 23_000  # heartbeats/s committed (issue #10: no worse than when it was first met)


def raw_heartbeat(i: int) -> dict[str, object]:
    return {
        "entity": f"/home/o/src/project-{i % 7}/module_{i % 113}.py",
        "type": "file",
        "category": "coding",
        "time": T0 + i * 0.5,
        "project": f"project-{i % 7}",
        "branch": "main",
        "language": "Python",
        "is_write": i % 3 == 0,
        "lineno": i % 400,
        "lines": 400,
        "user_agent": "wakatime/v1.115.2 (linux-6.8.0-x86_64) go1.23 vscode/1.99.0 vscode-wakatime/25.0.0",
    }


def baseline_sqlite(n: int, synchronous: str) -> float:
    """Raw batched inserts of ready-made rows (100 per transaction): the floor the intake sits on."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("CREATE TABLE hb (id INTEGER PRIMARY KEY, time REAL, payload TEXT)")
        rows = [(T0 + i, json.dumps(raw_heartbeat(i))) for i in range(n)]
        started = time.perf_counter()
        for i in range(0, n, 100):
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO hb(time, payload) VALUES (?, ?)", rows[i : i + 100])
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
    return n / elapsed


def bench_intake(n: int, clients: int = 2) -> tuple[float, float]:
    """Heartbeats/s committed by a real agent process, bulks of 100 over loopback keep-alive, and
    the agent's CPU time per heartbeat in µs (user + system: steadier than the rate on a shared machine)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WAKATIME", "HACKATIME"))}
        env.update(
            HOME=tmp, WAKATIME_HOME=tmp, WAKATIME_API_KEY=KEY, PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring"
        )
        data = Path(tmp) / "data"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent",
                "--data-dir",
                str(data),
                "run",
                "--port",
                "0",
                "--no-watch",
                "--api-url",
                "http://127.0.0.1:9/api/hackatime/v1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        url = proc.stdout.readline().rsplit(" ", 1)[-1].strip()
        bodies = [
            json.dumps([raw_heartbeat(i) for i in range(start, start + 100)]).encode() for start in range(0, n, 100)
        ]
        shares = [bodies[i::clients] for i in range(clients)]

        def post_all(share: list[bytes]) -> None:
            with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {KEY}"}) as client:
                for body in share:
                    r = client.post(f"{url}/users/current/heartbeats.bulk", content=body)
                    assert r.status_code == 201

        threads = [threading.Thread(target=post_all, args=(s,)) for s in shares]
        agent = psutil.Process(proc.pid)
        cpu_before = agent.cpu_times()
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        cpu_after = agent.cpu_times()
        cpu = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
        with Store(data / "store.db") as store:
            stored = store.heartbeat_count()
    assert stored == n, (stored, n)
    return stored / elapsed, cpu / stored * 1e6


def seed_store(path: Path, n: int) -> Store:
    store = Store(path)
    store.set_destination("hackatime", "bench")
    batch = []
    for i in range(n):
        batch.append(normalize(raw_heartbeat(i), machine="bench-box"))
        if len(batch) == 1000:
            store.add(batch, "editor")
            batch = []
    if batch:
        store.add(batch, "editor")
    return store


def _serve_standin(conn: multiprocessing.connection.Connection) -> None:
    with HackatimeStandin() as srv:
        conn.send(srv.api_url)
        conn.recv()  # until the parent is done
        conn.send(srv.count())


def bench_drain(n: int) -> tuple[float, int]:
    """Seconds to deliver ``n`` queued heartbeats to a stand-in in its own process, pacing off."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve_standin, args=(child,))
    server.start()
    api_url = parent.recv()
    with tempfile.TemporaryDirectory() as tmp:
        store = seed_store(Path(tmp) / "store.db", n)
        client = HackatimeClient(api_url, KEY, timeout=60)
        outbox = Outbox(store, client)
        started = time.perf_counter()
        result = outbox.drain()
        elapsed = time.perf_counter() - started
        client.close()
        store.close()
    parent.send("done")
    received = parent.recv()
    server.join()
    assert result.sent == n and received == n, (result, received)
    return elapsed, received


class SimClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> bool:
        self.now += seconds
        return False


def bench_pacing(per_minute: int = 30, per_hour: int = 1000, hours: float = 2.0) -> tuple[float, int, int]:
    """Pacing on, against the stand-in's real throttle, limits scaled down 10x, on a simulated clock."""
    clock = SimClock()
    limits = ThrottleLimits(general=(per_minute, 60), heartbeat_uploads=(per_minute, 60), api=(per_hour, 3600))
    batch = 10
    n = int(per_hour * hours * batch * 1.2)  # more than the window allows
    with HackatimeStandin(now=clock, throttle=limits) as srv, tempfile.TemporaryDirectory() as tmp:
        store = seed_store(Path(tmp) / "store.db", n)
        limiter = RateLimiter(
            hackatime_buckets(clock(), per_minute=per_minute, per_hour=per_hour), clock=clock, wait=clock.sleep
        )
        client = HackatimeClient(srv.api_url, KEY, limiter=limiter, timeout=30)
        outbox = Outbox(store, client, batch_size=batch, clock=clock, monotonic=clock)
        start = clock()
        requests = 0
        while clock() - start < hours * 3600:
            outbox.deliver_once()
            requests += 1
        client.close()
        store.close()
        throttled = sum(1 for r in srv.requests() if r.status == 429)
    allowed = per_hour * hours
    return requests / allowed, throttled, requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--heartbeats", type=int, default=100_000)
    args = parser.parse_args()
    n = args.heartbeats
    print(f"agent core benchmark · {n:,} heartbeats · {os.cpu_count()} cores")

    raw_full = baseline_sqlite(n, "FULL")
    raw_normal = baseline_sqlite(n, "NORMAL")
    print(f"baseline   raw SQLite inserts, 100/txn: {raw_full:>10,.0f} rows/s (FULL) · {raw_normal:,.0f} (NORMAL)")
    # Three runs, the median reported: a shared 2-core machine swings single runs by ±20 %.
    intakes = [bench_intake(n) for _ in range(3)]
    runs = sorted(rate for rate, _ in intakes)
    rate = runs[1]
    cpu = sorted(cpu for _, cpu in intakes)[1]
    print(
        f"intake     committed by the agent:      {rate:>10,.0f} heartbeats/s (median of "
        f"{', '.join(f'{r:,.0f}' for r in runs)}; 2 clients, bulks of 100, synchronous=FULL) · "
        f"{rate / raw_full:.2f}x raw FULL · budget ≥ {INTAKE_BUDGET:,}/s: {'ok' if rate >= INTAKE_BUDGET else 'MISSED'}"
    )
    print(f"intake     agent CPU per heartbeat:     {cpu:>10.1f} µs (median of 3; user + system)")

    standin_rate = measure_ingest_rate(total=n)
    elapsed, received = bench_drain(n)
    drain_rate = received / elapsed
    within = elapsed <= 15 or drain_rate >= 0.9 * standin_rate.per_second
    print(f"baseline   stand-in ingest, no socket:  {standin_rate.per_second:>10,.0f} heartbeats/s")
    print(
        f"drain      {received:,} to the stand-in:     {elapsed:>10.2f} s = {drain_rate:,.0f}/s · "
        f"{drain_rate / standin_rate.per_second:.2f}x stand-in · budget ≤ 15 s or ≥ 0.9x: "
        f"{'ok' if within else 'MISSED'}"
    )

    share, throttled, requests = bench_pacing()
    print(
        f"pacing     limits scaled 1/10, 2 simulated hours: {requests:,} requests = {share:.1%} of allowed, "
        f"{throttled} × 429 · budget ≥ 95 %, zero 429s: {'ok' if share >= 0.95 and not throttled else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
