"""The version, kept in one place: ``[project] version`` in pyproject.toml.

Everything that shows it (``--version`` of both commands, the user agent sent with
every heartbeat, the app's About box, the agent's status) reads :data:`VERSION`.
An installed copy answers from its package metadata (``make venv`` installs the
checkout; the bundle's spec copies the metadata in). A source tree that was never
installed falls back to reading pyproject.toml itself.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

DISTRIBUTION = "hackatime-desktop"
UNKNOWN = "0+unknown"  # shown rather than a made-up number when nothing says


def _from_pyproject(root: Path) -> str | None:
    import tomllib

    try:
        with (root / "pyproject.toml").open("rb") as fh:
            project = tomllib.load(fh).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    version = project.get("version") if project.get("name") == DISTRIBUTION else None
    return version if isinstance(version, str) else None


def read_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    if getattr(sys, "frozen", False):
        # A bundle built without the metadata (see packaging/hackatime-desktop.spec): no source tree to read.
        return UNKNOWN
    return _from_pyproject(Path(__file__).resolve().parents[1]) or UNKNOWN


VERSION = read_version()
