"""The command line as a person or a script uses it: real processes, exit codes, one-line reasons."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.daemon import Agent
from agent.heartbeat import normalize
from agent.lock import EXIT_PORT_IN_USE
from agent.store.store import Store
from tests.conftest import API_KEY, MemoryKeyring
from tests.standin import HackatimeStandin

T0 = 1755864000.0


def cli(home: Path, *args: str, key: str | None = API_KEY, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAKATIME", "HACKATIME"))}
    env.update(HOME=str(home), WAKATIME_HOME=str(home), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    if key:
        env["WAKATIME_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def seed(data_dir: Path, n: int, url: str = "unused") -> None:
    with Store(data_dir / "store.db") as store:
        store.set_destination("hackatime", url)
        store.add([normalize({"time": T0 + i, "entity": f"/p/{i}.py"}, machine="m") for i in range(n)], "editor")


def test_sync_without_a_daemon_delivers_everything(
    tmp_path: Path, _isolated_home: Path, standin: HackatimeStandin
) -> None:
    seed(tmp_path, 230)
    done = cli(_isolated_home, "--data-dir", str(tmp_path), "sync", "--json", "--api-url", standin.api_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"delivered": 230, "dead": 0, "pending": 0, "outcome": "idle", "error": None}
    assert standin.count() == 230
    status = cli(_isolated_home, "--data-dir", str(tmp_path), "status", "--json")
    dest = json.loads(status.stdout)["destinations"][0]
    assert (dest["pending"], dest["sent"], dest["auth_state"]) == (0, 230, "ok")


@pytest.mark.parametrize(
    ("key", "url", "code", "reason"),
    [
        ("99999999-9999-4999-8999-999999999999", None, 3, "rejected the API key"),
        (API_KEY, "http://127.0.0.1:9/api/hackatime/v1", 4, "network error"),
        (None, None, 6, "no API key"),
    ],
    ids=["auth-rejected", "unreachable", "no-key"],
)
def test_sync_failures_have_documented_codes(
    tmp_path: Path,
    _isolated_home: Path,
    standin: HackatimeStandin,
    key: str | None,
    url: str | None,
    code: int,
    reason: str,
) -> None:
    seed(tmp_path, 5)
    done = cli(_isolated_home, "--data-dir", str(tmp_path), "sync", "--api-url", url or standin.api_url, key=key)
    assert done.returncode == code
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("hackatime-agent: sync incomplete:") and reason in last
    assert (key or "") not in done.stderr or key is None
    with Store(tmp_path / "store.db") as store:
        assert store.counts("hackatime").pending == 5  # nothing lost


def test_second_run_for_the_same_data_dir_exits_non_zero(
    tmp_path: Path, _isolated_home: Path, make_config: Callable[..., Any]
) -> None:
    with Agent(make_config(data_dir=tmp_path)):
        done = cli(_isolated_home, "--data-dir", str(tmp_path), "run", "--port", "0", timeout=30)
    assert done.returncode == 7
    assert "already running" in done.stderr


def test_run_on_a_taken_port_names_the_program_holding_it(tmp_path: Path, _isolated_home: Path) -> None:
    """A refusal a supervisor can tell from a crash: its own exit code and one line saying who holds the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = cli(_isolated_home, "--data-dir", str(tmp_path), "run", "--port", str(port), "--no-watch", timeout=30)
    assert done.returncode == EXIT_PORT_IN_USE
    last = done.stderr.strip().splitlines()[-1]
    me = Path("/proc/self/comm").read_text().strip()
    assert last == f"hackatime-agent: port {port} on 127.0.0.1 is in use by {me} (pid {os.getpid()})"


def test_sync_goes_through_a_running_daemon(
    tmp_path: Path, _isolated_home: Path, make_config: Callable[..., Any], standin: HackatimeStandin
) -> None:
    seed(tmp_path, 12)
    with Agent(make_config(data_dir=tmp_path, api_url=standin.api_url)) as running:
        assert standin.wait_for(lambda s: s.count() == 12, timeout=20)  # the worker delivers by itself
        done = cli(_isolated_home, "--data-dir", str(tmp_path), "sync", "--json")
        status = json.loads(cli(_isolated_home, "--data-dir", str(tmp_path), "status", "--json").stdout)
        assert status["agent_running"] is True and status["pid"] == os.getpid()
        assert running.store.counts("hackatime").sent == 12
    assert done.returncode == 0 and json.loads(done.stdout)["pending"] == 0


def test_status_text_and_stats(tmp_path: Path, _isolated_home: Path) -> None:
    seed(tmp_path, 3)
    status = cli(_isolated_home, "--data-dir", str(tmp_path), "status")
    assert status.returncode == 0
    assert "pending 3 · in flight 0 · sent 0 · dead 0" in status.stdout
    stats = cli(_isolated_home, "--data-dir", str(tmp_path), "stats", "--json", "--range", "all")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["total_seconds"] == 2  # 3 heartbeats one second apart


