"""Configuration: command-line flags → environment → app settings → ``~/.wakatime.cfg``.

A Hackatime user already has a working ``~/.wakatime.cfg`` (``api_url`` and
``api_key``); with nothing else configured the agent must work from it alone.
That file is only ever read here, never written.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .dirs import SETTINGS_FILE, default_dirs
from .secrets import (
    KeyringResult,
    SecretError,
    read_keyring,
    read_keyring_in_child,
    remember_secret,
    run_vault_command,
)
from .settings import AppSettings

DEFAULT_API_URL = "https://hackatime.hackclub.com/api/hackatime/v1"
DEFAULT_PORT = 47325  # the local intake; documented in README.md
DEFAULT_TIMEOUT = 30.0
MAX_BATCH = 100  # Hackatime rejects bulk requests over 100 items (hackatime-api.md §4.2)

ENV_API_KEY = "WAKATIME_API_KEY"
ENV_API_URL = "HACKATIME_API_URL"

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}


class ConfigError(ValueError):
    """A configuration value is unusable; the message says which and why."""


@dataclass(frozen=True)
class CaptureSettings:
    """What the watcher and the privacy rules need (wakatime-cli semantics)."""

    exclude: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    hide_file_names: bool | tuple[str, ...] = False
    hide_project_names: bool | tuple[str, ...] = False
    hide_branch_names: bool | tuple[str, ...] = False
    exclude_unknown_project: bool = False
    include_only_with_project_file: bool = False
    projectmap: tuple[tuple[str, str], ...] = ()
    watch_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Flags:
    """Values given outright (the command line, or the program starting the agent); None means "not given"."""

    data_dir: Path | None = None
    port: int | None = None
    api_url: str | None = None
    api_key: str | None = field(default=None, repr=False)  # never in a log line or a traceback
    watch: tuple[Path, ...] = ()
    no_watch: bool = False


@dataclass(frozen=True)
class ResolvedKey:
    key: str | None
    source: str | None
    notices: tuple[str, ...] = ()
    keyring: KeyringResult | None = None  # what the keyring answered, when it was asked


@dataclass(frozen=True)
class KeySources:
    """Every place a key may come from, so that a running agent can resolve it again."""

    flags: Flags
    env: Mapping[str, str]
    settings_path: Path
    wakatime_cfg: Path

    def cfg_key(self) -> str | None:
        """``api_key`` in ~/.wakatime.cfg as written there (what editor plugins send), or None."""
        cfg, _ = read_wakatime_cfg(self.wakatime_cfg)
        key = cfg["settings"].get("api_key", "").strip() if cfg.has_section("settings") else ""
        if key:
            remember_secret(key)
        return key or None

    def resolve(self, read_key_from_keyring: Callable[[], KeyringResult]) -> ResolvedKey:
        settings = AppSettings(self.settings_path)
        cfg, problem = read_wakatime_cfg(self.wakatime_cfg)
        notices = [problem] if problem else []
        section: Mapping[str, str] = cfg["settings"] if cfg.has_section("settings") else {}
        asked: list[KeyringResult] = []

        def keyring() -> KeyringResult:
            asked.append(read_key_from_keyring())
            return asked[-1]

        key, source = _resolve_key(self.flags, self.env, settings, section, notices, keyring)
        return ResolvedKey(key, source, tuple(notices), asked[-1] if asked else None)


@dataclass(frozen=True)
class Config:
    data_dir: Path
    log_dir: Path
    config_dir: Path
    api_url: str
    api_key: str | None = field(repr=False)  # never in a log line or a traceback
    key_source: str | None
    machine: str
    port: int
    proxy: str | None
    verify_ssl: bool
    timeout: float
    batch_size: int
    pacing: bool
    capture: CaptureSettings
    wakatime_cfg: Path
    notices: tuple[str, ...] = field(default=())
    key_sources: KeySources | None = None  # None: the key was given outright and never changes
    keyring: KeyringResult | None = field(default=None, repr=False)  # its answer, when it was asked


def wakatime_cfg_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    home = env.get("WAKATIME_HOME")
    base = Path(home).expanduser() if home else Path.home()
    return base / ".wakatime.cfg"


def read_wakatime_cfg(path: Path) -> tuple[configparser.ConfigParser, str | None]:
    """Parse the INI file the way wakatime-cli does; a broken file is reported, not fatal."""
    parser = configparser.ConfigParser(interpolation=None, strict=False, comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep regex keys as written
    if not path.exists():
        return parser, None
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError, OSError) as exc:
        return configparser.ConfigParser(interpolation=None), f"{path} could not be parsed: {exc}"
    return parser, None


def _bool(value: str, name: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _lines(value: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in value.splitlines() if line.strip())


def _bool_or_patterns(value: str) -> bool | tuple[str, ...]:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return _lines(value)


def is_self_url(url: str, port: int) -> bool:
    """True when ``url`` points at this agent's own intake (a loop we must never follow)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "localhost":
        loopback = True
    else:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if not loopback:
        return False
    return (parts.port or (443 if parts.scheme == "https" else 80)) == port


