"""The agent's figures beside the stand-in's, rule by rule, where they used to differ: day bars
made of rounded project credits, a language inferred from the file name, lists shaped like
/api/v1/users/my/stats, last_7_days' categories, the statusbar's style after a restart; and
the server's history shown where the local store has none, merged with unsynced work."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.delivery.hackatime import HackatimeClient
from agent.heartbeat import normalize
from agent.stats import durations as D
from agent.stats import missing as M
from agent.stats import views as V
from agent.stats.service import StatsService
from agent.store.store import Store
from tests.conftest import API_KEY
from tests.standin import HackatimeStandin, User
from tests.test_server_stats import NY, USER, VSCODE, World, at, beat, make_world, other_machine

DAY = "2026-03-10"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with make_world(tmp_path) as found:
        yield found


def server_get(world: World, path: str, params: dict[str, Any] | None = None) -> Any:
    response = world.client.get(path, params)
    assert response.status_code == 200, response.text
    return response.json()


def sent(world: World, *beats: Any) -> None:
    world.add(*beats)
    world.deliver()


# ---- 2: day bars --------------------------------------------------------------------------------


def test_a_day_bar_is_the_sum_of_its_projects_rounded_credits(world: World) -> None:
    t = at(f"{DAY}T09:00:00")
    sent(world, beat(t, "p1"), beat(t + 10.5, "p2"), beat(t + 21, "p1"))
    day = server_get(world, "users/current/summaries", {"start": DAY, "end": DAY})["data"][0]
    assert day["grand_total"]["total_seconds"] == 20  # 10.5 and 10.5, each rounded to even
    with world.svc._read() as conn:
        (local,) = V.local_days(conn, dt.date(2026, 3, 10), dt.date(2026, 3, 10), D.zone(NY))
    assert local["total_seconds"] == 20 and local["projects"] == [
        {"name": "p1", "total_seconds": 10}, {"name": "p2", "total_seconds": 10}
    ]  # fmt: skip
    assert world.svc.refresh_server(force=True)
    bar = world.svc.snapshot()["daily_totals"][-1]
    assert (bar["date"], bar["total_seconds"], bar["source"]) == (DAY, 20, "server")


# ---- 3: a heartbeat without a language ----------------------------------------------------------


def test_a_missing_language_is_named_from_the_file_as_the_server_does(world: World) -> None:
    t = at(f"{DAY}T09:00:00")
    raws = [{"time": t + i * 30, "entity": "/src/app/a.py", "project": "app", "user_agent": VSCODE} for i in range(2)]
    sent(world, *[normalize(raw, machine="laptop") for raw in raws])
    served = server_get(world, "users/current/stats/last_7_days")["data"]["languages"]
    local = world.svc.local("7d")["languages"]
    assert [(e["name"], e["total_seconds"]) for e in local] == [(e["name"], e["total_seconds"]) for e in served]
    assert local[0]["name"] == "Python" and local[0]["total_seconds"] == 30
    assert world.svc.local("today")["projects"][0]["languages"] == ["Python"]


# ---- 4: lists like /api/v1/users/my/stats ---------------------------------------------------------


def test_30_day_and_all_time_lists_mirror_the_servers_stats(world: World) -> None:
    t = at(f"{DAY}T09:00:00")
    # A@0, B@30, A@60, B@90: 90 s in all, 60 s to each project on its own timeline.
    sent(world, beat(t, "A"), beat(t + 30, "B"), beat(t + 60, "A"), beat(t + 90, "B"))
    # No project and an empty one (the server calls both "Other"), and a project of one
    # heartbeat (0 s, which this list keeps).
    sent(world, *[beat(t + 600 + 20 * i, None) for i in range(4)], *[beat(t + 900 + 20 * i, "") for i in range(3)])
    sent(world, beat(t + 2000, "lonely"))
    total = world.svc.local("all")["total_seconds"]
    for range_, params in (
        ("all", {"features": "languages,projects"}),
        ("30d", {"features": "languages,projects", "start_date": "2026-02-08T00:00:00-05:00",
                 "end_date": "2026-03-11T00:00:00-04:00"}),
    ):  # fmt: skip
        served = world.client.get_root("/api/v1/users/my/stats", params).json()["data"]
        assert served["total_seconds"] == total
        local = world.svc.local(range_)
        for key in ("projects", "languages"):
            plain = [{k: e[k] for k in ("name", "total_seconds", "percent")} for e in local[key]]
            assert plain == [{k: e[k] for k in ("name", "total_seconds", "percent")} for e in served[key]], key
    projects = {p["name"]: p for p in world.svc.local("all")["projects"] if p["name"] != "Other"}
    assert projects["A"]["percent"] == D.percent_of(60, float(total))  # of the total, not of the groups' sum
    assert projects["lonely"]["total_seconds"] == 0
    assert [p["name"] for p in world.svc.local("all")["projects"]].count("Other") == 2
    # The day bars (summaries) have one "Other" for both.
    assert world.svc.refresh_server(force=True)
    bar = world.svc.snapshot()["daily_totals"][-1]
    assert [p["name"] for p in bar["projects"]].count("Other") == 1


# ---- 5: stats --range 7d ------------------------------------------------------------------------------


def test_the_cli_week_lists_one_coding_category_like_the_server(
    tmp_path: Path, _isolated_home: Path, standin: HackatimeStandin
) -> None:
    now = time.time()
    start = now - 7200

    def coding(t: float, i: int) -> dict[str, Any]:
        return {"time": t, "entity": f"/w/{i}.py", "project": "w", "language": "Python", "user_agent": VSCODE,
                "machine": "laptop"}  # fmt: skip

    # 25 minutes of coding, ten minutes reading docs in the browser, 25 minutes of coding: one
    # timeline of 3,570 s. Each category apart would be coding 3,060 s (1,470 + a capped gap of
    # 120 + 1,470) and browsing 570 s; the server's answer is one coding row of 3,570 s.
    raws = [coding(start + 30 * i, i) for i in range(50)]
    raws += [{"time": start + 1500 + 30 * i, "entity": f"https://docs.python.org/{i}", "type": "url",
              "user_agent": VSCODE, "machine": "laptop"} for i in range(20)]  # fmt: skip
    raws += [coding(start + 2100 + 30 * i, 50 + i) for i in range(50)]
    standin.seed(raws, API_KEY)
    with Store(tmp_path / "store.db") as store:
        store.set_destination("hackatime", standin.api_url)
        store.add([normalize(raw, machine="laptop") for raw in raws], "editor")
    env = {"HOME": str(_isolated_home), "WAKATIME_HOME": str(_isolated_home), "PATH": "/usr/bin:/bin",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "agent", "--data-dir", str(tmp_path), "stats", "--json", "--range", "7d"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    local = json.loads(done.stdout)
    served = httpx.get(
        f"{standin.api_url}/users/current/stats/last_7_days", headers={"Authorization": f"Bearer {API_KEY}"}
    ).json()["data"]
    assert local["total_seconds"] == served["total_seconds"] == 3570
    assert [(c["name"], c["total_seconds"]) for c in local["categories"]] == [("coding", served["total_seconds"])]
    assert [(c["name"], c["total_seconds"]) for c in served["categories"]] == [("coding", served["total_seconds"])]


# ---- 6: the statusbar's style after a restart ------------------------------------------------------


def test_the_statusbar_keeps_the_users_style_after_a_restart_while_offline(world: World, tmp_path: Path) -> None:
    before = world.svc.statusbar_today()["data"]["grand_total"]["text"]
    assert before == "Start coding!"  # nothing known yet: plain text
    world.srv.update_user(dataclasses.replace(USER, text_mode="clock_emoji"))
    t = at(f"{DAY}T09:00:00")
    sent(world, *[beat(t + 60 * i) for i in range(31)])
    assert world.svc.refresh_server(force=True)
    online = world.svc.statusbar_today()["data"]
    world.store.close()
    # Restarted with no network: the same store, a server that refuses every connection.
    with (
        Store(world.store.path) as store,
        HackatimeClient("http://127.0.0.1:9/api/hackatime/v1", API_KEY, timeout=5) as offline,
    ):
        svc = StatsService(store, client=offline, clock=world.clock)
        assert svc.refresh_server(force=True) is False
        store.add([beat(t + 1800 + 60 * i) for i in range(1, 31)], "editor")  # another 30 minutes
        answer = svc.statusbar_today()["data"]
    assert online["grand_total"] == {"text": D.clock_emoji(1800), "total_seconds": 1800}
    assert answer["grand_total"] == {"text": D.clock_emoji(3600), "total_seconds": 3600}  # still clock faces
    assert answer["goal"] == D.goal_figures(7200, 3600)  # and the day goal is still known


# ---- the server's history where the store has none (#9 items 4 and 5) ------------------------------


def history_on_the_server(srv: HackatimeStandin) -> None:
    """A month of work from another computer: 40 minutes a day, two projects."""
    items = []
    for back in range(1, 31):
        day = dt.date(2026, 3, 10) - dt.timedelta(days=back)
        start = at(f"{day}T10:00:00")
        items += [{"time": start + 60 * i, "entity": f"/h/{back}-{i}.go", "project": ["rocket", "site"][i // 25],
                   "language": "Go", "user_agent": VSCODE, "machine": "desktop"} for i in range(41)]  # fmt: skip
    srv.seed(items, API_KEY)


def test_an_empty_store_shows_what_the_server_knows(world: World) -> None:
    history_on_the_server(world.srv)
    other_machine(world.srv, [at(f"{DAY}T08:00:00") + 60 * i for i in range(11)], project="rocket")
    assert world.svc.refresh_server(force=True)
    snap = world.svc.snapshot()
    assert snap["projects_source"] == "server" and {p["name"] for p in snap["projects"]} == {"rocket", "site"}
    for range_ in ("today", "7d", "30d", "all"):
        answer = world.svc.projects(range_)
        assert answer["source"] == "server" and answer["projects"], range_
    # Nothing about it is known here: no languages, no last activity.
    assert world.svc.projects("today")["projects"] == [
        {"name": "rocket", "total_seconds": 600, "percent": 100.0, "languages": [], "last_activity": None}
    ]
    # A year of daily totals, each day the server's.
    first = dt.date(2026, 3, 10) - dt.timedelta(days=364)
    served = server_get(world, "users/current/summaries", {"start": first.isoformat(), "end": DAY})["data"]
    assert snap["daily_totals_source"] == "server" and len(snap["daily_totals"]) == 365
    assert [(d["date"], d["total_seconds"]) for d in snap["daily_totals"]] == [
        (d["range"]["date"], d["grand_total"]["total_seconds"]) for d in served
    ]
    assert sum(1 for d in snap["daily_totals"] if d["total_seconds"]) == 31
    assert snap["today"]["projects"] == [{"name": "rocket", "total_seconds": 600}]


def test_todays_projects_merge_the_servers_with_unsynced_work(world: World) -> None:
    other_machine(world.srv, [at(f"{DAY}T08:00:00") + 60 * i for i in range(11)], project="desk")  # 600 s
    sent(world, *[beat(at(f"{DAY}T09:00:00") + 60 * i, "app") for i in range(6)])  # 300 s, synced
    assert world.svc.refresh_server(force=True)
    world.add(*[beat(at(f"{DAY}T09:05:00") + 60 * i, "app") for i in range(1, 5)])  # 240 s more, offline
    today = world.svc.snapshot()["today"]
    assert (today["total_seconds"], today["source"]) == (600 + 120 + 300 + 240, "server+local")
    assert today["projects_source"] == "server+local"
    # The summaries rule: the gap from desk's last heartbeat to app's first is desk's.
    assert today["projects"] == [{"name": "desk", "total_seconds": 720}, {"name": "app", "total_seconds": 540}]
    assert sum(p["total_seconds"] for p in today["projects"]) == today["total_seconds"]
    assert world.svc.projects("today")["source"] == "server+local"


def test_work_delivered_for_a_past_day_shows_in_that_days_bar_at_once(world: World) -> None:
    history_on_the_server(world.srv)
    assert world.svc.refresh_server(force=True)
    three_days_ago = "2026-03-07"
    before = {d["date"]: d for d in world.svc.snapshot()["daily_totals"]}[three_days_ago]
    rocket, site = {"name": "rocket", "total_seconds": 1500}, {"name": "site", "total_seconds": 900}
    assert before == {"date": three_days_ago, "total_seconds": 2400, "source": "server", "projects": [rocket, site]}
    # Imported or recorded offline that day, and delivered now: the bar changes before any refetch.
    sent(world, *[beat(at(f"{three_days_ago}T15:00:00") + 60 * i, "garden") for i in range(11)])
    fetches = len(world.reads())
    after = {d["date"]: d for d in world.svc.snapshot()["daily_totals"]}[three_days_ago]
    assert len(world.reads()) == fetches
    # Measured against the heartbeats this store has: the other computer's are not among them,
    # so the capped gap from its last heartbeat to this work waits for the next fetch.
    assert after["source"] == "server+local" and after["total_seconds"] == 2400 + 600
    assert after["projects"] == [
        {"name": "rocket", "total_seconds": 1500},
        site,
        {"name": "garden", "total_seconds": 600},
    ]
    assert world.svc.snapshot()["last_7_days"]["days_source"] == "server+local"
    world.clock.now += 61
    assert world.svc.refresh_server(force=True)
    refetched = {d["date"]: d for d in world.svc.snapshot()["daily_totals"]}[three_days_ago]
    assert (refetched["source"], refetched["total_seconds"]) == ("server", 2400 + 120 + 600)


def test_a_user_with_the_default_timezone_sees_the_same(tmp_path: Path) -> None:
    """The merged views need nothing of the profile but its zone (UTC here)."""
    with (
        HackatimeStandin(keys={API_KEY: User(id=1, username="o")}, now=at(f"{DAY}T12:00:00", "UTC")) as srv,
        Store(tmp_path / "s.db", synchronous="OFF") as store,
        HackatimeClient(srv.api_url, API_KEY, timeout=5) as client,
    ):
        store.set_destination("hackatime", srv.api_url)
        svc = StatsService(store, client=client, clock=lambda: at(f"{DAY}T12:00:00", "UTC"))
        assert svc.refresh_server(force=True)
        snap = svc.snapshot()
        assert snap["timezone"] == "UTC" and snap["daily_totals_source"] == "server"
        assert snap["today"]["projects"] == [] and snap["projects"] == []


def test_with_a_large_upload_pending_each_day_is_the_larger_of_the_two(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(M, "MANY_MISSING", 20)  # what a large import on its way up looks like
    history_on_the_server(world.srv)
    assert world.svc.refresh_server(force=True)
    world.add(*[beat(at("2026-03-07T15:00:00") + 60 * i, "garden") for i in range(61)])  # not sent yet
    days = {d["date"]: d for d in world.svc.snapshot()["daily_totals"]}
    assert (days["2026-03-07"]["total_seconds"], days["2026-03-07"]["source"]) == (3600, "local")
    assert (days["2026-03-06"]["total_seconds"], days["2026-03-06"]["source"]) == (2400, "server")
