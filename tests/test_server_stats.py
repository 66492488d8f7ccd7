"""Server figures against the loopback Hackatime stand-in: the same numbers as the local engine
once everything is delivered, the merged view offline, a cache that survives every kind of
failure, and the fetch schedule."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.delivery.hackatime import HackatimeClient
from agent.delivery.outbox import Outbox
from agent.heartbeat import Heartbeat, normalize
from agent.stats import durations as D
from agent.stats import server_answers as SA
from agent.stats import server_figures as SS
from agent.stats import views as V
from agent.stats.service import StatsService
from agent.store.store import Store
from tests.conftest import API_KEY
from tests.standin import Fault, HackatimeStandin, User

NY = "America/New_York"
VSCODE = "wakatime/v1.90.0 (linux-6.5.0-x86_64) go1.21 vscode/1.85.0 vscode-wakatime/24.4.0"
VIM = "wakatime/v1.90.0 (darwin-23.1.0-arm64) go1.21 vim/9.0 vim-wakatime/11.1.1"
USER = User(id=1, username="orpheus", timezone=NY, day_goal=7200)


def at(text: str, zone: str = NY) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=D.zone(zone)).timestamp()


class Clock:
    """One clock for the agent and the stand-in, moved by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class World:
    srv: HackatimeStandin
    store: Store
    client: HackatimeClient
    clock: Clock
    svc: StatsService
    outbox: Outbox

    def add(self, *beats: Heartbeat) -> None:
        self.store.add(list(beats), "editor")

    def deliver(self) -> None:
        result = self.outbox.drain()
        assert result.pending == 0, result

    def cache(self) -> dict[str, Any]:
        return {key: self.store.cache_get(key) for key in SS.ORDER}

    def reads(self) -> list[str]:
        return [r.path for r in self.srv.requests() if r.method == "GET"]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with make_world(tmp_path) as found:
        yield found


@contextlib.contextmanager
def make_world(tmp_path: Path) -> Iterator[World]:
    """The stand-in, a store, a client, one clock for both, the stats service and the outbox."""
    clock = Clock(at("2026-03-10T16:00:00"))
    with (
        HackatimeStandin(keys={API_KEY: USER}, now=clock) as srv,
        Store(tmp_path / "store.db", synchronous="OFF") as store,
        HackatimeClient(srv.api_url, API_KEY, machine="laptop", timeout=5) as client,
    ):
        store.set_destination("hackatime", srv.api_url)
        svc = StatsService(store, client=client, clock=clock, timezone="UTC")
        yield World(srv, store, client, clock, svc, Outbox(store, client))
        assert srv.errors() == []


_serial = iter(range(10**9))


def beat(t: float, project: str | None = "app", *, language: str = "Python", category: str = "coding",
         ua: str = VSCODE) -> Heartbeat:  # fmt: skip
    raw = {"time": t, "entity": f"/src/{project}/f{next(_serial)}.py", "project": project, "language": language,
           "category": category, "user_agent": ua}  # fmt: skip
    return normalize(raw, machine="laptop")


def other_machine(srv: HackatimeStandin, times: list[float], project: str = "desk-work") -> None:
    """Heartbeats another computer sent to the same account: the server has them, we don't."""
    body = [{"time": t, "entity": f"/w/{i}.go", "project": project, "language": "Go", "user_agent": VSCODE,
             "machine": "desktop"} for i, t in enumerate(times)]  # fmt: skip
    assert srv.ingest_direct(json.dumps(body).encode(), API_KEY).status == 201


