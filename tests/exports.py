"""Export files as WakaTime, waka.hackclub.com (Hackatime v1) and Hackatime write them
(hackatime-api.md §7.5), generated for the import tests and the import benchmark."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

T0 = 1727905177.0
UA = "wakatime/v1.90.0 (linux-6.5.0-x86_64) go1.21 vscode/1.85.0 vscode-wakatime/24.4.0"
UA_ID = "9c0b5a8e-1111-4222-8333-444455556666"
FORMATS = ("wakatime", "hackatime_v1", "hackatime")


def heartbeat(i: int, start: float = T0) -> dict[str, Any]:
    """The i-th heartbeat of a generated history (a function of ``i`` alone), 30 s apart."""
    return {
        "entity": f"/home/orpheus/proj{i % 7}/src/module_{i * 7919 % 200}.py",
        "type": "file",
        "time": start + 30.0 * i + 0.25,
        "category": "coding",
        "project": f"proj{i % 7}",
        "branch": "main",
        "language": "Python",
        "is_write": i % 3 == 0,
        "lineno": i * 31 % 499 + 1,
        "lines": 500 + i * 17 % 400,
        "cursorpos": i * 13 % 79 + 1,
        "dependencies": ["os", "sys"] if i % 2 else [],
    }


def as_exported(fmt: str, hb: dict[str, Any], i: int) -> dict[str, Any]:
    """One heartbeat as ``fmt`` writes it."""
    if fmt == "wakatime":
        return {
            "id": uuid.UUID(int=i).hex,
            **hb,
            "machine_name_id": "orpheus-pc",
            "user_agent_id": UA_ID,
            "created_at": "2024-10-02T21:39:37Z",
        }
    if fmt == "hackatime_v1":
        return {
            "id": str(99000 + i),
            **hb,
            "time": float(int(hb["time"])),
            "editor": "vscode",
            "operating_system": "linux",
            "user_id": "orpheus",
            "machine_name_id": "orpheus-pc",
            "user_agent_id": UA,
            "created_at": "2024-10-02T21:38:20Z",
        }
    moment = dt.datetime.fromtimestamp(hb["time"], dt.UTC)
    return {
        "id": i,
        **hb,
        "time": moment.isoformat(),
        "editor": "vscode",
        "operating_system": "linux",
        "machine": "orpheus-pc",
        "user_agent": UA,
        "source_type": "direct_entry",
        "created_at": "2024-10-02T21:38:20.000Z",
        "updated_at": "2024-10-02T21:38:20.000Z",
    }


def exported(fmt: str, n: int, start: float = T0) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield as_exported(fmt, heartbeat(i, start), i)


def write_export(
    path: Path, fmt: str, heartbeats: Iterator[dict[str, Any]] | list[Any], *, gz: bool = False, per_day: int = 500
) -> Path:
    """Write an export file, streaming (a million heartbeats never sit in memory)."""
    opener = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8") as fh:  # type: ignore[operator]
        _write(fh, fmt, iter(heartbeats), per_day)
    return path


def _write(fh: IO[str], fmt: str, heartbeats: Iterator[Any], per_day: int) -> None:
    if fmt == "hackatime":
        fh.write('{"export_info":{"exported_at":"2026-08-22T12:00:00Z","total_heartbeats":0},"heartbeats":[')
        for n, hb in enumerate(heartbeats):
            fh.write(("," if n else "") + json.dumps(hb))
        fh.write("]}")
        return
    head = {"start": int(T0), "end": int(T0) + 86400}
    fh.write(
        ('{"user":{"id":"u1","username":"orpheus"},' if fmt == "wakatime" else "{") + f'"range":{json.dumps(head)},'
    )
    fh.write('"days":[')
    day = 0
    done = False
    while not done:
        fh.write(("," if day else "") + f'{{"date":"2024-10-{day % 28 + 1:02d}","heartbeats":[')
        for n in range(per_day):
            hb = next(heartbeats, None)
            if hb is None:
                done = True
                break
            fh.write(("," if n else "") + json.dumps(hb))
        fh.write("]}")
        day += 1
    fh.write("]}")
