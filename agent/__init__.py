"""Hackatime Desktop agent: capture, store, deliver and count coding heartbeats.

This package never imports Qt; the tray app (``app``) talks to it only through
the local control API (see ``agent.api.control``).
"""

from .version import VERSION as __version__

APP_NAME = "hackatime-desktop"

__all__ = ["APP_NAME", "__version__"]
