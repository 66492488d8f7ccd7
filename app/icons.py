"""Tray and window icons, drawn with QPainter so every size is crisp and no file can go missing.

One icon per sync state; the shape of the glyph, not only its colour, tells the
states apart (colour-blind users, monochrome panels):

=============  ==========  ==============================
state          colour      glyph
=============  ==========  ==============================
synced         green       check mark
waiting        amber       upward arrow (to the server)
offline        grey        solid cloud, struck through
key rejected   red         exclamation mark
paused         slate blue  two bars
agent down     grey ring   cross, no fill
starting       grey ring   three dots, no fill
=============  ==========  ==============================

"Recording" (a heartbeat in the last two minutes) is a red dot in a hole cut in the
bottom-right corner of whichever base applies (no glyph reaches there).

``python -m app.icons DIR`` writes the same drawings as PNGs (for the .desktop
file, packaging and the README).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

from .state import IconState, SyncState

SIZES = (16, 22, 24, 32, 48, 64, 128)
RECORDING = QColor("#ec3750")  # Hack Club red
RECORDING_AT = QPointF(50, 50)

COLOURS = {
    SyncState.SYNCED: "#2e9d57",
    SyncState.WAITING: "#d98e04",
    SyncState.OFFLINE: "#6f7782",
    SyncState.KEY_REJECTED: "#d93036",
    SyncState.PAUSED: "#52638a",
    SyncState.AGENT_DOWN: "#8a9099",
    SyncState.STARTING: "#8a9099",
}
HOLLOW = {SyncState.AGENT_DOWN, SyncState.STARTING}


def render(state: IconState, size: int) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.scale(size / 64.0, size / 64.0)  # draw on a 64×64 grid
    _draw(painter, state)
    painter.end()
    return pixmap


def _pen(colour: QColor | str, width: float) -> QPen:
    pen = QPen(QColor(colour), width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _draw(p: QPainter, state: IconState) -> None:
    colour = QColor(COLOURS[state.sync])
    disc = QRectF(4, 4, 56, 56)
    if state.sync in HOLLOW:
        # A ring reads as "nothing running" on light and dark panels alike.
        p.setPen(_pen(colour, 6))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawEllipse(disc.adjusted(3, 3, -3, -3))
        glyph = colour
    else:
        p.setPen(_pen(QColor(0, 0, 0, 60), 1.5))  # a faint rim keeps the disc apart from a same-coloured panel
        p.setBrush(QBrush(colour))
        p.drawEllipse(disc)
        glyph = QColor("white")

    p.setBrush(Qt.BrushStyle.NoBrush)
    p.setPen(_pen(glyph, 7))
    sync = state.sync
    if sync is SyncState.SYNCED:
        path = QPainterPath(QPointF(19, 33))
        path.lineTo(28, 42)
        path.lineTo(45, 23)
        p.drawPath(path)
    elif sync is SyncState.WAITING:
        p.drawLine(QPointF(32, 46), QPointF(32, 19))
        path = QPainterPath(QPointF(21, 29))
        path.lineTo(32, 18)
        path.lineTo(43, 29)
        p.drawPath(path)
    elif sync is SyncState.OFFLINE:
        # A solid cloud, struck through: outlines turned to mush at 16 and 22 px.
        cloud = QPainterPath()
        cloud.addEllipse(QPointF(21, 38), 9, 9)
        cloud.addEllipse(QPointF(33, 29), 13, 13)
        cloud.addEllipse(QPointF(44, 37), 10, 10)
        cloud.addRoundedRect(QRectF(12, 34, 42, 13), 6.5, 6.5)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(glyph))
        p.drawPath(cloud.simplified())
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(_pen(colour, 8))  # a gap in the disc's colour on both sides of the stroke
        p.drawLine(QPointF(15, 15), QPointF(49, 49))
        p.setPen(_pen(glyph, 4))
        p.drawLine(QPointF(15, 15), QPointF(49, 49))
    elif sync is SyncState.KEY_REJECTED:
        p.drawLine(QPointF(32, 16), QPointF(32, 36))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(glyph))
        p.drawEllipse(QPointF(32, 47), 4.5, 4.5)
    elif sync is SyncState.PAUSED:
        p.drawLine(QPointF(25, 20), QPointF(25, 44))
        p.drawLine(QPointF(39, 20), QPointF(39, 44))
    elif sync is SyncState.AGENT_DOWN:
        p.setPen(_pen(glyph, 6))
        p.drawLine(QPointF(23, 23), QPointF(41, 41))
        p.drawLine(QPointF(41, 23), QPointF(23, 41))
    elif sync is SyncState.STARTING:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(glyph))
        for x in (21, 32, 43):
            p.drawEllipse(QPointF(x, 32), 4, 4)

    if state.recording:
        # Bottom right, where no glyph reaches, in a hole cut through the disc: it reads
        # as a dot of its own even on the red disc, and never hides the state's glyph.
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Clear)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(Qt.GlobalColor.black))
        p.drawEllipse(RECORDING_AT, 15, 15)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
        p.setBrush(QBrush(RECORDING))
        p.drawEllipse(RECORDING_AT, 11, 11)  # large enough to read at 16 px


# Kept for the last few states shown, not all 14: each holds ~100 KB of pixmaps for the tray's
# lifetime, and a tray flips between two or three (synced ⇄ recording, waiting); drawing
# another again takes a few milliseconds.
@lru_cache(maxsize=4)
def icon(state: IconState) -> QIcon:
    result = QIcon()
    for size in SIZES:
        result.addPixmap(render(state, size))
    return result


def app_icon() -> QIcon:
    return icon(IconState(SyncState.SYNCED, recording=True))


def export(directory: Path) -> list[Path]:
    """Write every state at 64 px, and the app icon at 256 px, as PNG files."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for sync in SyncState:
        for recording in (False, True):
            if recording and sync in (SyncState.STARTING, SyncState.AGENT_DOWN, SyncState.PAUSED):
                continue  # never shown: nothing records in these states (state.icon_state)
            s = IconState(sync, recording)
            path = directory / f"tray-{s.name}.png"
            render(s, 64).save(str(path))
            written.append(path)
    path = directory / "hackatime-desktop.png"
    render(IconState(SyncState.SYNCED, recording=True), 256).save(str(path))
    written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication(sys.argv[:1])
    for written_path in export(Path(sys.argv[1] if len(sys.argv) > 1 else "resources/icons")):
        print(written_path)
