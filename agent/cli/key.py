"""``key set|show|check|forget``: through a running agent, which uses a new key at once, or
directly on the configuration when none runs.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from agent.cli.common import (
    EXIT_FAIL,
    EXIT_NO_KEY,
    EXIT_NO_KEYRING,
    EXIT_OK,
    VERDICT_EXIT,
    CliError,
    ask_agent,
    flags_of,
    print_answer,
    running_control,
)
from agent.config import load_config
from agent.contract import KEY, KEY_CHECK, KEY_FORGET, KEY_SET
from agent.secrets import mask


def _read_new_key() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("API key (from your Hackatime settings; input hidden): ").strip()
    return sys.stdin.readline().strip()


def cmd_key(args: argparse.Namespace) -> int:
    from agent.keys import KeyInUse, KeyRefused, KeyStoreError, check_key, client_for, forget_key, set_key

    config = load_config(flags_of(args))
    control = running_control(config)
    command = args.key_command
    if command == "show":
        info = ask_agent(control, KEY) if control else KeyInUse(config.api_key, config.key_source).describe()
        print_answer(
            args, info, f"{info['masked']} from {info['source']}" if info["configured"] else "no API key is set"
        )
        return EXIT_OK if info["configured"] else EXIT_NO_KEY
    if command == "check":
        if control:
            result = ask_agent(control, KEY_CHECK)
        else:
            with client_for(config, config.api_key or "") as client:
                result = check_key(client).as_dict()
        print_answer(args, result, result["reason"])
        return VERDICT_EXIT.get(result["verdict"], EXIT_FAIL)
    if command == "forget":
        if control:
            answer = ask_agent(control, KEY_FORGET)
        else:
            try:
                forgotten = forget_key(config.config_dir, in_child=False)
            except KeyStoreError as exc:
                raise CliError(str(exc)) from None
            after = load_config(flags_of(args))
            answer = {"forgotten": forgotten, "key": KeyInUse(after.api_key, after.key_source).describe()}
        left = answer["key"]
        still = f"; {left['masked']} from {left['source']} is in use now" if left["configured"] else ""
        print_answer(args, answer, f"the key was {answer['forgotten']}{still}")
        return EXIT_OK
    key = _read_new_key()
    if control:
        body = {"key": key, "store": args.store, "check": not args.no_check}
        answer = ask_agent(control, KEY_SET, body)
    else:
        try:
            stored, verdict = set_key(config, key, args.store, check=not args.no_check, in_child=False)
        except KeyRefused as exc:
            hint = " (store it anyway with --no-check)" if exc.check.verdict == "unreachable" else ""
            raise CliError(f"the key was not stored: {exc}{hint}", VERDICT_EXIT[exc.check.verdict]) from None
        except KeyStoreError as exc:
            raise CliError(str(exc), EXIT_NO_KEYRING if exc.no_keyring else EXIT_FAIL) from None
        after = load_config(flags_of(args))
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
    print_answer(args, answer, text)
    if answer["warning"]:
        print(f"hackatime-agent: warning: {answer['warning']}", file=sys.stderr)
    return EXIT_OK
