"""Moving the running agent's local API (the editors' intake and the control API) to another port.

The new port is bound first: a port another program holds is refused there and then, and
the old one keeps serving. Only once the new listener runs is the port saved in the
settings (the next start uses it too) and the runtime file rewritten (the tray follows
it); the old listener is retired once the answer to the request that moved it has left
through it. Editor plugins point at the intake through ``api_url`` in ``~/.wakatime.cfg``:
they are pointed at the new port when asked (with a backup, as routing does), or told how.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import TYPE_CHECKING

from .config import is_self_url, read_wakatime_cfg
from .lock import port_owner
from .settings import AppSettings

if TYPE_CHECKING:  # the control API imports PortRefused from here
    from .api.httpserver import LocalServer, Router

LOWEST, HIGHEST = 1024, 65535  # below 1024 needs privileges on most systems


class PortRefused(RuntimeError):
    """The intake stays where it is; ``status`` is the control API's answer (400 or 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def bind(router: Router, port: object) -> LocalServer:
    """A listener for ``router`` on 127.0.0.1:``port``, not started yet (raises PortRefused)."""
    from .api.httpserver import LocalServer

    if isinstance(port, bool) or not isinstance(port, int):
        raise PortRefused(400, "the port must be a whole number")
    if not LOWEST <= port <= HIGHEST:
        raise PortRefused(400, f"the port must be between {LOWEST} and {HIGHEST}, not {port}")
    try:
        return LocalServer(router, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            owner = port_owner(port)
            raise PortRefused(409, f"port {port} is in use by {owner or 'another program'}") from None
        raise PortRefused(409, f"port {port} cannot be used: {exc.strerror or exc}") from None


def keep_upload_server(settings_path: Path, wakatime_cfg: Path, old_port: int, upload_url: str) -> None:
    """When ``~/.wakatime.cfg`` points at the old port, pin the upload server in the settings.

    At start the agent skips a cfg ``api_url`` that points at itself; one that points at its
    *old* port no longer does, and it would upload there. The settings' api_url outranks it.
    """
    cfg, _ = read_wakatime_cfg(wakatime_cfg)
    url = cfg["settings"].get("api_url", "").strip() if cfg.has_section("settings") else ""
    settings = AppSettings(settings_path)
    if url and is_self_url(url, old_port) and not settings.get("api_url"):
        settings.set("api_url", upload_url)


def editors_warning(wakatime_cfg: Path, old_port: int, intake_url: str) -> str | None:
    """What the move means for editor plugins still sending to the old port; None: nothing."""
    cfg, _ = read_wakatime_cfg(wakatime_cfg)
    url = cfg["settings"].get("api_url", "").strip() if cfg.has_section("settings") else ""
    if not url or not is_self_url(url, old_port):
        return None
    return (
        f"editor plugins still send to {url} ({wakatime_cfg}), where nothing listens now: they keep their "
        f"heartbeats in their offline queue until api_url is {intake_url} (route the editors again)"
    )
