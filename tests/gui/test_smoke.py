"""``hackatime-desktop --smoke`` from the venv (CI runs it again from the built bundle)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_smoke_passes_without_a_display_and_touches_nothing_of_the_users(_isolated_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("hackatime-desktop")), "--smoke"],
        capture_output=True, text=True, timeout=240, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    checks = [line.split(":", 1)[0] for line in lines[:-1]]
    assert checks == ["ok   qt", "ok   version", "ok   agent", "ok   import", "ok   chart"]
    assert json.loads(lines[-1]) == {"smoke": "passed", "failed": 0}
    assert "drew its charts" in lines[2]
    assert sorted(p.name for p in _isolated_home.iterdir()) == []  # all of it in a temporary folder
