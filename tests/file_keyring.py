"""A real keyring backend (the library's own interface) over a JSON file, for child processes.

The agent reads the keyring in short-lived child processes (``agent.secrets``); they are
given this backend with ``PYTHON_KEYRING_BACKEND=tests.file_keyring.FileKeyring``. Like
keyrings.alt's file backends it names its file (``file_path``), unless
``HACKATIME_TEST_KEYRING_UNNAMED`` is set: then it stands for a keyring whose store on disk
is unknown. Every read is noted in a log file beside it (never in the store itself).
This module imports only keyring, so that a child stays as quick as the real one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keyring.backend

FILE_ENV = "HACKATIME_TEST_KEYRING_FILE"
UNNAMED_ENV = "HACKATIME_TEST_KEYRING_UNNAMED"
BACKEND = f"{__name__}.FileKeyring"


class FileKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @property
    def path(self) -> Path:
        return Path(os.environ[FILE_ENV])

    def __getattr__(self, name: str) -> str:
        # Looked up only when missing: a store whose place is known, unless told otherwise.
        if name == "file_path" and not os.environ.get(UNNAMED_ENV):
            return str(self.path)
        raise AttributeError(name)

    @property
    def reads(self) -> int:
        log = self.path.with_suffix(".reads")
        return len(log.read_text().splitlines()) if log.exists() else 0

    def _load(self) -> dict[str, str]:
        return dict(json.loads(self.path.read_text())) if self.path.exists() else {}

    def _save(self, data: dict[str, str]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)  # as a real store is saved: whole, never half

    def get_password(self, service: str, username: str) -> str | None:
        with self.path.with_suffix(".reads").open("a") as log:
            log.write(f"{os.getpid()}\n")
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        self._save({**self._load(), f"{service}/{username}": password})

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        data.pop(f"{service}/{username}", None)
        self._save(data)