def history(world: World) -> None:
    """Five weeks in New York, across the DST change of 8 March, with several projects,
    languages, editors, browsing, unnamed projects and sessions across midnight."""
    day0 = dt.date(2026, 2, 1)
    beats = []
    for n in range(38):
        day = day0 + dt.timedelta(days=n)
        if n % 9 == 4:
            continue  # a day off now and then breaks the streak
        start = at(f"{day}T21:30:00") if n % 5 == 0 else at(f"{day}T10:00:00")
        for i in range(40 + n):
            t = start + i * (47 if i % 7 else 190) + (n % 3) * 0.25
            project = ["app", "site", None][(i // 15 + n) % 3]
            beats.append(
                beat(t, project, language=["Python", "Go", "Rust"][(i // 6) % 3],
                     category="browsing" if i % 11 == 0 else "coding", ua=VIM if n % 4 == 0 else VSCODE)
            )  # fmt: skip
    world.store.add(beats, "editor")


def test_once_delivered_local_and_server_figures_are_equal(world: World) -> None:
    history(world)
    world.add(beat(world.clock.now - 600), beat(world.clock.now - 540), beat(world.clock.now - 10))
    world.deliver()
    assert world.svc.refresh_server(force=True)
    assert world.svc.timezone() == NY  # the profile's zone, not the one given (UTC)
    snap = world.svc.snapshot()

    today = snap["today"]
    assert today["server_seconds"] == today["local_seconds"] == today["total_seconds"] > 0
    assert (today["source"], today["unsynced_seconds"], today["unsynced_heartbeats"]) == ("server", 0, 0)
    assert today["goal"] == {**D.goal_figures(7200, today["total_seconds"]), "source": "server"}

    streak = snap["streak"]
    assert streak["source"] == "server" and streak["server_days"] == streak["local_days"] == streak["days"] > 1

    last7 = snap["last_7_days"]
    local7 = world.svc.local("7d")
    assert (last7["source"], last7["days_source"]) == ("server", "server")
    assert last7["server_seconds"] == last7["local_seconds"] == local7["total_seconds"] == last7["total_seconds"]
    for key in ("projects", "languages", "editors", "operating_systems", "machines"):
        plain = [{k: e[k] for k in ("name", "total_seconds", "percent")} for e in local7[key]]
        assert last7[key] == plain, key
    with world.svc._read() as conn:
        local_days = V.local_days(conn, dt.date(2026, 3, 3), dt.date(2026, 3, 10), D.zone(NY))
    strip = [{k: v for k, v in d.items() if k != "source"} for d in last7["days"]]
    assert strip == [{k: v for k, v in d.items() if k != "source"} for d in local_days]
    assert {d["source"] for d in last7["days"]} == {"server"}
    assert last7["days_including_holidays"] == sum(1 for d in local_days if d["total_seconds"])

    # All-time and 30-day lists as /api/v1/users/my/stats gives them: the same rows, the
    # unnamed projects called "Other", percent of the total.
    plain = ("name", "total_seconds", "percent")
    for range_ in ("30d", "all"):
        local = [{k: p[k] for k in plain} for p in world.svc.local(range_)["projects"]]
        assert any(p["name"] == "Other" for p in local)
        served = world.svc.projects(range_)
        assert served["source"] == "server", range_
        assert [{k: p[k] for k in plain} for p in served["projects"]] == local, range_
    assert [{k: p[k] for k in plain} for p in snap["projects"]] == [
        {k: p[k] for k in plain} for p in world.svc.local("30d")["projects"]
    ]
    assert snap["projects_source"] == "server"

    # Editor plugins asking the agent get exactly what the server would have answered.
    server_answer = world.client.get("users/current/statusbar/today").json()
    assert world.svc.statusbar_today() == server_answer


def test_offline_the_merged_figure_includes_unsynced_work(world: World) -> None:
    nine = at("2026-03-10T09:00:00")
    other_machine(world.srv, [at("2026-03-10T08:00:00") + 60 * i for i in range(21)])  # 1200 s
    world.add(*[beat(nine + 60 * i) for i in range(11)])  # 600 s
    world.deliver()
    assert world.svc.refresh_server(force=True)
    server = 1200 + 120 + 600
    assert world.svc.snapshot()["today"]["server_seconds"] == server

    # The network goes; two more heartbeats are recorded and cannot be sent.
    world.srv.inject(Fault.CONNECTION_RESET, times=50, scope="all")
    world.add(beat(nine + 720), beat(nine + 780))
    assert world.outbox.deliver_once().sent == 0
    before = world.cache()
    world.clock.now += 700
    assert world.svc.refresh_server() is False
    assert world.cache() == before  # the last known figures stay, with their time

    today = world.svc.snapshot()["today"]
    assert today["server_seconds"] == server and today["local_seconds"] == 600 + 120 + 60
    assert (today["unsynced_seconds"], today["unsynced_heartbeats"]) == (120 + 60, 2)
    assert today["total_seconds"] == server + 180 and today["source"] == "server+local"
    assert today["server_age_seconds"] == 700
    assert today["goal"] == {**D.goal_figures(7200, server + 180), "source": "server+local"}
    assert world.svc.statusbar_today()["data"]["grand_total"] == {"text": "35m / 2h goal", "total_seconds": 2100}
    errors = world.svc.snapshot()["server"]["errors"]
    assert list(errors) == ["statusbar_today"] and errors["statusbar_today"]["error"].startswith("network")

    # Back online: once delivered, the server's own figure is the merged one.
    world.srv.clear_faults()
    world.deliver()
    world.clock.now += 121
    assert world.svc.refresh_server()
    today = world.svc.snapshot()["today"]
    assert (today["server_seconds"], today["total_seconds"], today["source"]) == (2100, 2100, "server")
    assert world.svc.snapshot()["server"]["errors"] == {}


def test_work_accepted_after_the_server_figure_was_fetched_still_counts(world: World) -> None:
    nine = at("2026-03-10T09:00:00")
    world.add(*[beat(nine + 60 * i) for i in range(5)])
    world.deliver()
    assert world.svc.refresh_server(force=True)
    world.add(beat(nine + 300), beat(nine + 330))
    world.deliver()  # sent, but after the figure was fetched: the server's 240 s lacks them
    today = world.svc.snapshot()["today"]
    assert (today["server_seconds"], today["unsynced_seconds"], today["total_seconds"]) == (240, 90, 330)


@pytest.mark.parametrize(
    "fault",
    [Fault.UNAUTHORIZED_401, Fault.SERVER_ERROR_500, Fault.BAD_GATEWAY_502, Fault.SERVICE_UNAVAILABLE_503,
     Fault.MALFORMED_201, Fault.CONNECTION_RESET, Fault.RATE_LIMITED_429],
)  # fmt: skip
def test_a_failed_fetch_leaves_the_cache_as_it_was(world: World, fault: Fault) -> None:
    world.add(beat(world.clock.now - 300), beat(world.clock.now - 200))
    world.deliver()
    assert world.svc.refresh_server(force=True)
    before = world.cache()
    other_machine(world.srv, [world.clock.now - 100, world.clock.now - 50])  # a new fetch would differ
    world.srv.inject(fault, times=20, scope="reads", retry_after=300)
    world.clock.now += 700
    requests = len(world.reads())
    assert world.svc.refresh_server() is False
    assert world.cache() == before
    made = len(world.reads()) - requests
    errors = world.svc.snapshot()["server"]["errors"]
    if fault is Fault.MALFORMED_201:
        # Every figure due is tried (the profile is due only every 30 minutes), none kept.
        assert made == len(SS.ORDER) - 1 and all("unreadable" in e["error"] for e in errors.values())
    else:  # refused, down, unreachable or throttled: the round stops at the first answer
        assert made == 1 and len(errors) == 1
    today = world.svc.snapshot()["today"]
    assert (today["source"], today["server_seconds"], today["server_age_seconds"]) == ("server", 100, 700)
    if fault is Fault.RATE_LIMITED_429:  # Retry-After is honoured, even by a forced refresh
        assert world.svc.snapshot()["server"]["rate_limited_until"] == world.clock.now + 300
        world.srv.clear_faults()
        world.clock.now += 299
        assert world.svc.refresh_server(force=True) is False and len(world.reads()) == requests + made
        world.clock.now += 1
        assert world.svc.refresh_server()
        assert world.svc.snapshot()["today"]["server_seconds"] == 250


def test_the_fetch_schedule(world: World) -> None:
    assert world.svc.refresh_server()
    assert sorted(world.reads()) == sorted(
        [
            "/api/hackatime/v1/users/current",
            "/api/hackatime/v1/users/current/statusbar/today",
            "/api/v1/users/my/stats",
            "/api/v1/users/my/stats",  # all time, and the last 30 days
            "/api/hackatime/v1/users/current/stats/last_7_days",
            "/api/hackatime/v1/users/current/summaries",
        ]
    )
    seen = len(world.reads())
    world.clock.now += 119
    assert world.svc.refresh_server() is False and len(world.reads()) == seen
    world.clock.now += 1  # statusbar/today at most every 120 s, the rest every 10 minutes
    assert world.svc.refresh_server()
    assert world.reads()[seen:] == ["/api/hackatime/v1/users/current/statusbar/today"]
    world.clock.now += 60  # forcing fetches the rest again, but never the statusbar within 120 s
    assert world.svc.refresh_server(force=True)
    assert "/api/hackatime/v1/users/current/statusbar/today" not in world.reads()[seen + 1 :]
    assert len(world.reads()) == seen + 1 + 5
    # A restarted agent does not refetch what its cache holds from moments ago.
    again = StatsService(world.store, client=world.client, clock=world.clock)
    assert again.refresh_server() is False


def test_yesterdays_figures_are_not_todays(world: World) -> None:
    world.clock.now = at("2026-03-09T23:50:00")
    world.add(*[beat(at("2026-03-09T23:00:00") + 60 * i) for i in range(40)])
    world.deliver()
    assert world.svc.refresh_server(force=True)
    assert world.svc.snapshot()["today"]["source"] == "server"
    world.srv.inject(Fault.CONNECTION_RESET, times=50, scope="all")
    world.clock.now = at("2026-03-10T00:10:00")
    world.svc.refresh_server()
    snap = world.svc.snapshot()
    assert (snap["today"]["source"], snap["today"]["server_seconds"], snap["today"]["total_seconds"]) == (
        "local", None, 0)  # fmt: skip
    assert snap["streak"]["source"] == "local" and snap["last_7_days"]["source"] == "local"
    assert snap["today"]["goal"] == {**D.goal_figures(7200, 0), "source": "local"}  # the goal is still known


@pytest.mark.parametrize(
    ("mode", "expected"),
    # The goal suffix belongs to the simple text (§4.5); a clock face or a compliment has none.
    [("clock_emoji", "🕐"), ("compliment_text", None), ("simple_text", "1h 2m / 2h goal")],
)
def test_statusbar_text_follows_the_users_text_type(world: World, mode: str, expected: str | None) -> None:
    world.srv.update_user(dataclasses.replace(USER, text_mode=mode))  # type: ignore[arg-type]
    nine = at("2026-03-10T09:00:00")
    world.add(*[beat(nine + 60 * i) for i in range(61)])
    world.deliver()
    assert world.svc.refresh_server(force=True)
    server_text = world.client.get("users/current/statusbar/today").json()["data"]["grand_total"]["text"]
    world.add(beat(nine + 3600 + 300))  # offline work on top: the text follows the merged figure
    answer = world.svc.statusbar_today()["data"]["grand_total"]
    assert answer["total_seconds"] == 3600 + 120
    # Compliments carry no time: the server's words are kept.
    assert answer["text"] == (server_text if expected is None else expected)


def test_profile_timezone_decides_today(world: World) -> None:
    world.srv.update_user(dataclasses.replace(USER, timezone="Asia/Kolkata"))
    # 16:00 in New York is 02:30 the next day in Kolkata: these are "yesterday" there.
    world.add(beat(at("2026-03-10T12:00:00")), beat(at("2026-03-10T12:01:00")))
    world.add(beat(at("2026-03-11T00:30:00", "Asia/Kolkata")), beat(at("2026-03-11T00:31:40", "Asia/Kolkata")))
    world.deliver()
    assert world.svc.refresh_server(force=True)
    assert world.svc.timezone() == "Asia/Kolkata"
    today = world.svc.snapshot()["today"]
    assert today["local_seconds"] == today["server_seconds"] == 100


def test_without_a_client_nothing_is_fetched(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        svc = StatsService(store, client=None, clock=lambda: 1_773_000_000.0)
        assert svc.refresh_server(force=True) is False
        assert svc.snapshot()["server"] == {
            "configured": False,
            "fetched_at": {key.removeprefix("server."): None for key in SS.ORDER},
            "errors": {},
            "rate_limited_until": None,
        }


# ---- answers that are not what the server sends --------------------------------------------------


@pytest.mark.parametrize(
    ("parse", "body"),
    [
        (SA.parse_statusbar, {"data": {"grand_total": {"total_seconds": "12"}}}),
        (SA.parse_statusbar, {"data": {"grand_total": {"total_seconds": -5}}}),
        (SA.parse_statusbar, {"data": {"grand_total": {"total_seconds": True}}}),
        (SA.parse_statusbar, {"data": {"grand_total": {"total_seconds": float("nan")}}}),
        (SA.parse_statusbar, {"data": {"grand_total": {"total_seconds": 5, "text": 3}}}),
        (SA.parse_statusbar, {"data": {"grand_total": {"total_seconds": 5}, "goal": {"target_seconds": "x"}}}),
        (SA.parse_statusbar, {"data": []}),
        (SA.parse_statusbar, ["data"]),
        (SA.parse_stats, {"data": {"streak": "3"}}),
        (SA.parse_stats, {"data": {"streak": -1}}),
        (SA.parse_stats, {"data": {"streak": 2, "languages": {"Python": 5}}}),
        (SA.parse_stats, {"data": {"streak": 2, "projects": [{"name": 5, "total_seconds": 1}]}}),
        (SA.parse_last_7_days, {"data": {"languages": []}}),
        (SA.parse_last_7_days, {"data": {"total_seconds": 5, "editors": [{"name": "x"}]}}),
        (SA.parse_summaries, {"data": [{"range": {"date": "2026-13-01"}, "grand_total": {"total_seconds": 1}}]}),
        (SA.parse_summaries, {"data": {"range": {}}}),
        (SA.parse_user, {"data": {"timezone": 5}}),
        (SA.parse_user, {"error": "Unauthorized"}),
        (SA.parse_oauth_me, {"id": True}),
        (SA.parse_oauth_streak, {"streak_days": "14"}),
        (SA.parse_oauth_hours, {"total_seconds": -1}),
        (SA.parse_oauth_projects, {"projects": {"p": 1}}),
        (SA.parse_oauth_projects, {"projects": [{"name": "", "total_seconds": 1}]}),
        (SA.parse_oauth_projects, {"projects": [{"name": "p", "total_seconds": 1, "languages": "Python"}]}),
    ],
)
def test_garbage_is_refused(parse: Any, body: Any) -> None:
    with pytest.raises(SA.Garbage):
        parse(body)


def test_what_the_server_sends_is_accepted() -> None:
    assert SA.parse_statusbar({"data": {"grand_total": {"text": "1h", "total_seconds": 3600.0}}}) == {
        "total_seconds": 3600, "text": "1h", "goal": None,
    }  # fmt: skip
    assert SA.parse_user({"data": {"timezone": None, "username": "o"}}) == {
        "timezone": "UTC",
        "username": "o",
        "id": None,
    }
    assert SA.parse_user({"data": {"id": "42", "username": "o"}})["id"] == "42"
    assert SA.parse_oauth_me({"id": 42, "emails": []}) == {"id": "42"}
    assert SA.parse_oauth_streak({"streak_days": 14}) == {"streak": 14}
    assert SA.parse_oauth_hours({"start_date": "2026-08-15", "end_date": "2026-08-22", "total_seconds": 36000}) == {
        "total_seconds": 36000
    }
    project = {"name": "p", "total_seconds": 72000, "most_recent_heartbeat": "2026-08-22T15:30:00Z",
               "languages": ["Python"], "archived": True}  # fmt: skip
    assert SA.parse_oauth_projects({"projects": [project]}) == {"projects": [project]}
    assert SA.parse_stats({"data": {"streak": 0}})["streak"] == 0


@pytest.mark.parametrize(
    ("server", "local", "unsynced", "expected"),
    [
        (None, 300, 0.0, (300, "local")),
        (1000, 300, 0.0, (1000, "server")),
        (1000, 1200, 0.0, (1200, "server+local")),  # never lower than the local figure
        (1000, 300, 180.0, (1180, "server+local")),
        (1000, 300, 0.4, (1000, "server")),
        (1000, 1100, 180.5, (1180, "server+local")),  # 1180.5 rounds to even
    ],
)
def test_merge_rule(server: int | None, local: int, unsynced: float, expected: tuple[int, str]) -> None:
    assert SS.merge_today(server, local, unsynced) == expected
