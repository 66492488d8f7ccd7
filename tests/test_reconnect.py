"""Coming back online: deliveries and server fetches interleaved on purpose (the stand-in holds
a request before or after it is answered), in every order, many times over. The merged figures
are never above what the server will hold once everything this machine recorded has arrived,
and once it has, they are the server's."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.daemon import Agent
from agent.delivery.hackatime import HackatimeClient
from agent.delivery.outbox import Outbox
from agent.stats.service import StatsService
from agent.store.store import Store
from tests.conftest import API_KEY
from tests.standin import HackatimeStandin, reports
from tests.test_server_stats import USER, VSCODE, Clock, at, beat, other_machine

ORDERS = ("post held after it is stored", "post held before", "fetch held before", "fetch held after", "in turn")
FETCHES = ("statusbar/today", "stats/last_7_days", "summaries")


@dataclasses.dataclass
class Race:
    srv: HackatimeStandin
    store: Store
    clock: Clock
    svc: StatsService
    outbox: Outbox
    seen: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def ceiling(self) -> tuple[int, int]:
        """The server's today and 7-day totals once every heartbeat recorded here has arrived:
        its own answers over its rows plus the local ones it does not have yet."""
        rows = [r for r in self.srv.heartbeats() if r["deleted_at"] is None]
        have = {(r["time"], r["entity"]) for r in rows}
        columns = ("time", "entity", "project", "language", "editor", "operating_system", "machine", "category")
        for n, found in enumerate(self.store.reader().execute(f"SELECT {', '.join(columns)} FROM heartbeats")):
            row = dict(zip(columns, found, strict=True))
            if (row["time"], row["entity"]) not in have:
                rows.append({**row, "id": 10**9 + n})
        today = reports.statusbar_today(USER, rows, self.clock.now)["data"]["grand_total"]["total_seconds"]
        week = reports.last_7_days(USER, rows, self.clock.now)["data"]["total_seconds"]
        return today, week

    def observe(self) -> None:
        snap = self.svc.snapshot()
        today, week = snap["today"], snap["last_7_days"]
        most_today, most_week = self.ceiling()
        assert today["total_seconds"] <= most_today, (today, most_today)
        assert week["total_seconds"] <= most_week, (week["total_seconds"], week["source"], most_week)
        self.seen.append((today["source"], week["source"]))

    def fetch(self) -> None:
        self.svc.refresh_server(force=True)

    def in_background(self, work: Callable[[], Any]) -> threading.Thread:
        thread = threading.Thread(target=work, name="race")
        thread.start()
        return thread


@pytest.fixture
def race(tmp_path: Path) -> Iterator[Race]:
    clock = Clock(at("2026-03-10T09:00:00"))
    with (
        HackatimeStandin(keys={API_KEY: USER}, now=clock) as srv,
        Store(tmp_path / "store.db", synchronous="OFF") as store,
        HackatimeClient(srv.api_url, API_KEY, machine="laptop", timeout=10) as client,
    ):
        store.set_destination("hackatime", srv.api_url)
        svc = StatsService(store, client=client, clock=clock, timezone="UTC")
        yield Race(srv, store, clock, svc, Outbox(store, client))
        assert srv.errors() == []


def one_pass(race: Race, order: str, fetch: str) -> None:
    """One delivery pass (a claim of up to 100, its POST, its settling) and one fetch round,
    in the given order. The clock moves past every fetch interval first."""
    race.clock.now += 121
    srv, outbox = race.srv, race.outbox
    if order == "in turn":
        outbox.deliver_once()
        race.observe()
        race.fetch()
        race.observe()
        return
    if order.startswith("post"):
        gate = srv.hold("POST", "heartbeats.bulk", "after" if order == "post held after it is stored" else "before")
        held = race.in_background(outbox.deliver_once)
    else:
        gate = srv.hold("GET", fetch, "before" if order == "fetch held before" else "after")
        held = race.in_background(race.fetch)
    try:
        assert gate.arrived.wait(10)
        if order == "post held after it is stored":
            race.observe()
            race.fetch()  # the figure contains the batch whose answer has not come back yet
        elif order == "post held before":
            race.fetch()  # the batch is in flight and not on the server: the figure lacks it
        else:
            outbox.deliver_once()  # sent and settled while the figure is made or on its way
        race.observe()
    finally:
        gate.release()
        held.join()
    race.observe()


def test_reconnecting_never_counts_a_heartbeat_twice_whatever_the_order(race: Race) -> None:
    rnd = random.Random(20260310)
    # Another computer's morning is on the server only; this one's first session is synced.
    other_machine(race.srv, [at("2026-03-10T07:00:00") + 60 * i for i in range(41)])
    race.store.add([beat(at("2026-03-10T08:00:00") + 30 * i) for i in range(21)], "editor")
    while race.outbox.deliver_once().sent:
        pass
    race.fetch()
    race.observe()
    cursor = at("2026-03-10T08:30:00")
    orders_used: set[str] = set()
    for _ in range(14):
        # Offline for a while: a stretch of work the server has not seen, apart from the rest.
        count = rnd.choice([40, 130, 240])
        race.store.add([beat(cursor + 10 * i, rnd.choice(["app", "site"])) for i in range(count)], "editor")
        cursor += 10 * count + 900
        race.clock.now = max(race.clock.now, cursor)
        race.observe()
        # Back online: deliveries and fetches meet in every order.
        while race.store.counts("hackatime").pending:
            order = rnd.choice(ORDERS)
            orders_used.add(order)
            one_pass(race, order, rnd.choice(FETCHES))
    assert orders_used == set(ORDERS)
    # Work added on top of a server figure was seen, and so was a figure that already had it.
    assert ("server+local", "server+local") in race.seen and ("server", "server") in race.seen

    # Everything delivered and fetched once more: the server's own figures, to the second.
    race.clock.now += 121
    race.fetch()
    snap = race.svc.snapshot()
    today, week = race.ceiling()
    assert (snap["today"]["total_seconds"], snap["today"]["source"]) == (today, "server")
    assert (snap["last_7_days"]["total_seconds"], snap["last_7_days"]["source"]) == (week, "server")
    assert snap["today"]["unsynced_heartbeats"] == 0


def test_a_batch_stored_but_not_yet_answered_is_not_added_to_a_figure_that_has_it(race: Race) -> None:
    """The case from the report: a statusbar fetch that already included a batch completed
    before that batch was marked sent."""
    other_machine(race.srv, [at("2026-03-10T07:00:00") + 60 * i for i in range(31)])  # 1800 s
    race.store.add([beat(at("2026-03-10T08:00:00") + 20 * i) for i in range(100)], "editor")  # 1980 s
    race.clock.now = at("2026-03-10T09:00:00")
    gate = race.srv.hold("POST", "heartbeats.bulk", "after")
    post = race.in_background(race.outbox.deliver_once)
    try:
        assert gate.arrived.wait(10)
        race.fetch()
        in_flight = race.svc.snapshot()["today"]
    finally:
        gate.release()
        post.join()
    answered = race.svc.snapshot()["today"]
    server = 1800 + 120 + 1980
    for today in (in_flight, answered):
        assert (today["server_seconds"], today["total_seconds"], today["unsynced_seconds"]) == (server, server, 0)


def test_a_figure_that_may_predate_a_batch_in_flight_still_lists_this_store_s_work(race: Race) -> None:
    """A fetch answered while a batch is on its way may or may not hold it, so nothing is added
    to it; this store's own figures are still a floor, and the lists come from where the total
    does: today's projects and the week's lists add up to the totals shown beside them."""
    race.store.add([beat(at("2026-03-10T08:00:00") + 20 * i) for i in range(31)], "editor")  # 600 s of "app"
    gate = race.srv.hold("POST", "heartbeats.bulk", "before")
    post = race.in_background(race.outbox.deliver_once)
    try:
        assert gate.arrived.wait(10)
        race.fetch()  # answered without the batch, which is claimed: possibly in the figure
        snap = race.svc.snapshot()
        today, week = snap["today"], snap["last_7_days"]
        projects = race.svc.projects("today")["projects"]
    finally:
        gate.release()
        post.join()
    assert (today["server_seconds"], today["unsynced_seconds"], today["total_seconds"]) == (0, 0, 600)
    assert [(p["name"], p["total_seconds"]) for p in projects] == [("app", 600)]
    assert week["total_seconds"] == 600
    assert [(p["name"], p["total_seconds"]) for p in week["projects"]] == [("app", 600)]
    assert sum(d["total_seconds"] for d in week["days"]) == 600


def test_a_request_that_never_reached_the_server_keeps_its_work_unsynced(race: Race) -> None:
    """Offline (connection refused): the attempt cannot be on the server, so the work stays
    added to the last figure (a reset after sending might have been stored: see schema 3)."""
    race.store.add([beat(at("2026-03-10T08:00:00") + 30 * i) for i in range(11)], "editor")
    race.outbox.deliver_once()
    race.fetch()
    race.store.add([beat(at("2026-03-10T08:10:00") + 30 * i) for i in range(1, 5)], "editor")
    refused = HackatimeClient("http://127.0.0.1:9/api/hackatime/v1", API_KEY, timeout=5)
    try:
        Outbox(race.store, refused).deliver_once()
    finally:
        refused.close()
    today = race.svc.snapshot()["today"]
    # 120 s (the capped gap from 08:05) + 3 × 30 s on top of the server's 300 s
    assert (today["server_seconds"], today["unsynced_heartbeats"], today["total_seconds"]) == (300, 4, 510)


def test_deliveries_wake_a_refetch_of_lists_and_day_bars(make_config: Any, standin: HackatimeStandin) -> None:
    """The agent refetches the server's figures once deliveries settle, day bars and lists too."""
    clock = Clock(time.time())
    standin.set_now(clock)
    with Agent(make_config(api_url=standin.api_url), synchronous="NORMAL", clock=clock) as agent:
        assert standin.wait_for(lambda s: _reads(s, "summaries") == 1 and _reads(s, "last_7_days") == 1, 10)
        clock.now += 61  # past the least time between two fetches of the same figure
        body = [{"time": clock.now - 60 * i, "entity": f"/p/{i}.py", "project": "p", "user_agent": VSCODE}
                for i in range(5)]  # fmt: skip
        answer = httpx.post(
            f"{agent.intake_url}/users/current/heartbeats.bulk",
            content=json.dumps(body),
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert answer.status_code == 201
        assert standin.wait_for(lambda s: s.count() == 5, 10)
        assert standin.wait_for(lambda s: _reads(s, "summaries") == 2 and _reads(s, "last_7_days") == 2, 20)


def _reads(srv: HackatimeStandin, path: str) -> int:
    return sum(1 for r in srv.requests() if r.method == "GET" and path in r.path)
