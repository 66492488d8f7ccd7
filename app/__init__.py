"""Hackatime Desktop tray app: a thin PySide6 view over the agent's control API.

Nothing in this package talks to the store: every figure comes from the agent
(``app.client``), and every call runs off the GUI thread (``app.tasks``). Two
processes run from it: the tray (``app.main``), which never imports the charts'
matplotlib, and the window process with every window (``app.windows``).
"""

APP_ID = "hackatime-desktop"
APP_TITLE = "Hackatime"
