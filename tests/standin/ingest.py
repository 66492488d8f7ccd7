"""Heartbeat ingest: request bodies, normalisation and the dedup hash (hackatime-api.md §4.1–4.4).

``extract_heartbeats`` turns a POST body into the list of raw items Rails would see;
``normalize`` applies §4.3 to one item and type-casts it as the ActiveRecord model would;
``fields_hash`` is §4.4. The store (``store.py``) does the dedup and the insert.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import math
import operator
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Protocol

from agent import useragent

from . import languages, railsjson

MAX_BULK = 100
EPOCH_MIN = 1_000_000_000
EPOCH_MAX = 2_000_000_000  # exclusive
INVALID_TIME = "HeartbeatIngest::InvalidHeartbeatTime"
LAST_LANGUAGE = "<<LAST_LANGUAGE>>"
LAST_BRANCH = "<<LAST_BRANCH>>"
LAST_PROJECT = "<<LAST_PROJECT>>"

NO_DATA = {"error": "No data provided..."}
TOO_MANY = {"error": f"Too many heartbeats in a single request (max {MAX_BULK})"}

# Strong-params permit list (§4.1). A scalar key keeps only scalar values; ``dependencies`` keeps
# only an array of scalars. Anything else is dropped without an error, as Rails does.
SCALAR_KEYS = (
    "entity", "type", "time", "project", "branch", "language", "category", "is_write", "lineno",
    "cursorpos", "lines", "line_additions", "line_deletions", "project_root_count", "editor",
    "operating_system", "machine", "user_agent", "plugin", "created_at", "ai_model", "ai_session",
    "ai_subscription_plan", "ai_input_tokens", "ai_output_tokens", "ai_prompt_length",
    "ai_line_changes", "human_line_changes",
)  # fmt: skip
STRING_COLUMNS = (
    "entity", "type", "category", "project", "branch", "language", "editor", "operating_system",
    "machine", "user_agent", "ai_model", "ai_session", "ai_subscription_plan",
)  # fmt: skip
# PostgreSQL ``integer`` columns: a value outside 32 bits fails the whole multi-row INSERT.
INT4_COLUMNS = ("lineno", "cursorpos", "lines", "line_additions", "line_deletions", "project_root_count")
AI_INTEGER_COLUMNS = (
    "ai_input_tokens", "ai_output_tokens", "ai_prompt_length", "ai_line_changes", "human_line_changes",
)  # fmt: skip
INTEGER_COLUMNS = INT4_COLUMNS + AI_INTEGER_COLUMNS
HASH_KEYS = (
    "user_id", "branch", "category", "dependencies", "editor", "entity", "language", "machine",
    "operating_system", "project", "type", "user_agent", "line_additions", "line_deletions", "lineno",
    "lines", "cursorpos", "project_root_count", "time", "is_write",
)  # fmt: skip
AI_HASH_KEYS = (
    "ai_model", "ai_session", "ai_subscription_plan", "ai_input_tokens", "ai_output_tokens",
    "ai_prompt_length", "ai_line_changes", "human_line_changes",
)  # fmt: skip
_hashed = operator.itemgetter(*HASH_KEYS)
_ai_hashed = operator.itemgetter(*AI_HASH_KEYS)
_SCALAR_KEY_SET = frozenset(SCALAR_KEYS)
_SCALAR_TYPES = (str, int, float, bool)
_RUBY_FALSE = (False, 0, "0", "f", "F", "false", "FALSE", "off", "OFF")
_NUMERIC_STRING = re.compile(r"\A[+-]?(?:\d+(?:\.\d*)?|\.\d+)\Z")
_LEADING_INT = re.compile(r"\A\s*([+-]?\d+)")
_STRIP = " \t\n\v\f\r\x00"  # Ruby's String#strip set
_CONTROL_CATEGORIES = frozenset(("Cc", "Cf", "Cn", "Co", "Cs"))  # Onigmo's [[:cntrl:]] for Unicode


class IngestError(Exception):
    """A per-heartbeat failure, answered as 422 ``{"error": message, "type": type_name}``."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.message, "type": self.type_name}


class BodyError(Exception):
    """The whole request is rejected with 400 before any heartbeat is looked at."""

    def __init__(self, payload: dict[str, Any], items: int = 0) -> None:
        super().__init__(payload.get("error"))
        self.payload = payload
        self.items = items  # how many heartbeats the body held, for the request log


