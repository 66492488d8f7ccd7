"""The agent's wall-clock jobs: the end of a pause in local time (DST included), the daily
store backup, and the one scheduler that runs them — with injected clocks, never a sleep."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from agent import contract as C
from agent.daemon import BACKUP_DIR, Agent
from agent.heartbeat import normalize
from agent.jobs import Jobs, next_local_midnight
from agent.store.store import Store

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HAVANA = ZoneInfo("America/Havana")  # DST starts at midnight: 00:00 does not exist that day


def at(zone: ZoneInfo, *args: int) -> float:
    return dt.datetime(*args, tzinfo=zone).timestamp()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("zone", "now", "midnight", "hours"),
    [
        (BERLIN, (2026, 3, 28, 12, 30), (2026, 3, 29), 11.5),  # an ordinary evening
        (BERLIN, (2026, 3, 29, 0, 30), (2026, 3, 30), 22.5),  # spring forward: a 23-hour day
        (BERLIN, (2026, 10, 25, 0, 30), (2026, 10, 26), 24.5),  # fall back: a 25-hour day
        (NEW_YORK, (2026, 3, 8, 1, 59), (2026, 3, 9), 21.0 + 1 / 60),
        (BERLIN, (2026, 6, 1, 0, 0), (2026, 6, 2), 24.0),  # at midnight: the next one
    ],
)
def test_until_tomorrow_is_the_next_local_midnight(
    zone: ZoneInfo, now: tuple[int, ...], midnight: tuple[int, ...], hours: float
) -> None:
    start = at(zone, *now)
    end = next_local_midnight(start, zone)
    assert end == at(zone, *midnight)
    assert dt.datetime.fromtimestamp(end, zone).time() == dt.time(0)
    assert end - start == pytest.approx(hours * 3600)


def test_a_midnight_that_does_not_exist_is_the_first_instant_of_the_day() -> None:
    start = at(HAVANA, 2026, 3, 7, 22, 0)  # Cuba springs forward at 00:00 on 8 March 2026
    end = dt.datetime.fromtimestamp(next_local_midnight(start, HAVANA), HAVANA)
    assert end.date() == dt.date(2026, 3, 8) and end.time() == dt.time(1, 0)
    assert end.timestamp() - start == 2 * 3600


@pytest.fixture
def jobs() -> Iterator[Jobs]:
    scheduler = Jobs(BERLIN)
    scheduler.start()
    yield scheduler
    scheduler.shutdown()


def test_a_job_due_now_runs_on_the_scheduler_thread(jobs: Jobs) -> None:
    ran = threading.Event()
    jobs.at("once", dt.datetime.now(BERLIN).timestamp() - 5, ran.set)  # overdue: runs at once
    assert ran.wait(10)


def test_jobs_are_replaced_by_id_and_can_be_cancelled(jobs: Jobs) -> None:
    far = at(BERLIN, 2099, 1, 1, 0, 0)
    jobs.at("resume", far, lambda: None)
    jobs.at("resume", far + 60, lambda: None)
    assert jobs.next_run("resume") == far + 60
    jobs.cancel("resume")
    assert jobs.next_run("resume") is None
    jobs.cancel("resume")  # cancelling twice is fine


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_periodic_jobs_run_once_per_period_and_once_after_a_suspend() -> None:
    clock = Clock(at(BERLIN, 2027, 1, 1, 12, 0))
    jobs = Jobs(BERLIN, clock=clock)  # not started: run_due() plays the thread's part
    runs: list[float] = []
    jobs.every("refresh", 30, lambda: runs.append(clock.now), delay=0)
    assert jobs.run_due() == 1 and jobs.run_due() == 0
    clock.now += 29.9
    assert jobs.run_due() == 0
    clock.now += 0.1
    assert jobs.run_due() == 1
    clock.now += 8 * 3600  # the laptop slept: one late run, not 960
    assert jobs.run_due() == 1 and jobs.run_due() == 0
    assert jobs.next_run("refresh") == clock.now + 30


def test_a_one_off_job_runs_once_at_its_time() -> None:
    clock = Clock(at(BERLIN, 2027, 1, 1, 12, 0))
    jobs = Jobs(BERLIN, clock=clock)
    ran: list[str] = []
    jobs.at("resume", clock.now + 60, lambda: ran.append("resume"))
    jobs.at("cancelled", clock.now + 10, lambda: ran.append("cancelled"))
    jobs.cancel("cancelled")
    clock.now += 59
    assert jobs.run_due() == 0
    clock.now += 1
    assert jobs.run_due() == 1 and ran == ["resume"] and jobs.next_run("resume") is None


def test_a_failing_job_is_logged_and_the_scheduler_goes_on(jobs: Jobs) -> None:
    logged = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "boom" in record.getMessage() and record.exc_info:
                logged.set()

    handler = Watch()
    logging.getLogger("agent.jobs").addHandler(handler)
    try:

        def boom() -> None:
            raise RuntimeError("boom")

        now = dt.datetime.now(BERLIN).timestamp()
        jobs.at("boom", now - 5, boom)
        assert logged.wait(10)
        after = threading.Event()
        jobs.at("after", now - 4, after.set)
        assert after.wait(10)
    finally:
        logging.getLogger("agent.jobs").removeHandler(handler)


# ---- the daily backup ------------------------------------------------------------------------------


def _store_with(path: Path, n: int) -> Store:
    store = Store(path, synchronous="NORMAL")
    store.set_destination(C.DESTINATION, "http://127.0.0.1:9")
    beats = [
        normalize({"entity": f"/p/{i}.py", "type": "file", "time": 1_750_000_000 + i}, machine="m") for i in range(n)
    ]
    store.add(beats, "editor")
    return store


def test_backups_are_readable_copies_and_only_the_last_seven_stay(tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    with _store_with(tmp_path / "store.db", 25) as store:
        day = 86400.0
        made = [store.backup(folder, now=1_800_000_000 + i * day) for i in range(9)]
        kept = store.backups(folder)
    assert all(p is not None for p in made)
    assert kept == made[2:]  # the oldest two were dropped
    assert {p.stat().st_mode & 0o777 for p in kept} == {0o600}
    copy = sqlite3.connect(kept[-1])
    try:
        assert copy.execute("SELECT count(*) FROM heartbeats").fetchone()[0] == 25
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        copy.close()


def test_no_backup_while_a_migration_runs(tmp_path: Path) -> None:
    with _store_with(tmp_path / "store.db", 1) as store:
        with store.migrating():  # what a migration holds from start to end
            assert store.backup(tmp_path / "backups", now=1_800_000_000) is None
        assert store.backups(tmp_path / "backups") == []
        assert store.backup(tmp_path / "backups", now=1_800_000_000) is not None


# ---- the agent's jobs ------------------------------------------------------------------------------


@pytest.fixture
def paused_agent(make_config: Callable[..., Any], standin: Any) -> Iterator[tuple[Agent, Clock]]:
    clock = Clock(at(BERLIN, 2027, 3, 28, 0, 30))  # early on a spring-forward day, still to come
    with Agent(make_config(api_url=standin.api_url), synchronous="NORMAL", clock=clock, zone=BERLIN) as agent:
        yield agent, clock


def test_pause_until_tomorrow_resumes_at_local_midnight(paused_agent: tuple[Agent, Clock]) -> None:
    agent, clock = paused_agent
    headers = {"Authorization": f"Bearer {agent.token}"}
    status = httpx.post(
        agent.control_url + C.PAUSE.url(), json={"until": C.PAUSE_UNTIL_TOMORROW}, headers=headers, timeout=10
    ).json()
    midnight = at(BERLIN, 2027, 3, 29, 0, 0)
    assert status["paused_until"] == midnight and not agent.tracking()
    assert agent.jobs.next_run("resume") == midnight  # the resume job waits for it
    seq = agent.status()["seq"]
    agent._resume()  # the scheduler calls this at midnight; before it, nothing changes
    assert not agent.tracking() and agent.status()["seq"] == seq
    clock.now = midnight
    agent._resume()
    status = agent.status()
    assert agent.tracking() and status["paused_until"] is None and status["seq"] > seq
    assert agent.jobs.next_run("resume") is None


def test_resuming_by_hand_cancels_the_resume_job(paused_agent: tuple[Agent, Clock]) -> None:
    agent, clock = paused_agent
    agent.set_paused(clock.now + 1800)
    assert agent.jobs.next_run("resume") == clock.now + 1800
    agent.set_paused(None)
    assert agent.jobs.next_run("resume") is None and agent.tracking()


def test_the_agent_schedules_the_server_refresh_and_the_daily_backup(paused_agent: tuple[Agent, Clock]) -> None:
    agent, _ = paused_agent
    assert agent.jobs.next_run("server-figures") is not None
    assert agent.jobs.next_run("backup") is not None
    agent._backup()
    backups = agent.store.backups(agent.config.data_dir / BACKUP_DIR)
    assert len(backups) == 1
    agent._backup()  # a day has not passed on the agent's clock: nothing new
    assert agent.store.backups(agent.config.data_dir / BACKUP_DIR) == backups