def test_newcomer_with_only_a_wakatime_cfg_codes_offline_then_syncs(
    tmp_path: Path, _isolated_home: Path, standin: HackatimeStandin
) -> None:
    import base64
    import socket

    import httpx

    from tests.standin import Fault

    with socket.socket() as probe:  # a free port for the agent, as the cfg must name it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # What Hackatime's setup writes, with api_url pointed at the agent as the README says.
    (_isolated_home / ".wakatime.cfg").write_text(
        "[settings]\n"
        f"api_url = http://127.0.0.1:{port}/api/hackatime/v1\n"
        f"api_key = {API_KEY}\n"
        "heartbeat_rate_limit_seconds = 0\nexclude_unknown_project = true\nhostname = orpheus-laptop\n"
    )
    standin.inject(Fault.CONNECTION_RESET, times=10_000)  # offline
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAKATIME", "HACKATIME"))}
    env.update(
        HOME=str(_isolated_home),
        HACKATIME_API_URL=standin.api_url,  # stands in for hackatime.hackclub.com
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "--data-dir", str(data), "run", "--port", str(port), "--no-watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        wakatime_cli = {
            "Authorization": "Basic " + base64.b64encode(API_KEY.encode()).decode(),
            "User-Agent": "wakatime/v1.115.2 (linux-6.8.0-x86_64) go1.23 neovim/0.11 vim-wakatime/11.0.0",
        }
        sent = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/hackatime/v1", timeout=10) as editor:
            for burst in range(6):
                batch = [{"entity": f"/src/app/m{i}.py", "time": T0 + burst * 60 + i, "project": "app",
                          "type": "file", "is_write": True} for i in range(5)]  # fmt: skip
                r = editor.post("/users/current/heartbeats.bulk", json=batch, headers=wakatime_cli)
                assert r.status_code == 201
                sent.extend(batch)
        offline = json.loads(cli(_isolated_home, "--data-dir", str(data), "status", "--json", key=None).stdout)
        assert offline["key_source"] == "wakatime.cfg"  # after asking the keyring (in a child process)
        dest = offline["destinations"][0]
        assert dest["pending"] + dest["in_flight"] == 30 and dest["sent"] == 0
        standin.clear_faults()  # back online
        done = cli(_isolated_home, "--data-dir", str(data), "sync", "--json", key=None)
        assert done.returncode == 0, done.stderr
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        assert proc.stdout is not None
        proc.stdout.close()
    rows = standin.heartbeats()
    assert len(rows) == 30
    assert {(r["entity"], r["time"]) for r in rows} == {(b["entity"], b["time"]) for b in sent}
    assert {r["machine"] for r in rows} == {"orpheus-laptop"}
    assert {r["editor"] for r in rows} == {"neovim"}


def test_doctor_says_what_to_fix(tmp_path: Path, _isolated_home: Path, standin: HackatimeStandin) -> None:
    (_isolated_home / ".wakatime.cfg").write_text(f"[settings]\napi_url = {standin.api_url}\n")
    ok = json.loads(cli(_isolated_home, "--data-dir", str(tmp_path), "doctor", "--json").stdout)
    checks = {c["name"]: c for c in ok["checks"]}
    assert checks["server"]["ok"] and "signed in as orpheus" in checks["server"]["detail"]
    assert checks["api key"]["ok"] and API_KEY not in json.dumps(ok)
    bad = json.loads(cli(_isolated_home, "--data-dir", str(tmp_path), "doctor", "--json", key="not-a-key").stdout)
    checks = {c["name"]: c for c in bad["checks"]}
    assert not checks["api key"]["ok"] and "paste the key again" in checks["api key"]["fix"]
    assert not checks["server"]["ok"] and "rejected the key" in checks["server"]["detail"]
    assert not bad["ok"]


def test_a_frozen_agent_reads_the_keyring_for_itself(
    _memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PyInstaller bundle has no ``python -c``: the agent's own executable answers the
    keyring read with a hidden argument (agent.secrets.read_keyring_in_child)."""
    from agent.cli import main
    from agent.secrets import KEYRING_CHILD_ARG, KEYRING_SERVICE, KEYRING_USER

    _memory_keyring.set_password(KEYRING_SERVICE, KEYRING_USER, API_KEY)
    assert main([KEYRING_CHILD_ARG]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "key": API_KEY,
        "problem": None,
        "no_backend": False,
        "stores": [],  # this test's backend keeps its secrets in memory, nowhere to watch
        "signals": [],  # nor does it announce its changes on a bus
    }


@pytest.mark.parametrize("command", [["run", "--port", "0", "--no-watch"], ["status"], ["stats"], ["sync"]])
def test_a_store_from_a_newer_version_is_refused_in_one_line_and_left_untouched(
    tmp_path: Path, _isolated_home: Path, command: list[str]
) -> None:
    seed(tmp_path, 3)
    store = tmp_path / "store.db"
    with sqlite3.connect(store) as conn:
        conn.execute("PRAGMA user_version = 999")
    conn.close()
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir() if p.name.startswith("store")}
    result = cli(_isolated_home, "--data-dir", str(tmp_path), *command)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "newer version" in lines[0] and "schema 999" in lines[0], result.stderr
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir() if p.name.startswith("store")}
    assert after == before  # not a byte, not a timestamp, no -wal or -shm beside it
