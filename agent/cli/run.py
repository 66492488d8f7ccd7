"""``run`` (the agent in the foreground until a signal) and ``sync`` (deliver now, through a
running agent or one started for the command).
"""

from __future__ import annotations

import argparse
import errno
import json
import signal
import sys
from typing import Any

import httpx

from agent import __version__
from agent.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    OUTCOME_EXIT,
    CliError,
    agent_is_running,
    call,
    control_of,
    flags_of,
    start_in_process,
)
from agent.config import Config, load_config
from agent.contract import SYNC, SyncAnswer
from agent.lock import EXIT_PORT_IN_USE, EXIT_RUNNING, AlreadyRunning, port_owner
from agent.logs import setup_logging


def cmd_run(args: argparse.Namespace) -> int:
    from agent.daemon import Agent

    flags = flags_of(args)
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


def cmd_sync(args: argparse.Namespace) -> int:
    config = load_config(flags_of(args))
    if agent_is_running(config):
        control = control_of(config)
        if control is None:
            raise CliError("an agent holds this data dir but its control file is missing; try again shortly")
        try:
            result: SyncAnswer = call(control, SYNC)
        except httpx.HTTPError as exc:
            raise CliError(f"the running agent did not answer: {exc}") from None
    else:
        result = _sync_in_process(config, args.verbose)
    code = OUTCOME_EXIT.get(result["outcome"], EXIT_FAIL)
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


def _sync_in_process(config: Config, verbose: bool) -> SyncAnswer:
    agent = start_in_process(config, verbose)
    try:
        return agent.sync_now()
    finally:
        agent.stop()
