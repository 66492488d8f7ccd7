"""API keys: where they come from, how they are shown, and keeping them out of logs.

Keys live in the OS keyring under the service ``hackatime-desktop``, user name
``api_key``. Nothing here ever prints a whole key: :func:`mask` shows the last
four characters at most, and :class:`RedactingFilter` scrubs every key the
agent has seen from log records before they are written.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

KEYRING_SERVICE = "hackatime-desktop"
KEYRING_USER = "api_key"
# The argument that makes a frozen (PyInstaller) agent executable read the keyring and exit;
# see read_keyring_in_child. Not a command for people, so not in the CLI's help.
KEYRING_CHILD_ARG = "--read-keyring-for-agent"
KEYRING_TIMEOUT = 120.0  # seconds; a locked keyring may be waiting for the user to unlock it

# wakatime-cli validates keys as ^(waka_)?<uuid4>$; Hackatime issues UUID v4 keys.
KEY_PATTERN = re.compile(
    r"^(waka_)?[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.IGNORECASE
)

_known_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def mask(key: str | None) -> str:
    """Return a key as it may be shown to a person: the last four characters at most."""
    if not key:
        return "(none)"
    if len(key) <= 8:
        return "<hidden>"
    return f"<hidden>{key[-4:]}"


def remember_secret(key: str | None) -> None:
    """Register a secret so log records that contain it are scrubbed."""
    if key and len(key) >= 6:
        with _secrets_lock:
            _known_secrets.add(key)


def redact(text: str) -> str:
    """Replace every registered secret in ``text`` by its masked form."""
    with _secrets_lock:
        secrets = list(_known_secrets)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, mask(secret))
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that removes known secrets from the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Exception text is formatted later by the handler; pre-format and scrub it now.
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True


class SecretError(RuntimeError):
    """A key could not be read; the message never contains the key itself."""


@dataclass(frozen=True)
class KeyringResult:
    key: str | None
    problem: str | None  # a sentence for the user when the keyring could not be used
    no_backend: bool = False  # no usable backend at all (headless Linux): the user must choose elsewhere
    # Where the backend keeps its secrets on disk, when it is known (see keyring_stores): a
    # change there may be a change of the key, so the agent watches these paths.
    stores: tuple[str, ...] = ()
    # How the backend announces changes itself, when it does (see change_signals): the agent
    # listens for them instead of reading the keyring on a timer.
    signals: tuple[str, ...] = ()
    # When the read began (time.time()): a change the keyring dates later is not in this answer.
    asked_at: float = 0.0


NO_BACKEND = "no usable OS keyring backend was found; keys are read from ~/.wakatime.cfg or WAKATIME_API_KEY instead"

NO_BACKEND_KEPT = "the OS keyring did not keep the key (no usable keyring backend on this system)"

KeyringOp = Literal["get", "set", "delete"]


def keyring_call(op: KeyringOp = "get", key: str | None = None, *, user: str = KEYRING_USER) -> KeyringResult:
    """Read, store or delete the key in the OS keyring; a missing backend is reported, not raised.

    ``set`` and ``delete`` answer ``key=None``; their ``problem`` says why they failed. ``user``
    names the entry: the API key's, or the OAuth token's (``agent.oauth``).
    """
    began = time.time()
    try:
        import keyring
        from keyring.errors import KeyringError, NoKeyringError, PasswordDeleteError
    except ImportError as exc:  # pragma: no cover - keyring is a hard dependency
        return KeyringResult(None, f"the keyring library is not available ({exc})", no_backend=True)
    try:
        if op == "set":
            if not key:
                return KeyringResult(None, "no key was given to store")
            remember_secret(key)
            keyring.set_password(KEYRING_SERVICE, user, key)
            # Read it back: the null backend (and some broken ones) accept a key and keep nothing.
            if keyring.get_password(KEYRING_SERVICE, user) != key:
                return KeyringResult(None, NO_BACKEND_KEPT, no_backend=True)
            return KeyringResult(None, None)
        if op == "delete":
            try:
                keyring.delete_password(KEYRING_SERVICE, user)
            except PasswordDeleteError:
                pass  # nothing stored: forgetting it is done
            return KeyringResult(None, None)
        found = keyring.get_password(KEYRING_SERVICE, user)
    except NoKeyringError:
        return KeyringResult(None, NO_BACKEND, no_backend=True)
    except KeyringError as exc:
        return KeyringResult(None, f"the OS keyring could not be used: {type(exc).__name__}")
    remember_secret(found)
    backend = keyring.get_keyring()
    stores, signals = keyring_stores(backend), change_signals(backend)
    return KeyringResult(found or None, None, stores=stores, signals=signals, asked_at=began)


def _backends(backend: object) -> list[object]:
    return list(getattr(backend, "backends", None) or [backend])  # the chainer asks several


# Backends that announce their changes on the session bus (agent.keyring_signals listens).
SECRET_SERVICE_SIGNALS = "secret-service"
KWALLET_SIGNALS = "kwallet"
_SIGNALS_BY_MODULE = {
    "keyring.backends.SecretService": SECRET_SERVICE_SIGNALS,
    "keyring.backends.libsecret": SECRET_SERVICE_SIGNALS,
    "keyring.backends.kwallet": KWALLET_SIGNALS,
}


def change_signals(backend: object) -> tuple[str, ...]:
    """The D-Bus signals that tell of a change in ``backend`` (several, for the chainer)."""
    kinds = (_SIGNALS_BY_MODULE.get(type(one).__module__) for one in _backends(backend))
    return tuple(dict.fromkeys(kind for kind in kinds if kind))


def keyring_stores(backend: object) -> tuple[str, ...]:
    """Files or folders where ``backend`` keeps its secrets, for those whose place is known.

    Most OS keyrings tell nobody when an entry changes; their files on disk do. A file
    backend names its file (``file_path``, as keyrings.alt's do); the macOS Keychain and the
    Windows credential store keep theirs in fixed folders. The Secret Service (GNOME Keyring,
    KeePassXC) and KWallet name none: they say so on the session bus (change_signals).
    """
    home = Path.home()
    by_module = {
        "keyring.backends.macOS": [home / "Library" / "Keychains"],
        "keyring.backends.Windows": [
            Path(os.environ[var]) / "Microsoft" / "Credentials"
            for var in ("APPDATA", "LOCALAPPDATA")
            if os.environ.get(var)
        ],
    }
    found: list[str] = []
    for one in _backends(backend):
        path = getattr(one, "file_path", None)
        places = [Path(path)] if isinstance(path, (str, os.PathLike)) else by_module.get(type(one).__module__, [])
        # A folder that is not there tells nothing.
        found.extend(str(place) for place in places if str(place) not in found and place.exists())
    return tuple(found)


def read_keyring() -> KeyringResult:
    """Read the key from the OS keyring in this process."""
    return keyring_call("get")


def read_keyring_in_child(timeout: float = KEYRING_TIMEOUT) -> KeyringResult:
    """:func:`read_keyring` in a short-lived child process, for the long-lived agent."""
    return keyring_call_in_child("get", timeout=timeout)


def keyring_call_in_child(
    op: KeyringOp = "get", key: str | None = None, timeout: float = KEYRING_TIMEOUT, *, user: str = KEYRING_USER
) -> KeyringResult:
    """:func:`keyring_call` in a short-lived child process, for the long-lived agent.

    Using the keyring loads keyring's backends — on Linux SecretStorage, jeepney and
    cryptography's Rust library — and they would stay in the agent's memory for good:
    about 9 MiB, a fifth of its RSS budget (design.md), for a few uses a day. The child
    is given the request and passes the result back on pipes (a key never goes in argv
    or the environment) and exits. Should no child start at all, the call is made here.
    """
    request = json.dumps({"op": op, "key": key, "user": user})
    began = time.time()
    try:
        done = subprocess.run(
            _keyring_child_command(),
            input=request,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=_keyring_child_env(),
            # A console program started from the windowless agent would flash a console window.
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except subprocess.TimeoutExpired:
        return KeyringResult(None, f"the OS keyring did not answer within {timeout:.0f} s")
    except OSError:
        return keyring_call(op, key, user=user)
    try:
        # The last line: a backend may have printed something of its own before it.
        answer = json.loads(done.stdout.rstrip().rpartition("\n")[2])
        found, problem, no_backend = answer["key"], answer["problem"], answer.get("no_backend", False)
        stores, signals = answer.get("stores", []), answer.get("signals", [])
        if not isinstance(found, (str, type(None))) or not isinstance(problem, (str, type(None))):
            raise TypeError("unexpected answer")
        for names in (stores, signals):
            if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
                raise TypeError("unexpected answer")
    except (ValueError, KeyError, TypeError):
        # Its stderr may quote a backend's traceback; the exit status is enough to say.
        why = f"the OS keyring could not be read (the reader exited with status {done.returncode})"
        return KeyringResult(None, why)
    remember_secret(found)
    return KeyringResult(found or None, problem, bool(no_backend), tuple(stores), tuple(signals), began)


def keyring_child_main() -> int:
    """The child's side of :func:`keyring_call_in_child`: a request on stdin, one JSON object on stdout."""
    try:
        request = json.loads(sys.stdin.read() or "{}")
    except (OSError, ValueError):
        request = {}  # no readable request: a read, as older agents asked for
    if not isinstance(request, dict):
        request = {}
    op: KeyringOp = request["op"] if request.get("op") in ("set", "delete") else "get"
    key = request.get("key") if isinstance(request.get("key"), str) else None
    asked = request.get("user")
    user = asked if isinstance(asked, str) and asked else KEYRING_USER
    result = keyring_call(op, key, user=user)
    answer = {
        "key": result.key,
        "problem": result.problem,
        "no_backend": result.no_backend,
        "stores": result.stores,
        "signals": result.signals,
    }
    sys.stdout.write("\n" + json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0


_KEYRING_CHILD_CODE = "import sys; from agent.secrets import keyring_child_main; sys.exit(keyring_child_main())"


def _keyring_child_command() -> list[str]:
    if getattr(sys, "frozen", False):
        # A PyInstaller bundle runs no "-c": its executable is the agent's own command line.
        return [sys.executable, KEYRING_CHILD_ARG]
    return [sys.executable, "-c", _KEYRING_CHILD_CODE]


def _keyring_child_env() -> dict[str, str]:
    # The child imports this package from wherever this process found it (a source
    # checkout run with ``python -m agent`` is on no path of its own).
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


def run_vault_command(command: str, timeout: float = 15.0) -> str:
    """Run ``api_key_vault_cmd`` (no shell) and return the key it prints."""
    argv = shlex.split(command)
    if not argv:
        raise SecretError("api_key_vault_cmd is empty")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise SecretError(f"api_key_vault_cmd: {argv[0]!r} was not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise SecretError(f"api_key_vault_cmd did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0:
        # stderr may echo the secret on some vaults; report only the exit status.
        raise SecretError(f"api_key_vault_cmd exited with status {done.returncode}")
    key = done.stdout.strip()
    if not key:
        raise SecretError("api_key_vault_cmd printed nothing")
    remember_secret(key)
    return key
