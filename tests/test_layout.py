"""The package layout keeps its promises: what each package exports, what the agent never imports,
and that agent and app speak the one contract (routes, files) in ``agent.contract``."""

from __future__ import annotations
import __future__

import importlib
import inspect
import logging
import re
import subprocess
import sys
import types
import typing
from pathlib import Path

import httpx
import pytest

from agent import contract as C
from agent.daemon import Agent
from tests.conftest import API_KEY

PACKAGES = ["agent.api", "agent.capture", "agent.cli", "agent.daemon", "agent.delivery", "agent.stats", "agent.store"]


@pytest.mark.parametrize("name", [*PACKAGES, "agent.contract"])
def test_exported_members(name: str) -> None:
    """``__all__`` lists exactly the public names a package or module offers (httpx's test, per package)."""
    module = importlib.import_module(name)
    exported = set(module.__all__)
    for member in exported:
        assert getattr(module, member, None) is not None, f"{name}.{member} is in __all__ but missing"
    public = {n for n, value in vars(module).items() if not n.startswith("_") and _offered(value, name)}
    assert public <= exported, f"{name} offers names its __all__ does not list: {sorted(public - exported)}"


def _offered(value: object, name: str) -> bool:
    if isinstance(value, types.ModuleType | logging.Logger | typing._SpecialForm) or value is typing.TYPE_CHECKING:
        return False  # submodules are reached by their own names; loggers and typing are plumbing
    if isinstance(value, type | types.FunctionType):
        return value.__module__.startswith(name)  # defined here, not merely imported
    return not isinstance(value, __future__._Feature)  # a constant


@pytest.mark.parametrize("name", PACKAGES)
def test_every_package_says_what_it_is_for(name: str) -> None:
    doc = inspect.getdoc(importlib.import_module(name)) or ""
    assert 0 < len(doc.splitlines()) <= 3, f"{name}: a short docstring saying what the package is for"


def _imported_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_the_agent_never_imports_the_app_or_qt() -> None:
    modules = _imported_by("import agent.cli, agent.daemon, agent.doctor, agent.capture.watcher, agent.contract")
    assert not {m for m in modules if m.split(".")[0] in ("app", "PySide6", "shiboken6")}


def test_only_the_store_speaks_sql() -> None:
    """SQL lives in ``agent/store/``; the rest of the agent and the app call the store."""
    root = Path(__file__).resolve().parents[1]
    sql = re.compile(r"\.execute(many|script)?\(|\b(SELECT|INSERT INTO|DELETE FROM|UPDATE \w+ SET|BEGIN|COMMIT)\b")
    speaking = [
        f"{path.relative_to(root)}:{n}"
        for path in sorted([*(root / "agent").rglob("*.py"), *(root / "app").rglob("*.py")])
        if not path.is_relative_to(root / "agent" / "store")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if sql.search(line)
    ]
    assert speaking == []


def test_doctor_reads_the_watch_limit_without_loading_the_watcher() -> None:
    modules = _imported_by("import agent.doctor")
    assert "agent.capture.inotify" in modules
    assert not {m for m in modules if m == "agent.capture.watcher" or m.split(".")[0] == "watchdog"}


def test_the_contract_is_standard_library_only() -> None:
    """The app reads the contract without loading the agent's dependencies (httpx, watchdog, sqlite…)."""
    modules = _imported_by("import agent.contract")
    third_party = {m.split(".")[0] for m in modules} & {"httpx", "watchdog", "pathspec", "keyring", "tzlocal"}
    assert not third_party
    assert not {m for m in modules if m.startswith("agent.") and m.split(".")[1] != "contract"}


def test_route_patterns_match_their_urls() -> None:
    for route in C.ROUTES:
        assert route.url(**dict.fromkeys(re.findall(r"\{(\w+)\}", route.path), 7)).startswith(C.CONTROL_PREFIX)
    match = re.fullmatch(C.NOTICE_DISMISS.pattern, C.NOTICE_DISMISS.url(id=42))
    assert match is not None and match.group("id") == "42"
    assert re.fullmatch(C.NOTICE_DISMISS.pattern, "/agent/v1/notices/x/dismiss") is None


def test_the_agent_serves_every_route_of_the_contract(agent: Agent) -> None:
    """Each route is answered (not 404 / 405) with the token, and refused without it."""
    with httpx.Client(base_url=agent.control_url, timeout=30) as client:
        for route in C.ROUTES:
            url = route.url(**dict.fromkeys(re.findall(r"\{(\w+)\}", route.path), 1))
            refused = client.request(route.method, url)
            assert refused.status_code == 401, (route, refused.text)
            body = {"path": str(agent.config.data_dir)} if route in (C.WATCH_ADD, C.WATCH_REMOVE) else None
            if route == C.DEAD_DISCARD:
                body = {"ids": []}
            if route == C.KEY_SET:
                body = {"key": API_KEY}
            if route == C.SERVER:
                body = {"api_url": agent.config.api_url}
            if route == C.SIGN_IN:
                body = {"token": "a-token-of-a-sign-in"}
            if route == C.PORT:
                body = {"port": agent.server.port if agent.server else 0}  # where it is: nothing moves
            if route == C.IMPORT_START:
                body = {"path": str(agent.config.data_dir / "no-such-export.json")}  # refused at once
            params = {"timeout": 0} if route == C.EVENTS else None
            answer = client.request(
                route.method, url, json=body, params=params, headers={"Authorization": f"Bearer {agent.token}"}
            )
            # This agent's server is fixed by --api-url, which the settings may not override.
            expected = 400 if route == C.SERVER else 200
            assert answer.status_code == expected, (route, answer.text)


def test_the_runtime_file_has_the_contract_shape(agent: Agent) -> None:
    from agent.daemon import read_runtime_file

    info = read_runtime_file(agent.config.data_dir)
    assert info is not None and set(info) == set(C.RuntimeInfo.__annotations__)
    assert info["url"] == agent.control_url