@dataclass(frozen=True)
class RequestContext:
    """What HeartbeatIngest takes from the HTTP request rather than from the body."""

    user_agent: str | None = None  # the User-Agent header
    machine: str | None = None  # the X-Machine-Name header
    ip_address: str | None = None  # CF-Connecting-IP, else the peer address


class PlaceholderLookup(Protocol):
    def latest_value(self, user_id: int, project: str, column: str, sentinel: str) -> str | None: ...


def _bad_request(message: str) -> dict[str, Any]:
    return {"error": "Bad Request", "message": message, "status": 400}


def _reject_constant(name: str) -> Any:
    # Ruby's JSON parser refuses bare NaN/Infinity, so the request never reaches ingest.
    raise ValueError(f"unexpected token {name}")


def _parse_json(body: bytes) -> Any:
    return json.loads(body, parse_constant=_reject_constant)


def extract_heartbeats(body: bytes, content_type: str, *, bulk: bool) -> list[Any]:
    """The heartbeat items of a POST body, in the four forms of §4.1/§4.2; raises ``BodyError``."""
    if not body.strip():
        raise BodyError(NO_DATA)
    content_type = content_type.lower()
    if "json" in content_type:
        try:
            parsed = _parse_json(body)
        except ValueError as exc:
            raise BodyError(_bad_request(f"Error occurred while parsing request parameters: {exc}")) from exc
    elif "text/plain" in content_type:
        try:
            parsed = _parse_json(body)
        except ValueError:
            parsed = None  # the controller rescues its own parse and sees no data
    elif bulk:
        raise BodyError(_bad_request("param is missing or the value is empty or invalid: hackatime"))
    else:
        raise BodyError(NO_DATA)
    return _bulk_items(parsed, plain="text/plain" in content_type) if bulk else _single_item(parsed)


def _unwrap(parsed: dict[str, Any]) -> Any:
    """Rails wraps a JSON object under ``hackatime`` unless the body already has that key."""
    return parsed.get("hackatime", parsed)


def _bulk_items(parsed: Any, *, plain: bool) -> list[Any]:
    if isinstance(parsed, dict) and not plain:
        inner = _unwrap(parsed)
        parsed = inner.get("heartbeats") if isinstance(inner, dict) else None
    if not isinstance(parsed, list) or not parsed:
        raise BodyError(NO_DATA)
    if len(parsed) > MAX_BULK:
        raise BodyError(TOO_MANY, items=len(parsed))
    return parsed


def _single_item(parsed: Any) -> list[Any]:
    if isinstance(parsed, list):
        parsed = parsed[0] if parsed else None
    elif isinstance(parsed, dict):
        parsed = _unwrap(parsed)
    if not isinstance(parsed, dict | list) or not parsed:  # nothing, {}, [] or a scalar
        raise BodyError(NO_DATA)
    return [parsed]


def count_items(body: bytes, content_type: str, *, bulk: bool) -> int:
    """How many heartbeats a body carries (for the request log), 0 when it is not a valid batch."""
    try:
        return len(extract_heartbeats(body, content_type, bulk=bulk))
    except BodyError as exc:
        return exc.items


# --- time (§4.3 step 2) ------------------------------------------------------------------------


