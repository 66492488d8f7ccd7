"""The control API's routes and the files in the data dir: where the agent listens, how the
app finds it, and the few names both sides spell the same (destination, ranges, pause).
"""

from __future__ import annotations

import re
from typing import NamedTuple, TypedDict

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
IMPORT_UPLOAD_HELD = Route("POST", "/import/upload-held")  # queue history kept local → HeldUploadAnswer

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
    IMPORT, IMPORT_START, IMPORT_CANCEL, IMPORT_UPLOAD_HELD, PREFERENCES, PREFERENCES_SET, PORT, SIGN_IN,
    SIGN_OUT,
)  # fmt: skip
