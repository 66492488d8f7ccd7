"""Project, branch and project folder detection against real layouts.

Git layouts are made by git itself (repository, linked worktree, submodule), so the
files the detector reads are the ones git really writes; the detector itself never
runs git.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.capture.project import (
    compile_projectmap,
    detect_project,
    find_upward,
    project_root_count,
    read_branch,
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    out = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "protocol.file.allow=always", *args],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q")
    (path / "src").mkdir()
    (path / "src" / "main.py").write_text("print('hi')\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "first")
    return path


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One repository, a linked worktree outside it, one nested inside it, and a submodule."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    base = tmp_path_factory.mktemp("layouts")
    repo = make_repo(base / "webapp")
    git(repo, "worktree", "add", "-q", "-b", "feature/login", str(base / "webapp-login"))
    git(repo, "worktree", "add", "-q", "-b", "hotfix", str(repo / ".worktrees" / "hotfix"))
    lib = make_repo(base / "libthing")
    git(repo, "submodule", "add", "-q", str(lib), "vendor/libthing")
    return {
        "repo": repo,
        "worktree": base / "webapp-login",
        "nested_worktree": repo / ".worktrees" / "hotfix",
        "submodule": repo / "vendor" / "libthing",
    }


@needs_git
def test_plain_repository(layouts: dict[str, Path]) -> None:
    repo = layouts["repo"]
    info = detect_project(str(repo / "src" / "main.py"))
    assert (info.project, info.branch, info.folder, info.detector) == ("webapp", "main", str(repo), "git")
    assert info.root_count == project_root_count(str(repo))


@needs_git
def test_linked_worktree_belongs_to_the_main_project_with_its_own_branch(layouts: dict[str, Path]) -> None:
    wt = layouts["worktree"]
    assert (wt / ".git").is_file()  # the layout git really writes for a worktree
    info = detect_project(str(wt / "src" / "main.py"))
    assert (info.project, info.branch) == ("webapp", "feature/login")
    assert info.folder == str(wt)  # the file's own working tree, so root_count fits the entity
    assert info.root_count == project_root_count(str(wt))


@needs_git
def test_worktree_nested_in_its_main_checkout_reports_its_own_branch(layouts: dict[str, Path]) -> None:
    wt = layouts["nested_worktree"]
    info = detect_project(str(wt / "src" / "main.py"))
    assert (info.project, info.branch, info.folder) == ("webapp", "hotfix", str(wt))


@needs_git
def test_submodule_is_its_own_project(layouts: dict[str, Path]) -> None:
    sub = layouts["submodule"]
    assert (sub / ".git").is_file()
    info = detect_project(str(sub / "src" / "main.py"))
    expected_branch = git(sub, "rev-parse", "--abbrev-ref", "HEAD")
    assert info.project == "libthing"
    assert info.branch == (None if expected_branch == "HEAD" else expected_branch)
    assert info.folder == str(sub)


@needs_git
def test_submodule_detection_can_be_disabled(layouts: dict[str, Path]) -> None:
    info = detect_project(str(layouts["submodule"] / "src" / "main.py"), submodules=False)
    # Without submodule handling the .git file is a plain gitdir pointer: its folder names the project.
    assert info.project == "libthing"


@needs_git
def test_branch_switch_is_seen_without_running_git(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj")
    entity = str(repo / "src" / "main.py")
    assert detect_project(entity).branch == "main"
    git(repo, "checkout", "-q", "-b", "topic/x")
    assert detect_project(entity).branch == "topic/x"
    git(repo, "checkout", "-q", "--detach")
    assert detect_project(entity).branch is None


def test_head_file_rules(tmp_path: Path) -> None:
    head = tmp_path / "HEAD"
    assert read_branch(str(head)) == "master"  # missing HEAD, as wakatime-cli
    head.write_text("ref: refs/heads/feature/a/b\n")
    assert read_branch(str(head)) == "feature/a/b"
    head.write_text("3f786850e387550fdab836ed7e6dc881de23001b\n")
    assert read_branch(str(head)) is None


def test_hand_made_worktree_with_relative_gitdir(tmp_path: Path) -> None:
    common = tmp_path / "main" / ".git"
    (common / "worktrees" / "wt").mkdir(parents=True)
    (common / "HEAD").write_text("ref: refs/heads/main\n")
    (common / "worktrees" / "wt" / "HEAD").write_text("ref: refs/heads/wip\n")
    (common / "worktrees" / "wt" / "commondir").write_text("../..\n")
    wt = tmp_path / "elsewhere" / "wt"
    wt.mkdir(parents=True)
    (wt / ".git").write_text("gitdir: ../../main/.git/worktrees/wt\n")
    info = detect_project(str(wt / "a.py"))
    assert (info.project, info.branch, info.folder) == ("main", "wip", str(wt))


def test_wakatime_project_file_with_placeholder_and_branch(tmp_path: Path) -> None:
    api = tmp_path / "api"
    (api / "pkg").mkdir(parents=True)
    (api / ".wakatime-project").write_text("acme/{project}-backend\nrelease\n")
    info = detect_project(str(api / "pkg" / "handler.go"))
    assert (info.project, info.branch, info.folder, info.detector) == ("acme/api-backend", "release", str(api), "file")
    assert info.has_project_file


def test_empty_wakatime_project_file_names_its_folder(tmp_path: Path) -> None:
    (tmp_path / "dashboard").mkdir()
    (tmp_path / "dashboard" / ".wakatime-project").write_text("")
    assert detect_project(str(tmp_path / "dashboard" / "x.ts")).project == "dashboard"


@needs_git
def test_project_file_wins_and_git_fills_the_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / ".wakatime-project").write_text("Renamed\n")
    info = detect_project(str(repo / "src" / "main.py"))
    assert (info.project, info.branch, info.detector) == ("Renamed", "main", "file")


@needs_git
def test_projectmap_first_match_with_groups_then_git_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "bar42")
    rules, problems = compile_projectmap([(r"/BAR(\d+)/", "project{0}"), (r"bar", "never reached"), (r"([", "broken")])
    assert len(rules) == 2
    assert len(problems) == 1 and "'(['" in problems[0]
    info = detect_project(str(repo / "src" / "main.py"), rules)
    assert (info.project, info.branch, info.detector, info.folder) == ("project42", "main", "map", str(repo))


def test_mercurial_branch(tmp_path: Path) -> None:
    (tmp_path / "hgproj" / ".hg").mkdir(parents=True)
    info = detect_project(str(tmp_path / "hgproj" / "x.py"))
    assert (info.project, info.branch) == ("hgproj", "default")
    (tmp_path / "hgproj" / ".hg" / "branch").write_text("stable\n")
    assert detect_project(str(tmp_path / "hgproj" / "x.py")).branch == "stable"


def test_no_project_outside_any_repository(tmp_path: Path) -> None:
    info = detect_project(str(tmp_path / "loose.py"))
    if find_upward(str(tmp_path), ".git") is None and find_upward(str(tmp_path), ".wakatime-project") is None:
        assert (info.project, info.detector, info.has_project_file) == (None, "none", False)
    assert info.folder == str(tmp_path)


def test_root_count_is_wakatime_cli_slash_count() -> None:
    assert project_root_count("/home/u/proj") == 4
    assert project_root_count("/home/u/proj/") == 4
    assert project_root_count("C:\\Users\\u\\proj") == 4
