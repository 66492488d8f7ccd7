"""``hackatime-agent doctor``: check what the agent depends on and say what to fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from .capture.inotify import SYSCTL_HINT, inotify_status
from .config import DEFAULT_API_URL, Config
from .delivery.hackatime import HackatimeClient
from .secrets import KEY_PATTERN, KEYRING_SERVICE, mask, read_keyring


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


def run_checks(config: Config) -> list[Check]:
    checks = [_config(config), _keyring(), _key_format(config)]
    checks.append(_server(config))
    checks.append(_watch_limit(config))
    return checks


def _config(config: Config) -> Check:
    found = config.wakatime_cfg.exists()
    detail = f"{config.wakatime_cfg} {'found' if found else 'not found'}; uploading to {config.api_url}"
    if config.notices:
        return Check("configuration", False, detail + "; " + "; ".join(config.notices), "see the notes above")
    return Check("configuration", True, detail)


def _keyring() -> Check:
    result = read_keyring()
    if result.problem:
        return Check("keyring", False, result.problem, "install and unlock an OS keyring (Secret Service, KWallet)")
    where = "holds a key" if result.key else "is usable (no key stored there)"
    return Check("keyring", True, f"the OS keyring (service {KEYRING_SERVICE!r}) {where}")


def _key_format(config: Config) -> Check:
    if not config.api_key:
        return Check(
            "api key",
            False,
            "no API key is configured",
            "copy your key from https://hackatime.hackclub.com/my/settings and set api_key in ~/.wakatime.cfg",
        )
    if not KEY_PATTERN.match(config.api_key):
        return Check(
            "api key",
            False,
            f"the key {mask(config.api_key)} (from {config.key_source}) is not shaped like a Hackatime key (a UUID)",
            "paste the key again from Hackatime's settings page",
        )
    return Check("api key", True, f"{mask(config.api_key)} from {config.key_source}")


def _server(config: Config) -> Check:
    if not config.api_key:
        return Check("server", False, "not checked: no API key", None)
    client = HackatimeClient(
        config.api_url, config.api_key, timeout=min(config.timeout, 15), proxy=config.proxy, verify=config.verify_ssl
    )
    try:
        response = client.get("users/current")
    except httpx.HTTPError as exc:
        return Check(
            "server",
            False,
            f"{config.api_url} could not be reached ({type(exc).__name__})",
            "check your network, proxy and api_url; heartbeats are kept and sent later",
        )
    finally:
        client.close()
    if response.status_code in (401, 403):
        return Check(
            "server",
            False,
            f"{config.api_url} rejected the key (HTTP {response.status_code})",
            "paste the current key from Hackatime's settings page",
        )
    if response.status_code != 200:
        return Check(
            "server",
            False,
            f"{config.api_url} answered HTTP {response.status_code}",
            None if config.api_url == DEFAULT_API_URL else "check api_url",
        )
    try:
        user = response.json().get("data", {})
        who = f"signed in as {user.get('username') or user.get('id')} (time zone {user.get('timezone')})"
    except (ValueError, AttributeError):
        who = "answered, but not with a profile"
    return Check("server", True, f"{config.api_url}: {who}")


def _watch_limit(config: Config) -> Check:
    status = inotify_status()
    limit, used = status["max_user_watches"], status["used"]
    if limit is None:
        return Check("file watching", True, "no inotify limit applies on this system")
    detail = f"inotify watches: {used if used is not None else '?'} used of {limit}"
    if used is not None and limit - used < 10_000 and config.capture.watch_dirs:
        return Check(
            "file watching",
            False,
            detail,
            SYSCTL_HINT,
        )
    return Check("file watching", True, detail)
