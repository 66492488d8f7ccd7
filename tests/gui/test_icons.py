"""One icon per state, told apart by shape as well as colour; the shipped PNGs match the drawings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QImage

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
    assert shipped == drawn
