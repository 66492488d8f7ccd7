"""What the tray shows, from recorded status/stats answers: pure functions, no Qt, no agent."""

from __future__ import annotations

import pytest

from app import state
from app.state import IconState, NotificationTracker, PauseChoice, SyncState
from tests.gui import examples as ex

NOW = ex.NOW


@pytest.mark.parametrize(
    ("seconds", "text", "short"),
    [
        (0, "0 mins", "0m"),
        (59, "0 mins", "0m"),
        (60, "1 min", "1m"),
        (3600, "1 hr", "1h 00m"),
        (3660, "1 hr 1 min", "1h 01m"),
        (11520, "3 hrs 12 mins", "3h 12m"),
        (None, "—", "—"),
    ],
)
def test_durations_read_like_hackatime(seconds: float | None, text: str, short: str) -> None:
    assert state.format_duration(seconds) == text
    assert state.format_short(seconds) == short


@pytest.mark.parametrize(
    ("ago", "text"), [(10, "just now"), (180, "3 min ago"), (7200, "2 h ago"), (3 * 86400, "3 days ago")]
)
def test_ages(ago: float, text: str) -> None:
    assert state.format_ago(NOW - ago, NOW) == text
    assert state.format_ago(None, NOW) == "never"


@pytest.mark.parametrize(
    ("status", "available", "expected"),
    [
        (None, None, IconState(SyncState.STARTING)),
        (ex.status(), False, IconState(SyncState.AGENT_DOWN)),
        (ex.status(recording=True), False, IconState(SyncState.AGENT_DOWN)),  # nothing said is current
        (ex.status(), True, IconState(SyncState.SYNCED)),
        (ex.status(recording=True), True, IconState(SyncState.SYNCED, recording=True)),
        (ex.status(dest={"pending": 37}), True, IconState(SyncState.WAITING)),
        (ex.status(dest={"in_flight": 5}), True, IconState(SyncState.WAITING)),
        (ex.status(online=False, dest={"pending": 3}), True, IconState(SyncState.OFFLINE)),
        (ex.status(dest={"auth_state": "rejected", "pending": 3}), True, IconState(SyncState.KEY_REJECTED)),
        (ex.status(dest={"auth_state": "missing"}), True, IconState(SyncState.KEY_REJECTED)),
        # pause wins over every sync problem, and a paused agent is not recording
        (ex.status(paused_until=NOW + 60, recording=True, online=False), True, IconState(SyncState.PAUSED)),
        (ex.status(paused_until=NOW - 60), True, IconState(SyncState.SYNCED)),  # a pause that has run out
        # a rejected key is more urgent than being offline
        (ex.status(online=False, dest={"auth_state": "rejected"}), True, IconState(SyncState.KEY_REJECTED)),
    ],
)
def test_icon_state(status: dict | None, available: bool | None, expected: IconState) -> None:
    assert state.icon_state(status, available, NOW) == expected


def test_menu_for_a_normal_day() -> None:
    view = state.menu_view(ex.status(dest={"pending": 37}), ex.stats(), True, NOW)
    assert view.info == ["Today: 3 hrs 12 mins", "Goal: 64 % of 5 hrs", "Streak: 12 days"]
    # today's projects come from the last day of the week, biggest first, top three
    assert view.projects == ["hackatime-desktop · 2 hrs 32 mins", "dotfiles · 30 mins", "notes · 10 mins"]
    assert view.sync == ["37 heartbeats waiting · last synced 3 min ago"]
    assert view.can_act and not view.paused
    assert view.web_url == "https://hackatime.hackclub.com/"
    assert view.log_dir == "/data/logs"


