"""Importing a generated WakaTime heartbeats export (gzipped), beside ``json.load`` of the same file.

Each figure comes from its own child process, so each peak RSS is that run's alone:

* ``json.load``: decompress and load the whole file, count the heartbeats (the baseline);
* import: ``ImportJob`` into a fresh store (synchronous=FULL, as the agent runs it), upload
  queued, checkpoint per batch: what ``hackatime-agent import FILE`` does. It runs as two
  processes (the reader parses every batch, the importing process stores them, and each makes
  the rows of the batches it has time for): its CPU per heartbeat is given for each and in sum,
  its peak RSS is the two processes' peaks added, read when the import ends; the rollup fold
  that follows (local stats) is timed after it, apart;
* the same import of a 200,000-heartbeat file, for "memory stays flat".

    .venv/bin/python bench/bench_import.py [--heartbeats 1000000] [--small 200000] [--runs 3] [--keep DIR]

Budget (issue 15): import heartbeats/s ≥ 0.7 × json.load's, peak RSS ≤ 150 MB, and within 10 MB
of the 200,000-heartbeat import. Medians of --runs runs. The machine may be shared: the ratio is
the figure to compare (wall clock: the import's two processes work at once on two cores), both
sides measured in the same run, alternately; the load average is printed beside each run.
Without --keep, the files are made in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1e6  # the budget's megabytes are 10^6 bytes
RSS_BUDGET = 150 * MB
FLAT_BUDGET = 10 * MB
RATIO_BUDGET = 0.7


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _children() -> tuple[float, int]:
    """CPU seconds and the largest peak RSS of this process's finished children (the reader)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime, used.ru_maxrss * 1024


def child(mode: str, path: Path, work: Path) -> dict[str, Any]:
    """One measurement (in a child process of its own); its figures."""
    started = time.perf_counter()
    cpu = time.process_time()
    if mode == "json":
        import gzip

        with gzip.open(path, "rb") as fh:
            data = json.load(fh)
        heartbeats = sum(len(day["heartbeats"]) for day in data["days"])
        seconds = time.perf_counter() - started
        return {"heartbeats": heartbeats, "seconds": seconds, "cpu": time.process_time() - cpu, "peak_rss": _peak()}

    import ijson

    from agent.imports.job import ImportJob
    from agent.stats.service import StatsService
    from agent.store.store import Store

    with Store(work / "store.db") as store:
        store.set_destination("hackatime", "https://hackatime.hackclub.com/api/hackatime/v1")
        progress = ImportJob(store, path).run()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        reader_cpu, reader_peak = _children()
        peak = _peak() + reader_peak
        assert progress.state == "done" and progress.imported == progress.read, progress
        folding = time.perf_counter()
        StatsService(store, client=None).prepare()
        return {
            "heartbeats": progress.read,
            "seconds": seconds,
            "cpu": cpu + reader_cpu,
            "writer_cpu": cpu,
            "reader_cpu": reader_cpu,
            "peak_rss": peak,
            "fold_seconds": time.perf_counter() - folding,
            "fold_peak_rss": _peak(),
            "backend": ijson.backend,
        }


def measure(mode: str, path: Path, scratch: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=scratch) as work:  # its store: a kept folder keeps only the files
        done = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(path), work],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    result["rate"] = result["heartbeats"] / result["seconds"]
    for key in ("cpu", "writer_cpu", "reader_cpu"):  # CPU per heartbeat: steadier on a shared machine
        if key in result:
            result[f"{key}_us"] = 1e6 * result[key] / result["heartbeats"]
    return result