def _epoch(value: Any) -> float:
    """``normalize_epoch_time``: seconds in [1e9, 2e9), else rescaled from ms, µs or ns."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise IngestError(INVALID_TIME, "time must be a Unix epoch timestamp")
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf  # Ruby's Float() of a huge Integer is Infinity
    except ValueError as exc:
        raise IngestError(INVALID_TIME, "time must be a Unix epoch timestamp") from exc
    if not math.isfinite(seconds):
        raise IngestError(INVALID_TIME, INVALID_TIME)  # raised without a message: Ruby uses the class name
    if EPOCH_MIN <= seconds < EPOCH_MAX:
        return seconds
    for scale in (1e3, 1e6, 1e9):
        scaled = seconds / scale
        if EPOCH_MIN <= scaled < EPOCH_MAX:
            return scaled
    raise IngestError(INVALID_TIME, f"time must be Unix epoch seconds between {EPOCH_MIN} and {EPOCH_MAX - 1}")


def _parse_date(text: str) -> float:
    """The ``Time.parse`` forms clients send: ISO 8601 and RFC 2822. No zone means UTC (the server's)."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError) as exc:
            raise IngestError(INVALID_TIME, "time must be a Unix epoch timestamp or parseable date") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def normalize_time(value: Any) -> float:
    if isinstance(value, float) and EPOCH_MIN <= value < EPOCH_MAX:
        return value  # the overwhelmingly common case, kept cheap for the bulk benchmark
    if isinstance(value, str) and not _NUMERIC_STRING.match(value.strip()):
        return _epoch(_parse_date(value))
    return _epoch(value)


# --- ActiveModel type casting ------------------------------------------------------------------


def _ruby_float_str(value: float) -> str:
    text = repr(value)
    if "e" in text:  # Ruby writes 1.0e+20 where Python writes 1e+20
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa}e{sign}{exponent.lstrip('+-').zfill(2)}"
    return text


