"""Looking without changing: ``status`` (the queue and health), ``stats`` (local figures) and
``doctor`` (what to fix).
"""

from __future__ import annotations

import argparse
import json
import time

import httpx

from agent.cli.common import EXIT_FAIL, EXIT_OK, CliError, agent_is_running, call, control_of, flags_of
from agent.config import load_config
from agent.contract import STATUS, STORE_FILE, Status


def cmd_status(args: argparse.Namespace) -> int:
    config = load_config(flags_of(args))
    status: Status
    control = control_of(config) if agent_is_running(config) else None
    if control:
        try:
            status = call(control, STATUS, timeout=10)
            status["agent_running"] = True
        except httpx.HTTPError:
            control = None
    if not control:
        from agent.daemon import build_status
        from agent.store.store import Store

        if not (config.data_dir / STORE_FILE).exists():
            status = build_status(None, config)
        else:
            with Store(config.data_dir / STORE_FILE) as store:
                status = build_status(store, config)
        status["agent_running"] = False
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(_format_status(status))
    return EXIT_OK


def _ago(ts: float | None) -> str:
    if not ts:
        return "never"
    seconds = max(0, time.time() - ts)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def _format_status(status: Status) -> str:
    lines = [f"agent: {'running' if status.get('agent_running') else 'not running'} (data in {status['data_dir']})"]
    lines.append(f"key: {status['api_key']} from {status['key_source'] or 'nowhere'}")
    for d in status["destinations"]:
        lines.append(f"{d['name']} → {d['url']}")
        lines.append(f"  pending {d['pending']} · in flight {d['in_flight']} · sent {d['sent']} · dead {d['dead']}")
        if d["oldest_pending"]:
            lines.append(f"  oldest pending heartbeat: {time.ctime(d['oldest_pending'])}")
        lines.append(f"  last success: {_ago(d['last_success'])} · key: {d['auth_state']}")
        if d["last_error"]:
            lines.append(f"  last error ({_ago(d['last_error_at'])}): {d['last_error']}")
        if d["backoff_until"] and d["backoff_until"] > time.time():
            lines.append(f"  next try in {d['backoff_until'] - time.time():.0f} s")
    for notice in status["notices"]:
        lines.append(f"{notice['level']}: {notice['message']}")
    return "\n".join(lines)


def cmd_stats(args: argparse.Namespace) -> int:
    from agent.stats.service import StatsService
    from agent.store.store import Store

    config = load_config(flags_of(args))
    if not (config.data_dir / STORE_FILE).exists():
        raise CliError(f"no heartbeats recorded yet (no store in {config.data_dir})")
    with Store(config.data_dir / STORE_FILE) as store:
        figures = StatsService(store, client=None).local(args.range)
    if args.json:
        print(json.dumps(figures, indent=2))
        return EXIT_OK
    print(f"{args.range}: {_hm(figures['total_seconds'])} (local, {figures['timezone']})")
    for key in ("projects", "languages", "editors"):
        if figures.get(key):
            print(f"{key}:")
            for entry in figures[key][:10]:
                print(f"  {entry['name']:<30} {_hm(entry['total_seconds'])}")
    return EXIT_OK


def _hm(seconds: int) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h {rest // 60:02d}m"


def cmd_doctor(args: argparse.Namespace) -> int:
    from agent.doctor import run_checks

    checks = run_checks(load_config(flags_of(args)))
    if args.json:
        print(json.dumps({"ok": all(c.ok for c in checks), "checks": [c.as_dict() for c in checks]}, indent=2))
    else:
        for check in checks:
            print(f"{'ok ' if check.ok else 'FIX'} {check.name}: {check.detail}")
            if check.fix:
                print(f"    → {check.fix}")
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAIL
