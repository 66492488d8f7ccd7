"""Edits to ``~/.wakatime.cfg``, only when the user asks: backed up, minimal, undoable.

The file belongs to the user and to every WakaTime plugin on the machine, so an
edit changes only the lines it must (comments, order and other sections are
kept as written), is written whole-or-not-at-all (a temp file renamed over it,
with the old mode), and is preceded by a copy of the old file next to it.

Routing editors through the agent means two settings (hackatime-api.md §9,
wakatime-clients.md §1.4): ``api_url`` pointing at the agent's intake, and
``heartbeat_rate_limit_seconds = 0`` so that wakatime-cli hands every heartbeat
to the agent (which de-duplicates and paces) instead of dropping them for two
minutes. What the two settings held before is remembered, so Undo puts back
exactly those two, whatever else the user changed since. No Qt here: the
settings window and the first-run setup both call these functions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import is_self_url, read_wakatime_cfg
from .contract import EditorRouting

SECTION = "settings"
ROUTED_RATE_LIMIT = "0"
BACKUP_SUFFIX = ".hackatime-desktop.bak"
UNDO_FILE = "editor-routing.json"  # in the app's config dir

_SECTION_RE = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")
_OPTION_RE = re.compile(r"^(?P<name>[^\s=:#;][^=:]*?)\s*[=:]")


class CfgEditError(RuntimeError):
    """The file could not be edited; it is left as it was. The message says why."""


def backup_path(cfg: Path) -> Path:
    return cfg.with_name(cfg.name + BACKUP_SUFFIX)


def edit_lines(text: str, changes: Mapping[str, str | None]) -> str:
    """``text`` with each ``[settings]`` option in ``changes`` set (or removed, for None).

    Options not yet in the section are added at its end; a missing section is added at
    the end of the file. A value's continuation lines (indented) go with it.
    """
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n"
    pending = dict(changes)
    out: list[str] = []
    section: str | None = None
    section_end: int | None = None  # where to add options missing from [settings]
    skipping = False
    for line in lines:
        header = _SECTION_RE.match(line)
        if header:
            if section == SECTION:
                section_end = len(out)
            section = header.group("name").strip()
            skipping = False
            out.append(line)
            continue
        if skipping and line[:1] in (" ", "\t") and line.strip():
            continue  # the continuation of a value being replaced
        skipping = False
        option = _OPTION_RE.match(line) if section == SECTION else None
        if option and option.group("name").strip() in pending:
            name = option.group("name").strip()
            value = pending.pop(name)
            skipping = True
            if value is not None:
                out.append(f"{name} = {value}\n")
            continue
        out.append(line)
    if section == SECTION:
        section_end = len(out)
    additions = [f"{name} = {value}\n" for name, value in pending.items() if value is not None]
    if not additions:
        return "".join(out)
    if section_end is None:
        if out and out[-1].strip():
            out.append("\n")
        out.append(f"[{SECTION}]\n")
        out.extend(additions)
        return "".join(out)
    # After the section's last non-blank line, so a blank line before the next section stays.
    at = section_end
    while at > 0 and not out[at - 1].strip():
        at -= 1
    out[at:at] = additions
    return "".join(out)


def write_cfg(path: Path, changes: Mapping[str, str | None]) -> Path | None:
    """Apply ``changes`` to the file, after copying it to :func:`backup_path`; the backup's path.

    Returns None when the file did not exist (nothing to back up); it is then created 0600.
    """
    target = path.resolve() if path.is_symlink() else path
    try:
        old = target.read_text(encoding="utf-8") if target.exists() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise CfgEditError(f"{path} could not be read ({exc})") from None
    new = edit_lines(old or "", changes)
    backup = None
    try:
        if old is not None:
            backup = backup_path(path)
            shutil.copy2(target, backup)
        mode = target.stat().st_mode & 0o777 if old is not None else 0o600
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".wakatime-cfg-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(new)
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise CfgEditError(f"{path} could not be written ({exc.strerror or exc}); it was not changed") from None
    return backup


def _settings(path: Path) -> dict[str, str]:
    cfg, problem = read_wakatime_cfg(path)
    if problem:
        raise CfgEditError(problem)
    return dict(cfg[SECTION]) if cfg.has_section(SECTION) else {}


# ---- routing editors through the agent -------------------------------------------------------------


@dataclass(frozen=True)
class Routing:
    routed: bool  # api_url points at this agent's intake
    api_url: str | None  # what the file says now
    rate_limit: str | None  # heartbeat_rate_limit_seconds as the file says it
    intake_url: str
    can_undo: bool
    backup: str | None
    cfg: Path

    def as_dict(self, upload_url: str) -> EditorRouting:
        return {
            "routed": self.routed,
            "api_url": self.api_url,
            "heartbeat_rate_limit_seconds": self.rate_limit,
            "intake_url": self.intake_url,
            "can_undo": self.can_undo,
            "backup": self.backup,
            "wakatime_cfg": str(self.cfg),
            "upload_url": upload_url,
        }


def _port(url: str) -> int:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def routing_state(cfg: Path, intake_url: str, config_dir: Path) -> Routing:
    values = _settings(cfg)
    api_url = values.get("api_url", "").strip() or None
    undo = _read_undo(config_dir)
    return Routing(
        routed=api_url is not None and is_self_url(api_url, _port(intake_url)),
        api_url=api_url,
        rate_limit=values.get("heartbeat_rate_limit_seconds", "").strip() or None,
        intake_url=intake_url,
        can_undo=undo is not None,
        backup=str(backup_path(cfg)) if backup_path(cfg).exists() else None,
        cfg=cfg,
    )


def route_editors(cfg: Path, intake_url: str, config_dir: Path) -> tuple[Routing, str | None]:
    """Point plugins at the intake; returns the new state and the upload URL the file held before.

    The caller keeps uploading where the file pointed (the previous ``api_url``), since the
    agent never follows an ``api_url`` that points at itself (``config.load_config``).
    """
    values = _settings(cfg)
    previous = {name: values.get(name) for name in ("api_url", "heartbeat_rate_limit_seconds")}
    before = _read_undo(config_dir)
    old_url = (previous["api_url"] or "").strip() or None
    ours = old_url is not None and (is_self_url(old_url, _port(intake_url)) or old_url == _routed_to(before))
    if ours and before is not None:
        # Already routed (here, or to the port the agent had before): keep what Undo would restore.
        previous = before["previous"]
    # The Undo record first: a file edited with no way back would be half of this done.
    _write_undo(config_dir, {"previous": previous, "routed_to": intake_url, "at": time.time()})
    try:
        write_cfg(cfg, {"api_url": intake_url, "heartbeat_rate_limit_seconds": ROUTED_RATE_LIMIT})
    except CfgEditError:
        if before is None:
            (config_dir / UNDO_FILE).unlink(missing_ok=True)
        else:
            _write_undo(config_dir, before)
        raise
    upstream = (previous["api_url"] or "").strip() or None
    if upstream and is_self_url(upstream, _port(intake_url)):
        upstream = None
    return routing_state(cfg, intake_url, config_dir), upstream


def undo_routing(cfg: Path, intake_url: str, config_dir: Path) -> Routing:
    """Put back the two settings as they were before :func:`route_editors`."""
    undo = _read_undo(config_dir)
    if undo is None:
        raise CfgEditError("there is nothing to undo: the editors were not routed by this app")
    values = _settings(cfg)
    changes: dict[str, str | None] = {}
    ours = {"api_url": undo["routed_to"], "heartbeat_rate_limit_seconds": ROUTED_RATE_LIMIT}
    for name, value in undo["previous"].items():
        # A setting the user changed since is theirs now: leave it.
        if (values.get(name) or "").strip() == ours[name]:
            changes[name] = value
    if changes:
        write_cfg(cfg, changes)
    (config_dir / UNDO_FILE).unlink(missing_ok=True)
    return routing_state(cfg, intake_url, config_dir)


def _routed_to(undo: dict[str, Any] | None) -> str | None:
    routed = undo.get("routed_to") if undo is not None else None
    return routed.strip() if isinstance(routed, str) else None


def _read_undo(config_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((config_dir / UNDO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("previous"), dict):
        return None
    return data


def _write_undo(config_dir: Path, data: dict[str, Any]) -> None:
    path = config_dir / UNDO_FILE
    tmp = path.with_suffix(".tmp")
    try:
        config_dir.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise CfgEditError(f"the Undo record could not be saved in {config_dir} ({exc.strerror or exc})") from None
