"""Where the agent keeps its data, logs and settings: the command line, the environment, or the platform's dirs.

A module of its own so that the tray, which only needs to find these, does not load
the rest of the configuration (``agent.config``: the wakatime.cfg parser, the keyring
helpers) into a process that runs for weeks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import platformdirs

from . import APP_NAME

ENV_DATA_DIR = "HACKATIME_DESKTOP_DATA_DIR"
ENV_CONFIG_DIR = "HACKATIME_DESKTOP_CONFIG_DIR"
SETTINGS_FILE = "settings.json"  # the app's own settings, in the config dir


def default_dirs(data_dir: Path | None, env: Mapping[str, str]) -> tuple[Path, Path, Path]:
    """The data, log and config dirs for ``data_dir`` as given on the command line (None: not given)."""
    if data_dir is not None:
        data = data_dir
    elif env.get(ENV_DATA_DIR):
        data = Path(env[ENV_DATA_DIR])
    else:
        data = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    if env.get(ENV_CONFIG_DIR):
        conf = Path(env[ENV_CONFIG_DIR])
    elif data_dir is not None or env.get(ENV_DATA_DIR):
        # An explicit data dir is a self-contained installation (tests, portable use).
        conf = data
    else:
        conf = Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    if data_dir is not None or env.get(ENV_DATA_DIR):
        logs = data / "logs"
    else:
        logs = Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
    return data, logs, conf
