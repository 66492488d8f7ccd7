"""The pure rules of hackatime-api.md §2, §3 and §4.5, against hand-computed tables and the
reference formula of §2."""

from __future__ import annotations

import datetime as dt
import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.stats import durations as D

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def reference_seconds(times: list[float], timeout: float = 120) -> int:
    """hackatime-api.md §2, verbatim: the client-side reference for the statusbar."""
    ts = sorted(times)
    total = 0.0
    for prev, cur in zip(ts, ts[1:]):  # noqa: B905, RUF007 - the document's code, as written there
        total += min(cur - prev, timeout)
    return int(round(total))  # noqa: RUF046


# ---- §2 durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offsets", "expected"),
    [
        ([], 0),
        ([0], 0),  # the first heartbeat contributes nothing, nor does anything after the last
        ([0, 30], 30),
        ([0, 120], 120),
        ([0, 121], 120),  # a gap over the timeout is capped ...
        ([0, 3600], 120),  # ... not dropped: an hour's idle still adds 120 s
        ([0, 0, 0], 0),  # identical timestamps add nothing
        ([0, 10, 10, 20], 20),
        ([20, 0, 10], 20),  # order of arrival does not matter
        ([0, 60, 600, 610, 7200], 60 + 120 + 10 + 120),
        ([0, 0.5], 0),  # 0.5 rounds to even: 0
        ([0, 1.5], 2),  # 1.5 rounds to even: 2
        ([0, 2.5], 2),  # 2.5 rounds to even: 2
        ([0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5], 2),
        ([0, 100.4, 100.8], 101),
    ],
)
def test_duration_table(offsets: list[float], expected: int) -> None:
    times = [T0 + o for o in offsets]
    assert D.duration_seconds(times) == expected
    assert reference_seconds(times) == expected


def test_group_totals_are_separate_timelines_and_can_exceed_the_total() -> None:
    # §2's own example: A@0, B@30, A@60, B@90.
    rows = [(T0, "A"), (T0 + 30, "B"), (T0 + 60, "A"), (T0 + 90, "B")]
    assert D.duration_seconds(t for t, _ in rows) == 90
    assert D.grouped_seconds(rows) == {"A": 60.0, "B": 60.0}


def test_lead_credits_add_up_to_the_total() -> None:
    rows = [(T0, "A"), (T0 + 30, "B"), (T0 + 60, "A"), (T0 + 90, "B"), (T0 + 400, "C")]
    # A→B 30 to A, B→A 30 to B, A→B 30 to A, B→C capped 120 to B; C is last and gets 0.
    assert D.lead_credits(rows) == {"A": 60.0, "B": 150.0, "C": 0.0}
    assert sum(D.lead_credits(rows).values()) == D.capped_sum([t for t, _ in rows])


def test_spans_carry_the_capped_trailing_gap_and_add_up() -> None:
    times = [T0, T0 + 10, T0 + 20, T0 + 500, T0 + 510, T0 + 510]
    spans = D.spans(times)
    assert [(s.start_time - T0, s.end_time - T0, s.duration) for s in spans] == [(0, 140, 140), (500, 510, 10)]
    assert sum(s.duration for s in spans) == D.capped_sum(times) == 150
    assert D.spans([T0]) == []  # a lone heartbeat is an empty span, dropped
    assert D.spans([]) == []


def test_segments_join_with_the_capped_gap_between_them() -> None:
    a = D.seg_of([T0, T0 + 50])
    b = D.seg_of([T0 + 300, T0 + 310])
    assert a is not None and b is not None
    joined = a.then(b)
    assert (joined.span, joined.first, joined.last, joined.count) == (50 + 120 + 10, T0, T0 + 310, 4)
    assert D.join([]) is None
    assert D.seg_of([]) is None


# ---- §3 streak ------------------------------------------------------------------------------

TODAY = dt.date(2026, 8, 22)


def days_back(*seconds: int) -> dict[dt.date, int]:
    """Per-day totals: today first, then yesterday, and so on."""
    return {TODAY - dt.timedelta(days=i): s for i, s in enumerate(seconds)}


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (days_back(), 0),
        (days_back(900), 1),
        (days_back(899), 0),
        (days_back(900, 900, 900, 0, 900), 3),
        (days_back(0, 900, 900), 2),  # today not yet 15 min: counted from yesterday
        (days_back(100, 1000, 5000, 900), 3),
        (days_back(900, 0, 900, 900), 1),  # broken yesterday: only today
        (days_back(0, 0, 900, 900), 0),  # neither today nor yesterday: no streak
        (days_back(*([3600] * 32)), 32),
        ({**days_back(900), TODAY + dt.timedelta(days=1): 5000}, 1),  # a future day never counts
    ],
)
def test_streak_table(days: dict[dt.date, int], expected: int) -> None:
    assert D.streak(days, TODAY) == expected


