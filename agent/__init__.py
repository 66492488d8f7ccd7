"""Hackatime Desktop agent: capture, store, deliver and count coding heartbeats.

This package never imports Qt; the tray app (``app``) talks to it only through
the local control API (see ``agent.api.control``).
"""

APP_NAME = "hackatime-desktop"

__all__ = ["APP_NAME", "__version__"]


def __getattr__(name: str) -> str:
    # ``__version__`` is looked up on first use, so that importing agent.contract alone
    # loads nothing else of the agent.
    if name == "__version__":
        from .version import VERSION

        return VERSION
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
