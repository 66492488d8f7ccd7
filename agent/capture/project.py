"""Project, branch and project folder of a file, by wakatime-cli's rules.

Order (wakatime-clients.md §1.5): a ``.wakatime-project`` file searched upward
(line 1 the project, ``{project}`` standing for its folder's name, empty for
the folder's name; line 2 the branch), then ``[projectmap]`` (first regex that
matches the path wins, ``{0}``… are its groups), then version control for
whatever is still missing: Git — plain repositories, worktrees and submodules,
read from ``.git`` and ``HEAD`` directly, never by running git — then
Mercurial.

Two choices differ from wakatime-cli, on purpose:

* the nearest ``.git`` entry decides (wakatime-cli looks for ``.git/config``
  first, so a worktree nested inside its main checkout reports the main
  checkout's branch);
* the project folder of a worktree or a submodule is its own working tree
  (wakatime-cli uses the main repository or ``.git/modules``), so that
  ``project_root_count`` really is the depth of the folder that holds the
  file. Project and branch names are the same as wakatime-cli's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "PROJECT_FILE",
    "ProjectInfo",
    "ProjectMapRule",
    "compile_projectmap",
    "detect_project",
    "find_upward",
    "git_project",
    "project_root_count",
    "read_branch",
]

PROJECT_FILE = ".wakatime-project"
_MAX_LEVELS = 500  # wakatime-cli's bound on upward searches
_READ_LIMIT = 4096  # HEAD, .git files and .wakatime-project are a line or two


@dataclass(frozen=True)
class ProjectMapRule:
    pattern: re.Pattern[str]
    template: str


@dataclass(frozen=True)
class ProjectInfo:
    """What a heartbeat needs from project detection.

    ``detector`` is ``"file"``, ``"map"``, ``"git"``, ``"hg"`` or ``"none"`` (which one
    named the project); ``hide_project_names`` never renames a project that the user
    named in a ``.wakatime-project`` file, as in wakatime-cli.
    """

    project: str | None
    branch: str | None
    folder: str | None
    detector: str
    has_project_file: bool
    root_count: int | None


@dataclass(frozen=True)
class _Vcs:
    project: str
    branch: str | None
    folder: str
    kind: str


def compile_projectmap(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[ProjectMapRule, ...], list[str]]:
    """Compile ``[projectmap]`` entries; bad regexes are skipped and reported, as wakatime-cli does.

    wakatime-cli makes every projectmap regex case-insensitive.
    """
    rules: list[ProjectMapRule] = []
    problems: list[str] = []
    for regex, template in pairs:
        try:
            rules.append(ProjectMapRule(re.compile(regex, re.IGNORECASE), template))
        except re.error as exc:
            problems.append(f"[projectmap] pattern {regex!r} is not a valid regex ({exc}); it is ignored")
    return tuple(rules), problems


def project_root_count(folder: str) -> int:
    """wakatime-cli's count: the number of ``/`` in the folder path with a trailing slash."""
    text = folder.replace("\\", "/")
    if not text.endswith("/"):
        text += "/"
    return text.count("/")


def _read_head(path: str, lines: int) -> list[str] | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(_READ_LIMIT)
    except OSError:
        return None
    return data.decode("utf-8", errors="replace").splitlines()[:lines]


