"""``hackatime-agent``: run the agent, inspect its queue, deliver now, print stats, import history.

Exit codes (stable, documented in README.md):
  0 success · 1 failure · 2 usage · 3 API key rejected · 4 server unreachable ·
  5 rate limited, heartbeats still waiting · 6 no API key configured ·
  7 another agent already runs for this data dir · 8 the intake port is taken by another program ·
  9 the API key is malformed · 10 no OS keyring: choose where to keep the key
  (``key set --store file|wakatime-cfg``)

``key`` commands: ``key set`` reads the key from stdin (or asks for it without echo on a
terminal), checks it with the server, stores it in the OS keyring and has a running agent
use it at once; ``key show`` prints it masked (last four characters) with its source;
``key check`` asks the server (0 accepted, 3 rejected, 4 unreachable, 9 malformed, 6 none);
``key forget`` removes it from the keyring and the app's settings.
"""

from __future__ import annotations

import argparse
import errno
import getpass
import json
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from . import __version__
from .config import Config, Flags, load_config
from .contract import (
    EVENTS,
    IMPORT,
    IMPORT_CANCEL,
    IMPORT_START,
    KEY,
    KEY_CHECK,
    KEY_FORGET,
    KEY_SET,
    LOCK_FILE,
    RANGES,
    STATUS,
    STORE_FILE,
    SYNC,
    TOKEN_FILE,
    ImportAnswer,
    ImportProgress,
    Route,
    Status,
    SyncAnswer,
)
from .delivery.outbox import Outcome
from .keys import PLACES
from .lock import EXIT_PORT_IN_USE, EXIT_RUNNING, AlreadyRunning, InstanceLock, port_owner
from .logs import setup_logging
from .secrets import KEYRING_CHILD_ARG, keyring_child_main, mask, redact
from .store import StoreTooNew

