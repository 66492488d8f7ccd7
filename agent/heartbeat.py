"""One heartbeat: validation, normalisation and the payload frozen for delivery.

Hackatime de-duplicates on an exact hash of the normalised fields
(hackatime-api.md §4.4), so a heartbeat's JSON is built once, here, when it is
accepted; the outbox sends those bytes unchanged on every retry and a resend
is then free.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import APP_NAME, __version__

# Keys Hackatime keeps (hackatime-api.md §4.1); everything else is dropped, as the server does.
STRING_FIELDS = (
    "entity", "type", "category", "project", "branch", "language", "editor", "operating_system",
    "machine", "user_agent", "plugin", "ai_model", "ai_session", "ai_subscription_plan",
)  # fmt: skip
INT_FIELDS = (
    "lineno", "cursorpos", "lines", "line_additions", "line_deletions", "project_root_count",
    "ai_input_tokens", "ai_output_tokens", "ai_prompt_length", "ai_line_changes", "human_line_changes",
)  # fmt: skip
PERMITTED = frozenset((*STRING_FIELDS, *INT_FIELDS, "time", "is_write", "dependencies", "created_at"))

# The window Hackatime accepts after rescaling ms/µs/ns (hackatime-api.md §4.3).
TIME_MIN = 1_000_000_000.0
TIME_MAX = 2_000_000_000.0
MAX_STRING = 4096  # a path or name longer than this is not a real heartbeat
MAX_DEPENDENCIES = 500

# Fields hashed by the server, in its order; the local de-duplication key uses the same set.
_HASH_FIELDS = (
    "branch", "category", "dependencies", "editor", "entity", "language", "machine", "operating_system",
    "project", "type", "user_agent", "line_additions", "line_deletions", "lineno", "lines", "cursorpos",
    "project_root_count", "time", "is_write",
)  # fmt: skip
_AI_FIELDS = (
    "ai_model", "ai_session", "ai_subscription_plan", "ai_input_tokens", "ai_output_tokens",
    "ai_prompt_length", "ai_line_changes", "human_line_changes",
)  # fmt: skip


class HeartbeatError(ValueError):
    """A heartbeat that cannot be stored; ``str()`` is a sentence for the sender."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A normalised heartbeat and the exact JSON that will be delivered."""

    payload: dict[str, Any]
    payload_json: str
    dedup_key: str
    time: float
    editor: str | None
    operating_system: str | None

    def get(self, key: str) -> Any:
        return self.payload.get(key)


def normalize_time(value: Any) -> float:
    """Epoch seconds as a float; ms/µs/ns are rescaled, ISO strings parsed."""
    if isinstance(value, bool):
        raise HeartbeatError("time must be a number of seconds since the epoch, not a boolean")
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise HeartbeatError(f"time {value[:40]!r} is neither a number nor an ISO 8601 date") from None
            if parsed.tzinfo is None:
                raise HeartbeatError(f"time {value[:40]!r} has no UTC offset") from None
            number = parsed.timestamp()
    elif isinstance(value, (int, float)):
        number = float(value)
    elif value is None:
        raise HeartbeatError("time is required")
    else:
        raise HeartbeatError(f"time must be a number, not {type(value).__name__}")
    if not math.isfinite(number):
        raise HeartbeatError("time must be a finite number")
    for scale in (1.0, 1e3, 1e6, 1e9):
        scaled = number / scale
        if TIME_MIN <= scaled < TIME_MAX:
            return scaled
    raise HeartbeatError("time must be Unix epoch seconds between 1000000000 and 1999999999")


