"""Start the agent when none is running, and restart it when it dies — within reason.

aw-qt's pattern (``aw_qt/manager.py``): restart a crashed module at most 3 times
in 10 minutes, with a notification each time; after that stop trying and tell the
user where the log is, rather than crash-looping in the background.

The agent is a separate process in its own session, so it outlives the tray:
editors keep recording with the tray closed. Its stdout and stderr go to
``agent-console.log`` in the log dir, which is where a traceback from a crash
ends up (the agent's own log may not have had the chance to write it).

An agent that refuses to start — its port is taken by another program, or another
agent owns the data dir — exits with a code of its own (``agent.lock``) and one
line saying why. That is not a crash: restarting cannot fix it, so it is never
counted towards giving up. The tray says what is wrong in one sentence and offers
Retry (and, for the port, another port) instead.

How a death is noticed: on Linux a pidfd becomes readable the moment the child
exits (no polling); elsewhere a slow timer checks. An agent the tray did not
start (a service, a terminal) is noticed through the model, which reports the
agent unreachable within seconds.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QSocketNotifier, QTimer, Signal

from agent.lock import EXIT_PORT_IN_USE, EXIT_RUNNING

from .state import Notice

log = logging.getLogger(__name__)

CONSOLE_LOG = "agent-console.log"
POLL_MS = 2000  # exit check where pidfds do not exist (macOS, Windows)


@dataclass
class RestartPolicy:
    """At most ``max_restarts`` restarts in any ``window_s`` seconds (aw-qt: 3 in 10 minutes)."""

    max_restarts: int = 3
    window_s: float = 600.0
    _times: deque[float] = field(default_factory=deque)

    def allow(self, now: float) -> bool:
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()
        if len(self._times) >= self.max_restarts:
            return False
        self._times.append(now)
        return True


def default_command(data_dir: Path | None) -> list[str]:
    """How to run the agent from this installation (a PyInstaller bundle ships it alongside)."""
    if getattr(sys, "frozen", False):
        name = "hackatime-agent.exe" if os.name == "nt" else "hackatime-agent"
        command = [str(Path(sys.executable).with_name(name))]
    else:
        command = [sys.executable, "-m", "agent"]
    # Only an explicit data dir is passed on: naming the default one would make the
    # agent treat it as a self-contained installation (agent.dirs.default_dirs).
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    return [*command, "run"]


@dataclass(frozen=True)
class Refusal:
    """The agent refused to start; ``reason`` is its own one-line explanation."""

    kind: str  # "port-in-use" | "already-running"
    reason: str

    @property
    def sentence(self) -> str:
        if self.kind == "port-in-use":
            return f"The Hackatime agent cannot start: {self.reason or 'its port is in use by another program'}."
        return (
            "The Hackatime agent cannot start: another agent already uses this data folder "
            f"but does not answer ({self.reason or 'it may still be starting'})."
        )


REFUSALS = {EXIT_PORT_IN_USE: "port-in-use", EXIT_RUNNING: "already-running"}
REASON_PREFIX = "hackatime-agent: "


def refusal_reason(path: Path) -> str:
    """The agent's one-line reason for refusing, the last such line of its console log."""
    lines = log_tail(path, lines=20).splitlines()
    reason = next((line for line in reversed(lines) if line.startswith(REASON_PREFIX)), "")
    reason = reason.removeprefix(REASON_PREFIX)
    # "another agent (pid 12) is already running for /data" → the part a sentence can hold
    return reason.split(" is already running for ")[0]


START_MARK = "--- agent started by the tray at "
REFUSAL_WORDS = (("is in use", "port-in-use"), ("is already running for", "already-running"))


