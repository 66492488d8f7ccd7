"""The local stats engine over a real store: hand-computed cases for each rule, the rollups
against a plain implementation of the rules (the stand-in's oracle) under any arrival order,
and the paths that fold new heartbeats in."""

from __future__ import annotations

import datetime as dt
import random
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.heartbeat import Heartbeat, normalize
from agent.stats import durations as D
from agent.stats import missing as M
from agent.stats import queries as Q
from agent.stats import rollups as R
from agent.stats import views as V
from agent.stats.service import StatsService
from agent.store.store import Store
from tests.standin import durations as oracle

NY = "America/New_York"
UA = "wakatime/v1.90.0 (linux-6.5.0-x86_64) go1.21 vscode/1.85.0 vscode-wakatime/24.4.0"


def at(text: str, zone: str = NY) -> float:
    """Epoch seconds of a local wall time (the first one, when the clock repeats)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=D.zone(zone)).timestamp()


_serial = iter(range(10**9))


def beat(t: float, project: str | None = "app", *, language: str | None = "Python", category: str | None = "coding",
         machine: str = "laptop", ua: str = UA) -> Heartbeat:  # fmt: skip
    raw: dict[str, Any] = {"time": t, "entity": f"/src/{project}/f{next(_serial)}.py", "project": project,
                           "language": language, "category": category or "coding", "user_agent": ua}  # fmt: skip
    hb = normalize(raw, machine=machine)
    if category is None:  # normalize fills in "coding"; a null category only comes from old data
        payload = {k: v for k, v in hb.payload.items() if k != "category"}
        hb = hb._replace(payload=payload)
    return hb


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store.db", synchronous="OFF") as s:
        s.set_destination("hackatime", "http://127.0.0.1:9/api/hackatime/v1")
        yield s


def service(store: Store, now: float, zone: str = NY) -> StatsService:
    return StatsService(store, client=None, clock=lambda: now, timezone=zone)


def rows_of(store: Store) -> list[dict[str, Any]]:
    """The stored rows as the server stores them (a missing language inferred from the file name)."""
    cols = ("id", "time", "category", "project", "language", "editor", "operating_system", "machine", "entity")
    rows = [
        dict(zip(cols, r, strict=True)) for r in store.reader().execute(f"SELECT {', '.join(cols)} FROM heartbeats")
    ]
    for row in rows:
        row["language"] = R.server_language(row["language"], row.pop("entity"))
    return rows


# ---- hand-computed cases ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offsets", "expected"),
    [
        ([0, 30, 60], 60),
        ([0, 121, 121 + 3600], 240),  # gaps over 120 s are capped, not dropped
        ([0, 0, 0, 45, 45], 45),  # identical timestamps add nothing
        ([0, 0.5], 0),  # ties round to even
        ([0, 1.5], 2),
        ([0, 100.25, 100.75], 101),
        ([0], 0),
        ([], 0),
    ],
)
def test_today_table(store: Store, offsets: list[float], expected: int) -> None:
    base = at("2026-08-22T09:00:00")
    store.add([beat(base + o) for o in offsets], "editor")
    svc = service(store, at("2026-08-22T18:00:00"))
    assert svc.local("today")["total_seconds"] == expected
    assert svc.statusbar_today()["data"]["grand_total"]["total_seconds"] == expected


def test_midnight_in_the_profile_zone(store: Store) -> None:
    times = ["2026-08-21T23:58:00", "2026-08-21T23:59:00", "2026-08-21T23:59:59.5",
             "2026-08-22T00:00:00", "2026-08-22T00:01:00", "2026-08-22T00:01:30"]  # fmt: skip
    store.add([beat(at(t)) for t in times], "editor")
    svc = service(store, at("2026-08-22T10:00:00"))
    # Today is [00:00:00, 23:59:59] in New York: no boundary heartbeat from yesterday, so the
    # gap across midnight is not credited.
    assert svc.local("today")["total_seconds"] == 60 + 30
    with svc._read() as conn:
        days = Q.day_seconds(conn, dt.date(2026, 8, 21), dt.date(2026, 8, 22), D.zone(NY))
    # Yesterday's own timeline: 60 + 59.5 = 119.5, which rounds to the even 120.
    assert days == {dt.date(2026, 8, 21): 120, dt.date(2026, 8, 22): 90}
    # The last 7 days are ONE timeline, so the half second across midnight counts there.
    assert svc.local("7d")["total_seconds"] == 60 + 59.5 + 0.5 + 60 + 30
    # In UTC all six heartbeats are on 22 August (04:00 UTC): one timeline again.
    assert service(store, at("2026-08-22T10:00:00"), "UTC").local("today")["total_seconds"] == 210


def test_a_heartbeat_in_the_last_half_second_of_the_day_is_in_no_days_window(store: Store) -> None:
    store.add([beat(at("2026-08-22T23:59:00")), beat(at("2026-08-22T23:59:59.5"))], "editor")
    svc = service(store, at("2026-08-22T23:59:59.75"))
    assert svc.local("today")["total_seconds"] == 0  # end_of_day.to_i is 23:59:59
    with svc._read() as conn:  # but DATE_TRUNC puts it on the 22nd, as streaks and summaries do
        assert Q.day_seconds(conn, dt.date(2026, 8, 22), dt.date(2026, 8, 22), D.zone(NY)) == {dt.date(2026, 8, 22): 60}


def test_spring_forward_day(store: Store) -> None:
    # 8 March 2026: New York goes from 01:59:59 EST to 03:00:00 EDT, a 23-hour day.
    store.add(
        [beat(at(t)) for t in ("2026-03-08T00:00:00", "2026-03-08T01:59:00", "2026-03-08T01:59:30")]
        + [beat(at("2026-03-08T03:00:10")), beat(at("2026-03-08T23:59:59"))],
        "editor",
    )
    svc = service(store, at("2026-03-08T23:59:59"))
    # 01:59:30 EST to 03:00:10 EDT is 40 real seconds, not an hour of wall clock.
    assert svc.local("today")["total_seconds"] == 120 + 30 + 40 + 120
    assert svc.local("today")["end_ts"] - svc.local("today")["start_ts"] == 23 * 3600 - 1


def test_fall_back_day(store: Store) -> None:
    # 1 November 2026: 01:00-01:59 happens twice; the day lasts 25 hours.
    first = at("2026-11-01T01:30:00")  # the first (EDT) 01:30
    store.add([beat(first), beat(first + 60), beat(first + 3600), beat(first + 3630)], "editor")
    svc = service(store, first + 4000)
    assert D.local_date(first + 3600, D.zone(NY)) == dt.date(2026, 11, 1)
    assert svc.local("today")["total_seconds"] == 60 + 120 + 30
    assert svc.local("today")["end_ts"] - svc.local("today")["start_ts"] == 25 * 3600 - 1


def test_group_sums_can_exceed_the_total(store: Store) -> None:
    base = at("2026-08-22T09:00:00")
    store.add([beat(base, "A"), beat(base + 30, "B"), beat(base + 60, "A"), beat(base + 90, "B")], "editor")
    figures = service(store, base + 3600).local("today")
    assert figures["total_seconds"] == 90
    assert [(p["name"], p["total_seconds"], p["percent"]) for p in figures["projects"]] == [
        ("A", 60, 50.0),
        ("B", 60, 50.0),
    ]


def streak_day(day: str, seconds: int, *, category: str | None = "coding", start: str = "12:00:00") -> list[Heartbeat]:
    """Heartbeats 50 s apart covering ``seconds`` of the day, from ``start``."""
    t0 = at(f"{day}T{start}")
    return [beat(t0 + i * 50, category=category) for i in range(seconds // 50 + 1)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"2026-08-22": 1000, "2026-08-21": 1000, "2026-08-20": 1000}, 3),
        ({"2026-08-22": 1000, "2026-08-21": 500, "2026-08-20": 1000}, 1),  # broken yesterday
        ({"2026-08-22": 100, "2026-08-21": 1000, "2026-08-20": 1000}, 2),  # from yesterday
        ({"2026-08-22": 0, "2026-08-21": 0, "2026-08-20": 5000}, 0),
        ({"2026-08-22": 900, "2026-08-21": 850}, 1),  # 850 s is short of 15 minutes
    ],
)
def test_streak_table(store: Store, spec: dict[str, int], expected: int) -> None:
    for day, seconds in spec.items():
        if seconds:
            store.add(streak_day(day, seconds), "editor")
    svc = service(store, at("2026-08-22T20:00:00"))
    assert svc.snapshot()["streak"] == {
        "days": expected, "source": "local", "fetched_at": None, "age_seconds": None,
        "server_days": None, "local_days": expected,
    }  # fmt: skip


def test_streak_leaves_browsing_out_of_the_timeline(store: Store) -> None:
    # Yesterday: coding at 12:00 and 12:20 with browsing every minute between. All categories
    # give 20 minutes; the coding timeline alone has one 20-minute gap, capped at 120 s.
    t0 = at("2026-08-21T12:00:00")
    store.add([beat(t0), beat(t0 + 1200)] + [beat(t0 + 60 * i, category="browsing") for i in range(1, 20)], "editor")
    store.add(streak_day("2026-08-22", 1000, category="browsing"), "editor")  # today: browsing only
    store.add(streak_day("2026-08-20", 1000, category=None), "editor")  # null categories drop out too
    svc = service(store, at("2026-08-22T20:00:00"))
    with svc._read() as conn:
        assert Q.day_seconds(conn, dt.date(2026, 8, 21), dt.date(2026, 8, 21), D.zone(NY)) == {
            dt.date(2026, 8, 21): 1200
        }
    assert svc.snapshot()["streak"]["days"] == 0


@pytest.mark.parametrize(("start", "expected"), [("23:20:00", 31), ("23:30:00", 32)])
def test_streak_window_is_31_days_back_from_now(store: Store, start: str, expected: int) -> None:
    now = at("2026-08-22T23:30:00")
    store.add(streak_day("2026-08-22", 1000, start="10:00:00"), "editor")
    for back in range(1, 40):
        day = (dt.date(2026, 8, 22) - dt.timedelta(days=back)).isoformat()
        store.add(streak_day(day, 1000, start=start), "editor")
    # 31 days before now is 22 July 23:30: a session starting then is inside the window; one
    # starting at 23:20 keeps only its last 400 s there, short of 15 minutes.
    svc = service(store, now)
    assert svc.snapshot()["streak"]["days"] == expected
    assert oracle.streak_days(rows_of(store), D.zone(NY), now) == expected


def test_last_7_days_are_eight_local_calendar_days(store: Store) -> None:
    now = at("2026-08-22T15:00:00")
    store.add(
        [beat(at(t)) for t in ("2026-08-14T23:59:30", "2026-08-15T00:00:30", "2026-08-15T00:01:00")]
        + [beat(at(t)) for t in ("2026-08-22T14:00:00", "2026-08-22T14:01:40")],
        "editor",
    )
    svc = service(store, now)
    assert svc.local("7d")["total_seconds"] == 30 + 120 + 100
    last7 = svc.snapshot()["last_7_days"]
    assert [d["date"] for d in last7["days"]] == [f"2026-08-{d}" for d in range(15, 23)]
    assert last7["total_seconds"] == 250 and last7["source"] == "local" and last7["days_source"] == "local"
    assert last7["days_including_holidays"] == 2 and last7["daily_average"] == 125.0
    assert last7["categories"] == [{"name": "coding", "total_seconds": 250, "percent": 100.0}]


def test_daily_bars_credit_each_gap_to_the_earlier_heartbeats_project(store: Store) -> None:
    base = at("2026-08-22T09:00:00")
    store.add([beat(base, "A"), beat(base + 30, "B"), beat(base + 60, "A"), beat(base + 90, "B"),
               beat(base + 1000, "C")], "editor")  # fmt: skip
    days = service(store, base + 3600).snapshot()["last_7_days"]["days"]
    assert days[-1] == {
        "date": "2026-08-22",
        "total_seconds": 210,
        "projects": [{"name": "B", "total_seconds": 150}, {"name": "A", "total_seconds": 60}],
        "source": "local",
    }


def test_projects_have_languages_and_last_activity(store: Store) -> None:
    base = at("2026-08-22T09:00:00")
    store.add(
        [beat(base + i * 30, "web", language="TypeScript") for i in range(5)]
        + [beat(base + 150 + i * 30, "web", language="CSS") for i in range(1, 3)]
        + [beat(base + 900, "web", language=None)],
        "editor",
    )
    project = service(store, base + 3600).snapshot()["projects"][0]
    assert project == {
        "name": "web", "total_seconds": 120 + 60 + 30 + 120, "percent": 100.0,
        "languages": ["TypeScript", "CSS", "Python"],  # the last one named by its file, as the server does
        "last_activity": base + 900,
    }  # fmt: skip


def test_local_figures_shape(store: Store) -> None:
    base = at("2026-08-22T09:00:00")
    store.add([beat(base), beat(base + 60, ua=UA.replace("linux", "darwin"), machine="desk")], "editor")
    figures = service(store, base + 100).local("30d")
    assert figures["range"] == "30d" and figures["timezone"] == NY and figures["source"] == "local"
    assert figures["start"].startswith("2026-07-23T00:00:00") and figures["end"].startswith("2026-08-22T23:59:59")
    assert figures["editors"] == [{"name": "VSCode", "total_seconds": 60, "percent": 100.0}]
    # Each OS and each machine has one heartbeat, so 0 s: /api/v1/users/my/stats keeps such groups.
    assert figures["operating_systems"] == [
        {"name": "Linux", "total_seconds": 0, "percent": 0.0}, {"name": "macOS", "total_seconds": 0, "percent": 0.0}
    ]  # fmt: skip
    assert [m["name"] for m in figures["machines"]] == ["desk", "laptop"]
    assert figures["categories"] == [{"name": "coding", "total_seconds": 60, "percent": 100.0}]
    with pytest.raises(ValueError, match="range must be one of"):
        service(store, base).local("week")


def test_statusbar_without_a_server_is_local_and_in_hackatimes_shape(store: Store) -> None:
    base = at("2026-08-22T09:00:00")
    svc = service(store, base)
    assert svc.statusbar_today() == {"data": {"grand_total": {"text": "Start coding!", "total_seconds": 0}}}
    store.add([beat(base + i * 60) for i in range(84)], "editor")
    assert svc.statusbar_today() == {"data": {"grand_total": {"text": "1h 23m", "total_seconds": 4980}}}
    today = svc.snapshot()["today"]
    assert (today["source"], today["server_seconds"], today["local_seconds"]) == ("local", None, 4980)
    assert today["unsynced_heartbeats"] == 84 and today["unsynced_seconds"] == 4980


def test_timezone_falls_back_from_profile_to_given_to_system(store: Store) -> None:
    assert service(store, 0, "Asia/Kolkata").timezone() == "Asia/Kolkata"
    assert D.valid_zone(service(store, 0, "Mars/Base").timezone())
    store.cache_put("server.user", {"timezone": "Europe/London"})
    assert service(store, 0, "Asia/Kolkata").timezone() == "Europe/London"
    store.cache_put("server.user", {"timezone": ""})  # the server counts a blank zone as UTC
    assert service(store, 0, "Asia/Kolkata").timezone() == "UTC"


# ---- what the server has not seen ---------------------------------------------------------------


def settle_all(store: Store, ids: Sequence[int]) -> None:
    store.claim("hackatime", 10_000)
    store.settle("hackatime", sent=list(ids))


@pytest.mark.parametrize(
    ("known", "unsent", "expected"),
    [
        ([0, 60], [30], 0),  # inside a gap the server already bridges: adds nothing
        ([0, 60], [200], 120),  # after the last one: the capped gap to it
        ([0, 60, 300], [90, 100], 40),  # 60+30+10+120 with, 60+120 without
        ([], [0, 50], 50),
        ([100], [0], 100),  # before the first one
    ],
)
def test_unsynced_contribution_is_measured_against_what_the_server_has(
    store: Store, known: list[float], unsent: list[float], expected: float
) -> None:
    base = at("2026-08-22T09:00:00")
    sent = store.add([beat(base + o) for o in known], "editor")
    settle_all(store, [a.id for a in sent])
    store.add([beat(base + o) for o in unsent], "editor")
    mark = store.delivery_seq()  # a figure fetched once the first ones were sent
    found = M.added(store.reader(), "hackatime", base - 1000, base + 1000, mark, ("project",))
    assert (found.seconds, found.heartbeats) == (expected, len(unsent))
    assert found.groups["project"] == {"app": expected}  # one project: its timeline is the whole one


def test_claimed_after_the_server_figure_counts_as_unsynced_and_dead_letters_not_at_all(store: Store) -> None:
    base = at("2026-08-22T09:00:00")
    added = store.add([beat(base), beat(base + 60), beat(base + 90)], "editor")
    before = store.delivery_seq()  # a figure whose answer arrived before the claim
    store.claim("hackatime", 10)
    after = store.delivery_seq()  # one whose answer arrived once the batch was in flight
    store.settle("hackatime", sent=[added[0].id, added[1].id], dead=[(added[2].id, "rejected")])
    conn = store.reader()
    found = M.added(conn, "hackatime", base - 10, base + 100, before)
    assert (found.seconds, found.heartbeats) == (60.0, 2)
    found = M.added(conn, "hackatime", base - 10, base + 100, after)  # possibly in it: never added
    assert (found.seconds, found.heartbeats) == (0.0, 0)
    assert store.counts("hackatime").dead == 1


def test_a_projects_heartbeat_beyond_the_rows_read_still_bridges_its_missing_work(store: Store) -> None:
    """Per-project lists (LAG per project, §2): a project's nearest heartbeat more than two
    minutes from its missing work, past other projects' heartbeats, still adds its capped gap,
    before the work or after it; a dead letter there does not (the server never had it)."""
    base = at("2026-08-22T09:00:00")
    (refused,) = store.add([beat(base + 100, "gone")], "editor")
    store.claim("hackatime", 10)
    store.settle("hackatime", dead=[(refused.id, "rejected")])
    # app's and web's nearest heartbeats are hours away: found a few widening looks out.
    synced = store.add([beat(base - 10_000, "app"), beat(base + 600, "site"), beat(base + 900, "site"),
                        beat(base + 20_000, "web")], "editor")  # fmt: skip
    settle_all(store, [a.id for a in synced])
    offline = [(660, "app"), (690, "app"), (705, "gone"), (720, "web"), (750, "web")]
    store.add([beat(base + o, p) for o, p in offline], "editor")
    R.catch_up(store)  # as every read of the stats service does first
    found = M.added(store.reader(), "hackatime", base - 20_000, base + 30_000, store.delivery_seq(), ("project",))
    # The whole timeline gains 60 + 30 + 15 + 15 + 30 + 120 over the 120 from 600 to 900: 150.
    assert (found.seconds, found.heartbeats) == (150.0, 5)
    # app: -10,000 → 660 (120, capped) + 30; web: 30 + 750 → 20,000 (120, capped); gone: alone on the server.
    assert found.groups["project"] == {"app": 150.0, "web": 150.0, "gone": 0.0}


# ---- rollups under any arrival order ---------------------------------------------------------------

TZS = ["America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]
DAY0 = at("2026-03-06T00:00:00", "UTC")  # the windows below cross New York's DST change


def events() -> st.SearchStrategy[list[tuple[float, str | None, str | None, str | None]]]:
    """Heartbeats over ~9 days, clustered so that buckets hold many and gaps vary widely."""
    offset = st.one_of(
        st.integers(0, 9 * 86400).map(float),
        st.floats(0, 9 * 86400, allow_nan=False).map(lambda x: round(x, 2)),
        st.sampled_from([86400.0 * k + d for k in range(9) for d in (-0.5, 0, 899.5, 900, 14400, 19800, 18000)]),
    )
    cluster = st.tuples(offset, st.lists(st.floats(0, 400, allow_nan=False), min_size=1, max_size=12))
    fields = st.tuples(st.sampled_from(["a", "b", None]), st.sampled_from(["Go", "Rust", None]),
                       st.sampled_from(["coding", "coding", "browsing", None]))  # fmt: skip
    return st.lists(st.tuples(cluster, fields), min_size=1, max_size=12).map(
        lambda cs: [(max(0.0, c[0] + d), *f) for c, f in cs for d in c[1]]
    )


def check_against_oracle(store: Store, now: float, zone: str) -> None:
    tz = D.zone(zone)
    rows = rows_of(store)
    svc = service(store, now, zone)
    for range_ in ("today", "7d", "30d", "all"):
        figures = svc.local(range_)
        window = oracle.rows_between(rows, figures["start_ts"], figures["end_ts"])
        assert figures["total_seconds"] == oracle.duration_seconds(window), range_
        for key, column in (("projects", "project"), ("languages", "language"), ("categories", "category")):
            groups = oracle.grouped_duration_seconds(window, column)
            if (range_, key) == ("7d", "categories"):  # last_7_days: one "coding" row holding the total
                groups = {"coding": figures["total_seconds"]}
            if range_ in ("today", "7d"):  # last_7_days' lists: groups of 0 s dropped
                want = {D.display_name(column, k): v for k, v in groups.items() if v}
            else:  # /api/v1/users/my/stats' lists: every group, blank ones called "Other"
                want = {}
                for k, v in groups.items():
                    name = V.stats_name(column, k)
                    want[name] = want.get(name, 0) + v
            got: dict[str, int] = {}
            for e in figures[key]:
                got[e["name"]] = got.get(e["name"], 0) + e["total_seconds"]
            assert got == want, (range_, key)
    assert Q.streak_days(store.reader(), now, tz) == oracle.streak_days(rows, tz, now)
    first, last = D.local_date(min(r["time"] for r in rows), tz), D.local_date(now, tz)
    with svc._read() as conn:
        days = Q.day_seconds(conn, first, last, tz)
        lead = Q.lead_by_key(conn, Q.day_intervals(first, last, tz))
    want_days = {d: s for d, s in oracle.daily_durations(rows, tz).items() if first <= d <= last}
    assert {d: s for d, s in days.items()} == want_days
    assert set(lead) == {d for d in want_days}
    for day, credits in lead.items():
        members = [r for r in rows if D.local_date(r["time"], tz) == day]
        credited = oracle.lead_credits(members, "project")
        assert {R.dec(k): v for k, v in credits.items()} == credited, day


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.randoms(use_true_random=False), st.sampled_from(TZS), st.integers(1, 40))
def test_rollups_match_the_rules_whatever_the_arrival_order(
    evts: list[tuple[float, str | None, str | None, str | None]], rnd: random.Random, zone: str, bulk: int
) -> None:
    beats = [beat(DAY0 + o, p, language=lang, category=c) for o, p, lang, c in evts]
    rnd.shuffle(beats)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.db", synchronous="OFF") as store:
        store.set_destination("hackatime", "http://127.0.0.1:9")
        svc = service(store, DAY0 + 8.5 * 86400, zone)
        for i in range(0, len(beats), bulk):
            store.add(beats[i : i + bulk], "import")
            if rnd.random() < 0.5:  # folded in after some bulks, as the agent's stats thread does
                svc.prepare()
        check_against_oracle(store, DAY0 + 8.5 * 86400, zone)  # a query folds in the rest first
        stored = dump_rollups(store)
        R._rebuild(store)  # from scratch, walking the store: the same rows
        assert dump_rollups(store) == stored


def dump_rollups(store: Store) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {r[:3]: r[3:] for r in store.reader().execute("SELECT * FROM stats_rollup")}


def test_new_heartbeats_are_folded_in_before_a_query_and_by_prepare(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = DAY0 + 5 * 86400
    rnd = random.Random(4)
    beats = [beat(DAY0 + rnd.uniform(0, 5 * 86400), rnd.choice("xyz")) for _ in range(400)]
    store.add(beats[:150], "import")
    assert store.meta_get(R.MARK_KEY) == "0"  # storing never folds: the intake path stays lean
    svc = service(store, now)
    check_against_oracle(store, now, NY)  # the first query folds them in
    assert store.meta_get(R.MARK_KEY) == "150"
    store.add(beats[150:], "editor")
    assert svc.prepare() == 250 and store.meta_get(R.MARK_KEY) == "400"
    assert svc.prepare() == 0
    check_against_oracle(store, now, NY)
    incremental = dump_rollups(store)
    # The rebuild path (most of the store unfolded, e.g. right after the migration) walks the
    # store in chunks of whole buckets and gives the same rows.
    monkeypatch.setattr(R, "REBUILD_ROWS", 10)
    monkeypatch.setattr(R, "CHUNK_ROWS", 7)
    with store.transaction() as conn:
        conn.execute("DELETE FROM stats_rollup")
        conn.execute("UPDATE meta SET value = '0' WHERE key = ?", (R.MARK_KEY,))
    assert svc.prepare() == 400
    assert dump_rollups(store) == incremental


def test_one_huge_bucket_is_rebuilt_whole(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(R, "CHUNK_ROWS", 10)
    store.add([beat(DAY0 + i * 0.5, "p" if i % 3 else "q") for i in range(50)], "import")  # one bucket
    R._rebuild(store)
    check_against_oracle(store, DAY0 + 3600, "UTC")


def test_a_heartbeat_between_two_stored_ones_recomputes_its_bucket(store: Store) -> None:
    svc = service(store, DAY0 + 3600, "UTC")
    store.add([beat(DAY0 + 10, "a"), beat(DAY0 + 100, "b")], "editor")
    svc.prepare()
    store.add([beat(DAY0 + 50, "b")], "editor")  # lands inside: b's own timeline gains 50 s
    svc.prepare()
    store.add([beat(DAY0 + 5, "a"), beat(DAY0 + 200, "a")], "editor")  # before and after
    check_against_oracle(store, DAY0 + 3600, "UTC")
    rows = {(r[0], r[2]): r[3] for r in store.reader().execute("SELECT * FROM stats_rollup")}
    assert rows[(R.ALL, "")] == 5 + 40 + 50 + 100 and rows[(R.PROJECT, "b")] == 50


def test_names_with_nul_stand_for_null(store: Store) -> None:
    assert R.enc(None) == R.NULL and R.dec(R.NULL) is None and R.dec("") == ""
    assert R.unpair(R.pair(None, "")) == (None, "") and R.pair(None, "") != R.pair("", None)
    assert R.bucket_of(900.0) == 1 and R.bucket_of(899.9999999) == 0
