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
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from agent import __version__
from agent.cli.common import EXIT_FAIL, CliError
from agent.cli.imports import cmd_import
from agent.cli.key import cmd_key
from agent.cli.run import cmd_run, cmd_sync
from agent.cli.status import cmd_doctor, cmd_stats, cmd_status
from agent.contract import RANGES
from agent.imports import IMPORT_READER_ARG
from agent.keys import PLACES
from agent.secrets import KEYRING_CHILD_ARG, keyring_child_main, redact
from agent.store import StoreTooNew


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
    imports.add_argument("file", type=Path, nargs="?", help="the export: .json, .json.gz or Hackatime's .zip")
    imports.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    imports.add_argument("--no-upload", action="store_true", help="keep the imported heartbeats local")
    imports.add_argument(
        "--upload-held", action="store_true", help="upload the history imported earlier with --no-upload (no FILE)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if list(sys.argv[1:] if argv is None else argv) == [KEYRING_CHILD_ARG]:
        # A frozen agent asked itself to read the keyring (secrets.read_keyring_in_child).
        return keyring_child_main()
    if list(sys.argv[1:] if argv is None else argv) == [IMPORT_READER_ARG]:
        # A frozen agent started its import's reading process (agent.imports.reader).
        from agent.imports.reader import child_main

        return child_main()
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


_COMMANDS = {
    "run": cmd_run,
    "status": cmd_status,
    "sync": cmd_sync,
    "stats": cmd_stats,
    "doctor": cmd_doctor,
    "key": cmd_key,
    "import": cmd_import,
}