def refusal_in_log(log_dir: Path) -> Refusal | None:
    """Why the agent the tray started last refused to start, read from its console log; None if it did not.

    For the window process, which has no supervisor: the dashboard's banner says the same
    sentence as the tray's menu. Only lines after the last start count, so a refusal that
    Retry or another port has fixed is not repeated.
    """
    path = log_dir / CONSOLE_LOG
    tail = log_tail(path, lines=20)
    lines = tail.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(START_MARK)]
    since = lines[starts[-1] + 1 :] if starts else lines
    for line in reversed(since):
        kind = next((k for words, k in REFUSAL_WORDS if words in line), None)
        if line.startswith(REASON_PREFIX) and kind is not None:
            return Refusal(kind, refusal_reason(path))
    return None


def settings_file(data_dir: Path | None) -> Path:
    """The agent's settings.json for this data dir (where its port is kept)."""
    from agent.dirs import SETTINGS_FILE, default_dirs

    return default_dirs(data_dir, os.environ)[2] / SETTINGS_FILE


def log_tail(path: Path, lines: int = 3, max_bytes: int = 8192) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


class AgentSupervisor(QObject):
    notice = Signal(object)  # state.Notice: the agent crashed and was restarted, or gave up
    problem_changed = Signal()  # a start-up refusal or giving up began or ended (see :attr:`problem`)
    started = Signal(int)  # pid of a newly started agent
    exited = Signal(int)  # exit code of an agent this tray started

    def __init__(
        self,
        log_dir: Path,
        command: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        policy: RestartPolicy | None = None,
        agent_available: Callable[[], bool | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        settings: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.log_dir = log_dir
        self.console_log = log_dir / CONSOLE_LOG
        self.command = list(command)
        self.env = env
        self.policy = policy or RestartPolicy()
        self.agent_available = agent_available
        self.clock = clock
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.gave_up = False
        self.refusal: Refusal | None = None
        self._last_exit: int | None = None
        self._pidfd: int | None = None
        self._notifier: QSocketNotifier | None = None
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._check_child)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def problem(self) -> str | None:
        """What keeps the agent from running, in one sentence, while the tray has stopped trying."""
        if self.refusal is not None:
            return self.refusal.sentence
        if self.gave_up:
            return "The Hackatime agent keeps stopping and was not restarted; see its log."
        return None

    def retry(self) -> None:
        """The user's Retry: forget the refusal or the give-up and start the agent once more."""
        self._reap()
        self.refusal = None
        self.gave_up = False
        self.policy = RestartPolicy(self.policy.max_restarts, self.policy.window_s)
        self.problem_changed.emit()
        if self.proc is None:  # polled once, by _reap, for the reason ensure_running gives
            self._start()

    def port(self) -> int:
        """The port the agent is told to use: its setting, else the documented default."""
        from agent.config import DEFAULT_PORT
        from agent.settings import AppSettings

        chosen = AppSettings(self.settings).get("port") if self.settings is not None else 0
        return int(chosen or DEFAULT_PORT)

    def use_port(self, port: int) -> None:
        """Keep ``port`` in the agent's settings and start it again there."""
        from agent.settings import AppSettings

        if self.settings is None:
            raise RuntimeError("this tray was started without the agent's settings file")
        AppSettings(self.settings).set("port", port)
        log.info("the agent's port is now %d", port)
        self.retry()

    def agent_answers(self, available: bool | None) -> None:
        """The model reached an agent (maybe one the tray did not start): nothing is wrong any more."""
        if available and (self.refusal is not None or self.gave_up):
            self.refusal = None
            self.gave_up = False
            self.problem_changed.emit()

    # ---- starting -------------------------------------------------------------------

    def ensure_running(self) -> None:
        """Called when the agent cannot be reached: start one, or restart it if the policy allows."""
        # The model may notice a death before the exit watcher does. The child is polled once:
        # if it is still alive here, its watcher reports its exit later. Asking again (``running``)
        # could see it die in between and start another agent with the exit still unrecorded.
        self._reap()
        if self.proc is not None or self.gave_up or self.refusal is not None:
            return
        if self._last_exit in REFUSALS:
            self._refused(REFUSALS[self._last_exit])
            return
        if self.starts > 0 or self._last_exit is not None:
            how = "stopped" if self._last_exit in (None, 0) else f"crashed (exit code {self._last_exit})"
            if not self.policy.allow(self.clock()):
                self.gave_up = True
                window = round(self.policy.window_s / 60)
                # One sentence: the log's raw lines belong in the log, which a click opens.
                self.notice.emit(
                    Notice(
                        "agent-gave-up",
                        "Hackatime agent keeps crashing",
                        f"It {how} {self.policy.max_restarts + 1} times in {window} minutes and was not restarted; "
                        "editors' heartbeats are not recorded until it runs again. Click to open its log.",
                        warning=True,
                    )
                )
                self.problem_changed.emit()
                return
            self.notice.emit(
                Notice("agent-crashed", "Hackatime agent restarted", f"The agent {how} and was started again.", True)
            )
        self._start()

    def _refused(self, kind: str) -> None:
        self.refusal = Refusal(kind, refusal_reason(self.console_log))
        log.warning("the agent refused to start: %s", self.refusal.sentence)
        self.notice.emit(Notice("agent-refused", "Hackatime agent cannot start", self.refusal.sentence, warning=True))
        self.problem_changed.emit()

    def _start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.console_log.open("ab") as out:
            out.write(f"\n{START_MARK}{time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
            out.flush()
            try:
                self.proc = subprocess.Popen(
                    self.command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    # Its own session: quitting the tray, or closing the terminal it ran
                    # from, must not take the agent (and the editors' heartbeats) with it.
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                log.error("could not start the agent (%s): %s", self.command, exc)
                self._last_exit = -1
                self.starts += 1
                self.gave_up = True
                self.notice.emit(
                    Notice("agent-gave-up", "Hackatime agent could not start", f"{exc.strerror or exc}.", warning=True)
                )
                self.problem_changed.emit()
                return
        self.starts += 1
        self._last_exit = None
        log.info("started the agent, pid %d: %s", self.proc.pid, " ".join(self.command))
        self._watch(self.proc.pid)
        self.started.emit(self.proc.pid)

    # ---- noticing an exit -----------------------------------------------------------

    def _watch(self, pid: int) -> None:
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            try:
                self._pidfd = pidfd_open(pid)
            except OSError:
                self._pidfd = None
        if self._pidfd is not None:
            self._notifier = QSocketNotifier(self._pidfd, QSocketNotifier.Type.Read, self)
            self._notifier.activated.connect(self._check_child)
        else:
            self._poll.start()

    def _unwatch(self) -> None:
        self._poll.stop()
        if self._notifier is not None:
            self._notifier.setEnabled(False)
            self._notifier.deleteLater()
            self._notifier = None
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def _reap(self) -> bool:
        """Record the exit of the agent this tray started, if it has exited; True if it had."""
        proc = self.proc
        if proc is None or proc.poll() is None:
            return False
        self._unwatch()
        self._last_exit = proc.returncode
        self.proc = None
        log.warning("the agent (pid %d) exited with code %s", proc.pid, proc.returncode)
        self.exited.emit(proc.returncode)
        return True

    def _check_child(self) -> None:
        if not self._reap():
            return
        # If the model still thinks an agent answers, it will say otherwise within seconds
        # and call ensure_running then; if another agent really serves this data dir, ours
        # lost the race for its lock and nothing needs restarting.
        if self.agent_available() is not True:
            self.ensure_running()

    # ---- shutdown -------------------------------------------------------------------

    def detach(self) -> None:
        """The tray quits: stop watching, leave the agent running for the editors."""
        self._unwatch()
        self.proc = None

    def terminate(self, timeout: float = 10.0) -> int | None:
        """Stop the agent this tray started (tests, benchmarks, an explicit user request)."""
        proc = self.proc
        self._unwatch()
        self.proc = None
        if proc is None:
            return None
        proc.terminate()
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
