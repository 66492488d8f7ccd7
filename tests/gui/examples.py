"""Example answers of the control API, shaped as ``/agent/v1/status`` and ``/agent/v1/stats`` return them.

Used only by the pure tests of ``app.state`` (no Qt, no agent): the widget tests
run against a real in-process agent and the loopback stand-in instead.
"""

from __future__ import annotations

import copy
from typing import Any

NOW = 1_767_268_800.0  # 2026-01-01 12:00:00 UTC


def status(**overrides: Any) -> dict[str, Any]:
    dest = {
        "name": "hackatime",
        "url": "https://hackatime.hackclub.com/api/hackatime/v1",
        "pending": 0,
        "in_flight": 0,
        "sent": 1200,
        "dead": 0,
        "oldest_pending": None,
        "last_success": NOW - 180,
        "last_error": None,
        "last_error_at": None,
        "backoff_until": None,
        "auth_state": "ok",
    }
    dest.update(overrides.pop("dest", {}))
    base: dict[str, Any] = {
        "version": "0.1.0",
        "pid": 4242,
        "started_at": NOW - 3600,
        "intake_url": "http://127.0.0.1:47325/api/hackatime/v1",
        "data_dir": "/data",
        "log_dir": "/data/logs",
        "paused_until": None,
        "recording": False,
        "last_heartbeat_at": NOW - 600,
        "online": True,
        "destinations": [dest],
        "notices": [],
        "seq": 17,
    }
    base.update(overrides)
    return base


def _p(name: str, seconds: float) -> dict[str, Any]:
    return {"name": name, "total_seconds": seconds}


STATS: dict[str, Any] = {
    "generated_at": NOW,
    "timezone": "UTC",
    "today": {
        "total_seconds": 11520.0,
        "text": "3 hrs 12 mins",
        "local_seconds": 11520.0,
        "server_seconds": 10800.0,
        "unsynced_seconds": 720.0,
        "source": "server+local",
        "server_fetched_at": NOW - 120,
        "goal": {"target_seconds": 18000, "tracked_seconds": 11520, "completion_percent": 64, "complete": False},
    },
    "streak": {"days": 12, "source": "server", "fetched_at": NOW - 300},
    "projects": [
        {"name": "hackatime-desktop", "total_seconds": 30000, "languages": ["Python"], "last_activity": NOW - 60},
        {"name": "website", "total_seconds": 9000, "languages": ["TypeScript", "CSS"], "last_activity": NOW - 7200},
    ],
    "projects_range": "7d",
    "last_7_days": {
        "total_seconds": 39000,
        "source": "local",
        "fetched_at": None,
        "days": [
            {"date": "2025-12-26", "total_seconds": 3600, "projects": [{"name": "website", "total_seconds": 3600}]},
            {"date": "2025-12-27", "total_seconds": 0, "projects": []},
            {"date": "2025-12-28", "total_seconds": 5400, "projects": [_p("hackatime-desktop", 5400)]},
            {
                "date": "2025-12-29",
                "total_seconds": 7200,
                "projects": [
                    {"name": "hackatime-desktop", "total_seconds": 5400},
                    {"name": "website", "total_seconds": 1800},
                ],
            },
            {"date": "2025-12-30", "total_seconds": 3600, "projects": [{"name": "website", "total_seconds": 3600}]},
            {"date": "2025-12-31", "total_seconds": 7680, "projects": [_p("hackatime-desktop", 7680)]},
            {
                "date": "2026-01-01",
                "total_seconds": 11520,
                "projects": [
                    {"name": "hackatime-desktop", "total_seconds": 11520 - 1800 - 600},
                    {"name": "dotfiles", "total_seconds": 1800},
                    {"name": "notes", "total_seconds": 600},
                ],
            },
        ],
        "languages": [
            {"name": "Python", "total_seconds": 30000, "percent": 76.9},
            {"name": "TypeScript", "total_seconds": 6000, "percent": 15.4},
            {"name": "CSS", "total_seconds": 3000, "percent": 7.7},
        ],
        "editors": [{"name": "VS Code", "total_seconds": 33000}, {"name": "Neovim", "total_seconds": 6000}],
        "operating_systems": [{"name": "Linux", "total_seconds": 39000}],
        "machines": [{"name": "laptop", "total_seconds": 39000}],
        "categories": [{"name": "coding", "total_seconds": 39000}],
    },
    "daily_totals": [
        {"date": "2025-12-29", "total_seconds": 7200},
        {"date": "2025-12-31", "total_seconds": 7680},
        {"date": "2026-01-01", "total_seconds": 11520},
    ],
}


def stats(**today_overrides: Any) -> dict[str, Any]:
    result = copy.deepcopy(STATS)
    result["today"].update(today_overrides)
    return result