def find_upward(start_dir: str, name: str) -> str | None:
    """``start_dir/name`` or the same name in the nearest parent that has it."""
    directory = start_dir
    for _ in range(_MAX_LEVELS):
        candidate = os.path.join(directory, name)
        if os.path.lexists(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent
    return None


def read_branch(head_file: str) -> str | None:
    """Branch named by a Git ``HEAD`` file: ``ref: refs/heads/a/b`` gives ``a/b``.

    A missing HEAD gives ``master`` and a detached HEAD gives None, as in wakatime-cli.
    """
    if not os.path.exists(head_file):
        return "master"
    lines = _read_head(head_file, 1)
    if not lines:
        return None
    first = lines[0].strip()
    if first.startswith("ref: "):
        parts = first.split("/", 2)
        if len(parts) == 3:
            return parts[2].strip() or None
    return None


def _gitdir_from_file(dot_git_file: str) -> str | None:
    lines = _read_head(dot_git_file, 1)
    if not lines or not lines[0].startswith("gitdir: "):
        return None
    target = lines[0][len("gitdir: ") :].strip()
    if not os.path.isabs(target):
        target = os.path.join(os.path.dirname(dot_git_file), target)
    target = os.path.normpath(target)
    return target if os.path.exists(os.path.join(target, "HEAD")) else None


def _commondir(gitdir: str) -> str | None:
    """The main repository's ``.git`` for a worktree's gitdir (``…/.git/worktrees/<name>``)."""
    if os.path.basename(os.path.dirname(gitdir)) != "worktrees":
        return None
    lines = _read_head(os.path.join(gitdir, "commondir"), 1)
    if not lines or not lines[0].strip():
        return None
    common = os.path.normpath(os.path.join(gitdir, lines[0].strip()))
    return common if os.path.basename(common) == ".git" else None


def git_project(start_dir: str, *, submodules: bool = True) -> _Vcs | None:
    """Project, branch and working tree of the Git checkout holding ``start_dir``."""
    dot_git = find_upward(start_dir, ".git")
    if dot_git is None:
        return None
    worktree = os.path.dirname(dot_git)
    if os.path.isdir(dot_git):
        return _Vcs(os.path.basename(worktree), read_branch(os.path.join(dot_git, "HEAD")), worktree, "git")
    gitdir = _gitdir_from_file(dot_git)
    if gitdir is None:
        return None
    branch = read_branch(os.path.join(gitdir, "HEAD"))
    # A submodule's gitdir lives under the parent's .git/modules/<name>; its project is <name>.
    if submodules and "modules" in gitdir.replace("\\", "/").split("/"):
        return _Vcs(os.path.basename(gitdir), branch, worktree, "git")
    common = _commondir(gitdir)
    if common is not None:
        # A linked worktree belongs to the main repository's project.
        return _Vcs(os.path.basename(os.path.dirname(common)), branch, worktree, "git")
    return _Vcs(os.path.basename(worktree), branch, worktree, "git")


def _hg_project(start_dir: str) -> _Vcs | None:
    dot_hg = find_upward(start_dir, ".hg")
    if dot_hg is None or not os.path.isdir(dot_hg):
        return None
    lines = _read_head(os.path.join(dot_hg, "branch"), 1)
    branch = lines[0].strip() if lines and lines[0].strip() else "default"
    folder = os.path.dirname(dot_hg)
    return _Vcs(os.path.basename(folder), branch, folder, "hg")


def _from_project_file(project_file: str) -> tuple[str, str | None]:
    folder = os.path.dirname(project_file)
    lines = _read_head(project_file, 2) or []
    name = lines[0].strip() if lines else ""
    # {project} stands for the folder's name; an empty first line means just that name.
    name = name.replace("{project}", os.path.basename(folder)) if name else os.path.basename(folder)
    branch = lines[1].strip() if len(lines) > 1 and lines[1].strip() else None
    return name, branch


def _from_map(entity: str, rules: Sequence[ProjectMapRule]) -> str | None:
    for rule in rules:
        match = rule.pattern.search(entity)
        if match is None:
            continue
        groups = tuple(g if g is not None else "" for g in match.groups())
        try:
            return rule.template.format(*groups)
        except (IndexError, KeyError, ValueError):
            # wakatime-cli logs a template it cannot format and tries the next rule.
            continue
    return None


def detect_project(
    entity: str,
    projectmap: Sequence[ProjectMapRule] = (),
    *,
    submodules: bool = True,
) -> ProjectInfo:
    """Detect project, branch and project folder for the file ``entity`` (an absolute path)."""
    real = os.path.realpath(entity)
    start = os.path.dirname(real)
    project: str | None = None
    branch: str | None = None
    folder: str | None = None
    detector = "none"

    project_file = find_upward(start, PROJECT_FILE)
    if project_file is not None and os.path.isfile(project_file):
        project, branch = _from_project_file(project_file)
        folder = os.path.dirname(project_file)
        detector = "file"
    else:
        project_file = None
        mapped = _from_map(entity, projectmap)
        if mapped:
            project, detector = mapped, "map"

    if not project or not branch or not folder:
        vcs = git_project(start, submodules=submodules) or _hg_project(start)
        if vcs is not None:
            if not project:
                project, detector = vcs.project, vcs.kind
            branch = branch or vcs.branch
            folder = folder or vcs.folder

    folder = folder or start
    # Like wakatime-cli, count only when the file really lies inside the folder, so the
    # server can split the entity into folder and relative path.
    inside = real.startswith(folder.rstrip(os.sep) + os.sep)
    return ProjectInfo(
        project=project or None,
        branch=branch or None,
        folder=folder,
        detector=detector,
        has_project_file=project_file is not None,
        root_count=project_root_count(folder) if inside else None,
    )
