"""Coming back online: deliveries and server fetches interleaved on purpose (the stand-in holds
a request before or after it is answered), in every order, many times over. The merged figures
are never above what the server will hold once everything this machine recorded has arrived,
and once it has, they are the server's."""

from __future__ import annotations

import dataclasses
import datetime as dt
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
from agent.stats import durations as D
from agent.stats.service import StatsService
from agent.store.store import Store
from tests.conftest import API_KEY
from tests.standin import Gate, HackatimeStandin, reports
from tests.test_server_stats import USER, VSCODE, Clock, at, beat, other_machine

FETCHES = ("statusbar/today", "stats/last_7_days", "summaries")
FIGURES = {"today": "statusbar/today", "week": "stats/last_7_days", "days": "summaries"}
LISTS = ("projects", "languages", "editors", "operating_systems", "machines")
COLUMNS = ("time", "entity", "project", "language", "editor", "operating_system", "machine", "category")


@dataclasses.dataclass(frozen=True)
class Answer:
    """What one figure's answer was made of: the stand-in computed it over its first ``stored``
    rows, and every heartbeat not yet POSTed when it came back (``posted``: those that were)
    surely is not in it."""

    stored: int
    posted: frozenset[str]


class RecordingClient(HackatimeClient):
    """The agent's own client, noting the heartbeats each POST carries as it leaves and, as each
    figure's answer comes back, what it was made of (``Answer``)."""

    def __init__(self, srv: HackatimeStandin, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.srv = srv
        self.lock = threading.Lock()
        self.posted: set[str] = set()
        self.answers: dict[str, Answer] = {}

    def post_bulk(self, body: bytes, stop: threading.Event | None = None) -> httpx.Response | None:
        with self.lock:
            self.posted.update(item["entity"] for item in json.loads(body))
        return super().post_bulk(body, stop)

    def get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        response = super().get(path, params)
        for name, endpoint in FIGURES.items():
            if path.endswith(endpoint) and response.status_code == 200:
                found = [r for r in self.srv.requests() if r.method == "GET" and r.path.endswith(endpoint)]
                with self.lock:
                    self.answers[name] = Answer(found[-1].stored, frozenset(self.posted))
        return response


@dataclasses.dataclass(frozen=True)
class Figures:
    """Today, the week's total and lists (name → seconds) and the daily totals, as the stand-in
    computes them over some rows (or as sums and differences of such)."""

    today: int
    week: int
    lists: dict[str, dict[str, int]]
    days: dict[str, int]

    def plus(self, other: Figures, sign: int = 1) -> Figures:
        def add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            return {k: a.get(k, 0) + sign * b.get(k, 0) for k in a.keys() | b.keys()}

        return Figures(
            self.today + sign * other.today,
            self.week + sign * other.week,
            {name: add(self.lists[name], other.lists[name]) for name in LISTS},
            add(self.days, other.days),
        )


@dataclasses.dataclass
class Race:
    srv: HackatimeStandin
    store: Store
    clock: Clock
    svc: StatsService
    outbox: Outbox
    client: RecordingClient
    seen: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    known: dict[Any, Figures] = dataclasses.field(default_factory=dict)  # bounds already computed
    rows_here: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    last_id: int = 0
    rows_there: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def local_rows(self) -> list[dict[str, Any]]:
        """This store's heartbeats as the stand-in's rows (each read once: rows are only added)."""
        found = self.store.reader().execute(
            f"SELECT id, {', '.join(COLUMNS)} FROM heartbeats WHERE id > ? ORDER BY id", (self.last_id,)
        )
        for row_id, *row in found:
            self.rows_here.append({**dict(zip(COLUMNS, row, strict=True)), "id": 10**9 + row_id})
            self.last_id = row_id
        return self.rows_here

    def figures(self, rows: list[dict[str, Any]], part: str = "") -> Figures:
        """The stand-in's figures over ``rows``: all of them, or only ``part`` (the others 0)."""
        now = self.clock.now
        today, week, lists, days = 0, 0, {name: {} for name in LISTS}, {}
        if part in ("", "today"):
            today = reports.statusbar_today(USER, rows, now)["data"]["grand_total"]["total_seconds"]
        if part in ("", "week"):
            found = reports.last_7_days(USER, rows, now)["data"]
            week = found["total_seconds"]
            lists = {name: {e["name"]: e["total_seconds"] for e in found[name]} for name in LISTS}
        if part in ("", "days"):
            date = D.local_date(now, D.zone(USER.timezone))
            first = (date - dt.timedelta(days=7)).isoformat()
            _, answer = reports.summaries(USER, rows, now, {"start": first, "end": date.isoformat()})
            days = {d["range"]["date"]: d["grand_total"]["total_seconds"] for d in answer["data"]}
        return Figures(today, week, lists, days)

    def server_rows(self) -> list[dict[str, Any]]:
        if len(self.rows_there) != self.srv.count():  # nothing is deleted here: rows are only added
            self.rows_there = self.srv.heartbeats()
        return self.rows_there

    def ceiling(self) -> Figures:
        """The server's figures once every heartbeat recorded here has arrived: its rows plus
        the local ones it does not have yet."""
        return self._bound(None)

    def floor(self, figure: str) -> Figures:
        """What a figure made from the cached answer must show at least: the answer, plus what
        the work surely not in it (not POSTed before it came back) adds on top of every row the
        answer may hold (its rows and those on their way while it was made)."""
        return self._bound(figure)

    def _bound(self, figure: str | None) -> Figures:
        answer = self.client.answers[figure] if figure is not None else None
        server, local = self.server_rows(), self.local_rows()
        # Rows are only ever added: their counts, the clock and the answer say what is known.
        key = (figure, answer, len(server), len(local), self.clock.now)
        if key not in self.known:
            if answer is None:
                have = {r["entity"] for r in server}
                self.known[key] = self.figures(server + [r for r in local if r["entity"] not in have])
            else:
                held = [r for r in server if r["id"] <= answer.stored]
                have = {r["entity"] for r in held}
                local = [r for r in local if r["entity"] not in have]
                maybe = held + [r for r in local if r["entity"] in answer.posted]
                surely_not = [r for r in local if r["entity"] not in answer.posted]
                part = figure or ""
                adds = self.figures(maybe + surely_not, part).plus(self.figures(maybe, part), -1)
                self.known[key] = self.figures(held, part).plus(adds)
        return self.known[key]

    def observe(self) -> None:
        """Today, the week with its lists and the days beside it: never above what the server will
        hold (nothing counted twice), never below the answer they come from with what the work
        surely missing from it adds (no list or bar left as a fetch made before it had them)."""
        snap = self.svc.snapshot()
        today, week = snap["today"], snap["last_7_days"]
        high = self.ceiling()
        assert today["total_seconds"] <= high.today, (today, high.today)
        assert week["total_seconds"] <= high.week, (week["total_seconds"], week["source"], high.week)
        assert today["total_seconds"] >= self.floor("today").today, (today, self.floor("today").today)
        # The week's lists come from where its total does: the server's answer merged, or this store alone.
        low = self.floor("week") if week["source"] != "local" else self.figures(self.local_rows(), "week")
        assert week["total_seconds"] >= low.week, (week["total_seconds"], week["source"], low.week)
        for name in LISTS:
            shown = {e["name"]: e["total_seconds"] for e in week[name]}
            most, least = high.lists[name], low.lists[name]
            assert all(seconds <= most.get(group, 0) for group, seconds in shown.items()), (name, shown, most)
            assert all(shown.get(group, 0) >= seconds for group, seconds in least.items()), (name, shown, least)
        # The day bars beside the week, today's among them.
        least_days = self.floor("days").days
        assert len(week["days"]) == 8 and week["days"][-1] == snap["daily_totals"][-1]
        for day in week["days"]:
            assert day["total_seconds"] == sum(p["total_seconds"] for p in day["projects"]), day
            assert least_days[day["date"]] <= day["total_seconds"] <= high.days[day["date"]], (day, least_days)
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
        # A request held at a gate waits while the test looks at the figures: on a loaded machine
        # that can take seconds, and a timeout would back the outbox off mid-race.
        RecordingClient(srv, srv.api_url, API_KEY, machine="laptop", timeout=60) as client,
    ):
        store.set_destination("hackatime", srv.api_url)
        svc = StatsService(store, client=client, clock=clock, timezone="UTC")
        yield Race(srv, store, clock, svc, Outbox(store, client), client)
        assert srv.errors() == []


