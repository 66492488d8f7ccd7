"""One icon per state, told apart by shape as well as colour; the shipped PNGs match the drawings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QColor, QImage, QPainter

from app import icons
from app.state import IconState, SyncState

RESOURCES = Path(__file__).resolve().parents[2] / "resources" / "icons"
SHOWN = [IconState(s) for s in SyncState] + [
    IconState(s, recording=True)
    for s in (SyncState.SYNCED, SyncState.WAITING, SyncState.OFFLINE, SyncState.KEY_REJECTED)
]


def grey(image: QImage) -> bytes:
    """The image without colour: what a colour-blind user or a monochrome panel still sees."""
    return bytes(image.convertToFormat(QImage.Format.Format_Grayscale8).constBits())


def test_every_state_has_its_own_icon_even_in_grey(qapp: Any) -> None:
    images = {s: icons.render(s, 32).toImage() for s in SHOWN}
    assert len({grey(i) for i in images.values()}) == len(SHOWN)
    for size in icons.SIZES:
        assert icons.icon(IconState(SyncState.SYNCED)).pixmap(size, size).width() == size


@pytest.mark.parametrize("state", SHOWN, ids=lambda s: s.name)
def test_shipped_png_matches_the_drawing(qapp: Any, state: IconState) -> None:
    shipped = QImage(str(RESOURCES / f"tray-{state.name}.png"))
    assert not shipped.isNull(), "run: python -m app.icons resources/icons"
    drawn = icons.render(state, 64).toImage().convertToFormat(shipped.format())
    assert (drawn.size(), drawn.format()) == (shipped.size(), shipped.format())
    # Qt's raster engine rounds antialiased edges by one step differently on some CPUs (its
    # AVX-512 paths): within 2 of 255 per channel is the same drawing; a changed one moves far more.
    differs = [abs(a - b) for a, b in zip(bytes(shipped.constBits()), bytes(drawn.constBits()), strict=True)]
    assert max(differs) <= 2, f"{sum(d > 2 for d in differs)} channel values differ, by up to {max(differs)}"


PANELS = {"light": QColor("#f2f2f2"), "dark": QColor("#2b2d30")}


def on_panel(state: IconState, size: int, panel: QColor) -> QImage:
    """The icon as a panel shows it: drawn over the panel's colour."""
    image = QImage(size, size, QImage.Format.Format_RGB32)
    image.fill(panel)
    painter = QPainter(image)
    painter.drawPixmap(0, 0, icons.render(state, size))
    painter.end()
    return image


@pytest.mark.parametrize("size", [16, 22, 32])
@pytest.mark.parametrize("panel", PANELS, ids=str)
def test_icons_read_at_tray_sizes_on_light_and_dark_panels(qapp: Any, size: int, panel: str) -> None:
    for state in SHOWN:
        image = on_panel(state, size, PANELS[panel])
        # the icon stands out from the panel: enough of its pixels differ clearly in lightness
        differing = sum(
            abs(image.pixelColor(x, y).lightness() - PANELS[panel].lightness()) >= 45
            for x in range(size)
            for y in range(size)
        )
        assert differing >= size * size // 6, (state.name, differing)
        if not state.recording:
            continue
        # the recording dot leaves the state's glyph alone: only the bottom-right corner changes
        plain = on_panel(IconState(state.sync), size, PANELS[panel])
        changed = [(x, y) for x in range(size) for y in range(size) if image.pixelColor(x, y) != plain.pixelColor(x, y)]
        assert changed and all(x >= size * 0.45 and y >= size * 0.45 for x, y in changed), state.name
