"""One version everywhere: pyproject.toml, both commands' --version, the user agent, the About box."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import agent
from agent import version
from agent.heartbeat import user_agent

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(sys.executable).parent  # the venv's bin/, where make venv installed both commands


def pyproject_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


def command_version(name: str) -> str:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [str(SCRIPTS / name), "--version"], capture_output=True, text=True, timeout=60, env=env, check=True
    )
    program, _, said = done.stdout.strip().partition(" ")
    assert program == name
    return said


def test_every_place_shows_pyprojects_version() -> None:
    expected = pyproject_version()
    assert agent.__version__ == version.VERSION == expected
    assert command_version("hackatime-agent") == expected
    assert command_version("hackatime-desktop") == expected
    assert f"hackatime-desktop/{expected} hackatime-desktop-wakatime/{expected}" in user_agent()


def test_a_source_tree_that_was_never_installed_reads_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "hackatime-desktop"\nversion = "9.8.7"\n')
    assert version._from_pyproject(tmp_path) == "9.8.7"


@pytest.mark.parametrize(
    "text",
    ['[project]\nname = "someone-else"\nversion = "1.0"\n', "[project\n", '[project]\nname = "hackatime-desktop"\n'],
)
def test_pyproject_of_another_project_or_broken_gives_no_version(tmp_path: Path, text: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    assert version._from_pyproject(tmp_path) is None
    assert version._from_pyproject(tmp_path / "missing") is None
