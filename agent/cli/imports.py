"""``import FILE``: history from an export file, through a running agent (progress over its
long-poll) or in process; Ctrl-C finishes the batch and stops, and a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from agent.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    agent_is_running,
    call,
    control_of,
    flags_of,
    start_in_process,
)
from agent.config import Config, load_config
from agent.contract import (
    EVENTS,
    IMPORT,
    IMPORT_CANCEL,
    IMPORT_START,
    IMPORT_UPLOAD_HELD,
    HeldUploadAnswer,
    ImportAnswer,
    ImportProgress,
)


def cmd_import(args: argparse.Namespace) -> int:
    from agent.imports.report import progress_line, summary

    if args.upload_held or args.file is None:
        if args.file is not None or args.no_upload or not args.upload_held:
            raise CliError("give either an export FILE to import, or --upload-held alone", EXIT_USAGE)
        return _upload_held(args)

    config = load_config(flags_of(args))
    path = str(args.file.expanduser().resolve())
    upload = not args.no_upload
    tty = sys.stderr.isatty() and not args.json

    def show(run: ImportProgress) -> None:
        if tty:
            print(f"\r\x1b[K{progress_line(run)}", end="", file=sys.stderr, flush=True)

    running = agent_is_running(config)
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


def _upload_held(args: argparse.Namespace) -> int:
    """``import --upload-held``: queue the history kept local, through the agent or in process."""
    from agent.imports.report import held_summary

    config = load_config(flags_of(args))
    running = agent_is_running(config)
    if running:
        control = control_of(config)
        if control is None:
            raise CliError("an agent holds this data dir but its control file is missing; try again shortly")
        try:
            answer: HeldUploadAnswer = call(control, IMPORT_UPLOAD_HELD, 60)
        except httpx.HTTPError as exc:
            raise CliError(f"the running agent did not queue the upload: {exc}") from None
    else:
        agent = start_in_process(config, args.verbose)
        try:
            answer = agent.upload_held()
        finally:
            agent.stop()
    if args.json:
        print(json.dumps(answer))
    else:
        print(held_summary(answer, agent_running=running))
    return EXIT_OK


def _import_through_agent(
    config: Config, path: str, upload: bool, show: Callable[[ImportProgress], None]
) -> ImportProgress:
    control = control_of(config)
    if control is None:
        raise CliError("an agent holds this data dir but its control file is missing; try again shortly")
    try:
        answer: ImportAnswer = call(control, IMPORT_START, 30, body={"path": path, "upload": upload})
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
            seq = call(control, EVENTS, 70, params={"after": seq, "timeout": 30})["seq"]
            answer = call(control, IMPORT, 30)
        except KeyboardInterrupt:
            if cancelled:
                raise
            cancelled = True  # stop the agent's run; its summary follows
            answer = call(control, IMPORT_CANCEL, 30)
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

    from agent.imports.job import ImportJob

    agent = start_in_process(config, verbose)
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
