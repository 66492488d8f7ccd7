"""``hackatime-desktop --smoke``: does this installation work? No display needed.

Run from a freshly built bundle (CI does, ``packaging/bundle-smoke.sh``) it proves that
what the trimmed spec left in is enough: Qt starts (offscreen) and finds the platform plugins
a desktop needs; the agent executable starts, takes a heartbeat on a free port and commits it
to its store; a chart renders through matplotlib's QtAgg backend. Everything happens in a
temporary folder with a throwaway key and an unreachable server, so nothing of the user's is
read, written or sent. Prints one line per check; exits 0 when all pass, 1 otherwise.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

AGENT_START_TIMEOUT = 60.0  # seconds: a cold bundle on a busy CI machine unpacks nothing but is still slow
# Each check answers with a detail line for the report, or raises with the reason.
Check = Callable[[], str]


def _check_qt() -> str:
    from PySide6.QtCore import QLibraryInfo
    from PySide6.QtWidgets import QApplication

    from . import icons

    if QApplication.platformName() != "offscreen":
        raise RuntimeError(f"expected the offscreen platform, got {QApplication.platformName()}")
    if icons.app_icon().pixmap(64, 64).isNull():
        raise RuntimeError("the application icon did not render")
    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    found = sorted(p.name for p in plugins.iterdir()) if plugins.is_dir() else []
    wanted = {"linux": ("qxcb", "qwayland", "qoffscreen"), "darwin": ("qcocoa",), "win32": ("qwindows",)}
    missing = [name for name in wanted.get(sys.platform, ()) if not any(name in f for f in found)]
    if missing:
        raise RuntimeError(f"platform plugins missing from {plugins}: {', '.join(missing)}")
    return f"offscreen; platform plugins: {', '.join(found)}"


def _check_chart() -> str:
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from .charts import ChartPalette, DonutChart

    palette = ChartPalette.from_qt(QApplication.palette())
    chart = DonutChart(palette)
    chart.resize(320, 240)
    chart.plot([{"name": "Python", "total_seconds": 5400}, {"name": "Rust", "total_seconds": 1800}])
    chart.draw()
    pixels = np.asarray(chart.buffer_rgba())
    colours = len(np.unique(pixels.reshape(-1, 4), axis=0))
    chart.deleteLater()
    if colours < 3:
        raise RuntimeError(f"the donut chart rendered {colours} colour(s) only")
    return f"donut chart {pixels.shape[1]}×{pixels.shape[0]} px, {colours} colours"


def _agent_command(data_dir: Path | None, *args: str) -> list[str]:
    """The agent of this installation (the bundle's own executable) with these arguments."""
    from .supervisor import default_command

    return [*default_command(data_dir)[:-1], *args]  # default_command ends with "run"


def _run_agent(
    data_dir: Path, env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """One command of this installation's agent, to its end; its output captured."""
    return subprocess.run(
        _agent_command(data_dir, *args),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
    )


def _agent_env(home: Path, key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAKATIME_", "HACKATIME_"))}
    env["WAKATIME_HOME"] = str(home)
    # The agent asks the keyring before ~/.wakatime.cfg; a null backend answers "nothing" at
    # once, so the reader child still runs (and is checked) without touching the user's keyring.
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    # Port 1 refuses connections: delivery backs off and the heartbeat stays queued.
    (home / ".wakatime.cfg").write_text(
        f"[settings]\napi_key = {key}\napi_url = http://127.0.0.1:1/api/hackatime/v1\n", encoding="utf-8"
    )
    return env


@contextmanager
def _killed_if_hung(proc: subprocess.Popen[str]) -> Iterator[None]:
    """Reading a child's output blocks; a timer ends a hung child so the read returns."""
    timer = threading.Timer(AGENT_START_TIMEOUT, proc.kill)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _stop(proc: subprocess.Popen[str]) -> int:
    """Ask a child to stop, wait for it, close its output; its exit status."""
    if proc.poll() is None:
        proc.terminate()
    code = proc.wait(timeout=30)
    if proc.stdout is not None:
        proc.stdout.close()
    return code


def _check_agent(work: Path) -> str:
    import httpx

    home, data = work / "home", work / "data"
    home.mkdir()
    key = str(uuid.uuid4())
    env = _agent_env(home, key)
    proc = subprocess.Popen(
        _agent_command(data, "run", "--port", "0", "--no-watch"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
    )
    output: list[str] = []
    try:
        with _killed_if_hung(proc):
            assert proc.stdout is not None
            for line in proc.stdout:
                output.append(line.rstrip())
                if "intake listening on " in line:
                    break
        if proc.poll() is not None or not output or "intake listening on " not in output[-1]:
            raise RuntimeError("the agent did not start: " + " | ".join(output[-5:]))
        intake = output[-1].rsplit(" ", 1)[1]
        heartbeat = {"entity": "/smoke/main.py", "type": "file", "time": time.time(), "language": "Python"}
        basic = base64.b64encode(key.encode()).decode()
        answer = httpx.post(
            f"{intake}/users/current/heartbeats", json=heartbeat, headers={"Authorization": f"Basic {basic}"}
        )
        if answer.status_code not in (201, 202):  # one heartbeat: 202, as Hackatime answers
            raise RuntimeError(f"the intake answered {answer.status_code}: {answer.text[:200]}")
        window = _check_window(work, data, env)
    finally:
        code = _stop(proc)
    if code not in (0, -15) and sys.platform != "win32":
        raise RuntimeError(f"the agent exited with status {code} when asked to stop")
    # The store, read back by the agent executable's own `status` (no agent runs now).
    done = _run_agent(data, env, "status", "--json")
    if done.returncode != 0:
        raise RuntimeError(f"hackatime-agent status failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    destinations = json.loads(done.stdout)["destinations"]
    # A delivery attempt cut short by the stop leaves the heartbeat in flight; it is resumed at start.
    waiting = sum(d["pending"] + d["in_flight"] for d in destinations)
    if waiting != 1:
        raise RuntimeError(f"the store has {waiting} heartbeat(s) waiting for delivery; expected 1")
    return f"{intake}: heartbeat accepted, stored and queued for delivery; {window}"


def _window_command(data_dir: Path, name: str) -> list[str]:
    """This installation's window process (``--window``), as the tray starts it."""
    program = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "app.main"]
    return [*program, "--window", name, "--data-dir", str(data_dir), "--timing"]


def _check_window(work: Path, data_dir: Path, env: dict[str, str]) -> str:
    """The dashboard in a real window process, against the running agent, until its charts are drawn."""
    started = time.monotonic()
    with (work / "window.log").open("w+", encoding="utf-8") as log:
        proc = subprocess.Popen(
            _window_command(data_dir, "dashboard"),
            env={**env, "QT_QPA_PLATFORM": "offscreen"},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        events: list[str] = []
        try:
            with _killed_if_hung(proc):
                assert proc.stdout is not None
                for line in proc.stdout:
                    if line.startswith("{"):
                        events.append(json.loads(line)["event"])
                    if "charts" in events:
                        break
        finally:
            _stop(proc)
        if events[-1:] != ["charts"]:
            log.seek(0)
            raise RuntimeError(f"the dashboard's window process showed {events}: {log.read()[-400:]}")
    return f"the dashboard (--window) drew its charts in {time.monotonic() - started:.1f} s"


def _check_import(work: Path) -> str:
    """An export imported by the agent executable, whose reading process is the same executable
    started again (a bundle runs no ``python -c``): kept local, so nothing waits to upload."""
    import gzip

    home, data = work / "import-home", work / "import-data"
    home.mkdir()
    start = time.time() - 86400
    heartbeats = [
        {"entity": f"/smoke/m{i}.py", "type": "file", "time": start + 60 * i, "project": "smoke", "language": "Python"}
        for i in range(3)
    ]
    export = work / "export.json.gz"
    export.write_bytes(gzip.compress(json.dumps({"days": [{"date": "d", "heartbeats": heartbeats}]}).encode()))
    done = _run_agent(data, _agent_env(home, str(uuid.uuid4())), "import", str(export), "--json", "--no-upload")
    if done.returncode != 0:
        raise RuntimeError(f"hackatime-agent import failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    summary = json.loads(done.stdout)
    if (summary["format"], summary["read"], summary["imported"]) != ("wakatime", 3, 3):
        raise RuntimeError(f"the import of 3 heartbeats said {done.stdout.strip()[:300]}")
    return "3 heartbeats read by the reading process and stored"


def _check_version() -> str:
    from agent import __version__

    done = subprocess.run(_agent_command(None, "--version"), capture_output=True, text=True, timeout=60, check=False)
    said = done.stdout.strip().rsplit(" ", 1)[-1]
    if said != __version__:
        raise RuntimeError(f"hackatime-agent --version says {done.stdout.strip()!r}; this app is {__version__}")
    return __version__


def run() -> int:
    from PySide6.QtWidgets import QApplication

    # No display, and none wanted even where there is one.
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    app = QApplication.instance() or QApplication(sys.argv[:1])
    failed = 0
    with tempfile.TemporaryDirectory(prefix="hackatime-smoke-") as tmp:
        # matplotlib's font cache too goes to the temporary folder, here and in the window process.
        os.environ["MPLCONFIGDIR"] = str(Path(tmp) / "matplotlib")
        checks: list[tuple[str, Check]] = [
            ("qt", _check_qt),
            ("version", _check_version),
            ("agent", lambda: _check_agent(Path(tmp))),
            ("import", lambda: _check_import(Path(tmp))),
            ("chart", _check_chart),
        ]
        for name, check in checks:
            try:
                detail = check()
            except Exception as exc:  # reported, and the next check still runs
                failed += 1
                print(f"FAIL {name}: {type(exc).__name__}: {exc}", flush=True)
            else:
                print(f"ok   {name}: {detail}", flush=True)
    print(json.dumps({"smoke": "failed" if failed else "passed", "failed": failed}), flush=True)
    del app
    return 1 if failed else 0