def test_menu_when_stuck_says_why() -> None:
    failing = ex.status(
        dest={
            "pending": 12,
            "last_error": "Hackatime answered 503",
            "last_error_at": NOW - 30,
            "backoff_until": NOW + 40,
        }
    )
    assert state.menu_view(failing, None, True, NOW).sync == [
        "12 heartbeats waiting · Hackatime answered 503 · retrying in 40 s"
    ]
    rejected = ex.status(dest={"auth_state": "rejected", "pending": 5})
    assert state.sync_lines(rejected, True, NOW) == ["API key rejected · 5 heartbeats kept until it is fixed"]
    offline = ex.status(online=False, dest={"pending": 1})
    assert state.sync_lines(offline, True, NOW)[0].startswith("Offline")
    dead = ex.status(dest={"dead": 2})
    assert state.sync_lines(dead, True, NOW)[-1] == "2 heartbeats refused by Hackatime · see the dashboard"


def test_menu_without_agent_or_goal() -> None:
    view = state.menu_view(None, None, False, NOW, error="the agent is not answering (connection refused)")
    assert view.info == ["Today: —"]
    assert view.sync == ["The Hackatime agent is not running"]
    assert state.menu_view(None, None, False, NOW, error="the agent did not answer within 10 s").sync == [
        "The Hackatime agent is not answering"
    ]
    assert not view.can_act
    no_goal = ex.stats(goal=None)
    assert state.goal_line(no_goal) is None
    assert state.goal_fraction(no_goal) is None


def test_tooltip_puts_today_first() -> None:
    assert state.tooltip(ex.status(), ex.stats(), True, NOW) == "Hackatime · today 3 hrs 12 mins · 64 % of 5 hrs goal"
    assert state.tooltip(ex.status(dest={"pending": 2}), ex.stats(goal=None), True, NOW) == (
        "Hackatime · today 3 hrs 12 mins\n2 heartbeats waiting to sync"
    )
    assert state.tooltip(None, None, False, NOW) == "Hackatime · today —\nThe Hackatime agent is not running"


@pytest.mark.parametrize(
    ("api_url", "web"),
    [
        ("https://hackatime.hackclub.com/api/hackatime/v1", "https://hackatime.hackclub.com/"),
        ("http://127.0.0.1:8080/api/hackatime/v1", "http://127.0.0.1:8080/"),
        ("https://example.org/wakapi/api/compat/wakatime/v1", "https://example.org/wakapi/"),
        (None, state.DEFAULT_WEB_URL),
        ("not a url", state.DEFAULT_WEB_URL),
    ],
)
def test_web_url(api_url: str | None, web: str) -> None:
    assert state.web_url(api_url) == web


def test_pause_choices() -> None:
    assert state.pause_until(PauseChoice.HALF_HOUR, NOW) == NOW + 1800
    assert state.pause_until(PauseChoice.HOUR, NOW) == NOW + 3600
    # The agent works out the next local midnight (tests/test_jobs.py covers DST).
    assert state.pause_until(PauseChoice.TOMORROW, NOW) == "tomorrow"


def test_source_captions() -> None:
    assert state.source_caption("server", NOW - 180, None, NOW) == "From Hackatime · 3 min old"
    assert state.source_caption("local", None, NOW, NOW) == "Local estimate · updated just now"
    # A merged figure says it includes the extra, and whether that is still waiting or sent since
    assert state.source_caption("server+local", NOW - 120, NOW, NOW, 720, pending=True) == (
        "From Hackatime (2 min old) · includes 12 mins not yet synced"
    )
    assert state.source_caption("server+local", NOW - 120, NOW, NOW, 720, pending=False) == (
        "From Hackatime (2 min old) · includes 12 mins synced since then"
    )
    # Under a minute is said as such: "includes activity synced since" did not say how much
    assert state.source_caption("server+local", NOW, NOW, NOW, 30, pending=True) == (
        "From Hackatime (updated just now) · includes under 1 min not yet synced"
    )


