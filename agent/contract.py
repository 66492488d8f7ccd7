"""The contract between the agent and the tray app: routes, file names, and the shapes of the answers.

Both sides import this module and nothing else of each other's: the agent serves
these routes and writes these files, the app (``app.client``) calls and reads them.
It is Qt-free and imports nothing but the standard library, so the app can load it
without the agent's dependencies. Add a field here first, then on both sides.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple, NotRequired, TypedDict

__all__ = [
    "CAPTURE",
    "CAPTURE_SET",
    "CONTROL_PREFIX",
    "DEAD",
    "DEAD_DISCARD",
    "DEAD_RETRY",
    "DESTINATION",
    "EDITORS",
    "EDITORS_ROUTE",
    "EDITORS_UNDO",
    "EVENTS",
    "IMPORT",
    "IMPORT_CANCEL",
    "IMPORT_START",
    "KEY",
    "KEY_CHECK",
    "KEY_FORGET",
    "KEY_SET",
    "LOCK_FILE",
    "NOTICE_DISMISS",
    "PAUSE",
    "PAUSE_UNTIL_TOMORROW",
    "PORT",
    "PREFERENCES",
    "PREFERENCES_SET",
    "PROJECTS",
    "RANGES",
    "REFRESH",
    "ROUTES",
    "RUNTIME_FILE",
    "SERVER",
    "SIGN_IN",
    "SIGN_OUT",
    "STATS",
    "STATUS",
    "STORE_FILE",
    "SYNC",
    "TOKEN_FILE",
    "WATCH",
    "WATCH_ADD",
    "WATCH_REMOVE",
    "CaptureRules",
    "CountAnswer",
    "DayFigures",
    "DeadAnswer",
    "DeadLetter",
    "DestinationStatus",
    "EditorRouting",
    "EventsAnswer",
    "GoalFigures",
    "GroupEntry",
    "HistoryUpload",
    "ImportAnswer",
    "ImportProblem",
    "ImportProgress",
    "KeyAnswer",
    "KeyCheckAnswer",
    "KeyForgetAnswer",
    "KeyInfo",
    "KeySetAnswer",
    "LastSevenDays",
    "LocalFigures",
    "Notice",
    "PortAnswer",
    "Preferences",
    "ProjectEntry",
    "ProjectsAnswer",
    "Route",
    "RuntimeInfo",
    "ServerAnswer",
    "ServerError",
    "ServerHealth",
    "ServerProjects",
    "SignInAnswer",
    "StatsSnapshot",
    "Status",
    "Streak",
    "SyncAnswer",
    "SyncHealth",
    "TodayFigures",
    "UncoveredFolder",
    "WatchAnswer",
    "WatchState",
]

# ---- files in the data dir -------------------------------------------------------------------------

RUNTIME_FILE = "agent.json"  # the running agent's address (RuntimeInfo), removed when it stops
TOKEN_FILE = "control-token"  # the control API's bearer token, mode 0600
LOCK_FILE = "agent.lock"  # one agent per data dir
STORE_FILE = "store.db"

DESTINATION = "hackatime"  # the one destination today: the server in api_url
PAUSE_UNTIL_TOMORROW = "tomorrow"  # the next local midnight, as the agent's clock and zone see it
RANGES = ("today", "7d", "30d", "all")  # the ranges of local figures (CLI ``stats``, ``/stats/projects``)


class RuntimeInfo(TypedDict):
    pid: int
    url: str  # http://127.0.0.1:PORT, the control API and the intake
    started_at: float
    version: str


# ---- routes of the control API ---------------------------------------------------------------------

CONTROL_PREFIX = "/agent/v1"
_PARAM = re.compile(r"\{(\w+)\}")


class Route(NamedTuple):
    """One control route; ``path`` is below :data:`CONTROL_PREFIX`, with ``{name}`` for an integer."""

    method: str
    path: str

    @property
    def pattern(self) -> str:
        """The regular expression the agent's router matches (``{name}`` → a named integer group)."""
        parts = _PARAM.split(CONTROL_PREFIX + self.path)
        return "".join(re.escape(p) if i % 2 == 0 else rf"(?P<{p}>\d+)" for i, p in enumerate(parts))

    def url(self, **params: int) -> str:
        """The path to request (below the agent's base URL)."""
        return CONTROL_PREFIX + self.path.format(**params)


