"""The server's own figures, fetched with just an API key and cached in the store.

Endpoints (hackatime-api.md): ``users/current`` (profile timezone, §4.7),
``users/current/statusbar/today`` (§4.5), ``users/current/stats/last_7_days`` (§4.6),
``users/current/summaries`` for the daily bars (§4.8) and ``/api/v1/users/my/stats`` for the
streak and all-time languages and projects (§5.4). Each answer is checked before it replaces
the cached one: a 401, a 5xx, a network error or a body that is not what the server sends
leaves the cache as it was, so the tray keeps showing the last known figure with its age.

The cached figures say which local day they were fetched on: a "today" fetched yesterday is
about another day and is not used as today's figure.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from agent.store.store import Store

from . import durations as D
from .server_answers import (
    parse_last_7_days,
    parse_oauth_hours,
    parse_oauth_me,
    parse_oauth_projects,
    parse_oauth_streak,
    parse_stats,
    parse_statusbar,
    parse_summaries,
    parse_user,
)

log = logging.getLogger(__name__)

USER, STATUSBAR, STATS, STATS_30D, LAST7, SUMMARIES = (
    "server.user", "server.statusbar_today", "server.stats", "server.stats_30d", "server.last_7_days",
    "server.summaries",
)  # fmt: skip
ORDER = (USER, STATUSBAR, STATS, STATS_30D, LAST7, SUMMARIES)  # the profile first: it says which day "today" is
INTERVALS = {USER: 1800.0, STATUSBAR: 120.0, STATS: 600.0, STATS_30D: 600.0, LAST7: 600.0, SUMMARIES: 600.0}
FLOOR = {USER: 60.0, STATUSBAR: 120.0, STATS: 60.0, STATS_30D: 60.0, LAST7: 60.0, SUMMARIES: 60.0}  # even forced
# With "Sign in with Hackatime" (an OAuth token, read scope), /api/v1/authenticated/* adds what the key
# cannot give (§5.3): every project of all time with the archived ones (flagged) and their last activity,
# the all-time total without /stats' 10-year window, and the streak from its own endpoint. Used only
# while the token's account (``/me``) is the key's (``users/current``): a key replaced by another
# account's never shows the signed-in account's figures.
O_ME, O_STREAK, O_PROJECTS, O_HOURS = (
    "server.oauth_me",
    "server.oauth_streak",
    "server.oauth_projects",
    "server.oauth_hours",
)
OAUTH_ORDER = (O_ME, O_STREAK, O_PROJECTS, O_HOURS)
INTERVALS.update({O_ME: 1800.0, O_STREAK: 600.0, O_PROJECTS: 600.0, O_HOURS: 600.0})
FLOOR.update({O_ME: 60.0, O_STREAK: 60.0, O_PROJECTS: 60.0, O_HOURS: 60.0})
ALL_TIME_FROM = "2000-01-01"  # /hours from here: all time (the server takes any date; it has none older)
YEAR_DAYS = 365  # the summaries fetch: a year of days ending today, one request (at most 366 allowed, §4.8)
STYLE_KEY = "statusbar_style"  # meta: the user's statusbar text type and day goal, as last seen
RETRY_AFTER_FAILURE = 120.0
DEFAULT_RETRY_AFTER = 60.0


class StatsClient(Protocol):
    """What this module needs of ``agent.delivery.hackatime.HackatimeClient``."""

    def get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response: ...

    def get_root(
        self, path: str, params: dict[str, Any] | None = None, *, token: str | None = None
    ) -> httpx.Response: ...


class _Stop(Exception):
    """The server is unreachable, refusing the key or throttling: stop this round."""


def merge_today(server: int | None, local: int, unsynced: float) -> tuple[int, str]:
    """Today's figure from the server's and this machine's.

    ``max(server, local, round(server + unsynced))``, where ``unsynced`` is what this machine's
    heartbeats the server had not counted add to the server's timeline (``stats.unsynced``).
    Never lower than either figure alone; no heartbeat counted twice, because the unsynced
    contribution is measured against the heartbeats the server already has (a gap they
    already bridge is not added again). With other machines coding at the same moment it can
    overestimate by at most their overlap, and the next fetch corrects it.
    """
    if server is None:
        return local, "local"
    total = max(server, local, D.to_seconds(server + unsynced))
    return total, ("server" if total == server else "server+local")


@dataclass(frozen=True)
class Cached:
    value: dict[str, Any]
    fetched_at: float

    @property
    def reach_mark(self) -> int:
        """The store's claims counter when the answer had arrived: deliveries claimed later
        (``reach_seq`` above it) cannot be in this figure. 0 for figures cached before the
        counter existed, which predate every stamped claim."""
        return int(self.value.get("reach_mark", 0))

    @property
    def total_seconds(self) -> int:
        return int(self.value["total_seconds"])

    @property
    def figures(self) -> dict[str, Any]:
        return dict(self.value["figures"])


# ---- the cache and its schedule ---------------------------------------------------------------


class ServerStats:
    """Fetches what is due, keeps the last good answer of each endpoint in the store."""

    def __init__(
        self,
        store: Store,
        client: StatsClient | None,
        *,
        clock: Callable[[], float] = time.time,
        oauth: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.store = store
        self.client = client
        self.clock = clock
        self.oauth = oauth  # the sign-in's access token, or None
        self._attempted: dict[str, tuple[int, float]] = {}  # key → (generation, when)
        # Bumped by forget(): an answer fetched for an earlier generation is another account's.
        self._generation = 0
        self._failed: set[str] = set()
        self._not_before = -math.inf
        self.errors: dict[str, dict[str, Any]] = {}
        # One refresh at a time (the daemon's loop and a forced refresh from the tray may meet);
        # the errors are read by other threads, so they change only under the lock.
        self._refreshing = threading.Lock()
        self._lock = threading.Lock()

    def cached(self, key: str) -> Cached | None:
        found = self.store.cache_get(key)
        if found is None or not isinstance(found[0], dict):
            return None
        return Cached(found[0], found[1])

    # ---- refreshing -----------------------------------------------------------------------

    def forget(self) -> None:
        """Drop every cached figure and the fetch schedule: the key or the server changed, so
        they are another account's. A fetch still on its way is dropped when it lands."""
        with self._lock:
            self._generation += 1
            self._failed.clear()
            self.errors.clear()
            self._not_before = -math.inf
            self.store.cache_clear(meta_keys=(STYLE_KEY,))

    def forget_signed_in(self) -> None:
        """Drop the sign-in's figures (signed out); the key's stay."""
        with self._lock:
            self._generation += 1
            for key in OAUTH_ORDER:
                self._failed.discard(key)
                self.errors.pop(key, None)
            self.store.cache_clear(OAUTH_ORDER)

    def _due(self, key: str, now: float, force: bool) -> bool:
        attempt = self._attempted.get(key)
        last = attempt[1] if attempt is not None and attempt[0] == self._generation else None
        if last is None:
            cached = self.cached(key)
            last = cached.fetched_at if cached is not None else None
        if last is None:
            return True
        wait = FLOOR[key] if force else INTERVALS[key]
        with self._lock:
            failed = key in self._failed
        if failed:
            wait = min(wait, RETRY_AFTER_FAILURE)
        return now - last >= wait

    def refresh(self, *, force: bool = False, timezone: Callable[[], str]) -> bool:
        """Fetch every figure that is due; True when at least one was refreshed."""
        if self.client is None:
            return False
        with self._refreshing:
            now = self.clock()
            if now < self._not_before:
                return False
            refreshed = False
            token = self.oauth()
            for key in ORDER + (OAUTH_ORDER if token else ()):
                if not self._due(key, now, force):
                    continue
                self._attempted[key] = (self._generation, now)
                try:
                    ok = self._fetch(key, timezone(), token)
                except _Stop:
                    break
                refreshed = refreshed or ok
            return refreshed

    def _fetch(self, key: str, tz_name: str, token: str | None = None) -> bool:
        assert self.client is not None
        generation = self._generation
        tz = D.zone(tz_name)
        now = self.clock()
        today = D.local_date(now, tz)
        params: dict[str, Any] | None = None
        try:
            if key == USER:
                response = self.client.get("users/current")
            elif key == STATUSBAR:
                response = self.client.get("users/current/statusbar/today")
            elif key == STATS:
                params = {"features": "languages,projects"}
                response = self.client.get_root("/api/v1/users/my/stats", params)
            elif key == STATS_30D:
                # The same window as the local 30-day figures; the server ends it exclusively.
                lo, hi, _, _ = D.last_days_window(now, tz, 30)
                params = {"features": "languages,projects", "start_date": _iso(lo, tz), "end_date": _iso(hi + 1, tz)}
                response = self.client.get_root("/api/v1/users/my/stats", params)
            elif key == LAST7:
                response = self.client.get("users/current/stats/last_7_days")
            elif key in OAUTH_ORDER:
                endpoint = key.removeprefix("server.oauth_")
                params = {"start_date": ALL_TIME_FROM, "end_date": today.isoformat()} if key == O_HOURS else None
                if key == O_PROJECTS:
                    params = {"include_archived": "true"}
                response = self.client.get_root(f"/api/v1/authenticated/{endpoint}", params, token=token)
            else:
                first = today - dt.timedelta(days=YEAR_DAYS - 1)
                params = {"start": first.isoformat(), "end": today.isoformat()}
                response = self.client.get("users/current/summaries", params)
        except httpx.HTTPError as exc:
            self._fail(key, f"network: {type(exc).__name__}: {exc}", now, generation)
            raise _Stop from None
        # Read once the answer is in: a claim counted after this began after the figure was made.
        reach_mark = self.store.delivery_seq()
        status = response.status_code
        if status == 429:
            if generation == self._generation:
                self._not_before = now + _retry_after(response.headers)
            self._fail(key, "rate limited (429)", now, generation)
            raise _Stop
        if status in (401, 403):
            whose = "the sign-in (sign in again)" if key in OAUTH_ORDER else "the API key"
            self._fail(key, f"the server refused {whose} ({status})", now, generation)
            raise _Stop
        if status >= 500:
            self._fail(key, f"server error ({status})", now, generation)
            raise _Stop
        if status != 200:
            self._fail(key, f"unexpected answer ({status})", now, generation)
            return False
        try:
            body = json.loads(response.content)
            value = _PARSERS[key](body)
        except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError and Garbage are ValueErrors
            self._fail(key, f"unreadable answer: {exc}", now, generation)
            return False
        # Which local day (in which zone) the figure is about: "today" is only today's today.
        value["reach_mark"] = reach_mark
        value["fetched_in_zone"] = tz_name
        value["fetched_on"] = today.isoformat()
        if params is not None:
            value["params"] = params
        with self._lock:
            if generation != self._generation:
                return False  # asked before the key or the server changed: another account's figure
            self.store.cache_put(key, value, fetched_at=now)
            if key == STATUSBAR:
                self._remember_style(value)
            self._failed.discard(key)
            self.errors.pop(key, None)
        return True

    def _fail(self, key: str, message: str, now: float, generation: int) -> None:
        log.info("could not refresh %s: %s", key, message)
        with self._lock:
            if generation != self._generation:
                return  # about the key or server in use before: no error of the one in use now
            self._failed.add(key)
            self.errors[key] = {"error": message, "at": now}

    # ---- reading --------------------------------------------------------------------------

    def _signed_in_figure(self, key: str) -> Cached | None:
        """An OAuth figure, while the token's account is the key's (see OAUTH_ORDER)."""
        me, user = self.cached(O_ME), self.cached(USER)
        if me is None or user is None or me.value.get("id") is None or me.value["id"] != user.value.get("id"):
            return None
        return self.cached(key)

    def archived_projects(self) -> set[str]:
        """Names of the projects archived on the server, as the sign-in last saw them."""
        cached = self._signed_in_figure(O_PROJECTS)
        return {p["name"] for p in cached.value["projects"] if p["archived"]} if cached is not None else set()

    def profile_timezone(self) -> str | None:
        cached = self.cached(USER)
        if cached is None:
            return None
        tz = cached.value.get("timezone")
        # The server falls back to UTC for a blank or unknown zone, and so do we.
        return tz if D.valid_zone(tz) else "UTC"

    def _for_today(self, key: str, now: float, tz: Any) -> Cached | None:
        """The cached answer if it was fetched on today's local date in the current zone."""
        cached = self.cached(key)
        if cached is None:
            return None
        value = cached.value
        if value.get("fetched_in_zone") != tz.key or value.get("fetched_on") != D.local_date(now, tz).isoformat():
            return None
        return cached

    def today(self, now: float, tz: Any) -> Cached | None:
        return self._for_today(STATUSBAR, now, tz)

    def last_7_days(self, now: float, tz: Any) -> Cached | None:
        return self._for_today(LAST7, now, tz)

    def stats_30d(self, now: float, tz: Any) -> Cached | None:
        return self._for_today(STATS_30D, now, tz)

    def stats_all(self, now: float, tz: Any) -> Cached | None:
        """All time: /users/my/stats' projects and total, or, signed in, /authenticated/projects'
        (archived ones too) with /authenticated/hours' total, in the same shape."""
        stats = self._for_today(STATS, now, tz)
        signed_in = self._signed_in_figure(O_PROJECTS)
        if signed_in is None or self._for_today(O_PROJECTS, now, tz) is None:
            return stats
        hours = self._signed_in_figure(O_HOURS)
        total_from = hours or stats
        parts = [c for c in (signed_in, total_from) if c is not None]
        value = {
            "projects": [{"name": p["name"], "total_seconds": p["total_seconds"]} for p in signed_in.value["projects"]],
            "total_seconds": total_from.value["total_seconds"] if total_from is not None else 0,
            # Work delivered after the older of the two answers may be in neither: count it as missing.
            "reach_mark": min(c.reach_mark for c in parts),
        }
        return Cached(value, min(c.fetched_at for c in parts))

    def summaries(self, now: float, tz: Any) -> Cached | None:
        """The year of days fetched today (``value["days"]``: one entry per date, oldest first)."""
        return self._for_today(SUMMARIES, now, tz)

    # ---- the statusbar's style, remembered across restarts ---------------------------------

    def _remember_style(self, value: Mapping[str, Any]) -> None:
        """Keep the user's text type and day goal (learnt from the server's answer) in the store,
        so the editors' status bar keeps its style after a restart while offline."""
        mode, shows_goal, flavour = D.text_mode(str(value.get("text", "")))
        goal = value.get("goal")
        style = {
            "mode": mode,
            "shows_goal": shows_goal,
            "flavour": flavour,
            "goal_seconds": int(goal["target_seconds"]) if isinstance(goal, dict) else None,
        }
        if self.style() != style:
            self.store.meta_set(STYLE_KEY, json.dumps(style))

    def style(self) -> dict[str, Any] | None:
        """The user's statusbar style as last seen, or None before the first server answer."""
        raw = self.store.meta_get(STYLE_KEY)
        if raw is None:
            return None
        try:
            found = json.loads(raw)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None

    def goal(self, total: int, server_seconds: int | None, today: Cached | None) -> dict[str, Any] | None:
        """The day goal as the server last reported it, with today's merged progress.

        The server's ``tracked_seconds`` leaves out archived projects and honours the goal's
        filters, which this machine cannot see: the work it adds on top of the server's
        figure (``total - server_seconds``) is added to the server's tracked time as is.
        """
        style = self.style()
        target = style.get("goal_seconds") if style is not None else None
        if not isinstance(target, int) or isinstance(target, bool):
            return None
        if today is not None and server_seconds is not None and isinstance(today.value.get("goal"), dict):
            tracked = int(today.value["goal"]["tracked_seconds"]) + max(0, total - server_seconds)
            source = "server" if total == server_seconds else "server+local"
        else:
            tracked, source = total, "local"
        return {**D.goal_figures(target, tracked), "source": source}

    def text(self, total: int, goal: Mapping[str, Any] | None) -> str:
        """The statusbar text in the user's text type (as the server last showed it); plain
        text before the server has ever answered."""
        style = self.style()
        if style is None:
            return D.statusbar_text(total)
        target = int(goal["target_seconds"]) if goal is not None and style.get("shows_goal") else None
        mode, flavour = str(style.get("mode", "simple_text")), str(style.get("flavour", ""))
        return D.statusbar_text(total, mode=mode, goal_seconds=target, flavour=flavour)

    def streak(self, now: float, tz: Any, local: int) -> dict[str, Any]:
        """The server's streak when fetched today (it sees every machine), unless this
        machine already knows a longer one (today's 15 minutes not yet seen by the server)."""
        signed_in = self._signed_in_figure(O_STREAK)
        if signed_in is not None and signed_in.value.get("fetched_on") != D.local_date(now, tz).isoformat():
            signed_in = None  # yesterday's streak is not today's
        cached = signed_in or self._for_today(STATS, now, tz)
        server_days = int(cached.value["streak"]) if cached is not None else None
        if cached is not None and server_days is not None and server_days >= local:
            return {
                "days": server_days, "source": "server", "fetched_at": cached.fetched_at,
                "age_seconds": max(0.0, now - cached.fetched_at), "server_days": server_days, "local_days": local,
            }  # fmt: skip
        return {
            "days": local, "source": "local", "fetched_at": None, "age_seconds": None,
            "server_days": server_days, "local_days": local,
        }  # fmt: skip

    def projects(self) -> dict[str, Any] | None:
        """All-time projects and languages from /api/v1/users/my/stats, as last fetched; signed
        in, the projects (archived ones too) and the total from /api/v1/authenticated/*."""
        cached, signed_in = self.cached(STATS), self._signed_in_figure(O_PROJECTS)
        shown = signed_in or cached
        if shown is None:
            return None
        hours = self._signed_in_figure(O_HOURS)
        return {
            "range": "all_time",
            "fetched_at": shown.fetched_at,
            "projects": shown.value.get("projects", []),
            "languages": cached.value.get("languages", []) if cached is not None else [],
            "total_seconds": (hours or shown).value.get("total_seconds"),
            "source": "oauth" if signed_in is not None else "key",
        }

    def health(self, now: float) -> dict[str, Any]:
        fetched: dict[str, float | None] = {}
        for key in ORDER + OAUTH_ORDER:
            cached = self.cached(key)
            if cached is not None or key in ORDER:  # the sign-in's only once signed in
                fetched[key.removeprefix("server.")] = cached.fetched_at if cached is not None else None
        with self._lock:
            errors = {key.removeprefix("server."): dict(err) for key, err in self.errors.items()}
        return {
            "configured": self.client is not None,
            "fetched_at": fetched,
            "errors": errors,
            "rate_limited_until": self._not_before if self._not_before > now else None,
        }


_PARSERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    USER: parse_user,
    STATUSBAR: parse_statusbar,
    STATS: parse_stats,
    STATS_30D: parse_stats,
    LAST7: parse_last_7_days,
    SUMMARIES: parse_summaries,
    O_ME: parse_oauth_me,
    O_STREAK: parse_oauth_streak,
    O_PROJECTS: parse_oauth_projects,
    O_HOURS: parse_oauth_hours,
}


def _retry_after(headers: Mapping[str, str]) -> float:
    value = headers.get("Retry-After", "")
    try:
        return max(1.0, float(value))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def _iso(ts: float, tz: Any) -> str:
    return dt.datetime.fromtimestamp(ts, tz).isoformat()
