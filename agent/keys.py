"""The one owner of the API key in the agent: which key is in use, where it came from.

Status, the Hackatime client, the stats fetcher and the intake all read the key
from :class:`KeyOwner`, so they never disagree. A key is told apart from another
by a fingerprint (a SHA-256 of the whole key), never by its last four characters:
two keys may end alike.

Reloading is cheap: ``~/.wakatime.cfg`` and the settings file are read again, but
the OS keyring (whose backends cost the agent memory, see
``secrets.read_keyring_in_child``) is asked again only when ``keyring=True``:
after ``key set``/``forget``, on Sync now, when its store on disk or the
:data:`KEY_CHANGED_FILE` changed, when the keyring itself says so on the session bus
(``agent.keyring_signals``), and otherwise on :meth:`KeyOwner.keyring_poll` 's cadence
(``agent.key_watch`` drives all of these).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from .config import ENV_API_KEY, SETTINGS_FILE, Config, KeySources, ResolvedKey
from .contract import KeyCheckAnswer, KeyInfo
from .delivery.hackatime import HackatimeClient
from .secrets import (
    KEY_PATTERN,
    KeyringResult,
    keyring_call,
    keyring_call_in_child,
    mask,
    read_keyring,
    read_keyring_in_child,
    remember_secret,
)
from .settings import AppSettings
from .wakatime_cfg import CfgEditError, write_cfg

log = logging.getLogger(__name__)

# Touched in the config dir whenever a key is stored or forgotten: another process (``key set``
# with no agent to ask, the settings window) tells a running agent to read the keyring again.
KEY_CHANGED_FILE = "key-changed"
# The keyring is polled only where its backend's store on disk is unknown and no signal of
# its own is heard (a watched store, or the Secret Service's and KWallet's D-Bus signals,
# tell of every change at no cost). A read costs a child process about 0.3 s of CPU (289 ms
# measured against 41 ms for a bare interpreter, a loaded 2-core machine), so the fast
# cadence is paid only while delivery waits for a key (none, or a rejected one) and for 15
# minutes after it began to, when someone is likely fixing the key: a change by another
# program (``keyring set``) is then in use within 5 s, for about 7 % of a core meanwhile.
# Otherwise a slow check bounds how stale the keyring can be at 0.1 % of a core.
KEYRING_POLL_BLOCKED = 4.0
KEYRING_POLL_BLOCKED_FOR = 900.0  # seconds of the fast cadence after delivery began to wait
KEYRING_POLL_IDLE = 300.0


def fingerprint(key: str | None) -> str | None:
    """A hash of the whole key: equal exactly when the keys are equal, and safe to store or show."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest() if key else None


@dataclass(frozen=True)
class KeyInUse:
    key: str | None
    source: str | None

    @property
    def fingerprint(self) -> str | None:
        return fingerprint(self.key)

    def describe(self, next_check_in: float | None = None) -> KeyInfo:
        """What may be shown: the mask, the last four characters, the source; never more."""
        return {
            "configured": self.key is not None,
            "masked": mask(self.key),
            "last4": self.key[-4:] if self.key and len(self.key) > 8 else None,
            "source": self.source,
            "fingerprint": self.fingerprint[:12] if self.fingerprint else None,
            "next_check_in": next_check_in,
        }


Listener = Callable[[KeyInUse, KeyInUse], None]