STATUS = Route("GET", "/status")  # → Status
STATS = Route("GET", "/stats")  # → StatsSnapshot
PROJECTS = Route("GET", "/stats/projects")  # ?range= → ProjectsAnswer
REFRESH = Route("POST", "/refresh")  # fetch the server's figures now → StatsSnapshot
SYNC = Route("POST", "/sync")  # → SyncAnswer
PAUSE = Route("POST", "/pause")  # {"until": epoch seconds | PAUSE_UNTIL_TOMORROW | null} → Status
DEAD = Route("GET", "/dead")  # ?destination= → DeadAnswer
DEAD_RETRY = Route("POST", "/dead/retry")  # {"destination", "ids"?} → CountAnswer
DEAD_DISCARD = Route("POST", "/dead/discard")  # {"destination", "ids"} → CountAnswer
EVENTS = Route("GET", "/events")  # ?after=&timeout= long-poll → EventsAnswer
NOTICE_DISMISS = Route("POST", "/notices/{id}/dismiss")  # → {"ok": true}
WATCH = Route("GET", "/watch")  # → WatchState
WATCH_ADD = Route("POST", "/watch")  # {"path"} → WatchAnswer
WATCH_REMOVE = Route("POST", "/watch/remove")  # {"path"} → WatchAnswer
IMPORT = Route("GET", "/import")  # → ImportAnswer: the running import, else the last one
IMPORT_START = Route("POST", "/import")  # {"path", "upload"?: true} → ImportAnswer; 409 while one runs
IMPORT_CANCEL = Route("POST", "/import/cancel")  # → ImportAnswer (the run stops at its next heartbeat)

KEY = Route("GET", "/key")  # → KeyAnswer
# {"key", "store": "keyring" | "file" | "wakatime-cfg", "check": true} → KeySetAnswer; refused:
# 400 malformed, 422 rejected, 503 unreachable (each with KeyCheckAnswer's fields), 409 no keyring
KEY_SET = Route("POST", "/key")
KEY_CHECK = Route("POST", "/key/check")  # {"key"?} (default: the key in use) → KeyCheckAnswer
KEY_FORGET = Route("POST", "/key/forget")  # → KeyForgetAnswer

EDITORS = Route("GET", "/editors")  # → EditorRouting
EDITORS_ROUTE = Route("POST", "/editors/route")  # point ~/.wakatime.cfg at the intake (with a backup) → EditorRouting
EDITORS_UNDO = Route("POST", "/editors/undo")  # put back what routing changed → EditorRouting

SERVER = Route("POST", "/server")  # {"api_url"} → ServerAnswer; refused 400 (a bad URL) or 502 (no answer)

CAPTURE = Route("GET", "/capture")  # → CaptureRules (the app's own; ~/.wakatime.cfg's apply too)
# {"exclude"?, "include"?, "hide_file_names"?, ...} → CaptureRules; 400 names the bad value and why
CAPTURE_SET = Route("POST", "/capture")

PREFERENCES = Route("GET", "/preferences")  # → Preferences: the app's own settings, kept by the agent
# {"notifications"?, "oauth_client_id"?} → Preferences; 400 names the bad value and why
PREFERENCES_SET = Route("POST", "/preferences")
# {"port": 1024-65535, "route_editors"?: false} → PortAnswer: the intake moves there at once;
# refused 400 (out of range) or 409 (another program holds it), and the old port stays
PORT = Route("POST", "/port")
# {"token"}: the access token of a finished "Sign in with Hackatime", kept by the agent (OS keyring)
# for the figures only the sign-in gives → SignInAnswer; /oauth/forget revokes and forgets it
SIGN_IN = Route("POST", "/oauth")
SIGN_OUT = Route("POST", "/oauth/forget")

ROUTES = (
    STATUS, STATS, PROJECTS, REFRESH, SYNC, PAUSE, DEAD, DEAD_RETRY, DEAD_DISCARD, EVENTS, NOTICE_DISMISS,
    WATCH, WATCH_ADD, WATCH_REMOVE, KEY, KEY_SET, KEY_CHECK, KEY_FORGET, EDITORS, EDITORS_ROUTE, EDITORS_UNDO,
    IMPORT, IMPORT_START, IMPORT_CANCEL, PREFERENCES, PREFERENCES_SET, PORT, SIGN_IN, SIGN_OUT,
)  # fmt: skip


