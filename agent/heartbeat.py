"""One heartbeat: validation, normalisation and the payload frozen for delivery.

Hackatime de-duplicates on an exact hash of the normalised fields
(hackatime-api.md §4.4), so a heartbeat's JSON is built once, here, when it is
accepted; the outbox sends those bytes unchanged on every retry and a resend
is then free.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import platform
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from . import APP_NAME, __version__, useragent
from .fastjson import sorted_writer

# Keys Hackatime keeps (hackatime-api.md §4.1); everything else is dropped, as the server does.
STRING_FIELDS = (
    "entity", "type", "category", "project", "branch", "language", "editor", "operating_system",
    "machine", "user_agent", "plugin", "ai_model", "ai_session", "ai_subscription_plan",
)  # fmt: skip
INT_FIELDS = (
    "lineno", "cursorpos", "lines", "line_additions", "line_deletions", "project_root_count",
    "ai_input_tokens", "ai_output_tokens", "ai_prompt_length", "ai_line_changes", "human_line_changes",
)  # fmt: skip

# The window Hackatime accepts after rescaling ms/µs/ns (hackatime-api.md §4.3).
TIME_MIN = 1_000_000_000.0
TIME_MAX = 2_000_000_000.0
MAX_STRING = 4096  # a path or name longer than this is not a real heartbeat
MAX_DEPENDENCIES = 500


class HeartbeatError(ValueError):
    """A heartbeat that cannot be stored; ``str()`` is a sentence for the sender."""


class Heartbeat(NamedTuple):
    """A normalised heartbeat and the exact JSON that will be delivered (immutable, cheap to build)."""

    payload: dict[str, Any]
    payload_json: str
    dedup_key: bytes
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
        try:
            number = float(value)
        except OverflowError:  # an integer with hundreds of digits
            raise HeartbeatError("time must be Unix epoch seconds between 1000000000 and 1999999999") from None
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


def _clean_str(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise HeartbeatError(f"{key} must be a string, not {type(value).__name__}")
    if len(value) > MAX_STRING:
        raise HeartbeatError(f"{key} is longer than {MAX_STRING} characters")
    return value.replace("\x00", "") if "\x00" in value else value


def _clean_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HeartbeatError(f"{key} must be a whole number, not {type(value).__name__}")
    if isinstance(value, float):
        if not value.is_integer():
            raise HeartbeatError(f"{key} must be a whole number")
        value = int(value)
    if not -(2**31) <= value < 2**31:
        raise HeartbeatError(f"{key} is out of range")
    return value


def parse_user_agent(ua: str | None) -> tuple[str | None, str | None]:
    """(editor, operating system) from a user agent, as the server derives them (§4.3 step 9)."""
    if not ua:
        return None, None
    editor, os_name = useragent.parse(ua)
    return editor or None, os_name or None


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
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise HeartbeatError(f"a heartbeat must be a JSON object, not {type(raw).__name__}")
    when = raw.get("time")
    # Editors send float seconds: those skip the checks for other forms.
    found: dict[str, Any] = {
        "time": when if type(when) is float and TIME_MIN <= when < TIME_MAX else normalize_time(when)
    }
    # Visit only the keys the sender used (a handful), not every permitted field. This is the
    # intake's hottest loop: the common cases (a short clean string, a plain int) stay inline.
    for key, value in raw.items():
        kind = _KINDS.get(key)
        if kind is None or value is None:
            continue
        if kind == "s":
            if type(value) is not str or len(value) > MAX_STRING or "\x00" in value:
                value = _clean_str(key, value)
            found[key] = value
        elif kind == "i":
            found[key] = value if type(value) is int and -(2**31) <= value < 2**31 else _clean_int(key, value)
        elif kind == "b":
            found[key] = value if type(value) is bool else _clean_bool(value)
        else:
            found[key] = _clean_deps(value)

    project = found.get("project")
    if project is not None:
        # The server strips control characters and surrounding space from project names.
        if not project.isprintable():
            project = "".join(ch for ch in project if ch >= " " and ch != "\x7f")
        found["project"] = project.strip()
    if "category" not in found:
        found["category"] = "browsing" if found.get("type") in ("domain", "url") else "coding"
    plugin = found.pop("plugin", None)
    ua = found.get("user_agent") or plugin or header_user_agent or default_user_agent
    if ua:
        found["user_agent"] = ua[:MAX_STRING]
    host = header_machine or found.get("machine") or machine
    if host:  # an import passes "" for history that names no machine: it stays without one
        found["machine"] = host[:MAX_STRING]

    return _freeze(found)


def _freeze(payload: dict[str, Any]) -> Heartbeat:
    if payload.get("dependencies") == []:
        del payload["dependencies"]  # the server hashes an empty list and a missing one alike
    # Editor and OS as the server stores and hashes them: parsed from the user agent, the
    # body's values only when that yields nothing (§4.3 step 9); blank counts as absent.
    editor, os_name = parse_user_agent(payload.get("user_agent"))
    editor = editor or _present(payload.pop("editor", None))
    os_name = os_name or _present(payload.pop("operating_system", None))
    if editor:
        payload["editor"] = editor
    if os_name:
        payload["operating_system"] = os_name
    # The payload now holds exactly the fields the server's fields_hash covers (§4.4), each as
    # the server normalises it, with absent and null alike left out. Sorted keys make its JSON
    # a function of those values alone, so its digest is a local key equivalent to fields_hash
    # (the server's user_id is the same for every heartbeat of one user): two heartbeats share
    # it when the server would store them as one row, whether they came from an editor, the
    # watcher or an imported file. Not reproduced: the server resolves <<LAST_LANGUAGE>> and
    # <<LAST_BRANCH>> from its own rows of the same project, from every machine, which this
    # device cannot see; such a heartbeat keeps the placeholder in its key. The encoder sorts.
    # orjson, once the intake has loaded it, writes the json module's bytes for these values
    # (strings, 32-bit integers, booleans, a finite time) several times faster (agent/fastjson.py).
    encoded: bytes | None = None
    write = sorted_writer()
    if write is not None:
        try:
            encoded = write(payload)
        except TypeError:  # a lone surrogate, which only the json module writes: refused just below
            encoded = None
    if encoded is None:
        payload_json = _encode(payload)
        try:
            encoded = payload_json.encode("utf-8")
        except UnicodeEncodeError:
            raise HeartbeatError(_surrogate_message(payload)) from None
    else:
        payload_json = encoded.decode("utf-8")
    if key_needs_context(payload):
        encoded = _encode(as_server_stores(payload)).encode("utf-8")
    key = _md5(encoded, usedforsecurity=False).digest()
    # tuple.__new__ skips the named tuple's own __new__, a Python function: half the cost, per heartbeat.
    return _new(Heartbeat, (payload, payload_json, key, payload["time"], editor, os_name))


def key_needs_context(payload: Mapping[str, Any]) -> bool:
    """Does the server store this heartbeat's language other than as sent (§4.3 step 6)? Only
    for a language left out, blank or "unknown" beside a file name: rare, and cheap to rule out."""
    language = payload.get("language")
    if language and not language.isspace() and (len(language) < 7 or language.strip().lower() != "unknown"):
        return False
    entity = payload.get("entity")
    return bool(entity and not entity.isspace())


def as_server_stores(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed fields as the server stores them, for the dedup key: a language filled in
    from the file name as the server fills it (§4.3 step 6). The payload sent keeps the
    language as it was: the server infers it again on arrival."""
    out = dict(payload)
    language = server_language(out.get("language"), out.get("entity"))
    if language is not None:
        out["language"] = language
    return out


