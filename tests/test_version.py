"""One version everywhere: agent/version.py, the installed package, both commands' --version, the user agent."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import agent
from agent import version
from agent.heartbeat import user_agent

SCRIPTS = Path(sys.executable).parent  # the venv's bin/, where make venv installed both commands


def command_version(name: str) -> str:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [str(SCRIPTS / name), "--version"], capture_output=True, text=True, timeout=60, env=env, check=True
    )
    program, _, said = done.stdout.strip().partition(" ")
    assert program == name
    return said


def test_every_place_shows_the_one_version() -> None:
    expected = version.VERSION
    # The package's metadata, built from pyproject.toml's dynamic version, says the same.
    assert importlib.metadata.version("hackatime-desktop") == agent.__version__ == expected
    assert command_version("hackatime-agent") == expected
    assert command_version("hackatime-desktop") == expected
    assert f"hackatime-desktop/{expected} hackatime-desktop-wakatime/{expected}" in user_agent()


def test_the_running_agent_does_not_load_package_metadata() -> None:
    # importlib.metadata and the e-mail parser it brings are 0.5 MiB of the agent's budget.
    code = "import sys, agent.daemon, agent.cli.parser; print('importlib.metadata' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"