@pytest.mark.parametrize(
    ("category", "counts"), [("coding", True), ("debugging", True), ("browsing", False), (None, False)]
)
def test_streak_leaves_out_browsing_and_null_categories(category: str | None, counts: bool) -> None:
    assert D.streak_eligible(category) is counts


# ---- local days -----------------------------------------------------------------------------


def utc(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


@pytest.mark.parametrize(
    ("zone", "day", "start_utc", "hours"),
    [
        ("UTC", dt.date(2026, 3, 8), "2026-03-08T00:00:00", 24),
        ("America/New_York", dt.date(2026, 3, 8), "2026-03-08T05:00:00", 23),  # spring forward
        ("America/New_York", dt.date(2026, 11, 1), "2026-11-01T04:00:00", 25),  # fall back
        ("Asia/Kolkata", dt.date(2026, 8, 22), "2026-08-21T18:30:00", 24),
        ("Asia/Kathmandu", dt.date(2026, 8, 22), "2026-08-21T18:15:00", 24),
        ("Australia/Lord_Howe", dt.date(2026, 10, 4), "2026-10-03T13:30:00", 23.5),  # a 30-minute change
        # Chile skips midnight in September: the day starts at 01:00, the moment of the change.
        ("America/Santiago", dt.date(2026, 9, 6), "2026-09-06T04:00:00", 23),
    ],
)
def test_day_window_has_integer_bounds(zone: str, day: dt.date, start_utc: str, hours: float) -> None:
    tz = D.zone(zone)
    start, end = D.day_window(day, tz)
    assert start == utc(start_utc)
    assert end == start + int(hours * 3600) - 1  # end_of_day.to_i: 23:59:59, so 23:59:59.5 is outside
    assert D.local_date(start, tz) == day and D.local_date(end, tz) == day
    assert D.local_date(start - 1, tz) == day - dt.timedelta(days=1)


def test_last_7_days_window_is_eight_local_days() -> None:
    tz = D.zone("America/New_York")
    now = utc("2026-03-10T16:00:00")  # Tuesday; the window reaches back over the DST change
    lo, hi, first, today = D.last_days_window(now, tz, 7)
    assert (first, today) == (dt.date(2026, 3, 3), dt.date(2026, 3, 10))
    assert lo == utc("2026-03-03T05:00:00")
    assert hi == utc("2026-03-11T04:00:00") - 1
    assert hi - lo + 1 == 8 * 86400 - 3600


def brute_force_pieces(first: dt.date, last: dt.date, tz: object, step: int) -> None:
    """Every sampled instant of the covered range lies in the piece of its local date."""
    pieces = D.day_pieces(first, last, tz)  # type: ignore[arg-type]
    assert all(a < b for a, b, _ in pieces)
    assert all(p[1] <= q[0] for p, q in itertools.pairwise(pieces))
    lo, hi = pieces[0][0], pieces[-1][1]
    for t in range(lo - 3 * 3600, hi + 3 * 3600, step):
        date = D.local_date(t, tz)  # type: ignore[arg-type]
        inside = [p for p in pieces if p[0] <= t < p[1]]
        if first <= date <= last:
            assert len(inside) == 1 and inside[0][2] == date, (t, date, inside)
        else:
            assert not inside, (t, date, inside)


def test_a_day_can_own_two_stretches_when_the_clock_falls_back_over_midnight() -> None:
    # Until 2010 Goose Bay fell back at 00:01 to 23:01, so 23:01-23:59 of the previous date
    # happened again after midnight: DATE_TRUNC gives those minutes to the earlier date.
    tz = D.zone("America/Goose_Bay")
    pieces = D.day_pieces(dt.date(2006, 10, 28), dt.date(2006, 10, 29), tz)
    assert [p[2] for p in pieces] == [dt.date(2006, 10, 28), dt.date(2006, 10, 29), dt.date(2006, 10, 28),
                                      dt.date(2006, 10, 29)]  # fmt: skip
    brute_force_pieces(dt.date(2006, 10, 27), dt.date(2006, 10, 30), tz, 60)


@pytest.mark.parametrize(
    ("zone", "first"),
    [
        ("America/New_York", dt.date(2026, 3, 6)),
        ("America/New_York", dt.date(2026, 10, 30)),
        ("America/Santiago", dt.date(2026, 9, 4)),
        ("America/Santiago", dt.date(2026, 4, 3)),
        ("Australia/Lord_Howe", dt.date(2026, 10, 2)),
        ("Asia/Kolkata", dt.date(2026, 8, 20)),
        ("America/St_Johns", dt.date(2006, 10, 27)),
        ("Pacific/Apia", dt.date(2011, 12, 28)),  # Samoa skipped 30 December 2011 altogether
    ],
)
def test_day_pieces_match_local_dates_instant_by_instant(zone: str, first: dt.date) -> None:
    brute_force_pieces(first, first + dt.timedelta(days=4), D.zone(zone), 113)


def test_an_unknown_or_blank_zone_is_utc_as_on_the_server() -> None:
    assert D.zone("Mars/Olympus_Mons").key == "UTC"
    assert D.zone("").key == "UTC"
    assert D.zone(None).key == "UTC"
    assert D.zone("Europe/London").key == "Europe/London"
    assert not D.valid_zone("Mars/Olympus_Mons") and not D.valid_zone(" ") and not D.valid_zone(3)
    assert D.valid_zone("Asia/Kolkata")


# ---- §4.5 text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "goal", "mode", "text"),
    [
        (0, None, "simple_text", "Start coding!"),
        (1, None, "simple_text", "0m"),
        (59, None, "simple_text", "0m"),
        (60, None, "simple_text", "1m"),
        (300, None, "simple_text", "5m"),
        (3600, None, "simple_text", "1h"),
        (5400, None, "simple_text", "1h 30m"),
        (4980, 7200, "simple_text", "1h 23m / 2h goal"),
        (0, 1800, "simple_text", "Start coding! / 30m goal"),
        (0, None, "clock_emoji", "🕛"),
        (1799, None, "clock_emoji", "🕛"),
        (1800, None, "clock_emoji", "🕧"),
        (3600, None, "clock_emoji", "🕐"),
        (24 * 1800, None, "clock_emoji", "🕛"),
    ],
)
def test_statusbar_text(seconds: int, goal: int | None, mode: str, text: str) -> None:
    assert D.statusbar_text(seconds, mode=mode, goal_seconds=goal) == text


