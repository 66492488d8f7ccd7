"""Which export a file is, found from its content (hackatime-api.md §7.5), and how each one's
heartbeats map onto the fields a heartbeat has here.

* WakaTime heartbeats export: ``{"user", "range", "days": [{"date", "heartbeats": [...]}]}``;
  ``machine_name_id`` names the machine, ``user_agent_id`` is a UUID. Without WakaTime's
  user-agents list the UUID itself is kept as the user agent, as the server does for a
  download-link import, so editor and OS stay unknown.
* Hackatime v1 (waka.hackclub.com) dump: the same envelope; ``user_agent_id`` is the full
  user agent string.
* Hackatime export: ``{"export_info", "heartbeats": [...]}`` with ISO times and the server's
  own columns.

A WakaTime daily-totals export shares the envelope but holds no heartbeats: it is refused
with how to request the right one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import ijson

from .source import ImportRefused, Source

WAKATIME, HACKATIME_V1, HACKATIME = "wakatime", "hackatime_v1", "hackatime"
NAMES = {
    WAKATIME: "a WakaTime heartbeats export",
    HACKATIME_V1: "a Hackatime v1 (waka.hackclub.com) dump",
    HACKATIME: "a Hackatime export",
}
SNIFF_LIMIT = 32 * 1024 * 1024  # JSON bytes read to decide; a real export decides in its first day
DAILY_KEYS = frozenset(("grand_total", "categories", "editors", "languages", "projects", "operating_systems"))
DAILY_TOTALS_HELP = (
    "this is a WakaTime daily-totals export: it holds time per day, not heartbeats, and cannot be "
    "imported. Request a heartbeats export instead: on wakatime.com open Settings → Account → Export, "
    'choose "Heartbeats", and import the file WakaTime sends you'
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


@dataclass(frozen=True)
class Detected:
    format: str
    prefix: str  # where the heartbeat objects sit, in ijson's prefix notation

    @property
    def name(self) -> str:
        return NAMES[self.format]


def detect(source: Source) -> Detected:
    """Read the start of ``source`` until it is clear what it holds; raise ``ImportRefused``
    (one teaching sentence) for anything that is not a heartbeats export."""
    top_keys: list[str] = []
    day_keys: set[str] = set()
    envelope: str | None = None
    events = ijson.parse(source.stream, use_float=True)
    try:
        for prefix, event, value in events:
            if prefix == "" and event in ("start_array", "string", "number", "boolean", "null"):
                if event == "start_array":
                    raise ImportRefused(
                        'this is a bare JSON list; an export wraps its heartbeats in an object, {"heartbeats": [...]}, '
                        "which is what Hackatime accepts too"
                    )
                raise ImportRefused("this is a single JSON value, not an export")
            if prefix == "" and event == "map_key":
                top_keys.append(value)
            elif prefix == "heartbeats":
                if event != "start_array":
                    raise ImportRefused(f'its "heartbeats" is a JSON {_kind(event)}, not a list of heartbeats')
                return Detected(HACKATIME, "heartbeats.item")
            elif prefix == "days.item" and event == "map_key":
                day_keys.add(value)
            elif prefix == "days.item.heartbeats":
                if event != "start_array":
                    raise ImportRefused(f'its days\' "heartbeats" is a JSON {_kind(event)}, not a list of heartbeats')
                envelope = envelope or WAKATIME
            elif prefix == "days.item.heartbeats.item.user_agent_id" and event == "string":
                # The first heartbeat tells the two dumps apart.
                found = WAKATIME if _UUID.match(value) else HACKATIME_V1
                return Detected(found, "days.item.heartbeats.item")
            elif prefix == "days.item.heartbeats.item" and event == "end_map":
                return Detected(envelope or WAKATIME, "days.item.heartbeats.item")
            elif (
                prefix == "days.item" and event == "end_map" and "heartbeats" not in day_keys and day_keys & DAILY_KEYS
            ):
                raise ImportRefused(DAILY_TOTALS_HELP)
            if source.json_bytes > SNIFF_LIMIT:
                break
    except ijson.JSONError as exc:
        raise ImportRefused(f"this is not valid JSON: {_first_line(exc)} (near byte {source.json_bytes:,})") from None
    except (EOFError, OSError) as exc:
        raise ImportRefused(f"the file cannot be read to its start: {exc}") from None
    if envelope:
        return Detected(envelope, "days.item.heartbeats.item")  # days with empty lists only
    keys = ", ".join(top_keys[:8]) or "none"
    raise ImportRefused(f'this JSON is not a heartbeats export: it has no "heartbeats" list (its keys: {keys})')


def _kind(event: str) -> str:
    return {"start_map": "object", "string": "string", "number": "number", "boolean": "boolean"}.get(event, "null")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def to_heartbeat(raw: Any) -> Any:
    """The export's heartbeat as the fields ``normalize`` reads (§7.5): ``machine`` else
    ``machine_name_id``; ``user_agent`` else ``user_agent_id`` (a UA string or, from
    WakaTime, an id kept as is). Everything else the exports add (ids, created_at,
    source_type, user_id) is dropped by ``normalize`` like any unknown key."""
    if type(raw) is dict:
        if "machine" not in raw:
            machine = raw.get("machine_name_id")
            if type(machine) is str:
                raw["machine"] = machine
        if "user_agent" not in raw:
            agent = raw.get("user_agent_id")
            if type(agent) is str:
                raw["user_agent"] = agent
    return raw