if TYPE_CHECKING:
    from .daemon import Agent

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_AUTH, EXIT_UNREACHABLE, EXIT_RATE_LIMITED, EXIT_NO_KEY = range(7)
# 7 and 8 (another agent runs / the port is taken) are agent.lock's.
EXIT_MALFORMED = 9  # the API key is not shaped like one
EXIT_NO_KEYRING = 10  # no OS keyring: the user chooses where the key goes
_VERDICT_EXIT = {
    "accepted": EXIT_OK,
    "rejected": EXIT_AUTH,
    "unreachable": EXIT_UNREACHABLE,
    "malformed": EXIT_MALFORMED,
    "missing": EXIT_NO_KEY,
}
_OUTCOME_EXIT = {
    Outcome.IDLE.value: EXIT_OK,
    Outcome.DELIVERED.value: EXIT_OK,
    Outcome.AUTH_REJECTED.value: EXIT_AUTH,
    Outcome.NO_KEY.value: EXIT_NO_KEY,
    Outcome.RATE_LIMITED.value: EXIT_RATE_LIMITED,
    Outcome.UNREACHABLE.value: EXIT_UNREACHABLE,
    Outcome.BACKING_OFF.value: EXIT_UNREACHABLE,
    Outcome.STOPPED.value: EXIT_FAIL,
    Outcome.DISK_FULL.value: EXIT_FAIL,
}


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hackatime-agent", description="Hackatime Desktop's heartbeat agent.")
    parser.add_argument("--data-dir", type=Path, help="where the store, token and logs live")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the agent: capture, intake and delivery")
    run.add_argument("--port", type=int, help="local intake port (0: any free port)")
    run.add_argument("--watch", type=Path, action="append", default=[], help="record saves in this folder")
    run.add_argument("--no-watch", action="store_true", help="watch no folders, whatever the settings say")
    run.add_argument("--api-url", help="upload to this WakaTime-compatible API URL")

    status = sub.add_parser("status", help="queue, delivery and key state")
    status.add_argument("--json", action="store_true")

    sync = sub.add_parser("sync", help="deliver everything deliverable now, then exit")
    sync.add_argument("--json", action="store_true")
    sync.add_argument("--api-url", help="upload to this WakaTime-compatible API URL")

    stats = sub.add_parser("stats", help="coding time computed locally with Hackatime's rules")
    stats.add_argument("--json", action="store_true")
    stats.add_argument("--range", choices=RANGES, default="today")
    doctor = sub.add_parser("doctor", help="check configuration, key, server, keyring and watch limits")
    doctor.add_argument("--json", action="store_true")

    key = sub.add_parser("key", help="manage the API key: set, show, check, forget")
    key_sub = key.add_subparsers(dest="key_command", required=True)
    key_set = key_sub.add_parser("set", help="read a key from stdin (hidden prompt on a terminal), check it, store it")
    key_set.add_argument(
        "--store",
        choices=PLACES,
        default="keyring",
        help="where to keep it: the OS keyring (default); 'file': plain text in the app's config dir, "
        "readable only by you; 'wakatime-cfg': plain text in ~/.wakatime.cfg, where editor plugins read it",
    )
    key_set.add_argument("--no-check", action="store_true", help="store it without asking the server first")
    key_set.add_argument("--json", action="store_true")
    for name, text in (
        ("show", "the key in use, masked (last four characters), and where it comes from"),
        ("check", "ask the server whether it accepts the key in use"),
        ("forget", "remove the key from the OS keyring and the app's settings"),
    ):
        key_sub.add_parser(name, help=text).add_argument("--json", action="store_true")
    imports = sub.add_parser("import", help="import history from a WakaTime or Hackatime export file")
    imports.add_argument("file", type=Path, help="the export: .json, .json.gz or Hackatime's .zip")
    imports.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    imports.add_argument("--no-upload", action="store_true", help="keep the imported heartbeats local")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if list(sys.argv[1:] if argv is None else argv) == [KEYRING_CHILD_ARG]:
        # A frozen agent asked itself to read the keyring (secrets.read_keyring_in_child).
        return keyring_child_main()
    args = build_parser().parse_args(argv)
    try:
        return int(_COMMANDS[args.command](args))
    except CliError as exc:
        print(f"hackatime-agent: {exc}", file=sys.stderr)
        return exc.code
    except StoreTooNew as exc:  # run, status, stats, sync: the store is left untouched
        print(f"hackatime-agent: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return EXIT_FAIL
    except Exception:
        # A crash still prints what happened, but never a key: every key read is a known secret.
        print(redact(traceback.format_exc()).rstrip(), file=sys.stderr)
        print("hackatime-agent: unexpected error (details above)", file=sys.stderr)
        return EXIT_FAIL


def _flags(args: argparse.Namespace) -> Flags:
    return Flags(
        data_dir=args.data_dir,
        port=getattr(args, "port", None),
        api_url=getattr(args, "api_url", None),
        watch=tuple(getattr(args, "watch", ()) or ()),
        no_watch=bool(getattr(args, "no_watch", False)),
    )


def cmd_run(args: argparse.Namespace) -> int:
    from .daemon import Agent

    flags = _flags(args)
    # The daemon lives for days: the keyring's backends are loaded by a child, not by it.
    config = load_config(flags, keyring_in_child=True)
    setup_logging(config.log_dir, verbose=args.verbose)
    agent = Agent(config)
    try:
        agent.start()
    except AlreadyRunning as exc:
        raise CliError(str(exc), EXIT_RUNNING) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            # One line the tray shows as it is: say who holds the port when the system tells.
            owner = port_owner(config.port)
            by = f" by {owner}" if owner else " by another program"
            raise CliError(f"port {config.port} on 127.0.0.1 is in use{by}", EXIT_PORT_IN_USE) from None
        raise CliError(f"could not listen on 127.0.0.1:{config.port}: {exc.strerror or exc}") from None

    def _on_signal(signum: int, frame: Any) -> None:
        agent._stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    print(f"hackatime-agent {__version__}: intake listening on {agent.intake_url}", flush=True)
    if not config.api_key:
        print("hackatime-agent: no API key configured; heartbeats are kept until one is set", file=sys.stderr)
    try:
        agent.wait()
    finally:
        agent.stop()
    return EXIT_OK


def _control(config: Config) -> tuple[str, str] | None:
    """(url, token) of a running agent for this data dir, or None."""
    from .daemon import read_runtime_file

    info = read_runtime_file(config.data_dir)
    if not info:
        return None
    try:
        token = (config.data_dir / TOKEN_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return str(info["url"]), token


def _call(control: tuple[str, str], route: Route, timeout: float = 600, *, body: Any = None, params: Any = None) -> Any:
    url, token = control
    response = httpx.request(
        route.method,
        url + route.url(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
        json=body,
        params=params,
    )
    response.raise_for_status()
    return response.json()


def _agent_is_running(config: Config) -> bool:
    lock = InstanceLock(config.data_dir / LOCK_FILE)
    try:
        lock.acquire()
    except AlreadyRunning:
        return True
    lock.release()
    return False


def cmd_status(args: argparse.Namespace) -> int:
    config = load_config(_flags(args))
    status: Status
    control = _control(config) if _agent_is_running(config) else None
    if control:
        try:
            status = _call(control, STATUS, timeout=10)
            status["agent_running"] = True
        except httpx.HTTPError:
            control = None
    if not control:
        from .daemon import build_status
        from .store.store import Store

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


def cmd_sync(args: argparse.Namespace) -> int:
    config = load_config(_flags(args))
    if _agent_is_running(config):
        control = _control(config)
        if control is None:
            raise CliError("an agent holds this data dir but its control file is missing; try again shortly")
        try:
            result: SyncAnswer = _call(control, SYNC)
        except httpx.HTTPError as exc:
            raise CliError(f"the running agent did not answer: {exc}") from None
    else:
        result = _sync_in_process(config, args.verbose)
    code = _OUTCOME_EXIT.get(result["outcome"], EXIT_FAIL)
    if code == EXIT_OK and result["pending"]:
        code = EXIT_FAIL
        result["error"] = result["error"] or f"{result['pending']} heartbeats are still waiting"
    if args.json:
        print(json.dumps(result))
    else:
        print(f"delivered {result['delivered']} · dead {result['dead']} · still waiting {result['pending']}")
    if code != EXIT_OK:
        print(f"hackatime-agent: sync incomplete: {result['error'] or result['outcome']}", file=sys.stderr)
    return code


def _start_in_process(config: Config, verbose: bool) -> Agent:
    """An agent for one command when none runs: no local API, no watching; it holds the data
    dir's lock, so a daemon started meanwhile is refused rather than sharing the store."""
    from .daemon import Agent

    setup_logging(config.log_dir, verbose=verbose, stderr=verbose)
    agent = Agent(config, watch=False, serve=False)
    try:
        agent.start()
    except AlreadyRunning as exc:
        raise CliError(str(exc), EXIT_RUNNING) from None
    return agent


def _sync_in_process(config: Config, verbose: bool) -> SyncAnswer:
    agent = _start_in_process(config, verbose)
    try:
        return agent.sync_now()
    finally:
        agent.stop()


def cmd_stats(args: argparse.Namespace) -> int:
    from .stats.service import StatsService
    from .store.store import Store

    config = load_config(_flags(args))
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
    from .doctor import run_checks

    checks = run_checks(load_config(_flags(args)))
    if args.json:
        print(json.dumps({"ok": all(c.ok for c in checks), "checks": [c.as_dict() for c in checks]}, indent=2))
    else:
        for check in checks:
            print(f"{'ok ' if check.ok else 'FIX'} {check.name}: {check.detail}")
            if check.fix:
                print(f"    → {check.fix}")
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAIL


# ---- key -----------------------------------------------------------------------------------------------


def _running_control(config: Config) -> tuple[str, str] | None:
    if not _agent_is_running(config):
        return None
    control = _control(config)
    if control is None:
        raise CliError("an agent holds this data dir but its control file is missing; try again shortly")
    return control


def _ask_agent(control: tuple[str, str], route: Route, body: dict[str, Any] | None = None) -> Any:
    url, token = control
    try:
        response = httpx.request(
            route.method, url + route.url(), json=body, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
    except httpx.HTTPError as exc:
        raise CliError(f"the running agent did not answer ({type(exc).__name__})") from None
    answer = response.json()
    if response.status_code >= 400:
        code = _VERDICT_EXIT.get(answer.get("verdict"), EXIT_NO_KEYRING if answer.get("no_keyring") else EXIT_FAIL)
        raise CliError(str(answer.get("error")), code)
    return answer


def _read_new_key() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("API key (from your Hackatime settings; input hidden): ").strip()
    return sys.stdin.readline().strip()


def _print(args: argparse.Namespace, answer: Mapping[str, Any], text: str) -> None:
    print(json.dumps(answer) if args.json else text)


def cmd_key(args: argparse.Namespace) -> int:
    from .keys import KeyInUse, KeyRefused, KeyStoreError, check_key, client_for, forget_key, set_key

    config = load_config(_flags(args))
    control = _running_control(config)
    command = args.key_command
    if command == "show":
        info = _ask_agent(control, KEY) if control else KeyInUse(config.api_key, config.key_source).describe()
        _print(args, info, f"{info['masked']} from {info['source']}" if info["configured"] else "no API key is set")
        return EXIT_OK if info["configured"] else EXIT_NO_KEY
    if command == "check":
        if control:
            result = _ask_agent(control, KEY_CHECK)
        else:
            with client_for(config, config.api_key or "") as client:
                result = check_key(client).as_dict()
        _print(args, result, result["reason"])
        return _VERDICT_EXIT.get(result["verdict"], EXIT_FAIL)
    if command == "forget":
        if control:
            answer = _ask_agent(control, KEY_FORGET)
        else:
            try:
                forgotten = forget_key(config.config_dir, in_child=False)
            except KeyStoreError as exc:
                raise CliError(str(exc)) from None
            after = load_config(_flags(args))
            answer = {"forgotten": forgotten, "key": KeyInUse(after.api_key, after.key_source).describe()}
        left = answer["key"]
        still = f"; {left['masked']} from {left['source']} is in use now" if left["configured"] else ""
        _print(args, answer, f"the key was {answer['forgotten']}{still}")
        return EXIT_OK
    key = _read_new_key()
    if control:
        body = {"key": key, "store": args.store, "check": not args.no_check}
        answer = _ask_agent(control, KEY_SET, body)
    else:
        try:
            stored, verdict = set_key(config, key, args.store, check=not args.no_check, in_child=False)
        except KeyRefused as exc:
            hint = " (store it anyway with --no-check)" if exc.check.verdict == "unreachable" else ""
            raise CliError(f"the key was not stored: {exc}{hint}", _VERDICT_EXIT[exc.check.verdict]) from None
        except KeyStoreError as exc:
            raise CliError(str(exc), EXIT_NO_KEYRING if exc.no_keyring else EXIT_FAIL) from None
        after = load_config(_flags(args))
        in_use = KeyInUse(after.api_key, after.key_source)
        outranked = in_use.fingerprint != KeyInUse(key.strip(), None).fingerprint
        answer = {
            "stored": stored,
            "check": verdict.as_dict(),
            "key": in_use.describe(),
            "warning": f"the key from {in_use.source} ({in_use.describe()['masked']}) outranks it and stays in use"
            if outranked
            else None,
        }
    who = answer["check"]
    text = f"key {mask(key)} {answer['stored']}"
    if who["verdict"] == "accepted":
        text += f"; the server {who['reason']}"
    _print(args, answer, text)
    if answer["warning"]:
        print(f"hackatime-agent: warning: {answer['warning']}", file=sys.stderr)
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from .imports.report import progress_line, summary

    config = load_config(_flags(args))
    path = str(args.file.expanduser().resolve())
    upload = not args.no_upload
    tty = sys.stderr.isatty() and not args.json

    def show(run: ImportProgress) -> None:
        if tty:
            print(f"\r\x1b[K{progress_line(run)}", end="", file=sys.stderr, flush=True)

    running = _agent_is_running(config)
    if running:
        run = _import_through_agent(config, path, upload, show)
    else:
        run = _import_in_process(config, path, upload, show, args.verbose)
    if tty:
        print("\r\x1b[K", end="", file=sys.stderr, flush=True)
    if args.json:
        keys = ("format", "read", "imported", "duplicates", "invalid", "errors", "seconds", "state", "problem")
        extra = ("upload_heartbeats", "upload_seconds")
        print(json.dumps({k: run[k] for k in (*keys, *extra)}))  # type: ignore[literal-required]
    elif run["state"] != "refused":
        print("\n".join(summary(run, agent_running=running)))
    if run["state"] == "done":
        return EXIT_OK
    if run["state"] == "cancelled":
        problem = f"cancelled after {run['read']:,} heartbeats; run the same import again to resume"
    else:
        problem = f"{Path(path).name}: {run['problem']}"
    print(f"hackatime-agent: import: {problem}", file=sys.stderr)
    return EXIT_FAIL


def _import_through_agent(
    config: Config, path: str, upload: bool, show: Callable[[ImportProgress], None]
) -> ImportProgress:
    control = _control(config)
    if control is None:
        raise CliError("an agent holds this data dir but its control file is missing; try again shortly")
    try:
        answer: ImportAnswer = _call(control, IMPORT_START, 30, body={"path": path, "upload": upload})
    except httpx.HTTPStatusError as exc:
        raise CliError(f"the agent did not start the import: {_error_of(exc.response)}") from None
    except httpx.HTTPError as exc:
        raise CliError(f"the running agent did not answer: {exc}") from None
    seq = -1
    cancelled = False
    while True:
        run = answer["run"]
        if run is None:
            raise CliError("the agent lost track of the import")
        show(run)
        if run["state"] in ("done", "broken", "refused", "cancelled"):
            return run
        try:
            seq = _call(control, EVENTS, 70, params={"after": seq, "timeout": 30})["seq"]
            answer = _call(control, IMPORT, 30)
        except KeyboardInterrupt:
            if cancelled:
                raise
            cancelled = True  # stop the agent's run; its summary follows
            answer = _call(control, IMPORT_CANCEL, 30)
        except httpx.HTTPError as exc:
            raise CliError(f"the running agent stopped answering during the import: {exc}") from None


def _error_of(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error") or response.status_code)
    except ValueError:
        return f"HTTP {response.status_code}"


def _import_in_process(
    config: Config, path: str, upload: bool, show: Callable[[ImportProgress], None], verbose: bool
) -> ImportProgress:
    import threading

    from .imports.job import ImportJob

    agent = _start_in_process(config, verbose)
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: cancel.set())  # finish the batch, then stop
    try:
        job = ImportJob(
            agent.store, path, upload=upload, cancel=cancel, on_progress=lambda p: show(_as_run(p.as_dict()))
        )
        progress = job.run()
        agent.stats.prepare()  # the history is in the local stats at once
        return _as_run(progress.as_dict())
    finally:
        signal.signal(signal.SIGINT, previous)
        agent.stop()


def _as_run(progress: dict[str, Any]) -> ImportProgress:
    return progress  # type: ignore[return-value]  # Progress.as_dict has ImportProgress's keys


_COMMANDS = {
    "run": cmd_run,
    "status": cmd_status,
    "sync": cmd_sync,
    "stats": cmd_stats,
    "doctor": cmd_doctor,
    "key": cmd_key,
    "import": cmd_import,
}

if __name__ == "__main__":
    sys.exit(main())
