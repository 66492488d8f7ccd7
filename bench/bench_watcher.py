"""Benchmark: the file watcher on a generated tree of 20,000 folders / 100,000 files.

Prints, for the watcher and for a baseline — a bare watchdog inotify observer with
the same event filter on the same tree, run by the same benchmark — start-up time,
RSS, idle CPU, CPU at 50 saves/s, save → heartbeat latency (committed to a real
store for the watcher, delivered to the handler for the baseline), and what a
5,000-file burst produces; then the ratios. Each side runs in its own child
process so that RSS and CPU are its own.

Budgets (design.md): RSS ≤ 45 MB, idle CPU ≈ 0, p99 latency < 1 s. The figures are
printed, never asserted: wall times belong here, not in tests. Every memory figure is
in MiB (2**20 bytes), and the RSS budget is held to the stricter reading of "45 MB":
45,000,000 bytes = 42.9 MiB.

    python bench/bench_watcher.py            # full run (about 3 minutes)
    python bench/bench_watcher.py --quick    # smaller tree, short idle window
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROJECTS = 20


# ---- the tree ------------------------------------------------------------------------------------


def make_tree(base: Path, dirs: int, files: int) -> dict[str, int]:
    """PROJECTS Git-looking projects of equal size; folders two levels deep; small text files."""
    per_project_dirs = max(3, dirs // PROJECTS)
    per_project_files = files // PROJECTS
    mids = max(1, round(per_project_dirs**0.5))
    leaves_per_mid = max(1, -(-(per_project_dirs - 1 - mids) // mids))  # rounded up: at least `dirs` in all
    made_dirs = made_files = 0
    for p in range(PROJECTS):
        proj = base / f"proj{p:02}"
        (proj / ".git").mkdir(parents=True)
        (proj / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
        folders: list[Path] = [proj]
        for m in range(mids):
            mid = proj / f"pkg{m:03}"
            mid.mkdir()
            folders.append(mid)
            for leaf in range(leaves_per_mid):
                (mid / f"mod{leaf:03}").mkdir()
                folders.append(mid / f"mod{leaf:03}")
        made_dirs += len(folders)
        for i in range(per_project_files):
            folder = folders[i % len(folders)]
            (folder / f"f{i:05}.py").write_text(f"# generated\nVALUE_{i} = {i}\n\ndef f():\n    return VALUE_{i}\n")
        made_files += per_project_files
    return {"dirs": made_dirs + 1, "files": made_files}


def project_files(tree: Path, project: int) -> list[Path]:
    return sorted((tree / f"proj{project:02}").rglob("f*.py"))


# ---- measuring ---------------------------------------------------------------------------------------


MIB = 2**20
RSS_BUDGET_MIB = 45e6 / MIB  # design.md's "45 MB", read as decimal megabytes: the stricter reading


def rss_mib() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / MIB


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def cpu_during(seconds: float, action: Any = None) -> float:
    """Percent of one core used by this process while ``action`` runs (or while idle)."""
    c0, t0 = time.process_time(), time.monotonic()
    if action is None:
        time.sleep(seconds)
    else:
        action()
    return 100.0 * (time.process_time() - c0) / (time.monotonic() - t0)


def saves_at_rate(paths: list[Path], rate: float, written: dict[str, float]) -> None:
    interval = 1.0 / rate
    start = time.monotonic()
    for i, path in enumerate(paths):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        path.write_text(f"# edited {i}\nVALUE = {i}\n")
        written[str(path)] = time.time()


# ---- the two sides ------------------------------------------------------------------------------------


class CommitSink:
    """The watcher's sink over the real store: normalise, commit, note when it committed."""

    def __init__(self, store_path: Path) -> None:
        from agent.heartbeat import normalize
        from agent.store.store import Store

        self._normalize = normalize
        self.store = Store(store_path)
        self.committed: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def submit(self, heartbeats: list[dict[str, Any]], source: str) -> None:
        self.store.add([self._normalize(hb, machine="bench") for hb in heartbeats], source)
        now = time.time()
        with self.lock:
            self.committed.extend((now, hb) for hb in heartbeats)

    def editor_heartbeat_since(self, entity: str, since: float) -> bool:
        return self.store.editor_heartbeat_since(entity, since)


