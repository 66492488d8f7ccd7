"""Agent supervision with real child processes: start, notice a crash, restart 3 times in 10 min, then give up."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from app.state import Notice
from app.supervisor import AgentSupervisor, RestartPolicy, default_command, log_tail
from tests.conftest import API_KEY

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("times", "allowed"),
    [
        ([0, 1, 2], [True, True, True]),
        ([0, 1, 2, 3], [True, True, True, False]),
        ([0, 1, 2, 601], [True, True, True, True]),  # the first restart has left the 10-minute window
        ([0, 300, 599, 600, 601], [True, True, True, True, False]),
    ],
)
def test_restart_policy(times: list[float], allowed: list[bool]) -> None:
    policy = RestartPolicy(max_restarts=3, window_s=600)
    assert [policy.allow(t) for t in times] == allowed


def test_default_command_passes_only_an_explicit_data_dir(tmp_path: Path) -> None:
    assert default_command(None) == [sys.executable, "-m", "agent", "run"]
    assert default_command(tmp_path) == [sys.executable, "-m", "agent", "--data-dir", str(tmp_path), "run"]


def test_a_crashing_agent_is_restarted_three_times_then_left_alone(tmp_path: Path, qtbot: Any) -> None:
    crash = "import sys; sys.stderr.write('Traceback: disk on fire\\n'); sys.exit(3)"
    sup = AgentSupervisor(tmp_path / "logs", [sys.executable, "-c", crash], agent_available=lambda: False)
    notices: list[Notice] = []
    sup.notice.connect(notices.append)
    with qtbot.waitSignal(sup.notice, timeout=20_000, check_params_cb=lambda n: n.kind == "agent-gave-up"):
        sup.ensure_running()
    assert [n.kind for n in notices] == ["agent-crashed"] * 3 + ["agent-gave-up"]
    assert sup.starts == 4 and sup.gave_up and not sup.running
    assert "crashed (exit code 3)" in notices[0].message
    gave_up = notices[-1]
    assert "4 times in 10 minutes" in gave_up.message
    # one sentence: the raw log lines stay in the log, which a click on the notice opens
    assert "disk on fire" not in gave_up.message and "\n" not in gave_up.message
    assert "disk on fire" in log_tail(sup.console_log)
    assert sup.problem is not None and "keeps stopping" in sup.problem
    sup.ensure_running()  # after giving up, nothing more is started
    assert sup.starts == 4


def test_an_agent_dying_while_the_tray_checks_on_it_is_reported_as_crashed(tmp_path: Path, qtbot: Any) -> None:
    """The model hears the agent's sockets close before the kernel has its exit code: the
    supervisor's first look finds it alive, and it dies right after. That death is still a
    crash with its code, noticed once, and the dead child is reaped (CI saw "stopped")."""
    wait = "import signal; signal.pause()"
    sup = AgentSupervisor(tmp_path / "logs", [sys.executable, "-c", wait], agent_available=lambda: False)
    with qtbot.waitSignal(sup.started, timeout=5000):
        sup.ensure_running()
    first = sup.proc
    assert first is not None
    real_poll = first.poll

    def alive_then_killed() -> int | None:
        code = real_poll()  # alive: this is the look that finds it running
        first.poll = real_poll  # type: ignore[method-assign]
        os.kill(first.pid, signal.SIGKILL)
        os.waitid(os.P_PID, first.pid, os.WEXITED | os.WNOWAIT)  # dead, exit code ready, not reaped
        return code

    first.poll = alive_then_killed  # type: ignore[method-assign]
    notices: list[Notice] = []
    sup.notice.connect(notices.append)
    try:
        with qtbot.waitSignal(sup.started, timeout=5000):
            sup.ensure_running()  # as the model calls it: the agent stopped answering
        assert [n.kind for n in notices] == ["agent-crashed"]
        assert "crashed (exit code -9)" in notices[0].message
        assert first.returncode == -9 and sup.proc is not first and sup.starts == 2
    finally:
        sup.terminate()


def test_the_agent_outlives_a_detached_tray(tmp_path: Path, qtbot: Any) -> None:
    wait = "import signal; signal.pause()"
    sup = AgentSupervisor(tmp_path / "logs", [sys.executable, "-c", wait])
    with qtbot.waitSignal(sup.started, timeout=5000):
        sup.ensure_running()
    proc = sup.proc
    assert proc is not None and sup.running
    sup.detach()
    assert proc.poll() is None  # still running: editors keep their agent after the tray quits
    proc.terminate()
    assert proc.wait(10) != 0


def test_an_agent_that_cannot_be_started_is_reported(tmp_path: Path, qtbot: Any, app_errors_expected: Any) -> None:
    sup = AgentSupervisor(tmp_path / "logs", [str(tmp_path / "no-such-agent")])
    with qtbot.waitSignal(sup.notice, timeout=5000) as signal:
        sup.ensure_running()
    assert signal.args[0].kind == "agent-gave-up" and "could not start" in signal.args[0].title


def test_the_real_agent_is_started_and_restarted_after_a_crash(
    standin: Any, tmp_path: Path, make_model: Any, qtbot: Any
) -> None:
    """The tray's own start-up path: no agent → start one; SIGKILL → notice and start again."""
    data = tmp_path / "data"
    command = [sys.executable, "-m", "agent", "--data-dir", str(data), "run", "--port", "0", "--no-watch",
               "--api-url", standin.api_url]  # fmt: skip
    env = {**os.environ, "WAKATIME_API_KEY": API_KEY, "WAKATIME_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    model = make_model(data)
    sup = AgentSupervisor(tmp_path / "logs", command, env=env, agent_available=lambda: model.available)
    model.availability_changed.connect(lambda up: None if up else sup.ensure_running())
    notices: list[Notice] = []
    sup.notice.connect(notices.append)
    try:
        model.start()  # nobody answers: the model says so, the supervisor starts the agent
        qtbot.waitUntil(lambda: model.available is True, timeout=20_000)
        first = sup.proc
        assert first is not None and model.status is not None and model.status["pid"] == first.pid

        first.send_signal(signal.SIGKILL)
        with qtbot.waitSignal(sup.started, timeout=20_000):
            pass
        qtbot.waitUntil(lambda: bool(model.available and model.status and model.status["pid"] != first.pid),
                        timeout=20_000)  # fmt: skip
        assert [n.kind for n in notices] == ["agent-crashed"]
        assert "crashed (exit code -9)" in notices[0].message
    finally:
        model.stop()
        sup.terminate()
