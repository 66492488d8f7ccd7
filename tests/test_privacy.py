"""Include / exclude / hide_* rules with wakatime-cli's semantics, applied before storing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.capture.privacy import HIDDEN, PrivacyRules, pseudonym
from agent.capture.project import ProjectInfo
from agent.config import CaptureSettings

SECRET = b"k" * 32


def rules(**kw: Any) -> PrivacyRules:
    return PrivacyRules(CaptureSettings(**kw), SECRET)


def info(project: str | None = "webapp", detector: str = "git", folder: str = "/home/u/code/webapp") -> ProjectInfo:
    return ProjectInfo(
        project=project, branch="main", folder=folder, detector=detector, has_project_file=detector == "file",
        root_count=5,
    )  # fmt: skip


def heartbeat(**kw: Any) -> dict[str, Any]:
    hb: dict[str, Any] = {
        "entity": "/home/u/code/webapp/src/secret_plan.py",
        "type": "file",
        "category": "coding",
        "time": 1_800_000_000.0,
        "project": "webapp",
        "branch": "feature/acquire-competitor",
        "language": "Python",
        "lines": 120,
        "line_additions": 3,
        "line_deletions": 1,
        "project_root_count": 5,
        "is_write": True,
    }
    hb.update(kw)
    return hb


def test_exclude_is_case_insensitive_and_include_wins() -> None:
    r = rules(exclude=(r"/SECRET/", r"\.env$"), include=(r"/secret/allowed/",))
    assert r.path_excluded("/home/u/secret/x.py")
    assert r.path_excluded("/home/u/app/.ENV")
    assert not r.path_excluded("/home/u/secret/allowed/x.py")
    assert not r.path_excluded("/home/u/app/main.py")


def test_default_style_exclude_with_lookahead_works() -> None:
    # wakatime-cli's documented default uses a lookahead, which Python's re also supports.
    r = rules(exclude=(r"^/var/(?!www/).*", r"^/etc/"))
    assert r.path_excluded("/var/log/x.conf")
    assert not r.path_excluded("/var/www/site/index.php")


def test_invalid_filter_pattern_is_reported_and_ignored() -> None:
    r = rules(exclude=("([", r"\.log$"))
    assert len(r.problems) == 1 and "exclude" in r.problems[0]
    assert r.path_excluded("/x/app.log")


def test_hide_file_names_hides_name_details_and_branch() -> None:
    out = rules(hide_file_names=True).sanitize(heartbeat())
    assert out["entity"] == f"{HIDDEN}.py"
    for key in ("lines", "line_additions", "line_deletions", "project_root_count", "branch"):
        assert key not in out
    assert out["project"] == "webapp" and out["language"] == "Python"
    assert "secret_plan" not in json.dumps(out)


def test_hide_file_names_keeps_a_branch_that_hide_branch_patterns_do_not_match() -> None:
    out = rules(hide_file_names=True, hide_branch_names=(r"^release/",)).sanitize(heartbeat())
    assert out["entity"] == f"{HIDDEN}.py"
    assert out["branch"] == "feature/acquire-competitor"


def test_hide_file_names_patterns_are_case_sensitive_regexes() -> None:
    r = rules(hide_file_names=(r"/secret_",))
    assert r.sanitize(heartbeat())["entity"] == f"{HIDDEN}.py"
    assert r.sanitize(heartbeat(entity="/home/u/code/webapp/src/public.py"))["entity"].endswith("public.py")
    assert r.sanitize(heartbeat(entity="/home/u/code/webapp/src/SECRET_x.py"))["entity"].endswith("SECRET_x.py")


def test_hide_branch_names_alone_drops_only_the_branch() -> None:
    out = rules(hide_branch_names=True).sanitize(heartbeat())
    assert "branch" not in out
    assert out["entity"].endswith("secret_plan.py") and out["lines"] == 120


def test_hidden_project_gets_a_stable_keyed_pseudonym() -> None:
    r = rules(hide_project_names=True)
    name = r.project_name(info())
    assert name and name != "webapp"
    assert r.project_name(info()) == name
    # Another folder or another key gives another name (fixed inputs: no chance involved).
    assert r.project_name(info(folder="/home/u/code/other")) != name
    assert pseudonym("/home/u/code/webapp", b"another-key") != name
    # The pseudonym depends only on folder and key, so other processes derive the same one.
    assert pseudonym("/home/u/code/webapp", SECRET) == name
    out = r.sanitize(heartbeat(project=name))
    assert "lines" not in out and "branch" not in out


def test_pseudonyms_spread_over_folders() -> None:
    names = {pseudonym(f"/home/u/code/p{i}", SECRET) for i in range(200)}
    assert len(names) > 150


def test_project_named_in_a_project_file_is_never_renamed() -> None:
    r = rules(hide_project_names=True)
    assert r.project_name(info(project="Acme API", detector="file")) == "Acme API"


def test_hide_project_names_patterns_match_the_project_folder() -> None:
    r = rules(hide_project_names=(r"/clients/",))
    assert r.project_name(info(folder="/home/u/clients/bigco")) != "webapp"
    assert r.project_name(info(folder="/home/u/oss/webapp")) == "webapp"


def test_invalid_hide_pattern_fails_closed() -> None:
    r = rules(hide_file_names=("([",))
    assert r.problems and "everything is hidden" in r.problems[0]
    assert r.sanitize(heartbeat(entity="/any/where.rs"))["entity"] == f"{HIDDEN}.rs"


def test_project_rules() -> None:
    assert rules(exclude_unknown_project=True).project_refusal(info(project=None, detector="none"))
    assert rules(exclude_unknown_project=True).project_refusal(info()) is None
    assert rules(include_only_with_project_file=True).project_refusal(info())
    assert rules(include_only_with_project_file=True).project_refusal(info(detector="file")) is None


def test_a_secret_is_required() -> None:
    with pytest.raises(ValueError):
        PrivacyRules(CaptureSettings(), b"")
