"""Tray and window process benchmarks, each figure beside a baseline measured in the same run.

- Start to tray icon, beside a bare ``QApplication`` + ``QSystemTrayIcon`` (budget 1.5 s).
- Tray RSS at idle, across 20 dashboard open/close cycles and over an hour of refreshes
  (one every 5 s, a minute of coding per minute), beside that bare tray (budget 80 MiB at
  every point). The tray never imports matplotlib: the child says what it holds.
- Click → dashboard shown with its figures, the window process cold, beside a bare
  ``python -c "import PySide6.QtWidgets"`` (budget 2 ×); click → charts drawn, cold,
  beside a bare ``import matplotlib`` + QtAgg backend (budget 1.5 ×), and again while
  the window process is alive (budget 300 ms). Window process RSS while the dashboard is
  open (budget 160 MiB), and the time it takes to exit after its keep-alive.
- CPU while idle, beside the bare tray.

Each measurement runs in fresh child processes (``--child NAME``), so imports and caches start
cold as they do for a user; the tray children start the tray the way ``hackatime-desktop``
does (``app.main.start``), agent supervision aside: the orchestrator runs the loopback Hackatime
stand-in and a real agent in-process. The window process reports when it showed a window and
drew its charts (its hidden ``--timing`` flag) in its log. With Xvfb and trayer installed and no
display set, it all runs against a real tray; otherwise offscreen. Wall times are medians of
``--runs``: the machine this was written on is shared, and single runs swing by tens of per cent.
Memory is in MiB (2^20 bytes). The children load as little of the benchmark's own as they can
(the orchestrator's imports are made where it needs them, and the tray child posts heartbeats over
a plain socket rather than urllib), so the figures are the app's, not the harness's.

    python bench/bench_tray.py [--runs 5] [--hour-refreshes 720] [--idle-seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

API_KEY = "0b6a3e1e-6c1f-4d1e-9a5b-2f3c4d5e6f70"
BUDGET_START_S = 1.5
BUDGET_TRAY_MIB = 80.0
BUDGET_SHOWN_RATIO = 2.0  # × a bare PySide6.QtWidgets import, cold
BUDGET_CHARTS_RATIO = 1.5  # × a bare matplotlib + QtAgg import, cold
BUDGET_CHARTS_ALIVE_MS = 300.0
BUDGET_WINDOW_MIB = 160.0
CYCLES = 20
KEEP_ALIVE_S = 2  # the setting, for the exit measurement only (default 300 s)


# ---- helpers shared by the children ------------------------------------------------------


def qt() -> tuple[Any, Any, Any]:
    """Qt for the children; imported late so the orchestrator never loads it."""
    from PySide6 import QtCore, QtGui, QtWidgets

    return QtCore, QtGui, QtWidgets


def rss_mb() -> float:
    """This process's resident memory: read from /proc where there is one (Linux), as psutil reads it,
    since importing psutil would add about 4 MiB of its own to the figure being measured."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20


def emit(**figures: Any) -> None:
    print(json.dumps(figures), flush=True)


def coding(project: str, minutes: int, end: float, language: str = "Python") -> list[dict[str, Any]]:
    return [
        {
            "entity": f"/home/orpheus/{project}/src/file{i % 4}.py",
            "type": "file",
            "time": end - (minutes - i) * 60,
            "project": project,
            "language": language,
            "category": "coding",
            "is_write": i % 5 == 0,
        }
        for i in range(minutes + 1)
    ]


