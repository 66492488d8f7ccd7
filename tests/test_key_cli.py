"""``hackatime-agent key set|show|check|forget`` as a person uses them: real processes, the stand-in,
a keyring present (a real backend over a file) or absent (the null backend), a running agent or none."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import Flags, load_config
from agent.daemon import Agent
from agent.secrets import KEYRING_SERVICE, KEYRING_USER
from tests.conftest import API_KEY
from tests.standin import HackatimeStandin
from tests.test_config import FileKeyring

REJECTED = "99999999-9999-4999-8999-999999999999"
SAME_LAST_FOUR = "11111111-2222-4333-8444-555555556f70"
NULL_KEYRING = "keyring.backends.null.Keyring"
ALL_KEYS = (API_KEY, REJECTED, SAME_LAST_FOUR)


def assert_no_key(text: str) -> None:
    """No key, whole or any part of it beyond its last four characters (six in a row), in ``text``."""
    for key in ALL_KEYS:
        for i in range(len(key) - 5):
            assert key[i : i + 6] not in text, f"a piece of a key ({key[i : i + 6]!r}) was shown"


class Cli:
    def __init__(self, home: Path, data_dir: Path, api_url: str) -> None:
        self.home, self.data_dir = home, data_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("WAKATIME", "HACKATIME", "PYTHON_KEY"))}
        self.env.update(
            HOME=str(home),
            WAKATIME_HOME=str(home),
            HACKATIME_API_URL=api_url,
            PYTHONPATH=str(Path(__file__).resolve().parent.parent),
        )
        self.outputs: list[str] = []

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        # The keyring the test chose (``with_keyring``), else none at all (a headless machine).
        self.env["PYTHON_KEYRING_BACKEND"] = os.environ.get("PYTHON_KEYRING_BACKEND", NULL_KEYRING)
        if FileKeyring.ENV in os.environ:
            self.env[FileKeyring.ENV] = os.environ[FileKeyring.ENV]
        done = subprocess.run(
            [sys.executable, "-m", "agent", "--data-dir", str(self.data_dir), "key", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )
        self.outputs += [done.stdout, done.stderr]
        return done

    def json(self, *args: str, stdin: str = "") -> tuple[int, dict[str, object]]:
        done = self(*args, "--json", stdin=stdin)
        return done.returncode, (json.loads(done.stdout) if done.stdout.strip() else {"stderr": done.stderr})


@pytest.fixture
def with_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FileKeyring:
    monkeypatch.setenv(FileKeyring.ENV, str(tmp_path / "keyring.json"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", f"{FileKeyring.__module__}.FileKeyring")
    return FileKeyring()


@pytest.fixture
def cli(_isolated_home: Path, tmp_path: Path, standin: HackatimeStandin) -> Iterator[Cli]:
    runner = Cli(_isolated_home, tmp_path / "data", standin.api_url)
    yield runner
    assert_no_key("\n".join(runner.outputs))


def write_cfg(home: Path, key: str) -> Path:
    path = home / ".wakatime.cfg"
    path.write_text(f"[settings]\napi_key = {key}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("key", "code", "verdict"),
    [(API_KEY, 0, "accepted"), ("not-a-key", 9, "malformed"), (REJECTED, 3, "rejected"), (None, 6, "missing")],
    ids=["good", "malformed", "rejected", "none"],
)
def test_key_check_says_what_the_server_thinks(
    cli: Cli, _isolated_home: Path, key: str | None, code: int, verdict: str
) -> None:
    if key:
        write_cfg(_isolated_home, key)
    returncode, answer = cli.json("check")
    assert (returncode, answer["verdict"]) == (code, verdict)
    if verdict == "accepted":
        assert (answer["username"], answer["timezone"]) == ("orpheus", "UTC")
        assert "orpheus" in cli("check").stdout


def test_key_check_with_the_server_down(cli: Cli, _isolated_home: Path) -> None:
    write_cfg(_isolated_home, API_KEY)
    cli.env["HACKATIME_API_URL"] = "http://127.0.0.1:9/api/hackatime/v1"
    returncode, answer = cli.json("check")
    assert (returncode, answer["verdict"]) == (4, "unreachable")


def test_key_set_checks_then_stores_in_the_keyring(cli: Cli, with_keyring: FileKeyring, _isolated_home: Path) -> None:
    done = cli("set", stdin="not a key\n")
    assert done.returncode == 9 and "not stored" in done.stderr
    done = cli("set", stdin=REJECTED + "\n")
    assert done.returncode == 3 and "rejected" in done.stderr
    assert with_keyring.get_password(KEYRING_SERVICE, KEYRING_USER) is None  # nothing stored on refusal

    done = cli("set", stdin=API_KEY + "\n")
    assert done.returncode == 0, done.stderr
    assert "stored in the OS keyring" in done.stdout and "orpheus" in done.stdout
    assert with_keyring.get_password(KEYRING_SERVICE, KEYRING_USER) == API_KEY
    returncode, shown = cli.json("show")
    assert (returncode, shown["source"], shown["last4"], shown["masked"]) == (0, "keyring", "6f70", "<hidden>6f70")

    write_cfg(_isolated_home, SAME_LAST_FOUR)  # forgetting the keyring's key falls back to the cfg's
    returncode, forgotten = cli.json("forget")
    assert returncode == 0 and forgotten["key"]["source"] == "wakatime.cfg"  # type: ignore[index]
    assert with_keyring.get_password(KEYRING_SERVICE, KEYRING_USER) is None
    assert "is in use now" in cli("forget").stdout


def test_without_a_keyring_the_user_chooses_where_the_key_goes(cli: Cli, _isolated_home: Path) -> None:
    done = cli("set", stdin=API_KEY)
    assert done.returncode == 10
    assert "no usable keyring backend" in done.stderr
    assert "'file' (plain text in" in done.stderr and "'wakatime-cfg' (plain text in" in done.stderr

    assert cli("set", "--store", "file", stdin=API_KEY).returncode == 0
    settings = cli.data_dir / "settings.json"
    assert oct(settings.stat().st_mode & 0o777) == "0o600"
    assert cli.json("show")[1]["source"] == "settings (plaintext)"

    cfg = write_cfg(_isolated_home, SAME_LAST_FOUR)
    assert cli("set", "--store", "wakatime-cfg", stdin=API_KEY).returncode == 0
    assert f"api_key = {API_KEY}" in cfg.read_text()
    assert SAME_LAST_FOUR in cfg.with_name(".wakatime.cfg.hackatime-desktop.bak").read_text()  # the backup
    assert API_KEY not in settings.read_text()  # the older plaintext copy, which would outrank it, is gone
    assert cli.json("show")[1]["source"] == "wakatime.cfg"


def test_a_running_agent_uses_a_key_set_from_the_command_line_at_once(
    cli: Cli,
    with_keyring: FileKeyring,
    _isolated_home: Path,
    tmp_path: Path,
    standin: HackatimeStandin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    write_cfg(_isolated_home, SAME_LAST_FOUR)
    env = {"WAKATIME_HOME": str(_isolated_home), "HACKATIME_API_URL": standin.api_url}
    config = load_config(Flags(data_dir=cli.data_dir, port=0), env=env)
    with Agent(config, synchronous="NORMAL", watch=False) as agent:
        agent.submit([{"time": 1755864000.0 + i, "entity": f"/p/{i}.py"} for i in range(12)], "watcher")
        seq = -1
        while agent.store.destination("hackatime")["auth_state"] != "rejected":
            seq = agent.wait_for_change(seq, 30)
        done = cli("set", stdin=API_KEY)
        assert done.returncode == 0, done.stderr
        assert standin.wait_for(lambda s: s.count() == 12, 30)  # delivery resumed with the new key
        status = agent.status()
        assert (status["key_source"], status["key"]["last4"]) == ("keyring", "6f70")
        cli.outputs.append(json.dumps(status))
    cli.outputs.append(caplog.text)


def test_no_key_in_crash_output_or_for_a_key_no_header_can_carry(
    cli: Cli, _isolated_home: Path, tmp_path: Path
) -> None:
    # A crash whose traceback would name the key (here: a data dir whose path holds it).
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    cli.env["WAKATIME_API_KEY"] = API_KEY
    done = subprocess.run(
        [sys.executable, "-m", "agent", "--data-dir", str(blocker / API_KEY), "sync"],
        capture_output=True, text=True, env={**cli.env, "PYTHON_KEYRING_BACKEND": NULL_KEYRING}, timeout=120,
        check=False,
    )  # fmt: skip
    cli.outputs += [done.stdout, done.stderr]
    assert done.returncode == 1 and "Traceback" in done.stderr and "<hidden>6f70" in done.stderr
    # A key with a character no HTTP header can carry: said, not crashed on.
    cli.env["WAKATIME_API_KEY"] = API_KEY[:-1] + "é"
    returncode, answer = cli.json("check")
    assert (returncode, answer["verdict"]) == (9, "malformed")
    doctor = subprocess.run(
        [sys.executable, "-m", "agent", "--data-dir", str(cli.data_dir), "doctor"],
        capture_output=True, text=True, env={**cli.env, "PYTHON_KEYRING_BACKEND": NULL_KEYRING}, timeout=120,
        check=False,
    )  # fmt: skip
    cli.outputs += [doctor.stdout, doctor.stderr]
    assert "Traceback" not in doctor.stderr and "not shaped like a Hackatime key" in doctor.stdout