# ---- /status ---------------------------------------------------------------------------------------


class DestinationStatus(TypedDict):
    name: str
    url: str
    pending: int
    in_flight: int
    sent: int
    dead: int
    oldest_pending: float | None
    last_success: float | None
    last_error: str | None
    last_error_at: float | None
    backoff_until: float | None  # wall time of the next try after a failure (None: not backing off)
    backoff_seconds: float  # the same wait in seconds, measured on the agent's monotonic clock
    auth_state: str  # unknown | ok | rejected | missing


class Notice(TypedDict):
    id: int | None  # None: from the configuration, cannot be dismissed
    time: float | None
    level: str
    message: str


class UncoveredFolder(TypedDict):
    """A watched folder (or part of one) whose saves are not recorded, and why."""

    folder: str  # as the user gave it
    path: str  # its real path
    reason: str  # inotify-limit | missing | not-a-folder | deleted | unreadable | no-observer
    missing: list[str]  # the topmost folders not watched (at most 20)
    missing_count: int
    message: str  # a sentence for the user, with the fix


class WatchState(TypedDict):
    folders: list[str]
    uncovered: list[UncoveredFolder]


class WatchAnswer(WatchState):
    problem: UncoveredFolder | None  # the added folder's own problem


class KeyInfo(TypedDict):
    """The API key in use, as it may be shown: never more than its last four characters."""

    configured: bool
    masked: str  # "<hidden>6f70"
    last4: str | None
    # given (Flags), WAKATIME_API_KEY, keyring, settings (plaintext), api_key_vault_cmd or wakatime.cfg
    source: str | None
    fingerprint: str | None  # the start of a SHA-256 of the whole key: tells apart keys that end alike
    next_check_in: float | None  # seconds until a rejected key is checked with the server again


class EditorRouting(TypedDict):
    """Whether editor plugins (wakatime-cli, through ~/.wakatime.cfg) send their heartbeats to this agent."""

    routed: bool  # api_url points at the intake
    api_url: str | None  # as the file says now
    heartbeat_rate_limit_seconds: str | None  # as the file says now
    intake_url: str  # where routing points them
    can_undo: bool
    backup: str | None  # the copy of the file made before the last edit
    wakatime_cfg: str  # the file itself
    upload_url: str  # where the agent uploads (the server the file pointed at before routing)


class CaptureRules(TypedDict):
    exclude: list[str]  # regexes of paths never recorded
    include: list[str]  # regexes of paths recorded even when excluded
    hide_file_names: bool
    hide_project_names: bool
    hide_branch_names: bool


class Preferences(TypedDict):
    notifications: bool  # the tray shows its notifications (off: none, the menu still tells)
    oauth_client_id: str  # this app's client id at the server's /oauth/applications ("" when not registered)


class SignInAnswer(TypedDict):
    signed_in: bool
    kept: bool  # in the OS keyring (else for this run of the agent only)
    problem: str | None  # why it was not kept, or not revoked


class PortAnswer(TypedDict):
    port: int  # the intake's port now
    intake_url: str
    editors: EditorRouting | None  # ~/.wakatime.cfg after it was pointed at the new port, when asked
    # What the change means for editor plugins still sending to the old port (None: nothing to do)
    warning: str | None


class ServerAnswer(TypedDict):
    api_url: str  # where heartbeats go now
    check: KeyCheckAnswer  # what the new server says of the key in use


class KeyAnswer(KeyInfo):
    auth_state: str  # unknown | ok | rejected | missing
    notices: list[str]  # problems met reading the key's sources (an unreadable cfg, no keyring, ...)
    signed_in: NotRequired[bool]  # "Sign in with Hackatime" is in force (its figures are fetched)


class KeyCheckAnswer(TypedDict):
    verdict: str  # accepted | rejected | unreachable | malformed | missing
    reason: str  # a sentence for people
    username: str | None
    timezone: str | None
    status: int | None  # the server's HTTP status, when it answered


class KeySetAnswer(TypedDict):
    stored: str  # where the key went, as a sentence
    check: KeyCheckAnswer  # "missing" when the server was not asked
    key: KeyAnswer  # the key in use now
    warning: str | None  # e.g. a key from a higher source outranks the one stored


