"""The bundle's size: the shipped (trimmed) build beside an untrimmed build of the same spec.

Both are built in this run, from this checkout, into a temporary folder, one after the other
(``packaging/hackatime-desktop.spec``, the second with ``-- --untrimmed``: every Qt part the
hooks collect, no strip). Prints each build's wall time, size on disk (regular files; the
symlinks PyInstaller makes count as links) and file count, the ratio, and where the trimmed
build's bytes go. Budget (issue #16): trimmed ≤ 0.8 × untrimmed; exits 1 when it is missed.

    .venv/bin/python bench/bench_bundle.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "hackatime-desktop.spec"
BUDGET = 0.8


def build(work: Path, name: str, *spec_args: str) -> tuple[Path, float]:
    pyinstaller = Path(sys.executable).with_name("pyinstaller")
    started = time.monotonic()
    subprocess.run(
        [str(pyinstaller), "--noconfirm", "--log-level", "WARN", "--distpath", str(work / name / "dist"),
         "--workpath", str(work / name / "build"), str(SPEC), *(["--", *spec_args] if spec_args else [])],
        check=True, cwd=ROOT,
    )  # fmt: skip
    return work / name / "dist" / "hackatime-desktop", time.monotonic() - started


def files(folder: Path) -> list[tuple[Path, int]]:
    return [(p, p.stat().st_size) for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]


def where(rel: Path) -> str:
    """A short label for a file: its top folder inside the bundle (or its name), deeper under PySide6/Qt."""
    parts = rel.parts[1:] if rel.parts[0] == "_internal" else rel.parts
    depth = 3 if parts[:2] == ("PySide6", "Qt") else 1
    return "/".join(parts[:depth])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build here and keep both bundles")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as tmp:
        work = args.keep or Path(tmp)
        trimmed, trimmed_s = build(work, "trimmed")
        untrimmed, untrimmed_s = build(work, "untrimmed", "--untrimmed")
        t_files, u_files = files(trimmed), files(untrimmed)
        t_size, u_size = sum(s for _, s in t_files), sum(s for _, s in u_files)
        print(f"{'build':<12}{'wall time':>11}{'size':>12}{'files':>8}")
        print(f"{'untrimmed':<12}{untrimmed_s:>9.1f} s{u_size / 1e6:>9.1f} MB{len(u_files):>8}")
        print(f"{'trimmed':<12}{trimmed_s:>9.1f} s{t_size / 1e6:>9.1f} MB{len(t_files):>8}")
        ratio = t_size / u_size
        print(f"ratio trimmed / untrimmed: {ratio:.3f} (budget ≤ {BUDGET}: {'ok' if ratio <= BUDGET else 'MISSED'})")
        by_place: Counter[str] = Counter()
        for path, size in t_files:
            by_place[where(path.relative_to(trimmed))] += size
        print("largest parts of the trimmed bundle:")
        for place, size in by_place.most_common(12):
            print(f"  {size / 1e6:7.1f} MB  {place}")
        print(f"(machine: {os.cpu_count()} cores, shared; build times are wall clock and noisy)")
    return 0 if ratio <= BUDGET else 1  # make bench stops at a missed budget


if __name__ == "__main__":
    sys.exit(main())
