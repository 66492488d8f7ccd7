"""Building one heartbeat from one save: what an editor plugin would have sent.

Reads the file once (text check, line count, language tie break, line changes
against the last-seen content), detects project and branch, applies the privacy
rules, and defers to an editor plugin that already reported the file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .content import DIFF_LIMIT, SNIFF_BYTES, ContentCache, count_lines, line_changes, read_file
from .language import language_for
from .privacy import PrivacyRules
from .project import ProjectMapRule, detect_project

__all__ = ["HeartbeatBuilder"]


class HeartbeatBuilder:
    """``editor_since(entity, since)`` says whether an editor plugin sent a heartbeat for
    ``entity`` at or after ``since``; ``window`` is how far back that counts."""

    def __init__(
        self,
        privacy: PrivacyRules,
        projectmap: tuple[ProjectMapRule, ...],
        cache: ContentCache,
        *,
        user_agent: str,
        window: float,
        editor_since: Callable[[str, float], bool],
        submodules: bool = True,
    ) -> None:
        self.privacy = privacy
        self.cache = cache
        self.user_agent = user_agent
        self.window = window
        self._projectmap = projectmap
        self._editor_since = editor_since
        self._submodules = submodules

    def build(self, path: str, when: float, *, mass_change: bool) -> dict[str, Any] | str:
        """The heartbeat for a save of ``path`` at ``when``, or the reason there is none."""
        read = read_file(path)
        if isinstance(read, str):
            if read == "gone":
                self.cache.discard(path)
            return read
        size, data, whole = read
        if b"\x00" in data[:SNIFF_BYTES]:
            self.cache.discard(path)
            return "binary"

        info = detect_project(path, self._projectmap, submodules=self._submodules)
        refusal = self.privacy.project_refusal(info)
        if refusal is not None:
            return "project_rule"

        hb: dict[str, Any] = {
            "entity": path,
            "type": "file",
            "category": "coding",
            "time": when,
            "is_write": True,
            "user_agent": self.user_agent,
        }
        project = self.privacy.project_name(info)
        if project:
            hb["project"] = project
        if info.branch:
            hb["branch"] = info.branch
        if info.root_count:
            hb["project_root_count"] = info.root_count
        language = language_for(path, data)
        if language:
            hb["language"] = language
        if whole:
            hb["lines"] = count_lines(data)
        if mass_change or not whole or size > DIFF_LIMIT:
            self.cache.discard(path)
        else:
            previous = self.cache.get(path)
            if previous is not None:
                hb["line_additions"], hb["line_deletions"] = line_changes(previous, data)
            self.cache.put(path, data)

        hb = self.privacy.sanitize(hb)
        # An editor plugin's heartbeat for this file in the window says more (cursor, line):
        # prefer it. Editors using wakatime-cli with hide_file_names send the hidden name.
        since = when - self.window
        for entity in {path, str(hb["entity"])}:
            if self._editor_since(entity, since):
                return "editor"
        return hb