class KeyForgetAnswer(TypedDict):
    forgotten: str
    key: KeyAnswer  # what is in use now (a key left in ~/.wakatime.cfg, or none)


class ImportProblem(TypedDict):
    heartbeat: int  # its number in the file, from 1
    near_byte: int  # of the file's JSON (decompressed): within one read of the parser
    error: str


class ImportProgress(TypedDict):
    """An import run (``agent.imports.job.Progress``); the last one is its summary."""

    path: str
    upload: bool  # False: kept local (--no-upload)
    id: int  # the agent numbers its runs: a window tells its own run from an earlier one
    state: str  # reading | done | broken | refused | cancelled
    format: str | None  # wakatime | hackatime_v1 | hackatime
    format_name: str | None  # for people: "a WakaTime heartbeats export"
    bytes_read: int  # of the file (compressed bytes of a compressed file)
    bytes_total: int
    read: int  # heartbeats read from the file
    imported: int  # new ones stored
    duplicates: int  # already stored: by an earlier import, live capture, or twice in the file
    invalid: int
    errors: list[ImportProblem]  # the first ten
    seconds: float
    rate: float  # heartbeats read per second
    eta_seconds: float | None  # of the reading, while it runs
    problem: str | None  # one line: what went wrong and where (state broken or refused)
    upload_heartbeats: int  # what this run queued for upload (Status.history_upload counts down what waits)
    upload_seconds: float | None  # how long uploading those takes at Hackatime's limits


class ImportAnswer(TypedDict):
    run: ImportProgress | None  # None: no import since the agent started


class HistoryUpload(TypedDict):
    """Imported history still to upload; it goes after every live heartbeat."""

    pending: int
    seconds: float  # at Hackatime's limits, from now


class Status(TypedDict):
    version: str
    data_dir: str
    log_dir: str
    api_key: str  # masked: the last four characters at most
    key_source: str | None
    key: KeyInfo
    online: bool | None  # None: no request has been made yet
    destinations: list[DestinationStatus]
    notices: list[Notice]  # a full disk adds one (id None) for as long as it lasts
    disk_full: bool  # the last write to the store failed for lack of space (cleared by the next that works)
    generated_at: float
    # From a running agent only (``hackatime-agent status`` without one reads the store):
    pid: NotRequired[int]
    started_at: NotRequired[float]
    intake_url: NotRequired[str | None]
    paused_until: NotRequired[float | None]
    recording: NotRequired[bool]
    last_heartbeat_at: NotRequired[float | None]
    seq: NotRequired[int]
    watch: NotRequired[WatchState]
    import_run: NotRequired[ImportProgress | None]  # the running import, else the last one
    history_upload: NotRequired[HistoryUpload | None]  # None: no imported history waiting
    agent_running: NotRequired[bool]  # added by the CLI
    notifications: NotRequired[bool]  # the Preferences' switch, for the tray


class SyncAnswer(TypedDict):
    delivered: int
    dead: int
    pending: int
    outcome: str  # agent.delivery.Outcome values
    error: str | None


class DeadLetter(TypedDict):
    id: int
    time: float
    reason: str | None
    attempts: int
    dead_at: float
    entity: str | None
    project: str | None


class DeadAnswer(TypedDict):
    destination: str
    items: list[DeadLetter]


class CountAnswer(TypedDict):
    count: int


class EventsAnswer(TypedDict):
    seq: int


# ---- /stats ----------------------------------------------------------------------------------------


class GroupEntry(TypedDict):
    name: str
    total_seconds: int
    percent: NotRequired[float]


class ProjectEntry(GroupEntry):
    languages: NotRequired[list[str]]  # most used first
    last_activity: NotRequired[float]


class GoalFigures(TypedDict):
    target_seconds: int
    tracked_seconds: int
    completion_percent: int
    complete: bool
    source: str  # server | server+local | local


class TodayFigures(TypedDict):
    total_seconds: int  # the merged figure the tray shows
    text: str
    local_seconds: int
    server_seconds: int | None
    unsynced_seconds: int
    unsynced_heartbeats: int
    source: str  # server | server+local | local
    server_fetched_at: float | None
    server_age_seconds: float | None
    goal: GoalFigures | None
    start: float
    end: float
    # In the snapshot: today's projects, as the day's bar in daily_totals (summaries' rule, §4.8:
    # each project's credit rounded, the bar the sum of its parts), the server's merged with
    # unsynced work like the total; projects_source says which (server | server+local | local).
    projects: NotRequired[list[GroupEntry]]
    projects_source: NotRequired[str]