@pytest.mark.parametrize(
    ("text", "mode", "goal", "flavour"),
    [
        ("1h 23m / 2h goal", "simple_text", True, "1h 23m"),
        ("Start coding!", "simple_text", False, "Start coding!"),
        ("0m", "simple_text", False, "0m"),
        ("🕐", "clock_emoji", False, "🕐"),
        ("🕐 / 2h goal", "clock_emoji", True, "🕐"),
        ("You're doing great!", "compliment_text", False, "You're doing great!"),
    ],
)
def test_text_mode_is_read_back_from_the_servers_text(text: str, mode: str, goal: bool, flavour: str) -> None:
    assert D.text_mode(text) == (mode, goal, flavour)


def test_compliments_keep_the_servers_words() -> None:
    assert D.statusbar_text(4000, mode="compliment_text", flavour="Nice work!") == "Nice work!"


@pytest.mark.parametrize(
    ("target", "tracked", "percent", "complete"),
    [(7200, 4980, 69, False), (7200, 7200, 100, True), (7200, 9000, 100, True), (200, 1, 1, False), (600, 3, 1, False),
     (600, 2, 0, False)],
)  # fmt: skip
def test_goal_percent_rounds_halves_up_like_ruby(target: int, tracked: int, percent: int, complete: bool) -> None:
    # 1/200 = 0.5 % → Ruby rounds to 1 where Python's round() would give 0.
    assert D.goal_figures(target, tracked) == {
        "target_seconds": target,
        "tracked_seconds": tracked,
        "completion_percent": percent,
        "complete": complete,
    }


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("editor", "vscode", "VSCode"),
        ("editor", "neovim", "Neovim"),
        ("editor", None, "Unknown"),
        ("operating_system", "darwin", "macOS"),
        ("operating_system", "linux", "Linux"),
        ("project", None, "unknown"),
        ("project", "  ", "unknown"),
        ("project", "hackatime", "hackatime"),
        ("language", "Python", "Python"),
    ],
)
def test_display_names(column: str, value: str | None, shown: str) -> None:
    assert D.display_name(column, value) == shown


