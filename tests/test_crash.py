"""Crash consistency: SIGKILL the agent at random moments while an editor posts and delivery runs
against a faulty server; after a final restart every heartbeat answered 201 is on the server exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY
from tests.standin import Fault, HackatimeStandin

T0 = 1_760_000_000.0
CYCLES = int(os.environ.get("CRASH_CYCLES", "14"))
FAULTS = [
    Fault.SERVER_ERROR_500,
    Fault.CONNECTION_RESET,
    Fault.LOST_AFTER_STORE,
    Fault.SHORT_RESPONSES_201,
    Fault.MALFORMED_201,
    Fault.RATE_LIMITED_429,
    Fault.HANG,
]


class AgentProcess:
    """``hackatime-agent run`` as a child process; its intake URL is read from its first line."""

    def __init__(self, home: Path, data_dir: Path, api_url: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WAKATIME", "HACKATIME"))}
        env.update(
            HOME=str(home),
            WAKATIME_HOME=str(home),
            WAKATIME_API_KEY=API_KEY,
            PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent",
                "--data-dir",
                str(data_dir),
                "run",
                "--port",
                "0",
                "--no-watch",
                "--api-url",
                api_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until the agent is listening (or dies)
        assert "listening on" in line, f"agent did not start: {line!r}"
        self.url = line.rsplit(" ", 1)[-1].strip()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code


class Editor(threading.Thread):
    """Posts bulks of fresh heartbeats to whichever agent is up; remembers what was answered 201."""

    PER_CYCLE = 400  # heartbeats an editor sends per agent lifetime, so the backlog stays drainable

    def __init__(self, rng: random.Random) -> None:
        super().__init__(name="editor", daemon=True)
        self.rng = rng
        self.cond = threading.Condition()
        self.url: str | None = None
        self.acked: dict[float, str] = {}
        self.acked_this_cycle = 0
        self.stopping = False
        self.next_time = T0
        self.errors: list[BaseException] = []

    def point_at(self, url: str | None) -> None:
        with self.cond:
            self.url = url
            self.acked_this_cycle = 0
            self.cond.notify_all()

    def wait_acked(self, n: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.acked_this_cycle >= n, timeout)

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self.join()

    def run(self) -> None:
        try:
            with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
                while True:
                    with self.cond:
                        self.cond.wait_for(
                            lambda: self.stopping or (self.url is not None and self.acked_this_cycle < self.PER_CYCLE)
                        )
                        if self.stopping:
                            return
                        url = self.url
                    self._post_once(client, url)
        except BaseException as exc:  # surfaced by the test
            self.errors.append(exc)

    def _post_once(self, client: httpx.Client, url: str | None) -> None:
        batch = []
        for _ in range(self.rng.randint(1, 25)):
            self.next_time += 0.5
            batch.append({"time": self.next_time, "entity": f"/src/p/f{int(self.next_time) % 97}.py", "project": "p"})
        try:
            response = client.post(f"{url}/users/current/heartbeats.bulk", json=batch)
        except httpx.TransportError:
            with self.cond:  # the agent died mid-request: wait for the next one
                if self.url == url:
                    self.cond.wait_for(lambda: self.url != url or self.stopping)
            return
        assert response.status_code == 201, response.text
        results = response.json()["responses"]
        with self.cond:
            for sent, (body, status) in zip(batch, results, strict=True):
                assert status == 201, body
                self.acked[sent["time"]] = sent["entity"]
            self.acked_this_cycle += len(batch)
            self.cond.notify_all()


def _where(data_dir: Path, standin: HackatimeStandin, editor: Editor) -> str:
    """For a failure message: where the missing heartbeats are in the agent's store."""
    from agent.store.store import Store

    on_server = {row["time"] for row in standin.heartbeats()}
    missing = sorted(set(editor.acked) - on_server)
    with Store(data_dir / "store.db") as store:
        conn = store.reader()
        states = [
            conn.execute(
                "SELECT h.id, d.state, d.attempts, d.reason FROM heartbeats h "
                "LEFT JOIN deliveries d ON d.heartbeat_id = h.id WHERE h.time = ?",
                (t,),
            ).fetchall()
            for t in missing[:10]
        ]
        dest = store.destinations()
    return f"{len(missing)} missing; first: {list(zip(missing[:10], states, strict=True))}; destinations: {dest}"


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    tmp_path: Path, _isolated_home: Path, standin: HackatimeStandin
) -> None:
    seed = int(os.environ.get("CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    (_isolated_home / ".wakatime.cfg").write_text("[settings]\ntimeout = 2\n")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # Pacing is not under test here; with it on, draining the backlog would take minutes.
    (data_dir / "settings.json").write_text('{"pacing": false}')
    editor = Editor(rng)
    editor.start()
    try:
        for cycle in range(CYCLES):
            if rng.random() < 0.8:
                standin.inject(rng.choice(FAULTS), times=rng.randint(1, 2), retry_after=1)
            agent = AgentProcess(_isolated_home, data_dir, standin.api_url)
            editor.point_at(agent.url)
            moment = rng.choice(["acked", "delivered", "at-once"])
            if moment == "acked":
                assert editor.wait_acked(rng.randint(1, 60), timeout=30), f"seed {seed} cycle {cycle}"
            elif moment == "delivered":
                target = standin.count() + rng.randint(1, 40)
                standin.wait_for(lambda s, t=target: s.count() >= t, timeout=10)
            editor.point_at(None)
            agent.kill()
            standin.release_hangs()
        standin.clear_faults()
        editor.stop()
        final = AgentProcess(_isolated_home, data_dir, standin.api_url)
        try:
            expected = set(editor.acked)
            arrived = standin.wait_for(lambda s: expected <= {row["time"] for row in s.heartbeats()}, timeout=120)
        finally:
            assert final.terminate() == 0
        assert not editor.errors, editor.errors
        assert arrived, (
            f"seed {seed}: not every acknowledged heartbeat reached the server: {_where(data_dir, standin, editor)}"
        )
        rows: list[dict[str, Any]] = standin.heartbeats()
        times = [row["time"] for row in rows]
        assert len(times) == len(set(times)), f"seed {seed}: a heartbeat was stored twice"
        by_time = {row["time"]: row for row in rows}
        for t, entity in editor.acked.items():
            assert by_time[t]["entity"] == entity and by_time[t]["project"] == "p"
        assert len(editor.acked) > CYCLES  # the run really exercised the intake
    finally:
        if editor.is_alive():
            editor.stop()
