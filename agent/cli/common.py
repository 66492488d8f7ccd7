"""What every command shares: exit codes, errors, the flags, and reaching a running agent's
control API (or starting one in process when none runs).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from agent.config import Config, Flags
from agent.contract import LOCK_FILE, TOKEN_FILE, Route
from agent.delivery.outbox import Outcome
from agent.lock import EXIT_RUNNING, AlreadyRunning, InstanceLock
from agent.logs import setup_logging

if TYPE_CHECKING:
    from agent.daemon import Agent


EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_AUTH, EXIT_UNREACHABLE, EXIT_RATE_LIMITED, EXIT_NO_KEY = range(7)
# 7 and 8 (another agent runs / the port is taken) are agent.lock's.
EXIT_MALFORMED = 9  # the API key is not shaped like one
EXIT_NO_KEYRING = 10  # no OS keyring: the user chooses where the key goes
VERDICT_EXIT = {
    "accepted": EXIT_OK,
    "rejected": EXIT_AUTH,
    "unreachable": EXIT_UNREACHABLE,
    "malformed": EXIT_MALFORMED,
    "missing": EXIT_NO_KEY,
}
OUTCOME_EXIT = {
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


def flags_of(args: argparse.Namespace) -> Flags:
    return Flags(
        data_dir=args.data_dir,
        port=getattr(args, "port", None),
        api_url=getattr(args, "api_url", None),
        watch=tuple(getattr(args, "watch", ()) or ()),
        no_watch=bool(getattr(args, "no_watch", False)),
    )


def control_of(config: Config) -> tuple[str, str] | None:
    """(url, token) of a running agent for this data dir, or None."""
    from agent.daemon import read_runtime_file

    info = read_runtime_file(config.data_dir)
    if not info:
        return None
    try:
        token = (config.data_dir / TOKEN_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return str(info["url"]), token


def call(control: tuple[str, str], route: Route, timeout: float = 600, *, body: Any = None, params: Any = None) -> Any:
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


def agent_is_running(config: Config) -> bool:
    lock = InstanceLock(config.data_dir / LOCK_FILE)
    try:
        lock.acquire()
    except AlreadyRunning:
        return True
    lock.release()
    return False


def start_in_process(config: Config, verbose: bool) -> Agent:
    """An agent for one command when none runs: no local API, no watching; it holds the data
    dir's lock, so a daemon started meanwhile is refused rather than sharing the store."""
    from agent.daemon import Agent

    setup_logging(config.log_dir, verbose=verbose, stderr=verbose)
    agent = Agent(config, watch=False, serve=False)
    try:
        agent.start()
    except AlreadyRunning as exc:
        raise CliError(str(exc), EXIT_RUNNING) from None
    return agent


def running_control(config: Config) -> tuple[str, str] | None:
    if not agent_is_running(config):
        return None
    control = control_of(config)
    if control is None:
        raise CliError("an agent holds this data dir but its control file is missing; try again shortly")
    return control


def ask_agent(control: tuple[str, str], route: Route, body: dict[str, Any] | None = None) -> Any:
    url, token = control
    try:
        response = httpx.request(
            route.method, url + route.url(), json=body, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
    except httpx.HTTPError as exc:
        raise CliError(f"the running agent did not answer ({type(exc).__name__})") from None
    answer = response.json()
    if response.status_code >= 400:
        code = VERDICT_EXIT.get(answer.get("verdict"), EXIT_NO_KEYRING if answer.get("no_keyring") else EXIT_FAIL)
        raise CliError(str(answer.get("error")), code)
    return answer


def print_answer(args: argparse.Namespace, answer: Mapping[str, Any], text: str) -> None:
    print(json.dumps(answer) if args.json else text)
