"""What may be recorded, and what must be hidden before a heartbeat is stored.

The rules are wakatime-cli's (wakatime-clients.md §1.4), read from
``~/.wakatime.cfg`` and the app's settings:

* ``include`` / ``exclude``: regexes searched in the file's path, case-insensitive;
  a path matching an include pattern is recorded even if an exclude pattern
  matches it too;
* ``exclude_unknown_project`` and ``include_only_with_project_file``;
* ``hide_file_names`` / ``hide_project_names`` / ``hide_branch_names``: ``true``,
  ``false`` or a list of regexes (case-sensitive, as in wakatime-cli) matched
  against the path, the project folder and the branch.

Hidden values are replaced here, before the heartbeat reaches the store, so the
real names never leave the machine — not in the outbox, not in a retry, not in
an export. Two differences from wakatime-cli, both for privacy:

* a hidden project gets a stable pseudonym ("Quiet Harbor 42") derived from the
  folder with a keyed hash, instead of a random name written into a
  ``.wakatime-project`` file in the user's repository; the key is kept by the
  agent, so the same folder keeps the same pseudonym and nobody without the key
  can test a guess against it;
* a ``hide_*`` pattern that is not a valid regex hides everything (fails closed)
  instead of stopping capture.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .project import PROJECT_FILE, ProjectInfo

__all__ = ["HIDDEN", "CaptureRules", "PrivacyRules", "pseudonym"]

HIDDEN = "HIDDEN"  # wakatime-cli's replacement for a hidden file name ("HIDDEN.py")

# Per-file details that describe a hidden file and are dropped with its name.
_FILE_DETAILS = ("lines", "lineno", "cursorpos", "dependencies", "line_additions", "line_deletions")

_ADJECTIVES = (
    "Amber", "Brisk", "Calm", "Clever", "Copper", "Crisp", "Dusky", "Eager", "Fancy", "Gentle",
    "Golden", "Hidden", "Hollow", "Humble", "Ivory", "Jolly", "Lively", "Lunar", "Mellow", "Misty",
    "Nimble", "Noble", "Olive", "Patient", "Plucky", "Quiet", "Rapid", "Rustic", "Silver", "Snowy",
    "Solar", "Sturdy", "Swift", "Tidy", "Velvet", "Vivid", "Wandering", "Witty", "Young", "Zesty",
)  # fmt: skip
_NOUNS = (
    "Anchor", "Badger", "Beacon", "Birch", "Canyon", "Cedar", "Comet", "Compass", "Delta", "Ember",
    "Falcon", "Fern", "Garden", "Glacier", "Harbor", "Heron", "Island", "Lantern", "Lark", "Meadow",
    "Meteor", "Orchard", "Otter", "Pebble", "Pine", "Prairie", "Quarry", "Raven", "Reef", "Ridge",
    "River", "Sparrow", "Summit", "Thicket", "Tundra", "Valley", "Willow", "Wren", "Yarrow", "Zephyr",
)  # fmt: skip


class CaptureRules(Protocol):
    """The part of ``agent.config.CaptureSettings`` these rules read."""

    @property
    def exclude(self) -> tuple[str, ...]: ...
    @property
    def include(self) -> tuple[str, ...]: ...
    @property
    def hide_file_names(self) -> bool | tuple[str, ...]: ...
    @property
    def hide_project_names(self) -> bool | tuple[str, ...]: ...
    @property
    def hide_branch_names(self) -> bool | tuple[str, ...]: ...
    @property
    def exclude_unknown_project(self) -> bool: ...
    @property
    def include_only_with_project_file(self) -> bool: ...


_MATCH_ALL = re.compile("")


def pseudonym(folder: str, secret: bytes) -> str:
    """A stable "Adjective Noun NN" name for ``folder`` that cannot be reversed without ``secret``."""
    digest = hmac.new(secret, os.path.normcase(folder).encode("utf-8", "surrogatepass"), hashlib.sha256)
    raw = digest.digest()
    adjective = _ADJECTIVES[int.from_bytes(raw[0:4], "big") % len(_ADJECTIVES)]
    noun = _NOUNS[int.from_bytes(raw[4:8], "big") % len(_NOUNS)]
    return f"{adjective} {noun} {int.from_bytes(raw[8:12], 'big') % 100}"


@dataclass(frozen=True)
class _Patterns:
    patterns: tuple[re.Pattern[str], ...]

    def search(self, subject: str | None) -> bool:
        return subject is not None and any(p.search(subject) for p in self.patterns)

    @property
    def empty(self) -> bool:
        return not self.patterns


class PrivacyRules:
    """Compiled include / exclude / hide rules; ``problems`` lists patterns that could not be used."""

    def __init__(self, settings: CaptureRules, secret: bytes) -> None:
        if not secret:
            raise ValueError("a non-empty secret is needed to derive project pseudonyms")
        self._secret = secret
        self.problems: list[str] = []
        # wakatime-cli makes include / exclude patterns case-insensitive; a broken one is skipped.
        self._include = self._filters(settings.include, "include")
        self._exclude = self._filters(settings.exclude, "exclude")
        self._hide_files = self._hide(settings.hide_file_names, "hide_file_names")
        self._hide_projects = self._hide(settings.hide_project_names, "hide_project_names")
        self._hide_branches = self._hide(settings.hide_branch_names, "hide_branch_names")
        self.exclude_unknown_project = bool(settings.exclude_unknown_project)
        self.include_only_with_project_file = bool(settings.include_only_with_project_file)

    def _filters(self, values: Iterable[str], name: str) -> _Patterns:
        compiled: list[re.Pattern[str]] = []
        for value in values:
            try:
                compiled.append(re.compile(value, re.IGNORECASE))
            except re.error as exc:
                self.problems.append(f"{name} pattern {value!r} is not a valid regex ({exc}); it is ignored")
        return _Patterns(tuple(compiled))

    def _hide(self, value: bool | tuple[str, ...], name: str) -> _Patterns:
        if value is True:
            return _Patterns((_MATCH_ALL,))
        if value is False:
            return _Patterns(())
        compiled: list[re.Pattern[str]] = []
        for text in value:
            try:
                compiled.append(re.compile(text))
            except re.error as exc:
                self.problems.append(
                    f"{name} pattern {text!r} is not a valid regex ({exc}); everything is hidden until it is fixed"
                )
                return _Patterns((_MATCH_ALL,))
        return _Patterns(tuple(compiled))

    # -- what is recorded ------------------------------------------------------------

    def path_excluded(self, entity: str) -> bool:
        """True when include / exclude rules drop this path (include wins)."""
        if self._include.search(entity):
            return False
        return self._exclude.search(entity)

    def project_refusal(self, info: ProjectInfo) -> str | None:
        """Why a heartbeat for this project must not be recorded, or None."""
        if self.include_only_with_project_file and not info.has_project_file:
            return f"no {PROJECT_FILE} file above it (include_only_with_project_file)"
        if self.exclude_unknown_project and not info.project:
            return "unknown project (exclude_unknown_project)"
        return None

    # -- what is hidden --------------------------------------------------------------

    def project_name(self, info: ProjectInfo) -> str | None:
        """The project name to store: a pseudonym when hide_project_names matches the folder.

        A name the user wrote in a .wakatime-project file is theirs to share and is kept,
        as in wakatime-cli.
        """
        if info.project and info.detector != "file" and self._hide_projects.search(info.folder):
            return pseudonym(info.folder or info.project, self._secret)
        return info.project

    def sanitize(self, heartbeat: Mapping[str, Any]) -> dict[str, Any]:
        """Apply hide_file_names / hide_project_names / hide_branch_names to a heartbeat.

        Follows wakatime-cli's order: a hidden file hides its name and per-file details;
        else a hidden project hides the per-file details; the branch goes with either,
        unless hide_branch_names lists patterns that it does not match; else a matching
        branch alone is hidden.
        """
        out = dict(heartbeat)
        entity = out.get("entity")
        branch = out.get("branch")
        branch_goes = self._hide_branches.empty or self._hide_branches.search(branch)
        if isinstance(entity, str) and self._hide_files.search(entity):
            ext = os.path.splitext(entity)[1] if out.get("type", "file") == "file" else ""
            out["entity"] = HIDDEN + ext
            for key in (*_FILE_DETAILS, "project_root_count"):
                out.pop(key, None)
            if branch_goes:
                out.pop("branch", None)
        elif self._hide_projects.search(out.get("project")):
            for key in _FILE_DETAILS:
                out.pop(key, None)
            if branch_goes:
                out.pop("branch", None)
        elif self._hide_branches.search(branch):
            out.pop("branch", None)
        return out