@dataclasses.dataclass(frozen=True)
class Pass:
    """One delivery pass (a claim of up to 100, its POST, its settling) and one fetch round, met
    in one order: each may be held at the stand-in ``before`` the app looks at it or ``after``
    (a batch stored, a figure computed) until the test lets it go; with both held, ``first``
    says which was sent first and ``released`` which is let go first."""

    post: str | None
    fetch: str | None
    path: str = ""
    first: str = "post"
    released: str = "post"


def every_pass() -> list[Pass]:
    stages = ("before", "after")
    out = [Pass(None, None), *(Pass(s, None) for s in stages)]
    out += [Pass(None, s, p) for s in stages for p in FETCHES]
    out += [
        Pass(ps, fs, p, first, released)
        for ps in stages
        for fs in stages
        for p in FETCHES
        for first in ("post", "fetch")
        for released in ("post", "fetch")
    ]
    return out


def one_pass(race: Race, step: Pass) -> None:
    """Run ``step``, looking at the figures at every point between its events. The clock moves
    past every fetch interval first."""
    race.clock.now += 121
    srv, outbox = race.srv, race.outbox
    if step.post is None and step.fetch is None:  # a delivery answered just before the fetch
        outbox.deliver_once()
        race.observe()
        race.fetch()
        race.observe()
        return
    held: dict[str, tuple[Gate, threading.Thread]] = {}

    def send(what: str) -> None:
        if what == "post" and step.post is not None:
            gate = srv.hold("POST", "heartbeats.bulk", step.post)
            held["post"] = (gate, race.in_background(outbox.deliver_once))
        elif what == "fetch" and step.fetch is not None:
            gate = srv.hold("GET", step.path, step.fetch)
            held["fetch"] = (gate, race.in_background(race.fetch))
        else:
            return
        assert gate.arrived.wait(10), what
        race.observe()

    try:
        for what in (step.first, "fetch" if step.first == "post" else "post"):
            send(what)
        if step.fetch is None:  # the fetch made and answered while the batch is held
            race.fetch()
            race.observe()
        elif step.post is None:  # the batch sent and answered while the fetch is held
            outbox.deliver_once()
            race.observe()
        for what in (step.released, "fetch" if step.released == "post" else "post"):
            if what in held:
                gate, thread = held.pop(what)
                gate.release()
                thread.join()
                race.observe()
    finally:
        for gate, thread in held.values():
            gate.release()
            thread.join()


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
    # Small batches, so that a stretch of work is often sent in several and a batch in flight has
    # work waiting behind it.
    race.outbox = Outbox(race.store, race.client, batch_size=20)
    # Every order, those with one request held twice, shuffled; a stretch of offline work whenever
    # the queue runs dry.
    steps = every_pass() + [step for step in every_pass() if step.post is None or step.fetch is None]
    rnd.shuffle(steps)
    for step in steps:
        if not race.store.counts("hackatime").pending:
            count = rnd.choice([10, 30, 50])
            race.store.add([beat(cursor + 10 * i, rnd.choice(["app", "site"])) for i in range(count)], "editor")
            cursor += 10 * count + 200
            race.clock.now = max(race.clock.now, cursor)
            race.observe()
        one_pass(race, step)
    assert D.local_date(race.clock.now, D.zone(USER.timezone)) == dt.date(2026, 3, 10)  # one day's work
    # Work added on top of a server figure was seen, and so was a figure that already had it.
    assert ("server+local", "server+local") in race.seen and ("server", "server") in race.seen

    # Everything delivered and fetched once more: the server's own figures, to the second.
    while race.outbox.deliver_once().sent:
        pass
    race.clock.now += 121
    race.fetch()
    snap = race.svc.snapshot()
    high = race.ceiling()
    assert (snap["today"]["total_seconds"], snap["today"]["source"]) == (high.today, "server")
    week = snap["last_7_days"]
    assert (week["total_seconds"], week["source"]) == (high.week, "server")
    for name in LISTS:
        assert {e["name"]: e["total_seconds"] for e in week[name]} == high.lists[name], name
    assert {d["date"]: d["total_seconds"] for d in week["days"]} == high.days
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