def load_config(
    flags: Flags | None = None, env: Mapping[str, str] | None = None, *, keyring_in_child: bool = False
) -> Config:
    """The configuration, highest source first (module docstring).

    ``keyring_in_child`` is for the long-lived agent: the OS keyring, when it has to be
    asked, is read by a short-lived child process (``secrets.read_keyring_in_child``).
    """
    flags = flags or Flags()
    env = os.environ if env is None else env
    notices: list[str] = []
    data_dir, log_dir, config_dir = default_dirs(flags.data_dir, env)
    settings = AppSettings(config_dir / SETTINGS_FILE)
    if settings.problem:
        notices.append(settings.problem)

    cfg_path = wakatime_cfg_path(env)
    cfg, cfg_problem = read_wakatime_cfg(cfg_path)
    if cfg_problem:
        notices.append(cfg_problem)
    section: Mapping[str, str] = cfg["settings"] if cfg.has_section("settings") else {}

    port = flags.port if flags.port is not None else (settings.get("port") or DEFAULT_PORT)

    # api_url: flag → env → settings → wakatime.cfg → Hackatime. A cfg api_url that
    # points at this very agent (editors configured to use it) is skipped, not followed.
    api_url = DEFAULT_API_URL
    for candidate, origin in (
        (flags.api_url, "--api-url"),
        (env.get(ENV_API_URL), ENV_API_URL),
        (settings.get("api_url"), "settings"),
        (section.get("api_url"), str(cfg_path)),
    ):
        if not candidate:
            continue
        candidate = candidate.strip().rstrip("/")
        if is_self_url(candidate, port):
            notices.append(
                f"api_url from {origin} points at this agent ({candidate}); uploading to {DEFAULT_API_URL} "
                f"instead (set {ENV_API_URL} or the app's API URL setting to change it)"
            )
            continue
        api_url = candidate
        break

    asked: list[KeyringResult] = []

    def keyring() -> KeyringResult:
        asked.append((read_keyring_in_child if keyring_in_child else read_keyring)())
        return asked[-1]

    api_key, key_source = _resolve_key(flags, env, settings, section, notices, keyring)

    hostname = settings.get("hostname") or section.get("hostname", "").strip() or socket.gethostname()

    try:
        timeout = float(section.get("timeout", "") or DEFAULT_TIMEOUT)
    except ValueError:
        notices.append(f"timeout in {cfg_path} is not a number; using {DEFAULT_TIMEOUT:.0f} s")
        timeout = DEFAULT_TIMEOUT
    try:
        verify_ssl = not _bool(section.get("no_ssl_verify", "false"), "no_ssl_verify")
    except ConfigError as exc:
        notices.append(str(exc))
        verify_ssl = True

    capture = _capture_settings(flags, settings, cfg, section, notices)
    batch = min(max(1, int(settings.get("batch_size"))), MAX_BATCH)

    return Config(
        data_dir=data_dir,
        log_dir=log_dir,
        config_dir=config_dir,
        api_url=api_url,
        api_key=api_key,
        key_source=key_source,
        machine=hostname,
        port=port,
        proxy=(section.get("proxy") or "").strip() or None,
        verify_ssl=verify_ssl,
        timeout=timeout,
        batch_size=batch,
        pacing=bool(settings.get("pacing")),
        capture=capture,
        wakatime_cfg=cfg_path,
        notices=tuple(notices),
        key_sources=KeySources(flags, dict(env), config_dir / SETTINGS_FILE, cfg_path),
        keyring=asked[-1] if asked else None,
    )