def _cast_string(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return _ruby_float_str(value)
    return str(value)


def _cast_integer(value: Any) -> int | None:
    """ActiveModel's Integer: true/false → 1/0, floats truncated, strings by their leading digits."""
    if value is None:
        return None
    if isinstance(value, int):  # bool included
        return int(value)
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    match = _LEADING_INT.match(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def _cast_boolean(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    return value not in _RUBY_FALSE


# --- normalisation (§4.3) ------------------------------------------------------------------------


def _permit(item: dict[str, Any]) -> dict[str, Any]:
    """Strong params, then null bytes stripped. Exact-type checks: JSON yields no subclasses."""
    attrs: dict[str, Any] = {}
    for key, value in item.items():
        if key in _SCALAR_KEY_SET:
            kind = type(value)
            if kind is str:
                attrs[key] = value.replace("\0", "") if "\0" in value else value
            elif value is None or kind is int or kind is float or kind is bool:
                attrs[key] = value
        elif key == "dependencies" and type(value) is list and all(_is_scalar(d) for d in value):
            attrs[key] = [d.replace("\0", "") if type(d) is str else d for d in value]
    return attrs


def _is_scalar(value: Any) -> bool:
    return value is None or type(value) in _SCALAR_TYPES


def _presence(value: Any) -> Any:
    """``.presence``; the str test inlined because it runs several times per heartbeat."""
    if type(value) is str:
        return None if not value or value.isspace() else value
    return None if languages.is_blank(value) else value


def _ruby_class(value: Any) -> str:
    if value is None:
        return "NilClass"
    if isinstance(value, bool):
        return "TrueClass" if value else "FalseClass"
    return {str: "String", int: "Integer", float: "Float", list: "Array"}.get(type(value), "Object")


def sanitize_project(project: Any) -> str | None:
    """Control (and format/unassigned) characters removed, then ASCII whitespace stripped."""
    if project is None:
        return None
    if not isinstance(project, str):
        raise IngestError("NoMethodError", f"undefined method 'gsub' for an instance of {_ruby_class(project)}")
    if project.isprintable():
        return project.strip(_STRIP)
    return "".join(c for c in project if unicodedata.category(c) not in _CONTROL_CATEGORIES).strip(_STRIP)


class PlaceholderState:
    """``<<LAST_LANGUAGE>>``/``<<LAST_BRANCH>>``: earlier in this request first, then the store."""

    def __init__(self, lookup: PlaceholderLookup, user_id: int) -> None:
        self._lookup = lookup
        self._user_id = user_id
        self._contexts: dict[str, dict[str, str | None]] = {}
        self._last_project: str | None = None

    def _context_project(self, project: Any) -> Any:
        return self._last_project if project == LAST_PROJECT else project

    def resolve(self, attrs: dict[str, Any]) -> None:
        if attrs.get("language") != LAST_LANGUAGE and attrs.get("branch") != LAST_BRANCH:
            return  # no placeholder: the common case stays cheap
        wants = [(c, s) for c, s in (("language", LAST_LANGUAGE), ("branch", LAST_BRANCH)) if attrs.get(c) == s]
        project = self._context_project(attrs.get("project"))
        if languages.is_blank(project):
            for column, _ in wants:
                attrs[column] = None
            return
        context = self._contexts.setdefault(project, {})
        for column, sentinel in wants:
            if column not in context:
                context[column] = self._lookup.latest_value(self._user_id, project, column, sentinel)
            attrs[column] = context[column]

    def remember(self, attrs: dict[str, Any]) -> None:
        project = attrs["project"]
        if not languages.is_blank(project) and project != LAST_PROJECT:
            self._last_project = project
        project = self._context_project(project)
        if languages.is_blank(project):
            return
        context = self._contexts.setdefault(project, {})
        for column, sentinel in (("language", LAST_LANGUAGE), ("branch", LAST_BRANCH)):
            value = attrs[column]
            if not languages.is_blank(value) and value != sentinel:
                context[column] = value


def normalize(item: Any, user_id: int, ctx: RequestContext, placeholders: PlaceholderState) -> dict[str, Any]:
    """One heartbeat through §4.3, cast to the model's column types; raises ``IngestError``."""
    if not isinstance(item, dict):
        raise IngestError("NoMethodError", f"undefined method 'to_h' for an instance of {_ruby_class(item)}")
    attrs = _permit(item)
    time = normalize_time(attrs.get("time"))
    entity = attrs.get("entity")
    attrs["project"] = sanitize_project(attrs.get("project"))
    placeholders.resolve(attrs)

    language = attrs.get("language")
    if (languages.is_blank(language) or str(language).strip().lower() == "unknown") and not languages.is_blank(entity):
        if not isinstance(entity, str):  # File.basename(5)
            raise IngestError("TypeError", f"no implicit conversion of {_ruby_class(entity)} into String")
        language = languages.detect(entity) or language

    category = attrs.get("category")
    if languages.is_blank(category):
        category = "browsing" if attrs.get("type") in ("domain", "url") else "coding"

    user_agent = _presence(attrs.get("user_agent")) or _presence(attrs.get("plugin")) or _presence(ctx.user_agent)
    parsed_editor, parsed_os = useragent.parse(user_agent) if isinstance(user_agent, str) else ("", "")

    model: dict[str, Any] = {"user_id": user_id, "time": time}
    get = attrs.get
    for column in STRING_COLUMNS:  # the common case (a str or null) skips the cast call
        value = get(column)
        model[column] = value if value is None or type(value) is str else _cast_string(value)
    for column in INTEGER_COLUMNS:
        value = get(column)
        model[column] = value if value is None or type(value) is int else _cast_integer(value)
    model["language"] = _cast_string(language)
    model["category"] = _cast_string(category)
    model["user_agent"] = _cast_string(user_agent)
    model["editor"] = _cast_string(parsed_editor or _presence(get("editor")))
    model["operating_system"] = _cast_string(parsed_os or _presence(get("operating_system")))
    model["machine"] = _cast_string(_presence(ctx.machine) or _presence(get("machine")))
    model["ai_model"] = _cast_string(_presence(get("ai_model")))
    model["is_write"] = _cast_boolean(get("is_write"))
    model["dependencies"] = [d if type(d) is str else _cast_string(d) for d in get("dependencies", ())]
    model["source_type"] = "test_entry" if entity == "test.txt" else "direct_entry"
    return model


def check_int4(models: list[dict[str, Any]]) -> None:
    """The batch is one multi-row INSERT: one out-of-range integer fails every item (§4.2)."""
    for model in models:
        for column in INT4_COLUMNS:
            value = model[column]
            if value is not None and not -(2**31) <= value < 2**31:
                raise IngestError(
                    "ActiveModel::RangeError",
                    f"{value} is out of range for ActiveModel::Type::Integer with limit 4 bytes",
                )


def hash_source(model: dict[str, Any]) -> str:
    """The exact JSON text §4.4 hashes: fixed key order, AI keys only when not null."""
    fields = dict(zip(HASH_KEYS, _hashed(model), strict=True))
    for key, value in zip(AI_HASH_KEYS, _ai_hashed(model), strict=True):
        if value is not None:
            fields[key] = value
    return railsjson.dumps(fields)


def md5_hex(source: str) -> str:
    return hashlib.md5(source.encode("utf-8", "surrogatepass")).hexdigest()


def fields_hash(model: dict[str, Any]) -> str:
    return md5_hex(hash_source(model))
