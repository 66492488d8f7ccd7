"""The windows of the window process (``hackatime-desktop --window NAME``), by name.

The tray never builds a window: it asks the window process for one by name
(:mod:`app.windows.launcher`), and the window process builds it from this table
(:mod:`app.windows.host`). To add a window, write a factory that takes the
:class:`WindowContext` and returns the top-level widget, importing the window's
module inside the factory (the tray imports this table, and must not import what
the windows need — matplotlib above all), then add a :class:`WindowSpec` below.

A window may offer a ``ready`` signal and an ``is_ready()`` method: the window
process then answers "opened" only once it shows its figures (the dashboard does).
A window may offer an ``open_window`` signal carrying another window's name: the
window process then shows that one too (the welcome window opens the settings).
A window with pages may offer ``show_tab(name) -> bool``: a request naming a page
(``--page sync``, ``open dashboard sync``) then shows the window at that page.
Closing a window hides it; the window process keeps it for the next request until
its keep-alive runs out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from app.model import AgentModel


@dataclass(frozen=True)
class WindowContext:
    """What every window of the window process may use: its own agent model, and where things are."""

    model: AgentModel
    data_dir: Path
    log_dir: Path
    config_dir: Path


@dataclass(frozen=True)
class WindowSpec:
    name: str  # on the command line (--window NAME) and in requests
    label: str  # in sentences: "The dashboard closed unexpectedly"
    factory: Callable[[WindowContext], QWidget]


def _dashboard(context: WindowContext) -> QWidget:
    from app.dashboard import DashboardWindow

    return DashboardWindow(context.model, log_dir=context.log_dir)


def _settings(context: WindowContext) -> QWidget:
    from app.settings_window import SettingsWindow

    return SettingsWindow(context.model.client, context.model.runner, config_dir=context.config_dir)


def _import(context: WindowContext) -> QWidget:
    from app.import_window import ImportWindow

    return ImportWindow(context.model)


def _welcome(context: WindowContext) -> QWidget:
    from app import first_run

    window = first_run.FirstRunWindow(context.model, context.config_dir, first_run.existing_setup())
    window.start_scan()
    return window


WINDOWS: dict[str, WindowSpec] = {
    spec.name: spec
    for spec in (
        WindowSpec("dashboard", "The dashboard", _dashboard),
        WindowSpec("settings", "The settings", _settings),
        WindowSpec("import", "The import window", _import),
        WindowSpec("welcome", "The welcome window", _welcome),
    )
}
