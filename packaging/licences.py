"""The licence texts of everything a bundle ships, gathered at build time (the spec calls this).

Python packages: every distribution that owns a module the bundle collected, with the licence
files from its metadata; where a wheel ships none (PySide6 and shiboken6 carry only a licence
expression), the text for that expression from ``resources/licences/``. Libraries copied from
the build machine (libstdc++, libX11, …): the Debian copyright file of the package that owns
each, found with ``dpkg -S``. Python itself: its ``LICENSE.txt``. ``INDEX.txt`` lists them all.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

LICENCE_FILE = re.compile(r"(^|/)(LICEN[CS]E|COPYING|NOTICE|AUTHORS)[^/]*$", re.IGNORECASE)
# Licence texts a wheel leaves out, by the SPDX identifier in its licence expression.
SHIPPED_TEXTS = {"LGPL-3.0": ("LGPL-3.0.txt", "GPL-3.0.txt"), "GPL-3.0": ("GPL-3.0.txt",)}


def distributions_of(modules: Iterable[str]) -> set[str]:
    """The distributions that own these (dotted) module names."""
    owners = importlib.metadata.packages_distributions()
    found: set[str] = set()
    for module in modules:
        found.update(owners.get(module.split(".", 1)[0], ()))
    return found


def _write_distribution(name: str, target: Path, texts_dir: Path) -> str:
    dist = importlib.metadata.distribution(name)
    expression = dist.metadata.get("License-Expression") or dist.metadata.get("License") or ""
    where = target / dist.metadata["Name"]
    copied = 0
    for file in dist.files or ():
        if LICENCE_FILE.search(str(file)) and not str(file).endswith((".py", ".pyc")):
            source = Path(str(file.locate()))
            if source.is_file():
                destination = where / str(file).replace("/", "__")
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, destination)
                copied += 1
    for spdx, texts in SHIPPED_TEXTS.items():
        if copied == 0 and spdx in expression:
            for text in texts:
                where.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(texts_dir / text, where / text)
                copied += 1
            break
    if copied == 0:
        raise SystemExit(f"licences: {name} ships no licence text and none is known for {expression!r}")
    summary = expression.splitlines()[0][:80] if expression else "see the files"
    return f"{dist.metadata['Name']} {dist.version}: {summary}"


def _debian_package(path: str) -> str | None:
    try:
        done = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    if done.returncode != 0:
        # /lib is a symlink to /usr/lib on current Debian; dpkg knows one of the two spellings.
        other = path.removeprefix("/usr") if path.startswith("/usr/") else "/usr" + path
        done = subprocess.run(["dpkg", "-S", other], capture_output=True, text=True, check=False)
    return done.stdout.split(":", 1)[0].strip() or None if done.returncode == 0 else None


def _write_system_libraries(binaries: Iterable[tuple[str, str]], target: Path) -> list[str]:
    lines = []
    prefix = sysconfig.get_config_var("LIBDIR") or ""
    for dest, source in sorted(set(binaries)):  # both executables' lists name the shared ones
        if "site-packages" in source or not source.startswith(("/usr/", "/lib")):
            continue
        package = _debian_package(source)
        if package is None:
            if prefix and source.startswith(prefix) and "python" in Path(source).name:
                continue  # libpython: Python's own licence is written below
            lines.append(f"{dest}: from {source}; its owner is unknown to dpkg, licence not collected")
            continue
        copyright_file = Path("/usr/share/doc") / package / "copyright"
        if not copyright_file.is_file():  # a system set to install no docs (path-exclude in dpkg.cfg.d)
            lines.append(f"{dest}: Debian package {package}; {copyright_file} is missing, licence not collected")
            continue
        (target / "system").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(copyright_file, target / "system" / f"{package}.copyright")
        lines.append(f"{dest}: Debian package {package} (system/{package}.copyright)")
    return lines


def collect(modules: Iterable[str], binaries: Iterable[tuple[str, str]], target: Path, texts_dir: Path) -> list[str]:
    """Write the licences into ``target`` and return the index lines."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    index = [f"Python {sys.version.split()[0]}: PSF-2.0 (python/LICENSE.txt)"]
    python_licence = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    (target / "python").mkdir()
    shutil.copyfile(python_licence, target / "python" / "LICENSE.txt")
    own = importlib.metadata.distribution("hackatime-desktop").metadata["Name"]
    for name in sorted(distributions_of(modules) - {own}, key=str.lower):
        index.append(_write_distribution(name, target, texts_dir))
    index += _write_system_libraries(binaries, target)
    (target / "INDEX.txt").write_text("\n".join(index) + "\n", encoding="utf-8")
    return index