def test_ruby_round() -> None:
    assert D.ruby_round(0.5) == 1 and D.ruby_round(1.5) == 2 and D.ruby_round(2.5) == 3
    assert D.ruby_round(12.345, 2) == 12.35 and D.ruby_round(-0.5) == -1
    assert D.percent_of(1, 3) == 33.33 and D.percent_of(5, 0) == 0.0


# ---- properties against the §2 formula --------------------------------------------------------

# Times as the store holds them: floats in [1e9, 2e9) with sub-second parts, clustered so that
# duplicates, short gaps and long gaps all occur.
offsets = st.one_of(
    st.integers(0, 600).map(float),
    st.floats(0, 600, allow_nan=False).map(lambda x: round(x, 3)),
    st.floats(0, 600, allow_nan=False),
    st.integers(0, 86400).map(float),
)
timelines = st.tuples(st.floats(1e9, 1.99e9, allow_nan=False), st.lists(offsets, max_size=60)).map(
    lambda args: sorted(args[0] + o for o in args[1])
)


@given(timelines)
def test_duration_is_the_reference_formula(times: list[float]) -> None:
    assert D.duration_seconds(times) == reference_seconds(times)


@given(timelines)
def test_float_sums_are_exact(times: list[float]) -> None:
    """Why rollups can be summed in any grouping: every partial sum is the exact real sum."""
    exact = sum((min(Fraction(b) - Fraction(a), Fraction(120)) for a, b in itertools.pairwise(times)), Fraction(0))
    assert Fraction(D.capped_sum(times)) == exact
    assert Fraction(D.capped_sum(times[::-1][::-1])) == exact


@given(timelines, st.lists(st.integers(0, 60), max_size=6))
def test_joined_segments_equal_one_timeline(times: list[float], cuts: list[int]) -> None:
    bounds = sorted({min(c, len(times)) for c in cuts} | {0, len(times)})
    parts = [times[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    joined = D.join(seg for seg in (D.seg_of(p) for p in parts) if seg is not None)
    if not times:
        assert joined is None
        return
    assert joined is not None
    assert joined.span == D.capped_sum(times)  # bit for bit, not approximately
    assert D.to_seconds(joined.span) == reference_seconds(times)
    assert (joined.first, joined.last, joined.count) == (times[0], times[-1], len(times))


groups = st.lists(st.tuples(offsets, st.sampled_from(["a", "b", "c", None])), max_size=60)


@given(st.floats(1e9, 1.99e9, allow_nan=False), groups)
def test_group_totals_partition_the_timeline(base: float, rows: list[tuple[float, str | None]]) -> None:
    ordered = sorted(((base + o, g) for o, g in rows), key=lambda r: r[0])
    got = {k: D.to_seconds(v) for k, v in D.grouped_seconds(ordered).items()}
    want = {g: reference_seconds([t for t, h in ordered if h == g]) for g in {g for _, g in ordered}}
    assert got == want


@given(st.floats(1e9, 1.99e9, allow_nan=False), groups)
def test_lead_credits_go_to_the_earlier_heartbeat(base: float, rows: list[tuple[float, str | None]]) -> None:
    ordered = sorted(((base + o, g) for o, g in rows), key=lambda r: r[0])
    want: dict[str | None, float] = {g: 0.0 for _, g in ordered}
    for (t0, g0), (t1, _) in itertools.pairwise(ordered):
        want[g0] += min(t1 - t0, 120)
    assert D.lead_credits(ordered) == want
    assert sum(D.lead_credits(ordered).values()) == D.capped_sum([t for t, _ in ordered])


@given(st.dictionaries(st.integers(-3, 40), st.integers(0, 2000), max_size=40))
def test_streak_is_the_walk_back(spec: dict[int, int]) -> None:
    days = {TODAY - dt.timedelta(days=k): v for k, v in spec.items()}
    start = 0 if spec.get(0, 0) >= 900 else 1
    want = 0
    while spec.get(start + want, 0) >= 900:
        want += 1
    assert D.streak(days, TODAY) == want


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(["America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Lord_Howe", "America/Santiago",
                     "Pacific/Chatham", "America/Havana", "UTC"]),
    st.dates(dt.date(2001, 9, 10), dt.date(2033, 5, 1)),
)  # fmt: skip
def test_day_pieces_property(zone: str, first: dt.date) -> None:
    brute_force_pieces(first, first + dt.timedelta(days=2), D.zone(zone), 599)
