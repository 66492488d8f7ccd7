"""Light or dark, as the system says through Qt's own colour-scheme hint, followed live.

``QStyleHints.colorScheme`` is what the platform reports (the desktop portal's
setting on Linux, the system appearance on macOS and Windows) without asking GTK.
Where the scheme is dark but the style still hands out a light palette (Fusion
under a plain X session), the app sets a dark palette itself; when the scheme
turns light again, the style's own palette comes back. Windows re-theme on the
palette change that follows (the charts listen for it).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette

_FOLLOWING = "_hackatime_follows_scheme"
_SET_BY_US = "_hackatime_dark_palette"

# (role, normal colour, disabled colour or None)
_DARK = (
    (QPalette.ColorRole.Window, "#2b2d30", None),
    (QPalette.ColorRole.WindowText, "#e8eaed", "#8b9097"),
    (QPalette.ColorRole.Base, "#1f2124", "#2b2d30"),
    (QPalette.ColorRole.AlternateBase, "#282a2e", None),
    (QPalette.ColorRole.Text, "#e8eaed", "#8b9097"),
    (QPalette.ColorRole.PlaceholderText, "#9aa0a6", None),
    (QPalette.ColorRole.Button, "#3a3d41", None),
    (QPalette.ColorRole.ButtonText, "#e8eaed", "#8b9097"),
    (QPalette.ColorRole.BrightText, "#ffffff", None),
    (QPalette.ColorRole.Light, "#4a4d52", None),
    (QPalette.ColorRole.Midlight, "#3f4246", None),
    (QPalette.ColorRole.Mid, "#55595e", None),
    (QPalette.ColorRole.Dark, "#1a1b1e", None),
    (QPalette.ColorRole.Shadow, "#000000", None),
    (QPalette.ColorRole.Highlight, "#3d7bd9", "#44484d"),
    (QPalette.ColorRole.HighlightedText, "#ffffff", "#8b9097"),
    (QPalette.ColorRole.Link, "#8ab4f8", None),
    (QPalette.ColorRole.ToolTipBase, "#3a3d41", None),
    (QPalette.ColorRole.ToolTipText, "#e8eaed", None),
)


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, colour, disabled in _DARK:
        palette.setColor(role, QColor(colour))
        if disabled is not None:
            palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(disabled))
    return palette


def is_dark(palette: QPalette) -> bool:
    return (
        palette.color(QPalette.ColorRole.Window).lightness() < palette.color(QPalette.ColorRole.WindowText).lightness()
    )


def apply(app: QGuiApplication, scheme: Qt.ColorScheme) -> None:
    """Make the app's palette match ``scheme``; Unknown leaves the style's choice alone."""
    ours = bool(app.property(_SET_BY_US))
    if scheme == Qt.ColorScheme.Dark and not is_dark(app.palette()):
        app.setPalette(dark_palette())
        app.setProperty(_SET_BY_US, True)
    elif scheme != Qt.ColorScheme.Dark and ours:
        app.setPalette(QPalette())  # the style's own palette again
        app.setProperty(_SET_BY_US, False)


def follow(app: QGuiApplication) -> None:
    """Match the colour scheme now and whenever it changes (idempotent: once per app)."""
    if app.property(_FOLLOWING):
        return
    app.setProperty(_FOLLOWING, True)
    hints = app.styleHints()
    hints.colorSchemeChanged.connect(lambda scheme: apply(app, scheme))
    apply(app, hints.colorScheme())
