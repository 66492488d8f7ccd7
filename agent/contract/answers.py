"""The shapes of the control API's answers other than the figures: ``/status`` and what it
holds (destinations, notices, watch, key, import), and the answers of the routes that act.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

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


class HeldUploadAnswer(TypedDict):
    """History imported without upload, now queued behind every live heartbeat."""

    queued: int  # heartbeats queued (0: none was held, or no server is set up yet)
    upload_seconds: float  # how long uploading them takes at Hackatime's limits


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
    history_held: NotRequired[int]  # imported heartbeats kept local (import --no-upload) that can still go up
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