@pytest.mark.parametrize(
    ("tracked", "target", "percent"),
    [(3630, 6000, 61), (3629, 6000, 60), (3, 200, 2), (5, 1000, 1), (7200, 3600, 100), (0, 3600, 0)],
)
def test_goal_percent_is_one_figure_rounded_like_hackatime(tracked: int, target: int, percent: int) -> None:
    """min(round(tracked / target · 100), 100), halves away from zero, and the same string everywhere."""
    goal = {"target_seconds": target, "tracked_seconds": tracked, "complete": tracked >= target}
    stats = ex.stats(goal=goal)
    assert state.goal_percent(stats) == percent
    if tracked < target:
        assert f"Goal: {percent} % of " in state.menu_view(ex.status(), stats, True, NOW).info[1]
    assert f" · {percent} % of " in state.tooltip(ex.status(), stats, True, NOW)
    # the agent's own completion_percent wins where it sent one
    assert state.goal_percent(ex.stats(goal={**goal, "completion_percent": 42})) == 42


@pytest.mark.parametrize(
    ("error", "words", "offline"),
    [
        (
            "network error: ConnectError: [Errno 111] Connection refused",
            "Can't reach Hackatime (connection refused)",
            0,
        ),
        ("network error: ReadTimeout: timed out", "Can't reach Hackatime (no answer in time)", 0),
        ("network error: RemoteProtocolError: Server disconnected", "Can't reach Hackatime (connection closed)", 0),
        ("network error: ConnectError: [Errno -3] Temporary failure in name resolution", "Offline", 1),
        ("network error: ConnectError: [Errno 101] Network is unreachable", "Offline", 1),
        ("the server answered HTTP 502 (bad gateway)", "Hackatime answered with an error (HTTP 502)", 0),
        ("rate limited by the server (HTTP 429); retrying in 30 s", "Hackatime asked to slow down", 0),
    ],
)
def test_errors_read_as_words(error: str, words: str, offline: bool) -> None:
    assert state.readable_error(error).startswith(words)
    assert "Errno" not in state.readable_error(error) and "Error:" not in state.readable_error(error)
    failing = ex.status(
        online=False, dest={"pending": 3, "last_error": error, "last_error_at": NOW - 5, "backoff_until": NOW + 26}
    )
    lines = state.sync_lines(failing, True, NOW)
    # "Offline" only when the network is down, not when one server refuses
    assert lines[0].startswith("Offline") == offline
    assert lines[-1].endswith("· retrying in 26 s")
    tip = state.tooltip(failing, None, True, NOW)
    assert ("Offline — heartbeats kept" in tip) == offline


def test_no_all_synced_beside_unsynced_work() -> None:
    """The sync line and today's caption read the same status: never "All synced" beside "not yet synced"."""
    for status in (ex.status(), ex.status(dest={"pending": 4}), ex.status(dest={"in_flight": 2})):
        pending = state.unsynced_pending(status)
        caption = state.source_caption("server+local", NOW - 60, NOW, NOW, 540, pending=pending)
        lines = state.sync_lines(status, True, NOW)
        assert not ("not yet synced" in caption and any(line.startswith("All synced") for line in lines))
        assert ("not yet synced" in caption) == pending


def test_notifications_fire_on_transitions_only() -> None:
    tracker = NotificationTracker(long_offline_s=600)
    ok = ex.status()
    assert tracker.on_status(ok, NOW) == []
    rejected = ex.status(dest={"auth_state": "rejected"})
    [notice] = tracker.on_status(rejected, NOW)
    assert notice.kind == "key-rejected" and notice.warning
    assert notice.message.startswith("Hackatime refused the API key.")  # the name as people write it
    assert tracker.on_status(rejected, NOW + 5) == []  # a steady state never repeats

    # back online after a long outage: one notice once the backlog is delivered, with the count
    tracker = NotificationTracker(long_offline_s=600)
    tracker.on_status(ex.status(online=False, dest={"sent": 100, "pending": 40}), NOW)
    assert tracker.on_status(ex.status(online=True, dest={"sent": 120, "pending": 20}), NOW + 700) == []
    [back] = tracker.on_status(ex.status(online=True, dest={"sent": 140, "pending": 0}), NOW + 710)
    assert back.kind == "back-online" and back.message == "40 heartbeats delivered to Hackatime."
    assert tracker.on_status(ex.status(online=True, dest={"sent": 140}), NOW + 720) == []

    # a short outage is routine: no notice
    tracker = NotificationTracker(long_offline_s=600)
    tracker.on_status(ex.status(online=False, dest={"sent": 100, "pending": 4}), NOW)
    assert tracker.on_status(ex.status(online=True, dest={"sent": 104}), NOW + 60) == []