class KeyOwner:
    """Thread-safe holder of the key in use; listeners hear of every change (by fingerprint)."""

    def __init__(
        self,
        sources: KeySources | None,
        initial: ResolvedKey,
        *,
        keyring_in_child: bool = True,
    ) -> None:
        self._sources = sources
        self._read_keyring = read_keyring_in_child if keyring_in_child else read_keyring
        self._lock = threading.Lock()
        self._current = KeyInUse(initial.key, initial.source)
        self._cfg_key = sources.cfg_key() if sources is not None else None
        self._keyring = initial.keyring
        self._listeners: list[Listener] = []
        self.notices: tuple[str, ...] = initial.notices
        self._stores: tuple[str, ...] = initial.keyring.stores if initial.keyring else ()
        self._signals: tuple[str, ...] = initial.keyring.signals if initial.keyring else ()
        self.keyring_reads = 0  # reads of the keyring by reload (the start's own read is not one)
        self._blocked_since: float | None = None  # monotonic; only the key watch's thread polls

    def current(self) -> KeyInUse:
        with self._lock:
            return self._current

    @property
    def key(self) -> str | None:
        return self.current().key

    def accepted_at_intake(self) -> tuple[str | None, str | None]:
        """Keys the intake accepts: the one in use, and the one in ~/.wakatime.cfg.

        Editor plugins routed through the agent authenticate with the cfg's key; when the
        agent uses another one (set in the keyring or the settings since), their heartbeats
        must still be taken, or they would pile up in wakatime-cli's offline queue for good.
        """
        with self._lock:
            return self._current.key, self._cfg_key

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def reload(self, *, keyring: bool = False) -> bool:
        """Resolve the key again from every source; True when a different key is now in use."""
        if self._sources is None:
            return False  # a key given outright (tests, one-shot tools) has nowhere to change
        with self._lock:
            if keyring or self._keyring is None:
                cached: KeyringResult | None = None
            else:
                cached = self._keyring
            resolved = self._sources.resolve(self._read_keyring if cached is None else lambda: cached)
            if resolved.keyring is not None:
                if resolved.keyring is not cached:
                    self.keyring_reads += 1
                self._keyring = resolved.keyring
                self._stores = resolved.keyring.stores or self._stores
                self._signals = resolved.keyring.signals or self._signals
            before, after = self._current, KeyInUse(resolved.key, resolved.source)
            self._current = after
            self._cfg_key = self._sources.cfg_key()
            self.notices = resolved.notices
        if before.fingerprint == after.fingerprint:
            return False
        for listener in self._listeners:
            listener(before, after)
        return True

    def keyring_stores(self) -> tuple[str, ...]:
        """Where the keyring's backend keeps its secrets, as last reported (may be empty)."""
        with self._lock:
            return self._stores

    def keyring_signals(self) -> tuple[str, ...]:
        """How the keyring's backend announces its changes on the session bus, as last reported."""
        with self._lock:
            return self._signals

    def keyring_answer(self) -> KeyringResult | None:
        """The keyring's last answer, when it was read since the key was resolved."""
        with self._lock:
            return self._keyring

    def keyring_asked(self) -> bool:
        """Whether the keyring's answer is known (it was read since the key was resolved)."""
        with self._lock:
            return self._keyring is not None

    def keyring_decides(self) -> bool:
        """Whether a change in the keyring can change the key in use: nothing outranks it
        (a key given outright or in the environment) and a backend answered at all."""
        sources = self._sources
        if sources is None or sources.flags.api_key or sources.env.get(ENV_API_KEY):
            return False
        with self._lock:
            return self._keyring is None or not self._keyring.no_backend

    def keyring_poll(self, *, blocked: bool, heard: bool = False) -> float | None:
        """Seconds until the keyring should be read again for a change nothing announces;
        None: never (it cannot change the key, its store is watched, or, ``heard``, its
        signals are being listened to)."""
        now = time.monotonic()
        if not blocked:
            self._blocked_since = None
        elif self._blocked_since is None:
            self._blocked_since = now
        if heard or not self.keyring_decides() or self.keyring_stores():
            return None
        if self._blocked_since is not None and now - self._blocked_since < KEYRING_POLL_BLOCKED_FOR:
            return KEYRING_POLL_BLOCKED
        return KEYRING_POLL_IDLE

    def forget_keyring_cache(self) -> None:
        """The keyring was changed by this agent: read it again on the next reload."""
        with self._lock:
            self._keyring = None


