"""Hackatime Desktop tray app: a thin PySide6 view over the agent's control API.

Nothing in this package talks to the store: every figure comes from the agent
(``app.client``), every call runs off the GUI thread (``app.tasks``), and the
charts' matplotlib import waits until a dashboard is wanted (``app.charts``).
"""

APP_ID = "hackatime-desktop"
APP_TITLE = "Hackatime"

from . import binding as _binding  # noqa: E402 - must run before any other Qt call (see the module)

_binding.install()
