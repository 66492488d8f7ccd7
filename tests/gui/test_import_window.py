"""The Import window as a person uses it: offscreen Qt, a real agent in-process, real export files."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLabel, QWidget
from pytestqt.qtbot import QtBot

from app.import_window import ImportWindow
from app.model import AgentModel
from app.windows import WINDOWS
from tests.exports import exported, write_export
from tests.standin import Fault

DAILY = Path(__file__).resolve().parents[1] / "data" / "wakatime-daily-totals-export.json"


def open_window(qtbot: QtBot, model: AgentModel, path: Path | None = None) -> ImportWindow:
    window = ImportWindow(model, choose_file=lambda w: str(path) if path else "")
    qtbot.addWidget(window)
    window.show()
    return window


def test_choose_a_file_watch_it_import_and_read_the_summary(
    qtbot: QtBot, model: AgentModel, agent: Any, tmp_path: Path
) -> None:
    path = write_export(tmp_path / "wakatime.json.gz", "wakatime", exported("wakatime", 12_000), gz=True)
    window = open_window(qtbot, model, path)
    seen: list[dict[str, Any]] = []
    window.progressed.connect(seen.append)
    with qtbot.waitSignal(window.finished, timeout=120_000) as finished:
        qtbot.mouseClick(window.choose, Qt.MouseButton.LeftButton)
    run = finished.args[0]
    assert (run["state"], run["read"], run["imported"]) == ("done", 12_000, 12_000)
    assert agent.store.heartbeat_count() == 12_000
    summary = window.summary.text()
    assert summary.startswith("Done: 12,000 new heartbeats from a WakaTime heartbeats export")
    assert window.bar.value() == 1000 and "12,000 heartbeats" in window.line.text()
    # How long the upload takes is said under it, counting down (the stand-in may already have them all).
    qtbot.waitUntil(lambda: bool(window.upload.text()), timeout=30_000)
    assert window.upload.text().endswith(("at Hackatime's limits. Heartbeats you make now go first.", "to upload."))
    assert window.choose.isEnabled() and not window.cancel.isEnabled()
    for progress in seen:  # every progress shown while reading had rate and bytes
        assert progress["state"] == "reading" and progress["bytes_read"] <= progress["bytes_total"]
    # The summary's extra lines made the window taller instead of running over their neighbours.
    qtbot.waitUntil(lambda: all(lb.height() >= lb.heightForWidth(lb.width()) for lb in wrapped_labels(window)))
    assert_no_overlap(window)


def test_the_summary_says_how_long_the_upload_takes_once(
    qtbot: QtBot, model: AgentModel, agent: Any, standin: Any, tmp_path: Path
) -> None:
    # Hackatime turns the uploads away for an hour: the imported history stays waiting.
    standin.inject(Fault.RATE_LIMITED_429, times=1000, retry_after=3600)
    path = write_export(tmp_path / "wakatime.json.gz", "wakatime", exported("wakatime", 3_000), gz=True)
    window = open_window(qtbot, model, path)
    with qtbot.waitSignal(window.finished, timeout=120_000):
        qtbot.mouseClick(window.choose, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "3,000 imported heartbeats are still to upload" in window.upload.text(), timeout=30_000)
    shown = " ".join(lb.text() for lb in wrapped_labels(window))
    assert shown.count("at Hackatime's limits") == 1 and shown.count("go first") == 1, shown
    assert window.summary.text().startswith("Done: 3,000 new heartbeats")


def wrapped_labels(window: ImportWindow) -> list[QLabel]:
    return [lb for lb in window.findChildren(QLabel) if lb.isVisible() and lb.wordWrap() and lb.text()]


def assert_no_overlap(window: ImportWindow) -> None:
    shown = [w for w in window.findChildren(QWidget) if w.isVisible() and w.parent() is window]
    for i, a in enumerate(shown):
        for b in shown[i + 1 :]:
            assert not a.geometry().intersects(b.geometry()), f"{a.objectName() or a} overlaps {b.objectName() or b}"


def test_cancel_stops_the_import_and_the_same_file_carries_on(
    qtbot: QtBot, model: AgentModel, agent: Any, tmp_path: Path
) -> None:
    path = write_export(tmp_path / "big.json.gz", "wakatime", exported("wakatime", 60_000), gz=True)
    window = open_window(qtbot, model, path)
    window.local.setChecked(True)
    with qtbot.waitSignal(window.started, timeout=30_000):
        qtbot.mouseClick(window.choose, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(window.cancel.isEnabled, timeout=30_000)
    with qtbot.waitSignal(window.finished, timeout=120_000) as finished:
        qtbot.mouseClick(window.cancel, Qt.MouseButton.LeftButton)
    first = finished.args[0]
    if first["state"] == "cancelled":  # a fast machine may have finished first: nothing to carry on
        assert first["read"] < 60_000 and window.summary.text().startswith("Cancelled:")
        with qtbot.waitSignal(window.finished, timeout=120_000) as again:
            qtbot.mouseClick(window.choose, Qt.MouseButton.LeftButton)
        rest = again.args[0]
        assert (rest["state"], rest["read"], rest["imported"]) == ("done", 60_000, 60_000 - first["read"])
    assert agent.store.heartbeat_count() == 60_000
    assert agent.store.counts("hackatime").pending == 0  # kept local


def test_a_daily_totals_export_is_refused_with_what_to_do(qtbot: QtBot, model: AgentModel, agent: Any) -> None:
    window = open_window(qtbot, model, DAILY)
    with qtbot.waitSignal(window.finished, timeout=60_000) as finished:
        qtbot.mouseClick(window.choose, Qt.MouseButton.LeftButton)
    assert finished.args[0]["state"] == "refused"
    assert window.summary.text().startswith("Not imported: this is a WakaTime daily-totals export")
    assert '"Heartbeats"' in window.summary.text() and agent.store.heartbeat_count() == 0


def test_a_file_dropped_on_the_window_is_imported(qtbot: QtBot, model: AgentModel, agent: Any, tmp_path: Path) -> None:
    path = write_export(tmp_path / "hackatime.json", "hackatime", exported("hackatime", 300))
    window = open_window(qtbot, model)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    buttons, keys = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    with warnings.catch_warnings():
        # PySide6 marks QDragEnterEvent's only constructor deprecated; Qt's drag manager uses it too.
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, buttons, keys)
    QApplication.sendEvent(window, enter)  # Qt delivers a drop only where the drag was accepted
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, buttons, keys)
    with qtbot.waitSignal(window.finished, timeout=60_000) as finished:
        QApplication.sendEvent(window, drop)
    assert (finished.args[0]["format"], finished.args[0]["imported"]) == ("hackatime", 300)


def test_the_window_process_knows_the_import_window() -> None:
    assert WINDOWS["import"].label == "The import window"


def test_the_tray_menu_says_how_the_import_and_its_upload_go() -> None:
    from app import state

    reading: Any = {"state": "reading", "bytes_read": 250, "bytes_total": 1000, "read": 12_345}
    assert state.import_lines({"import_run": reading}) == ["Importing history: 25 % · 12,345 heartbeats read"]  # type: ignore[typeddict-item]
    waiting: Any = {"import_run": {**reading, "state": "done"}, "history_upload": {"pending": 900_000, "seconds": 3400}}
    assert state.import_lines(waiting) == ["Uploading imported history: 900,000 left · about 56 mins"]
    small = {**waiting, "history_upload": {"pending": 500, "seconds": 0.0}}
    assert state.import_lines(small) == ["Uploading imported history: 500 left · under 1 min"]
    assert state.import_lines({**waiting, "history_upload": None}) == []


def test_history_kept_local_is_offered_for_upload_and_queued_by_the_button(
    qtbot: QtBot, model: AgentModel, agent: Any, tmp_path: Path
) -> None:
    path = write_export(tmp_path / "h.json", "hackatime", exported("hackatime", 200))
    window = open_window(qtbot, model, path)
    assert not window.upload_held.isVisible()  # nothing held yet
    window.local.setChecked(True)
    with qtbot.waitSignal(window.finished, timeout=60_000) as finished:
        qtbot.mouseClick(window.choose, Qt.MouseButton.LeftButton)
    assert finished.args[0]["imported"] == 200 and "upload them later" in window.summary.text()
    qtbot.waitUntil(window.upload_held.isVisible, timeout=30_000)
    assert window.held.text().startswith("200 imported heartbeats are kept on this computer")
    with qtbot.waitSignal(window.held_queued, timeout=30_000) as queued:
        qtbot.mouseClick(window.upload_held, Qt.MouseButton.LeftButton)
    assert queued.args[0]["queued"] == 200 and agent.store.held_count() == 0
    # A status fetched before the click may still show them held; the next one no longer does.
    qtbot.waitUntil(lambda: model.status is not None and model.status.get("history_held") == 0, timeout=30_000)
    assert not window.upload_held.isVisible()
    assert window.held.text().startswith("Queued 200 imported heartbeats for upload: under a minute")
    qtbot.waitUntil(lambda: agent.store.counts("hackatime").sent == 200, timeout=60_000)  # and they go up