# ---- asking the server whether it accepts a key ----------------------------------------------------

Verdict = Literal["accepted", "rejected", "unreachable", "malformed", "missing"]


@dataclass(frozen=True)
class KeyCheck:
    verdict: Verdict
    reason: str  # a sentence for people; never the key beyond its last four characters
    username: str | None = None
    timezone: str | None = None
    status: int | None = None  # the server's HTTP status, when it answered

    def as_dict(self) -> KeyCheckAnswer:
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "username": self.username,
            "timezone": self.timezone,
            "status": self.status,
        }


def malformed_reason(key: str) -> str | None:
    """Why ``key`` cannot be a WakaTime-compatible key, or None when it is shaped like one."""
    if not key:
        return "the key is empty"
    if any(c.isspace() for c in key):
        return "the key contains spaces or line breaks"
    if not KEY_PATTERN.match(key):
        return "the key is not shaped like a Hackatime key (a UUID such as 01234567-89ab-4cde-8f01-23456789abcd)"
    return None


def check_key(client: HackatimeClient) -> KeyCheck:
    """``GET users/current`` with the client's key (hackatime-api.md §4.7), the cheapest check."""
    key = client.api_key
    if not key:
        return KeyCheck("missing", "no API key is configured")
    problem = malformed_reason(key)
    if problem:
        return KeyCheck("malformed", problem)
    try:
        response = client.get("users/current")
    except httpx.HTTPError as exc:
        return KeyCheck("unreachable", f"{client.api_url} could not be reached ({type(exc).__name__})")
    status = response.status_code
    if status in (401, 403):
        return KeyCheck("rejected", f"the server rejected the key {mask(key)} (HTTP {status})", status=status)
    if status != 200:
        return KeyCheck("unreachable", f"the server answered HTTP {status}", status=status)
    try:
        data = response.json()["data"]
        username = data.get("username") or data.get("display_name") or str(data.get("id"))
        timezone = data.get("timezone") or "UTC"
    except (ValueError, KeyError, TypeError, AttributeError):
        return KeyCheck("unreachable", "the server answered, but not with a user profile", status=status)
    return KeyCheck("accepted", f"accepted: {username} (time zone {timezone})", str(username), str(timezone), 200)


# ---- storing and forgetting a key --------------------------------------------------------------------

Where = Literal["keyring", "file", "wakatime-cfg"]
PLACES: tuple[Where, ...] = ("keyring", "file", "wakatime-cfg")


class KeyStoreError(RuntimeError):
    """The key could not be stored where asked; nothing was changed. ``no_keyring``: choose elsewhere."""

    def __init__(self, message: str, *, no_keyring: bool = False) -> None:
        super().__init__(message)
        self.no_keyring = no_keyring


def no_keyring_choice(config_dir: Path, wakatime_cfg: Path) -> str:
    """The sentence that lets a user without a keyring choose knowingly."""
    return (
        f"choose where to keep the key instead: 'file' (plain text in {config_dir / SETTINGS_FILE}, "
        f"readable only by you) or 'wakatime-cfg' (plain text in {wakatime_cfg}, where editor plugins read it)"
    )


def save_key(key: str, where: Where, config_dir: Path, wakatime_cfg: Path, *, in_child: bool) -> str:
    """Store ``key`` in one place and remove older copies that would outrank it; says where.

    The order is the configuration's (design.md): keyring, then the settings file, then
    ``~/.wakatime.cfg``. A key stored lower down is only in use once the places above it
    hold none, so they are cleared; ``~/.wakatime.cfg`` is edited only when chosen.
    """
    call = keyring_call_in_child if in_child else keyring_call
    settings = AppSettings(config_dir / SETTINGS_FILE)
    remember_secret(key)
    try:
        return _save_key(key, where, config_dir, wakatime_cfg, call, settings)
    finally:
        announce_key_change(config_dir)