def generate(path: Path, n: int) -> Path:
    from tests.exports import exported, write_export

    if not path.exists():
        started = time.perf_counter()
        write_export(path, "wakatime", exported("wakatime", n), gz=True)
        print(f"generated {path.name}: {n:,} heartbeats, {path.stat().st_size / MB:.1f} MB gzipped "
              f"in {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heartbeats", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the generated files in this folder")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "WORKDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, file, work = args.child
        print(json.dumps(child(mode, Path(file), Path(work))))
        return 0

    scratch = args.keep or Path(tempfile.mkdtemp(prefix="bench-import-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        return report(args, scratch)
    finally:
        if args.keep is None:
            shutil.rmtree(scratch)


def report(args: argparse.Namespace, scratch: Path) -> int:
    """Generate the files (unless kept), measure ``args.runs`` times, print the figures and verdicts."""
    big = generate(scratch / f"wakatime-{args.heartbeats}.json.gz", args.heartbeats)
    small = generate(scratch / f"wakatime-{args.small}.json.gz", args.small)

    runs: dict[str, list[dict[str, Any]]] = {"json": [], "import": [], "small": []}
    for n in range(args.runs):  # alternate, so load on a shared machine falls on both sides alike
        runs["json"].append(measure("json", big, scratch))
        runs["import"].append(measure("import", big, scratch))
        runs["small"].append(measure("import", small, scratch))
        last = {k: v[-1] for k, v in runs.items()}
        print(
            f"run {n + 1}: json.load {last['json']['rate']:,.0f}/s {last['json']['cpu_us']:.1f} µs CPU "
            f"{last['json']['peak_rss'] / MB:,.0f} MB · import {last['import']['rate']:,.0f}/s "
            f"{last['import']['cpu_us']:.1f} µs CPU {last['import']['peak_rss'] / MB:.1f} MB · "
            f"import {args.small:,} {last['small']['peak_rss'] / MB:.1f} MB · "
            f"ratio {last['import']['rate'] / last['json']['rate']:.2f} · load {os.getloadavg()[0]:.1f}",
            flush=True,
        )

    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[mode])

    ratio = statistics.median(i["rate"] / j["rate"] for i, j in zip(runs["import"], runs["json"], strict=True))
    cpu_ratio = statistics.median(j["cpu_us"] / i["cpu_us"] for i, j in zip(runs["import"], runs["json"], strict=True))
    rss, small_rss = med("import", "peak_rss"), med("small", "peak_rss")
    print()
    print(f"ijson backend: {runs['import'][0]['backend']} · {args.runs} runs, medians · the machine may be shared")
    print(f"json.load  {args.heartbeats:>9,} heartbeats: {med('json', 'rate'):>9,.0f}/s  "
          f"{med('json', 'seconds'):6.1f} s  {med('json', 'cpu_us'):5.1f} µs CPU each  "
          f"peak RSS {med('json', 'peak_rss') / MB:8.1f} MB")  # fmt: skip
    print(f"import     {args.heartbeats:>9,} heartbeats: {med('import', 'rate'):>9,.0f}/s  "
          f"{med('import', 'seconds'):6.1f} s  {med('import', 'cpu_us'):5.1f} µs CPU each  "
          f"peak RSS {rss / MB:8.1f} MB")  # fmt: skip
    print(f"  of which the reader {med('import', 'reader_cpu_us'):5.1f} µs CPU each, the writer "
          f"{med('import', 'writer_cpu_us'):5.1f} µs")  # fmt: skip
    print(f"import     {args.small:>9,} heartbeats: {med('small', 'rate'):>9,.0f}/s  "
          f"{med('small', 'seconds'):6.1f} s  {med('small', 'cpu_us'):5.1f} µs CPU each  "
          f"peak RSS {small_rss / MB:8.1f} MB")  # fmt: skip
    print(f"CPU per heartbeat, json.load/import: {cpu_ratio:.2f} (the same ratio measured in CPU time)")
    print(f"then the rollup fold (local stats): {med('import', 'fold_seconds'):.1f} s, "
          f"peak RSS {med('import', 'fold_peak_rss') / MB:.1f} MB")  # fmt: skip
    print()
    verdicts = [
        (f"import/json.load rate {ratio:.2f} (≥ {RATIO_BUDGET})", ratio >= RATIO_BUDGET),
        (f"peak RSS {rss / MB:.1f} MB (≤ {RSS_BUDGET / MB:.0f})", rss <= RSS_BUDGET),
        (
            f"flat: {(rss - small_rss) / MB:+.1f} MB over the {args.small:,} import (≤ 10)",
            rss - small_rss <= FLAT_BUDGET,
        ),
    ]
    for text, ok in verdicts:
        print(f"{'ok  ' if ok else 'MISS'} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