def post(intake_url: str, beats: list[dict[str, Any]]) -> None:
    """POST a bulk of heartbeats to the agent's intake over a plain socket.

    Not urllib: the tray child posts too, and urllib.request would load http.client, ssl
    (OpenSSL) and hashlib into the very process whose memory is being measured.
    """
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(intake_url + "/users/current/heartbeats.bulk")
    body = json.dumps(beats).encode()
    head = (
        f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {API_KEY}\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n"
        "User-Agent: wakatime/v1.90.0 (linux-6.1.0-x86_64) go1.22.0 vscode/1.90.0 vscode-wakatime/24.0.0\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        with sock.makefile("rb") as answer:
            status = answer.readline().split(b" ", 2)
            if len(status) < 2 or not status[1].startswith(b"2"):
                raise SystemExit(f"the intake answered {b' '.join(status)[:80]!r}")
            answer.read()


def wait_docked(app: Any, icon: Any, timeout_s: float = 5.0) -> None:
    """Until the icon is shown and, where a tray exists, embedded in it."""
    _, _, widgets = qt()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents()
        if not widgets.QSystemTrayIcon.isSystemTrayAvailable():
            return
        where = icon.geometry()
        if icon.isVisible() and not where.isEmpty() and (where.x(), where.y()) != (0, 0):
            return
        time.sleep(0.005)  # a benchmark polling the X server, not a test


# ---- children -----------------------------------------------------------------------------


def bare_tray(gui: Any, widgets: Any) -> Any:
    pixmap = gui.QPixmap(32, 32)
    pixmap.fill(gui.QColor("#2e9d57"))
    icon = widgets.QSystemTrayIcon(gui.QIcon(pixmap))
    icon.show()
    return icon


def child_baseline_start() -> None:
    core, gui, widgets = qt()
    app = widgets.QApplication(sys.argv[:1])
    icon = bare_tray(gui, widgets)

    def report() -> None:
        wait_docked(app, icon)
        emit(shown_at=time.time())
        app.quit()

    core.QTimer.singleShot(0, report)
    app.exec()


def child_baseline_rss() -> None:
    """The RSS baseline: a bare tray icon, docked."""
    _, gui, widgets = qt()
    qapp = widgets.QApplication(sys.argv[:1])
    icon = bare_tray(gui, widgets)
    wait_docked(qapp, icon)
    emit(bare_mb=rss_mb())


def _start(data_dir: Path) -> Any:
    """The tray as ``hackatime-desktop`` starts it (app.main), agent supervision off: the bench runs the agent."""
    from app import main, process  # before Qt, as in hackatime-desktop (see app.process.create_app)

    app = process.create_app()
    session = main.start(app, main.parse_args(["--data-dir", str(data_dir), "--no-agent"]))
    assert session is not None, "another tray holds this data dir"
    session.windows.extra_args.append("--timing")
    _settle(session, lambda: session.model.stats is not None and session.model.status is not None)
    return session


def _settle(session: Any, until: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        session.app.processEvents()
        if until() and session.runner.pending <= 1:  # the long-poll stays parked on one thread
            return
        time.sleep(0.001)  # a benchmark polling its own loop, not a test
    raise SystemExit("timed out")


def _ask(session: Any, signal: Any, action: Callable[[], None]) -> float:
    """Do ``action`` and wait for ``signal`` (the window process's answer); the time it took, in ms."""
    got: list[object] = []

    def slot(*args: object) -> None:
        got.append(args)

    signal.connect(slot)
    t0 = time.perf_counter()
    action()
    _settle(session, lambda: bool(got))
    elapsed = (time.perf_counter() - t0) * 1000
    signal.disconnect(slot)
    return elapsed


def _window_events(log: Path, offset: int) -> list[dict[str, Any]]:
    try:
        with log.open("rb") as fh:
            fh.seek(offset)
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"event"')]


def _charts_drawn(session: Any, offset: int) -> dict[str, Any]:
    """The window process's "charts drawn" line, written after ``offset`` in its log."""
    log = session.windows.log_path
    found: list[dict[str, Any]] = []

    def drawn() -> bool:
        found[:] = [e for e in _window_events(log, offset) if e["event"] == "charts"]
        return bool(found)

    _settle(session, drawn)
    return found[0]


def _log_size(session: Any) -> int:
    try:
        return int(session.windows.log_path.stat().st_size)
    except FileNotFoundError:
        return 0


def child_window(data_dir: Path, runs: int) -> None:
    """Click → dashboard, cold and alive: shown with figures, charts drawn, the window process's RSS, its exit."""
    import psutil

    session = _start(data_dir)
    tray, windows = session.tray, session.windows
    cold_shown, cold_charts, alive_shown, alive_charts, window_mb = [], [], [], [], []
    shown_cpu, charts_cpu = [], []
    for _ in range(runs):
        offset, clicked = _log_size(session), time.time()
        cold_shown.append(_ask(session, windows.opened, tray.open_dashboard))
        drawn = _charts_drawn(session, offset)
        cold_charts.append((drawn["at"] - clicked) * 1000)
        charts_cpu.append(drawn["cpu"] * 1000)
        shown_cpu.append(
            next(e for e in _window_events(windows.log_path, offset) if e["event"] == "opened")["cpu"] * 1000
        )
        window_mb.append(psutil.Process(windows.process.processId()).memory_info().rss / 2**20)
        _ask(session, windows.closed, lambda: windows.close_window("dashboard"))
        offset, clicked = _log_size(session), time.time()
        alive_shown.append(_ask(session, windows.opened, tray.open_dashboard))
        alive_charts.append((_charts_drawn(session, offset)["at"] - clicked) * 1000)
        windows.close()  # the next run starts cold
    # Gone after the keep-alive: a short one, read by the window process at its start.
    settings = data_dir / "settings.json"
    settings.write_text(json.dumps({"window_keep_alive_s": KEEP_ALIVE_S}))
    try:
        _ask(session, windows.opened, tray.open_dashboard)
        pid = windows.process.processId()
        _ask(session, windows.closed, lambda: windows.close_window("dashboard"))
        exit_s = _ask(session, windows.exited, lambda: None) / 1000
    finally:
        settings.unlink()
    emit(
        cold_shown_ms=cold_shown,
        cold_charts_ms=cold_charts,
        cold_shown_cpu_ms=shown_cpu,
        cold_charts_cpu_ms=charts_cpu,
        alive_shown_ms=alive_shown,
        alive_charts_ms=alive_charts,
        window_mb=window_mb,
        exit_after_close_s=exit_s,
        keep_alive_s=KEEP_ALIVE_S,
        gone=not psutil.pid_exists(pid),
        tray_imports_matplotlib="matplotlib" in sys.modules or "numpy" in sys.modules,
    )
    session.stop()


def child_tray_rss(data_dir: Path, intake_url: str, refreshes: int) -> None:
    """Tray RSS: idle, across dashboard open/close cycles, then over an hour of refreshes (one every 5 s)."""
    session = _start(data_dir)
    qapp, model, tray, windows = session.app, session.model, session.tray, session.windows
    _settle(session, lambda: True)
    idle = rss_mb()
    cycles = []
    for _ in range(CYCLES):
        _ask(session, windows.opened, tray.open_dashboard)
        _ask(session, windows.closed, lambda: windows.close_window("dashboard"))
        cycles.append(rss_mb())
    hour = []
    t0 = time.perf_counter()
    for i in range(refreshes):
        if i % 12 == 0:  # a minute of coding: new figures every minute
            post(intake_url, coding("bench", 1, end=time.time() - 1))
        _ask(session, model.stats_changed, model.refresh)
        tray.menu.aboutToShow.emit()  # the menu opened now and then, too
        if i % 60 == 0:
            hour.append(rss_mb())
    elapsed = time.perf_counter() - t0
    qapp.processEvents()
    hour.append(rss_mb())
    emit(
        idle_mb=idle,
        cycles_mb=cycles,
        hour_mb=hour,
        refreshes=refreshes,
        seconds=elapsed,
        tray_imports_matplotlib="matplotlib" in sys.modules or "numpy" in sys.modules,
    )
    session.stop()


def child_idle(data_dir: Path, seconds: float) -> None:
    """CPU while idle: the tray waiting on the agent's long-poll, no window process."""
    from app import main, process

    qapp = process.create_app()
    core, gui, widgets = qt()

    def idle_cpu() -> float:
        loop = core.QEventLoop()
        core.QTimer.singleShot(int(seconds * 1000), loop.quit)
        c0 = time.process_time()
        loop.exec()
        return (time.process_time() - c0) / seconds * 100

    bare = bare_tray(gui, widgets)
    baseline = idle_cpu()
    bare.hide()

    session = main.start(qapp, main.parse_args(["--data-dir", str(data_dir), "--no-agent"]))
    assert session is not None, "another tray holds this data dir"
    _settle(session, lambda: session.model.stats is not None)
    app_cpu = idle_cpu()
    emit(baseline_cpu_percent=baseline, app_cpu_percent=app_cpu, seconds=seconds)
    session.stop()


# ---- the orchestrator --------------------------------------------------------------------


def start_display(work: Path) -> tuple[dict[str, str], list[subprocess.Popen[bytes]], str]:
    """A real tray (Xvfb + trayer) when available and no display is set; else offscreen."""
    import shutil

    env = dict(os.environ)
    if env.get("DISPLAY") or not (shutil.which("Xvfb") and shutil.which("trayer")):
        if not env.get("DISPLAY"):
            env["QT_QPA_PLATFORM"] = "offscreen"
            return env, [], "offscreen (no Xvfb/trayer: the icon is never embedded)"
        return env, [], f"existing display {env['DISPLAY']}"
    display_file = work / "display"
    with display_file.open("w") as fd:
        xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(fd.fileno()), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            pass_fds=(fd.fileno(),),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 30  # a loaded machine can take seconds
    while not display_file.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not display_file.read_text().strip():
        xvfb.terminate()  # never left behind: nothing else would stop it
        xvfb.wait(10)
        raise SystemExit("Xvfb did not say its display number within 30 s")
    env["DISPLAY"] = ":" + display_file.read_text().split()[0]
    env["QT_QPA_PLATFORM"] = "xcb"
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    trayer = subprocess.Popen(
        ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "32",
         "--SetDockType", "true", "--transparent", "false", "--tint", "0x333333"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return env, [trayer, xvfb], f"Xvfb {env['DISPLAY']} + trayer (a real XEmbed tray)"


def run_child(env: dict[str, str], *args: str, timeout: float = 600) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"child {args} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def start_times(env: dict[str, str], command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.time()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise SystemExit(f"{command} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        times.append(json.loads(lines[-1])["shown_at"] - t0)
    return times


def verdict(value: float, budget: float) -> str:
    return "within budget" if value <= budget else "OVER BUDGET"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--intake-url")
    parser.add_argument("--hour-refreshes", type=int, default=720)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    children: dict[str, Callable[[], None]] = {
        "baseline-start": child_baseline_start,
        "baseline-rss": child_baseline_rss,
        "window": lambda: child_window(args.data_dir, args.runs),
        "tray-rss": lambda: child_tray_rss(args.data_dir, args.intake_url, args.hour_refreshes),
        "idle": lambda: child_idle(args.data_dir, args.idle_seconds),
    }
    if args.child:
        children[args.child]()
        return 0

    import compileall
    import tempfile

    from agent.config import Flags, load_config
    from agent.daemon import Agent
    from tests.standin import HackatimeStandin, User

    # An installed app starts from bytecode (pip compiles it on install); a source tree run with
    # PYTHONDONTWRITEBYTECODE=1 would compile every module of ours in every cold child instead,
    # ~70 ms of CPU no user pays. Python reads existing bytecode even under that variable.
    for package in ("agent", "app"):
        compileall.compile_dir(ROOT / package, quiet=1)

    with tempfile.TemporaryDirectory(prefix="bench-tray-") as tmp:
        work = Path(tmp)
        env, helpers, display = start_display(work)
        env["HACKATIME_DESKTOP_DATA_DIR"] = str(work / "data")
        env["WAKATIME_HOME"] = str(work)  # never the developer's ~/.wakatime.cfg
        env["PYTHONPATH"] = str(ROOT)  # the window process: python -m app.main
        try:
            with HackatimeStandin(keys={API_KEY: User(id=1, username="orpheus", day_goal=4 * 3600)}) as standin:
                now = time.time()
                history: list[dict[str, Any]] = []
                for day in range(1, 7):  # a week of Hackatime history before the agent starts
                    history += coding(f"project-{day % 3}", 45, end=now - day * 86400, language="Rust")
                standin.ingest_direct(json.dumps(history).encode(), API_KEY)
                config = load_config(
                    Flags(data_dir=work / "data", port=0, api_url=standin.api_url, api_key=API_KEY),
                    env={"WAKATIME_HOME": str(work)},
                )
                agent = Agent(config, synchronous="NORMAL", pacing=False, watch=False).start()
                try:
                    post(agent.intake_url, coding("hackatime-desktop", 90, end=now - 60))
                    print(f"display: {display}; the app's bytecode compiled first, as an install does")
                    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; wall times: medians of "
                          f"{args.runs} runs (shared machine), each beside a baseline from this run")  # fmt: skip
                    data = ["--data-dir", str(work / "data")]
                    report(env, data, agent.intake_url, args)
                finally:
                    agent.stop()
        finally:
            for proc in helpers:
                proc.terminate()
                proc.wait(10)
    return 0


def process_times(env: dict[str, str], code: str, runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU time of ``python -c CODE`` from spawn to exit, in ms: a cold import."""
    import resource

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (usage.ru_utime + usage.ru_stime) * 1000

    walls, cpus = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), children_cpu()
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append(children_cpu() - c0)
    return walls, cpus


def report(env: dict[str, str], data: list[str], intake_url: str, args: argparse.Namespace) -> None:
    import statistics

    med = statistics.median
    base = start_times(env, [sys.executable, __file__, "--child", "baseline-start"], args.runs)
    app_cmd = [sys.executable, "-m", "app.main", *data, "--no-agent", "--quit-after-start"]
    ours = start_times(env, app_cmd, args.runs)
    b, o = med(base), med(ours)
    print(f"\nstart to tray icon (process spawn → icon shown; median of {args.runs})")
    print(f"  bare QApplication + QSystemTrayIcon   {b * 1000:7.0f} ms")
    print(f"  hackatime-desktop                     {o * 1000:7.0f} ms   ×{o / b:.2f} of baseline, "
          f"budget {BUDGET_START_S * 1000:.0f} ms: {verdict(o, BUDGET_START_S)}")  # fmt: skip

    qt_walls, qt_cpus = process_times(env, "import PySide6.QtWidgets", args.runs)
    mpl_code = "import matplotlib; from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg"
    mpl_walls, mpl_cpus = process_times(env, mpl_code, args.runs)
    qt_ms, qt_cpu, mpl_ms, mpl_cpu = med(qt_walls), med(qt_cpus), med(mpl_walls), med(mpl_cpus)
    win = run_child(env, "--child", "window", *data, "--runs", str(args.runs))
    shown, charts = med(win["cold_shown_ms"]), med(win["cold_charts_ms"])
    alive_shown, alive_charts = med(win["alive_shown_ms"]), med(win["alive_charts_ms"])
    window_mb = max(win["window_mb"])
    print(f"\ndashboard from a click (the window process cold, then alive; medians of {args.runs})")
    print(f"  bare python -c 'import PySide6.QtWidgets'          {qt_ms:7.0f} ms")
    print(f"  click → shown with figures, cold                   {shown:7.0f} ms   ×{shown / qt_ms:.2f}, "
          f"budget ×{BUDGET_SHOWN_RATIO:.1f}: {verdict(shown / qt_ms, BUDGET_SHOWN_RATIO)}")  # fmt: skip
    print(f"  bare python -c 'import matplotlib' + QtAgg backend {mpl_ms:7.0f} ms")
    print(f"  click → charts drawn, cold                         {charts:7.0f} ms   ×{charts / mpl_ms:.2f}, "
          f"budget ×{BUDGET_CHARTS_RATIO:.1f}: {verdict(charts / mpl_ms, BUDGET_CHARTS_RATIO)}")  # fmt: skip
    shown_cpu, charts_cpu = med(win["cold_shown_cpu_ms"]), med(win["cold_charts_cpu_ms"])
    print(f"  the same in CPU time (less disturbed by other load): bare PySide6 {qt_cpu:.0f} ms, shown "
          f"{shown_cpu:.0f} ms ×{shown_cpu / qt_cpu:.2f}; bare matplotlib {mpl_cpu:.0f} ms, charts {charts_cpu:.0f} ms "
          f"×{charts_cpu / mpl_cpu:.2f}")  # fmt: skip
    print(f"  click → shown, window process alive                {alive_shown:7.0f} ms")
    print(f"  click → charts drawn, window process alive         {alive_charts:7.0f} ms   "
          f"budget {BUDGET_CHARTS_ALIVE_MS:.0f} ms: {verdict(alive_charts, BUDGET_CHARTS_ALIVE_MS)}")  # fmt: skip
    print(f"  window process RSS, dashboard open (max)           {window_mb:7.1f} MiB  "
          f"budget {BUDGET_WINDOW_MIB:.0f} MiB: {verdict(window_mb, BUDGET_WINDOW_MIB)}")  # fmt: skip
    gone = "gone" if win["gone"] else "STILL RUNNING"
    print(f"  closed → process exited (keep-alive {win['keep_alive_s']} s)          "
          f"{win['exit_after_close_s']:7.1f} s    {gone}")  # fmt: skip

    bare = run_child(env, "--child", "baseline-rss")["bare_mb"]
    rss = run_child(env, "--child", "tray-rss", *data, "--intake-url", intake_url,
                    "--hour-refreshes", str(args.hour_refreshes))  # fmt: skip
    print(f"\ntray RSS ({CYCLES} dashboard open/close cycles, then {rss['refreshes']} refreshes = an hour at one per "
          f"5 s with a minute of coding per minute, simulated in {rss['seconds']:.0f} s)")  # fmt: skip

    def row(label: str, mb: float) -> None:
        print(f"  {label:<44}{mb:7.1f} MiB  ×{mb / bare:.2f}   budget {BUDGET_TRAY_MIB:.0f} MiB: "
              f"{verdict(mb, BUDGET_TRAY_MIB)}")  # fmt: skip

    print(f"  {'bare QApplication + QSystemTrayIcon':<44}{bare:7.1f} MiB")
    row("tray idle, started", rss["idle_mb"])
    row(f"highest across the {CYCLES} cycles", max(rss["cycles_mb"]))
    row("highest over the hour", max(rss["hour_mb"]))
    row("after the hour", rss["hour_mb"][-1])
    print(f"  cycles: {', '.join(f'{m:.0f}' for m in rss['cycles_mb'])}")
    print(f"  hour:   {', '.join(f'{m:.0f}' for m in rss['hour_mb'])}")
    heavy = rss["tray_imports_matplotlib"] or win["tray_imports_matplotlib"]
    print(f"  matplotlib or numpy in the tray process: {'YES' if heavy else 'no'}")

    idle = run_child(env, "--child", "idle", *data, "--idle-seconds", str(args.idle_seconds))
    print(f"\nCPU while idle ({idle['seconds']:.0f} s, long-poll parked, no window process)")
    print(f"  bare QApplication + QSystemTrayIcon   {idle['baseline_cpu_percent']:7.3f} %")
    print(f"  hackatime-desktop                     {idle['app_cpu_percent']:7.3f} %")


if __name__ == "__main__":
    sys.exit(main())