def run_side(kind: str, tree: Path, idle: float, saves: int, rate: float) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind}
    written: dict[str, float] = {}
    received: dict[str, float] = {}
    lock = threading.Lock()
    scratch = Path(tempfile.mkdtemp(prefix="bench-store-"))
    rng = random.Random(7)
    save_paths = [rng.choice(project_files(tree, 1 + i % (PROJECTS - 1))) for i in range(saves)]
    save_paths = list(dict.fromkeys(save_paths))  # each file once: every save is a leading edge
    burst_paths = project_files(tree, 0)

    if kind == "baseline":
        from watchdog.events import (
            DirDeletedEvent,
            DirMovedEvent,
            FileClosedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileSystemEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers.inotify import InotifyObserver

        events: list[str] = []

        class Handler(FileSystemEventHandler):
            def dispatch(self, event: FileSystemEvent) -> None:
                now = time.time()
                path = os.fsdecode(event.dest_path or event.src_path)
                with lock:
                    events.append(path)
                    received.setdefault(path, now)

        out["rss_before_mib"] = rss_mib()
        t0 = time.perf_counter()
        observer = InotifyObserver()
        observer.schedule(
            Handler(),
            str(tree),
            recursive=True,
            event_filter=[
                FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileClosedEvent, FileDeletedEvent,
                DirDeletedEvent, DirMovedEvent,
            ],
        )  # fmt: skip
        observer.start()
        out["startup_s"] = time.perf_counter() - t0
        stop = observer.stop

        def produced_for(paths: set[str]) -> int:
            with lock:
                return sum(1 for p in events if p in paths)

    else:
        from agent.capture.watcher import Watcher
        from agent.config import CaptureSettings

        out["rss_before_mib"] = rss_mib()
        t0 = time.perf_counter()
        sink = CommitSink(scratch / "store.sqlite3")
        watcher = Watcher(sink, CaptureSettings(watch_dirs=(tree,)), secret=b"b" * 32, ignore_paths=[scratch])
        watcher.start()
        out["startup_s"] = time.perf_counter() - t0
        out["watches"] = watcher.stats()["watches"]
        out["uncovered"] = watcher.uncovered()

        def stop() -> None:
            watcher.stop()
            sink.store.close()

        def produced_for(paths: set[str]) -> int:
            with sink.lock:
                return sum(1 for _, hb in sink.committed if hb["entity"] in paths)

    out["rss_after_start_mib"] = rss_mib()
    out["idle_cpu_pct"] = cpu_during(idle)
    out["rss_after_idle_mib"] = rss_mib()

    out["save_cpu_pct"] = cpu_during(0, lambda: saves_at_rate(save_paths, rate, written))
    deadline = time.monotonic() + 5
    wanted = set(written)
    while time.monotonic() < deadline:
        if kind == "watcher":
            with sink.lock:
                for when, hb in sink.committed:
                    received.setdefault(hb["entity"], when)
        if wanted <= received.keys():
            break
        time.sleep(0.05)
    latencies = [received[p] - written[p] for p in wanted if p in received]
    out["saves"] = len(wanted)
    out["saves_recorded"] = len(latencies)
    out["latency_p50_ms"] = 1000 * percentile(latencies, 50)
    out["latency_p99_ms"] = 1000 * percentile(latencies, 99)

    # A checkout of 5,000 files in one project: count what comes out once things are quiet.
    burst = {str(p) for p in burst_paths}
    c0, t0 = time.process_time(), time.monotonic()
    for i, path in enumerate(burst_paths):
        path.write_text(f"# checked out\nVALUE = {i}\n")
    out["burst_files"] = len(burst_paths)
    last_count, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < 3.0 and time.monotonic() - t0 < 60:
        time.sleep(0.1)
        n = produced_for(burst)
        if kind == "watcher":
            stats = watcher.stats()
            n += stats["pending"] + stats["mass_changes_active"]
        if n != last_count:
            last_count, quiet_since = n, time.monotonic()
    out["burst_output"] = produced_for(burst)
    out["burst_cpu_s"] = time.process_time() - c0
    if kind == "watcher":
        out["watcher_stats"] = watcher.stats()
    stop()
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB  # ru_maxrss: KiB on Linux
    shutil.rmtree(scratch, ignore_errors=True)
    return out


# ---- language lookups ------------------------------------------------------------------------------


def bench_language() -> dict[str, float]:
    from pygments.lexers import get_lexer_for_filename
    from pygments.util import ClassNotFound

    from agent.capture.language import language_for

    # C-family names (.c, .h) are left out: their rule lists the folder, which is a different cost.
    names = [f"file{i}{ext}" for i, ext in enumerate([".py", ".ts", ".tsx", ".go", ".rs", ".md", ".json", ".m",
                                                       ".pl", ".java", ".rb", ".yaml", ".toml", ".css", ".html",
                                                       ".sh", ".kt", ".swift", ".vue", ".sql"] * 10)]  # fmt: skip

    def slow() -> None:
        for n in names:
            try:
                get_lexer_for_filename(n)
            except ClassNotFound:
                pass

    def fast() -> None:
        for n in names:
            language_for(n)

    slow()  # warm both: module imports are a one-off cost
    fast()
    t0 = time.perf_counter()
    slow()
    t1 = time.perf_counter()
    for _ in range(10):
        fast()
    t2 = time.perf_counter()
    return {"pygments_us": 1e6 * (t1 - t0) / len(names), "index_us": 1e6 * (t2 - t1) / (10 * len(names))}


# ---- main ----------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 folders / 10,000 files, 5 s idle window")
    parser.add_argument("--dirs", type=int, default=20_000)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU measurement")
    parser.add_argument("--saves", type=int, default=500, help="saves at --rate per second")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--child", choices=("baseline", "watcher"), help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.dirs, args.files, args.idle = 2_000, 10_000, 5.0

    if args.child:
        print(json.dumps(run_side(args.child, args.tree, args.idle, args.saves, args.rate)))
        return 0

    base = Path(tempfile.mkdtemp(prefix="bench-tree-"))
    try:
        t0 = time.perf_counter()
        shape = make_tree(base / "tree", args.dirs, args.files)
        print(f"tree: {shape['dirs']:,} folders, {shape['files']:,} files ({time.perf_counter() - t0:.1f} s to make)")
        lang = bench_language()
        print(
            f"language lookup: pygments get_lexer_for_filename {lang['pygments_us']:.0f} µs, "
            f"index {lang['index_us']:.1f} µs ({lang['pygments_us'] / lang['index_us']:.0f}× faster)"
        )
        results: dict[str, dict[str, Any]] = {}
        for kind in ("baseline", "watcher"):
            cmd = [sys.executable, __file__, "--child", kind, "--tree", str(base / "tree"),
                   "--idle", str(args.idle), "--saves", str(args.saves), "--rate", str(args.rate)]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            results[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
        report(results)
        whole = whole_agent(base / "tree", args.idle)
        print(
            f"whole agent (`hackatime-agent run --watch`, intake, delivery and stats threads too): "
            f"start-up {whole['startup_s']:.2f} s, RSS watching {whole['rss_mib']:.1f} MiB "
            f"(budget ≤ 45 MB = {RSS_BUDGET_MIB:.1f} MiB: {'ok' if whole['rss_mib'] <= RSS_BUDGET_MIB else 'OVER'}), "
            f"idle CPU {whole['idle_cpu_pct']:.2f} % over {args.idle:.0f} s"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


def whole_agent(tree: Path, idle: float) -> dict[str, float]:
    """The design budget is for the agent process, not the watcher alone: run the real daemon,
    configured as a Hackatime user's machine is — the key in ~/.wakatime.cfg, so the OS keyring,
    which outranks that file, is asked first (by a child process: the agent keeps none of it).
    The null keyring backend keeps the bench away from the developer's own keyring."""
    home = Path(tempfile.mkdtemp(prefix="bench-home-"))
    (home / ".wakatime.cfg").write_text("[settings]\napi_key = 0b6a3e1e-6c1f-4d1e-9a5b-2f3c4d5e6f70\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAKATIME", "HACKATIME"))}
    env.update(HOME=str(home), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    started = time.perf_counter()
    argv = [sys.executable, "-m", "agent", "--data-dir", str(home / "data"), "run", "--port", "0",
            "--watch", str(tree), "--api-url", "http://127.0.0.1:9/api/hackatime/v1"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # printed once listening, after the watches are set up
        startup = time.perf_counter() - started
        time.sleep(5)  # let start-up work (the first stats pass) finish before measuring
        stat = Path(f"/proc/{proc.pid}/stat")
        ticks = os.sysconf("SC_CLK_TCK")
        cpu0 = sum(int(x) for x in stat.read_text().split()[13:15])
        time.sleep(idle)
        cpu1 = sum(int(x) for x in stat.read_text().split()[13:15])
        status = Path(f"/proc/{proc.pid}/status").read_text()
        # VmRSS is in KiB whatever /proc writes as its unit ("kB").
        rss = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) * 1024 / MIB
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(home, ignore_errors=True)
    return {"startup_s": startup, "rss_mib": rss, "idle_cpu_pct": (cpu1 - cpu0) / ticks / idle * 100}


def report(results: dict[str, dict[str, Any]]) -> None:
    b, w = results["baseline"], results["watcher"]
    rows = [
        ("start-up (s)", "startup_s", "{:.2f}"),
        ("RSS before start (MiB)", "rss_before_mib", "{:.1f}"),
        ("RSS watching (MiB)", "rss_after_idle_mib", "{:.1f}"),
        ("peak RSS (MiB)", "peak_rss_mib", "{:.1f}"),
        ("idle CPU (% of a core)", "idle_cpu_pct", "{:.2f}"),
        ("CPU at saves/s (% of a core)", "save_cpu_pct", "{:.1f}"),
        ("latency p50 (ms)", "latency_p50_ms", "{:.0f}"),
        ("latency p99 (ms)", "latency_p99_ms", "{:.0f}"),
        (f"{w['burst_files']:,}-file burst: output", "burst_output", "{:,}"),
        (f"{w['burst_files']:,}-file burst: CPU (s)", "burst_cpu_s", "{:.2f}"),
    ]
    print(f"\n{'':32}{'baseline':>12}{'watcher':>12}{'ratio':>9}")
    for label, key, fmt in rows:
        bv, wv = b[key], w[key]
        # A ratio of two near-zero figures (idle CPU) says nothing.
        ratio = f"{wv / bv:.2f}" if isinstance(bv, (int, float)) and abs(bv) > 0.05 else "–"
        print(f"{label:32}{fmt.format(bv):>12}{fmt.format(wv):>12}{ratio:>9}")
    print(
        f"\nbaseline = bare watchdog inotify observer, same filter, same tree; its latency is event delivery, "
        f"its burst output is events. watcher latency is save → heartbeat committed to the store "
        f"(includes the {0.3 * 1000:.0f} ms leading-edge delay); {w['saves_recorded']}/{w['saves']} saves recorded, "
        f"{w['watches']:,} folders watched (pruned: .git). Memory in MiB (2^20 bytes)."
    )
    print(
        f"budgets: RSS ≤ 45 MB = {RSS_BUDGET_MIB:.1f} MiB → {w['rss_after_idle_mib']:.1f} MiB; "
        f"idle ≈ 0 → {w['idle_cpu_pct']:.2f} %; "
        f"p99 < 1 s → {w['latency_p99_ms']:.0f} ms"
    )
    if w.get("uncovered"):
        print(f"uncovered: {w['uncovered']}")
    stats = w.get("watcher_stats", {})
    print(f"watcher counters: {json.dumps(stats, sort_keys=True)}")


if __name__ == "__main__":
    raise SystemExit(main())
