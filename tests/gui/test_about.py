"""The About box, from the tray menu: the one version, and where the licences are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl

from agent.version import VERSION
from app.tray import TrayApp


def test_about_shows_the_version_and_the_licences(tray: TrayApp, qtbot: Any) -> None:
    about = tray.find_action("about")
    assert about is not None
    about.trigger()
    box = tray.about_box
    qtbot.waitUntil(box.isVisible, timeout=5000)
    assert f"Hackatime Desktop {VERSION}" in box.text()
    link = box.text().split("<a href='", 1)[1].split("'", 1)[0]
    licences = Path(QUrl(link).toLocalFile())
    assert (licences / "LGPL-3.0.txt").is_file()  # Qt's licence, which the bundle must carry
    assert not box.isModal()  # the tray keeps answering while it is open
    box.close()