def _resolve_key(
    flags: Flags,
    env: Mapping[str, str],
    settings: AppSettings,
    section: Mapping[str, str],
    notices: list[str],
    read_key_from_keyring: Callable[[], KeyringResult],
) -> tuple[str | None, str | None]:
    if flags.api_key:
        remember_secret(flags.api_key)
        return flags.api_key.strip(), "given"
    if env.get(ENV_API_KEY):
        key = env[ENV_API_KEY].strip()
        remember_secret(key)
        return key, ENV_API_KEY
    # The keyring outranks the settings file and ~/.wakatime.cfg, so it is asked whenever
    # neither a flag nor the environment gives the key.
    found = read_key_from_keyring()
    if found.key:
        return found.key, "keyring"
    plaintext = settings.get("plaintext_key")
    if plaintext:
        remember_secret(plaintext)
        return plaintext, "settings (plaintext)"
    if section.get("api_key_vault_cmd"):
        try:
            return run_vault_command(section["api_key_vault_cmd"]), "api_key_vault_cmd"
        except SecretError as exc:
            notices.append(str(exc))
    if section.get("api_key"):
        key = section["api_key"].strip()
        remember_secret(key)
        return key, "wakatime.cfg"
    if found.problem:
        notices.append(found.problem)
    return None, None


def reload_capture(sources: KeySources) -> CaptureSettings:
    """The capture rules again from the settings and ~/.wakatime.cfg (a running agent's change)."""
    cfg, _ = read_wakatime_cfg(sources.wakatime_cfg)
    section: Mapping[str, str] = cfg["settings"] if cfg.has_section("settings") else {}
    return _capture_settings(sources.flags, AppSettings(sources.settings_path), cfg, section, [])


def _capture_settings(
    flags: Flags,
    settings: AppSettings,
    cfg: configparser.ConfigParser,
    section: Mapping[str, str],
    notices: list[str],
) -> CaptureSettings:
    def cfg_flag(name: str) -> bool:
        try:
            return _bool(section.get(name, "false"), name)
        except ConfigError as exc:
            notices.append(str(exc))
            return False

    def hide(name: str) -> bool | tuple[str, ...]:
        if settings.get(name):
            return True
        return _bool_or_patterns(section.get(name, "false"))

    projectmap: tuple[tuple[str, str], ...] = ()
    if cfg.has_section("projectmap"):
        projectmap = tuple((k, v.strip()) for k, v in cfg.items("projectmap"))

    if flags.no_watch:
        watch: tuple[Path, ...] = ()
    else:
        watch = tuple(p.expanduser().resolve() for p in flags.watch) or tuple(
            Path(p).expanduser() for p in settings.get("watch_dirs")
        )
    return CaptureSettings(
        exclude=tuple(settings.get("exclude")) + _lines(section.get("exclude", "")),
        include=tuple(settings.get("include")) + _lines(section.get("include", "")),
        hide_file_names=hide("hide_file_names"),
        hide_project_names=hide("hide_project_names"),
        hide_branch_names=hide("hide_branch_names"),
        exclude_unknown_project=cfg_flag("exclude_unknown_project"),
        include_only_with_project_file=cfg_flag("include_only_with_project_file"),
        projectmap=projectmap,
        watch_dirs=watch,
    )