def server_language(language: str | None, entity: str | None) -> str | None:
    """The language the server stores for a heartbeat (§4.3 step 6): one sent blank or as
    "unknown" is inferred from the entity's file name, when that names one."""
    if language is not None and language.strip() and language.strip().lower() != "unknown":
        return language
    if entity is None or not entity.strip():
        return language
    return _language_from_name(entity) or language


@functools.lru_cache(maxsize=4096)
def _language_from_name(entity: str) -> str | None:
    # Loaded on first use: the language tables are needed only for a heartbeat without a language.
    from agent.capture.language import language_from_name

    return language_from_name(entity)


def _present(value: str | None) -> str | None:
    """Rails' ``presence`` for a string: None when empty or only whitespace."""
    return value if value and not value.isspace() else None


def dedup_key_of(payload_json: str) -> bytes:
    """The dedup key of a stored payload, as ``normalize`` gives it today (the schema v3
    migration re-keys rows stored when the key was a digest of the payload as received)."""
    return _freeze(json.loads(payload_json)).dedup_key


_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogate_message(payload: Mapping[str, Any]) -> str:
    bad = [
        key
        for key, value in sorted(payload.items())
        if any(isinstance(t, str) and _SURROGATE.search(t) for t in (value if isinstance(value, list) else [value]))
    ]
    key = bad[0] if bad else "a field"
    return (
        f"{key} is not valid Unicode: it holds a lone surrogate (bytes that are not UTF-8, such as a "
        "Latin-1 file name, decoded with surrogate escapes); send it as UTF-8"
    )


def as_sent_by_wakatime_cli(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A heartbeat built from file-system names, with its text made what wakatime-cli would send.

    A file name need not be UTF-8; Python decodes each byte that is not as a lone surrogate,
    which JSON cannot carry. wakatime-cli (Go) sends such a name with each of those bytes
    replaced by U+FFFD, so the same file gets the same entity from either source.
    """
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            value = _SURROGATE.sub("\ufffd", value)
        elif isinstance(value, list):
            value = [_SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v for v in value]
        out[key] = value
    return out


def _clean_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1) and not isinstance(value, float):
        return bool(value)
    raise HeartbeatError("is_write must be true or false")


def _clean_deps(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise HeartbeatError("dependencies must be a list of strings")
    if len(value) > MAX_DEPENDENCIES:
        raise HeartbeatError(f"dependencies has more than {MAX_DEPENDENCIES} entries")
    return [d.replace("\x00", "") for d in value]


_KINDS: dict[str, str] = {
    **{k: "s" for k in STRING_FIELDS},
    **{k: "i" for k in INT_FIELDS},
    "is_write": "b",
    "dependencies": "d",
}
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _c_encoder() -> Callable[[Any], str]:
    """``_ENCODER.encode`` without building a new C encoder on every call (a fifth of its
    time for a heartbeat): the same C encoder, made once, with the same settings."""
    make = json.encoder.c_make_encoder  # type: ignore[attr-defined]  # set by json.encoder, untyped
    if make is None:  # no C accelerator in this Python
        return _ENCODER.encode
    encoder = make(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, True
    )  # markers, default, string encoder, indent, separators, sort_keys, skipkeys, allow_nan

    def encode(payload: Any) -> str:
        return "".join(encoder(payload, 0))

    return encode


# The payload's JSON: the bytes sent, and what the dedup key digests. Keys sorted, compact,
# non-ASCII kept raw.
encode_payload = _encode = _c_encoder()
_md5 = hashlib.md5
_new = tuple.__new__
