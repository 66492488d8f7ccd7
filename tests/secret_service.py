"""A private session bus with a real Secret Service on it: GNOME Keyring, unlocked without a person.

``dbus-daemon`` runs on a socket in a temporary folder (its own configuration: no service is
started by activation), and ``gnome-keyring-daemon --unlock --components=secrets`` is given
the login password on stdin, which creates the login keyring and unlocks it. Programs that
are given :attr:`SecretServiceBus.address` as ``DBUS_SESSION_BUS_ADDRESS`` and
``keyring.backends.SecretService.Keyring`` as their backend store and read real items there.
``make test`` installs both daemons (packaging/system-deps.sh).
"""

from __future__ import annotations

import os
import subprocess
from collections import deque
from pathlib import Path
from types import TracebackType

from jeepney import MatchRule, Message
from jeepney.io.blocking import open_dbus_connection

SECRETS_NAME = "org.freedesktop.secrets"
SECRET_SERVICE_BACKEND = "keyring.backends.SecretService.Keyring"
PASSWORD = "login-password-of-the-test"
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={folder}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
START_TIMEOUT = 60.0  # seconds for the keyring to take its name on the bus, on a loaded machine


class SecretServiceBus:
    """Start with ``with``; :attr:`address` is the bus, :attr:`env` what a program on it needs."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root = root
        self.home = home
        self.address = ""
        self.env: dict[str, str] = {}
        self._bus: subprocess.Popen[str] | None = None
        self._keyring: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SecretServiceBus:
        runtime = self.root / "runtime"
        runtime.mkdir(parents=True, mode=0o700)
        config = self.root / "bus.conf"
        config.write_text(BUS_CONFIG.format(folder=runtime), encoding="utf-8")
        try:
            self._start(config, runtime)
        except BaseException:
            self._stop()
            raise
        return self

    def _start(self, config: Path, runtime: Path) -> None:
        # What the daemons say (a warning each about limits and item registration) goes to
        # files beside them, read when they fail to start.
        with (self.root / "bus.log").open("wb") as log:
            self._bus = subprocess.Popen(
                ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self._bus.stdout is not None
        self.address = self._bus.stdout.readline().strip()  # printed once the bus listens
        assert self.address, f"dbus-daemon did not start: {self.log('bus')}"
        self.env = {
            "DBUS_SESSION_BUS_ADDRESS": self.address,
            "XDG_RUNTIME_DIR": str(runtime),
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "PYTHON_KEYRING_BACKEND": SECRET_SERVICE_BACKEND,
        }
        with open_dbus_connection(self.address) as conn:
            appeared: deque[Message] = deque()
            rule = MatchRule(type="signal", interface="org.freedesktop.DBus", member="NameOwnerChanged")
            rule.add_arg_condition(0, SECRETS_NAME)
            conn.filter(rule, queue=appeared)
            conn.bus_proxy.AddMatch(rule)
            with (self.root / "keyring.log").open("wb") as log:
                self._keyring = subprocess.Popen(
                    ["gnome-keyring-daemon", "--unlock", "--components=secrets", "--foreground"],
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=log,
                    env={**os.environ, **self.env},
                )
            assert self._keyring.stdin is not None
            self._keyring.stdin.write(PASSWORD.encode())
            self._keyring.stdin.close()
            # Subscribed before it started: its name's arrival cannot be missed.
            (owned,) = conn.bus_proxy.NameHasOwner(SECRETS_NAME)
            if not owned:
                try:
                    conn.recv_until_filtered(appeared, timeout=START_TIMEOUT)
                except TimeoutError:
                    raise AssertionError(f"gnome-keyring-daemon never took its name: {self.log('keyring')}") from None

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        for process in (self._keyring, self._bus):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        if self._bus is not None and self._bus.stdout is not None:
            self._bus.stdout.close()