def test_a_full_disk_is_said_in_the_menu_and_tooltip_and_notified_once() -> None:
    full = ex.status(disk_full=True, dest={"pending": 3})
    assert state.DISK_FULL_LINE in state.sync_lines(full, True, NOW)
    assert "Disk full" in state.tooltip(full, ex.stats(), True, NOW)
    tracker = NotificationTracker()
    assert tracker.on_status(ex.status(disk_full=False), NOW) == []
    [notice] = tracker.on_status(full, NOW + 5)
    assert notice.kind == "disk-full" and notice.warning and "Free some space" in notice.message
    assert tracker.on_status(full, NOW + 10) == []  # a steady state never repeats
    room = ex.status(disk_full=False)
    assert tracker.on_status(room, NOW + 15) == []
    assert state.DISK_FULL_LINE not in state.sync_lines(room, True, NOW)
    assert "Disk full" not in state.tooltip(room, ex.stats(), True, NOW)


def test_goal_notification_only_when_reached_while_watching() -> None:
    tracker = NotificationTracker()
    reached = {"target_seconds": 3600, "tracked_seconds": 3700, "completion_percent": 100, "complete": True}
    assert tracker.on_stats(ex.stats(goal=reached)) == []  # reached before the app started: old news
    tracker = NotificationTracker()
    assert tracker.on_stats(ex.stats()) == []
    [notice] = tracker.on_stats(ex.stats(goal=reached))
    assert notice.kind == "goal-reached" and "1 hr 1 min" in notice.message
    assert tracker.on_stats(ex.stats(goal=reached)) == []


def test_top_with_other() -> None:
    assert state.top_with_other([("a", 5), ("b", 3), ("c", 1), ("d", 1)], 2) == [("a", 5), ("b", 3), ("Other", 2)]
    assert state.top_with_other([("a", 5)], 2) == [("a", 5)]


def test_agent_notices_pop_up_once_and_stored_ones_are_pointed_to_from_the_menu() -> None:
    recovered = {"id": 7, "time": NOW - 60, "level": "error", "message": "The local database was damaged (…)."}
    key_source = {"id": None, "time": None, "level": "warning", "message": "~/.wakatime.cfg could not be read"}
    disk = {"id": None, "time": NOW, "level": "error", "message": "The disk holding /data is full: …"}
    tracker = NotificationTracker()
    status = ex.status(notices=[recovered, key_source])
    popups = tracker.on_status(status, NOW)
    assert [(n.kind, n.title, n.message, n.warning) for n in popups] == [
        ("agent-notice", "Hackatime agent: problem", recovered["message"], True),
        ("agent-notice", "Hackatime agent: warning", key_source["message"], True),
    ]
    for t in range(1, 20):  # a refresh every few seconds never repeats either
        assert tracker.on_status(status, NOW + 3 * t) == []
    assert tracker.on_status(ex.status(notices=[key_source]), NOW + 70) == []  # dismissed: nothing
    # a full disk has its own notice, never a second one from the list
    [full] = tracker.on_status(ex.status(disk_full=True, notices=[disk]), NOW + 80)
    assert full.kind == "disk-full"
    # a new stored notice pops up once
    later = {**recovered, "id": 8, "message": "Another one"}
    [again] = tracker.on_status(ex.status(notices=[later]), NOW + 90)
    assert again.message == "Another one"

    assert state.menu_view(status, ex.stats(), True, NOW).notices == "1 notice from the agent — see Sync"
    two = ex.status(notices=[recovered, later, key_source])
    assert state.notices_line(two) == "2 notices from the agent — see Sync"
    assert "2 notices from the agent" in state.tooltip(two, ex.stats(), True, NOW)
    assert state.notices_line(ex.status(notices=[key_source, disk])) is None  # only stored ones wait for a dismiss
    assert state.menu_view(ex.status(), ex.stats(), True, NOW).notices is None