def _clean_str(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise HeartbeatError(f"{key} must be a string, not {type(value).__name__}")
    if len(value) > MAX_STRING:
        raise HeartbeatError(f"{key} is longer than {MAX_STRING} characters")
    return value.replace("\x00", "")


def _clean_int(key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HeartbeatError(f"{key} must be a whole number, not {type(value).__name__}")
    if isinstance(value, float):
        if not value.is_integer():
            raise HeartbeatError(f"{key} must be a whole number")
        value = int(value)
    if not -(2**31) <= value < 2**31:
        raise HeartbeatError(f"{key} is out of range")
    return value


_UA_OS = re.compile(r"\(([A-Za-z]+)[-)]")
_UA_PRODUCT = re.compile(r"([A-Za-z][\w.+]*(?:-[\w.+]+)*)/[^\s()]+")
_RUNTIMES = re.compile(r"^(wakatime|go\d.*|python|node|ruby|hackatime-desktop)$", re.IGNORECASE)


def parse_user_agent(ua: str | None) -> tuple[str | None, str | None]:
    """(editor, operating system) from a WakaTime-format user agent, as the server reads it.

    ``wakatime/v1.90.0 (linux-6.5.0-x86_64) go1.21 vscode/1.85.0 vscode-wakatime/24.4.0``
    gives ``("vscode", "linux")``; a ``<editor>-wakatime`` plugin token names the editor.
    """
    if not ua:
        return None, None
    os_match = _UA_OS.search(ua)
    os_name = os_match.group(1).lower() if os_match else None
    tail = ua[os_match.end() :] if os_match else ua
    products = [m.group(1) for m in _UA_PRODUCT.finditer(tail)]
    editor = None
    for name in products:
        low = name.lower()
        for suffix in ("-wakatime", "-hackatime"):
            if low.endswith(suffix) and len(low) > len(suffix):
                editor = low[: -len(suffix)]
                break
        if editor:
            break
    if editor is None:
        editor = next((p.lower() for p in products if not _RUNTIMES.match(p)), None)
    if editor is None and any(p.lower() == "hackatime-desktop" for p in products):
        editor = "hackatime-desktop"
    return editor, os_name


_UA_CACHE: dict[str, str] = {}


def user_agent(plugin: str = APP_NAME) -> str:
    """An honest WakaTime-format user agent for heartbeats this app creates itself.

    No wakatime-cli is involved, so its version is ``unset`` (as wakapi-anyide does);
    the runtime is Python and the plugin token names this app so the server shows
    a sensible editor name.
    """
    cached = _UA_CACHE.get(plugin)
    if cached is None:
        system = platform.system().lower() or "unknown"
        release = platform.release() or "unknown"
        machine = platform.machine() or "unknown"
        cached = (
            f"wakatime/unset ({system}-{release}-{machine}) python/{platform.python_version()} "
            f"{APP_NAME}/{__version__} {plugin}-wakatime/{__version__}"
        )
        _UA_CACHE[plugin] = cached
    return cached


def _dedup_key(payload: Mapping[str, Any]) -> str:
    ordered: dict[str, Any] = {k: payload.get(k) for k in _HASH_FIELDS}
    if ordered["dependencies"] is None:
        ordered["dependencies"] = []
    for key in _AI_FIELDS:
        if payload.get(key) is not None:
            ordered[key] = payload[key]
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def normalize(
    raw: Any,
    *,
    machine: str,
    default_user_agent: str | None = None,
    header_user_agent: str | None = None,
    header_machine: str | None = None,
) -> Heartbeat:
    """Validate one heartbeat and freeze its payload.

    ``machine`` is the configured host name; ``header_machine`` (X-Machine-Name)
    wins over the body, as on the server. ``user_agent`` falls back to the body's
    ``plugin``, then the HTTP User-Agent, then ``default_user_agent``.
    """
    if not isinstance(raw, Mapping):
        raise HeartbeatError(f"a heartbeat must be a JSON object, not {type(raw).__name__}")
    out: dict[str, Any] = {}
    out["time"] = normalize_time(raw.get("time"))
    for key in STRING_FIELDS:
        value = _clean_str(key, raw.get(key))
        if value is not None:
            out[key] = value
    for key in INT_FIELDS:
        number = _clean_int(key, raw.get(key))
        if number is not None:
            out[key] = number
    is_write = raw.get("is_write")
    if is_write is not None:
        if not isinstance(is_write, bool):
            if is_write in (0, 1) and not isinstance(is_write, float):
                is_write = bool(is_write)
            else:
                raise HeartbeatError("is_write must be true or false")
        out["is_write"] = is_write
    deps = raw.get("dependencies")
    if deps is not None:
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise HeartbeatError("dependencies must be a list of strings")
        if len(deps) > MAX_DEPENDENCIES:
            raise HeartbeatError(f"dependencies has more than {MAX_DEPENDENCIES} entries")
        out["dependencies"] = [d.replace("\x00", "") for d in deps]

    if "project" in out:
        # The server strips control characters and surrounding space from project names.
        out["project"] = "".join(ch for ch in out["project"] if ch >= " " and ch != "\x7f").strip()
    if "category" not in out:
        out["category"] = "browsing" if out.get("type") in ("domain", "url") else "coding"
    ua = out.get("user_agent") or out.pop("plugin", None) or header_user_agent or default_user_agent
    out.pop("plugin", None)
    if ua:
        out["user_agent"] = ua[:MAX_STRING]
    out["machine"] = (header_machine or out.get("machine") or machine)[:MAX_STRING]

    editor, os_name = parse_user_agent(out.get("user_agent"))
    payload_json = json.dumps(out, separators=(",", ":"), ensure_ascii=False)
    return Heartbeat(
        payload=out,
        payload_json=payload_json,
        dedup_key=_dedup_key(out),
        time=out["time"],
        editor=editor or out.get("editor"),
        operating_system=os_name or out.get("operating_system"),
    )