class Streak(TypedDict):
    days: int
    source: str
    fetched_at: float | None
    age_seconds: float | None
    server_days: int | None
    local_days: int


class DayFigures(TypedDict):
    """One local day's bar (summaries, §4.8): total_seconds is the sum of its projects."""

    date: str  # ISO date
    total_seconds: int
    projects: NotRequired[list[GroupEntry]]  # name and total_seconds; blank projects are one "Other"
    source: NotRequired[str]  # server | server+local (unsynced work merged in) | local


class LastSevenDays(TypedDict):
    total_seconds: int
    source: str
    fetched_at: float | None
    server_seconds: int | None
    local_seconds: int
    projects: list[GroupEntry]
    languages: list[GroupEntry]
    editors: list[GroupEntry]
    operating_systems: list[GroupEntry]
    machines: list[GroupEntry]
    categories: list[GroupEntry]
    daily_average: float
    days_including_holidays: int
    days: list[DayFigures]  # the same 8 days as the total (the server's window), oldest first
    days_source: str  # server | server+local | local
    start: float
    end: float


class ServerProjects(TypedDict):
    range: str
    fetched_at: float
    # As the server sent them: /users/my/stats' (name, total_seconds, percent), or, signed in with
    # Hackatime, /authenticated/projects' with the archived ones (archived, most_recent_heartbeat, languages)
    projects: list[dict[str, Any]]
    languages: list[dict[str, Any]]
    total_seconds: NotRequired[int | None]  # all time (signed in: /authenticated/hours, no 10-year window)
    source: NotRequired[str]  # key | oauth


class ServerError(TypedDict):
    error: str
    at: float


class ServerHealth(TypedDict):
    configured: bool
    fetched_at: dict[str, float | None]  # per server figure
    errors: dict[str, ServerError]
    rate_limited_until: float | None


class SyncHealth(TypedDict):
    destination: str
    pending: int
    in_flight: int
    dead: int
    oldest_pending: float | None
    auth_state: NotRequired[str]
    last_success: NotRequired[float | None]
    last_error: NotRequired[str | None]
    last_error_at: NotRequired[float | None]
    backoff_until: NotRequired[float | None]


class StatsSnapshot(TypedDict):
    """Everything the tray and the dashboard show, in one answer; every figure says its source."""

    generated_at: float
    timezone: str
    today: TodayFigures
    streak: Streak
    projects_range: str
    projects: list[ProjectEntry]  # the projects_range's, as ProjectsAnswer.projects
    projects_source: str  # server | server+local | local
    projects_fetched_at: float | None  # when the server's list was fetched (None: local)
    server_projects: ServerProjects | None
    last_7_days: LastSevenDays
    daily_totals: list[DayFigures]  # a year of days ending today, oldest first (one summaries request)
    daily_totals_source: str  # server | server+local | local
    daily_totals_fetched_at: float | None
    sync: SyncHealth
    server: ServerHealth


class LocalFigures(TypedDict):
    """``hackatime-agent stats``: one range computed locally."""

    range: str
    start: str | None
    end: str | None
    start_ts: float
    end_ts: float
    timezone: str
    source: str
    generated_at: float
    total_seconds: int
    heartbeats: int
    first_heartbeat: float | None
    last_heartbeat: float | None
    projects: list[ProjectEntry]
    languages: list[GroupEntry]
    editors: list[GroupEntry]
    operating_systems: list[GroupEntry]
    machines: list[GroupEntry]
    categories: list[GroupEntry]


class ProjectsAnswer(TypedDict):
    """``/stats/projects?range=``: today (the day's bar), 7d (last_7_days' list: 0 s dropped,
    percent of the groups' sum), 30d and all (/api/v1/users/my/stats' list: every group, blank
    ones "Other", percent of the total). The server's list merged with unsynced work when it
    was fetched today, else this store's; languages and last_activity only where known locally."""

    range: str
    projects: list[ProjectEntry]
    source: str  # server | server+local | local
    fetched_at: float | None  # when the server's list was fetched (None: local)