def announce_key_change(config_dir: Path) -> None:
    """Touch :data:`KEY_CHANGED_FILE`: running agents read the keyring again (``agent.key_watch``)."""
    try:
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / KEY_CHANGED_FILE).write_text(f"{time.time()}\n", encoding="utf-8")
    except OSError as exc:
        # The key is stored all the same; a running agent finds it on Sync now or its next check.
        log.warning("could not tell running agents about the new key (%s)", exc.strerror or exc)


def _save_key(
    key: str, where: Where, config_dir: Path, wakatime_cfg: Path, call: Callable[..., KeyringResult],
    settings: AppSettings,
) -> str:  # fmt: skip
    if where == "keyring":
        stored = call("set", key)
        if stored.problem:
            hint = f"; {no_keyring_choice(config_dir, wakatime_cfg)}" if stored.no_backend else ""
            raise KeyStoreError(stored.problem + hint, no_keyring=stored.no_backend)
        if settings.get("plaintext_key"):
            settings.set("plaintext_key", "")
        return "stored in the OS keyring"
    cleared = call("delete")
    if cleared.problem and not cleared.no_backend:
        raise KeyStoreError(f"the older key in the OS keyring, which would stay in use, could not be removed: "
                            f"{cleared.problem}")  # fmt: skip
    if where == "file":
        settings.set("plaintext_key", key)
        return f"stored in {settings.path} (plain text, readable only by you)"
    if settings.get("plaintext_key"):
        settings.set("plaintext_key", "")
    try:
        backup = write_cfg(wakatime_cfg, {"api_key": key})
    except CfgEditError as exc:
        raise KeyStoreError(str(exc)) from None
    saved = f"; the previous file is in {backup}" if backup else ""
    return f"stored in {wakatime_cfg} (plain text, where editor plugins read it{saved})"


def forget_key(config_dir: Path, *, in_child: bool) -> str:
    """Remove the key from the keyring and the settings file; ``~/.wakatime.cfg`` is left alone."""
    call = keyring_call_in_child if in_child else keyring_call
    deleted = call("delete")
    settings = AppSettings(config_dir / SETTINGS_FILE)
    if settings.get("plaintext_key"):
        settings.set("plaintext_key", "")
    announce_key_change(config_dir)
    if deleted.problem and not deleted.no_backend:
        raise KeyStoreError(f"the key could not be removed from the OS keyring: {deleted.problem}")
    return "removed from the OS keyring and the app's settings"


class ServerRefused(RuntimeError):
    """A new server URL was not taken; ``status`` is the control API's answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class KeyRefused(RuntimeError):
    """A new key was not stored: it is malformed, or the server did not accept it."""

    def __init__(self, check: KeyCheck) -> None:
        super().__init__(check.reason)
        self.check = check


def client_for(config: Config, key: str) -> HackatimeClient:
    """A short-lived client for checking a key that is not (yet) the one in use."""
    return HackatimeClient(
        config.api_url, key, timeout=min(config.timeout, 15.0), proxy=config.proxy, verify=config.verify_ssl
    )


def set_key(config: Config, key: str, where: Where, *, check: bool = True, in_child: bool) -> tuple[str, KeyCheck]:
    """Validate ``key`` (shape, then the server unless ``check`` is False) and store it.

    Raises :class:`KeyRefused` (nothing stored) or :class:`KeyStoreError`. Returns where it
    went and the server's verdict ("missing" stands for "not asked" when ``check`` is False).
    """
    key = key.strip()
    problem = malformed_reason(key)
    if problem:
        raise KeyRefused(KeyCheck("malformed", problem))
    remember_secret(key)
    verdict = KeyCheck("missing", "not checked with the server")
    if check:
        with client_for(config, key) as client:
            verdict = check_key(client)
        if verdict.verdict != "accepted":
            raise KeyRefused(verdict)
    return save_key(key, where, config.config_dir, config.wakatime_cfg, in_child=in_child), verdict
