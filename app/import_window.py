"""The Import window: bring years of WakaTime or Hackatime history in from an export file.

Choose the file or drop it on the window; the agent reads it (``agent.imports``) while this
window shows how far it is (bytes, heartbeats, rate, time left), can cancel it, and then
says what was imported and how long the upload takes at Hackatime's limits. Progress comes
from the agent's status (``import_run``), which the model refreshes on every change the
agent announces, so the window polls nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from agent import contract as C
from agent.imports.report import progress_line, upload_time

from .client import AgentError
from .model import AgentModel

FILE_FILTER = "Exports (*.json *.json.gz *.gz *.zip);;All files (*)"
READING = "reading"


def _label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class ImportWindow(QWidget):
    """Choose or drop a file, watch it import, cancel, read the summary."""

    started = Signal(str)  # the agent accepted the file: its path
    progressed = Signal(object)  # an ImportProgress while reading
    finished = Signal(object)  # the final ImportProgress (done, broken, refused or cancelled)
    refused = Signal(str)  # the agent would not start it (another import runs, no agent): why
    held_queued = Signal(object)  # a HeldUploadAnswer: history kept local was queued for upload

    def __init__(
        self,
        model: AgentModel,
        *,
        choose_file: Callable[[QWidget], str] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.choose_file = choose_file or _ask_for_file
        self.run: C.ImportProgress | None = None
        self._watching: int | None = None  # the id of the run this window started or follows
        self._announced = False  # the watched run's end was shown (and ``finished`` emitted)
        self.setWindowTitle("Hackatime — Import history")
        self.setAcceptDrops(True)
        self.setMinimumWidth(520)

        self.intro = _label(
            "Import a WakaTime heartbeats export, a Hackatime v1 (waka.hackclub.com) dump or Hackatime's "
            "own export: .json, .json.gz or .zip. Drop the file here, or choose it."
        )
        self.choose = QPushButton("Choose file…")
        self.choose.clicked.connect(self._choose)
        self.local = QCheckBox("Keep them on this computer (do not upload)")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.line = _label()
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(self._cancel)
        self.summary = _label()
        self.upload = _label()
        # History imported earlier with "keep them on this computer" can still go up.
        self.held = _label()
        self._held_note = ""
        self.upload_held = QPushButton("Upload them")
        self.upload_held.clicked.connect(self._upload_held)
        held = QHBoxLayout()
        held.addWidget(self.held, 1)
        held.addWidget(self.upload_held)

        buttons = QHBoxLayout()
        buttons.addWidget(self.choose)
        buttons.addWidget(self.local)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel)
        layout = QVBoxLayout(self)
        for widget in (self.intro, self.bar, self.line, self.summary, self.upload):
            layout.addWidget(widget)
        layout.addLayout(held)
        layout.addLayout(buttons)
        layout.addStretch(1)

        model.changed.connect(self._from_status)
        self._show(None)
        self._show_held(0)
        self._from_status()

    # ---- starting -------------------------------------------------------------------------

    def _choose(self) -> None:
        path = self.choose_file(self)
        if path:
            self.start(path)

    def start(self, path: str) -> None:
        """Ask the agent to import ``path`` (the agent reads the file itself)."""
        path = str(Path(path).expanduser().resolve())
        upload = not self.local.isChecked()
        self.choose.setEnabled(False)
        self._watching, self._announced = -1, False  # until the agent names the new run
        self.summary.setText(f"Starting the import of {Path(path).name}…")
        self.upload.clear()

        def call() -> C.ImportAnswer:
            answer: C.ImportAnswer = self.model.client.request(C.IMPORT_START, {"path": path, "upload": upload})
            return answer

        self.model.runner.run(call, self._on_started, self._on_refused, context=self, name="import-start")

    def _on_started(self, answer: C.ImportAnswer) -> None:
        run = answer["run"]
        if run is not None:
            self._watching = run["id"]
            self.started.emit(run["path"])
            self._take(run)
        self.model.refresh(stats=False)

    def _on_refused(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, AgentError) else f"the import could not start ({exc})"
        self.choose.setEnabled(True)
        self.summary.setText(message[:1].upper() + message[1:])
        self.refused.emit(message)

    def _cancel(self) -> None:
        self.cancel.setEnabled(False)
        self.model.runner.run(
            lambda: self.model.client.request(C.IMPORT_CANCEL), self._on_cancel_answer, self._on_refused, context=self
        )

    def _on_cancel_answer(self, answer: C.ImportAnswer) -> None:
        if answer["run"] is not None:
            self._take(answer["run"])

    # ---- following the run ------------------------------------------------------------------

    def _from_status(self) -> None:
        status = self.model.status
        if status is None:
            return
        run = status.get("import_run")
        if run is not None and (self._watching is None or run["id"] == self._watching):
            self._watching = run["id"]
            self._take(run)
        self._show_upload(status.get("history_upload"))
        self._show_held(status.get("history_held", 0))

    def _take(self, run: C.ImportProgress) -> None:
        if self._announced and run["state"] == READING:
            return  # an answer older than the final one it already showed
        self.run = run
        self._show(run)
        if run["state"] == READING:
            self.progressed.emit(run)
        elif not self._announced:
            self._announced = True
            self.finished.emit(run)

    def _show(self, run: C.ImportProgress | None) -> None:
        reading = run is not None and run["state"] == READING
        self.choose.setEnabled(not reading)
        self.local.setEnabled(not reading)
        self.cancel.setEnabled(reading)
        self.bar.setVisible(run is not None)
        if run is None:
            self.line.setText("")
            return
        total = max(1, run["bytes_total"])
        self.bar.setValue(int(1000 * min(run["bytes_read"], total) / total))
        self.line.setText(progress_line(run))
        if reading:
            self.summary.setText(f"Importing {Path(run['path']).name}…")
        else:
            self.summary.setText(summary_text(run))

    def _show_upload(self, waiting: C.HistoryUpload | None) -> None:
        if waiting:
            self.upload.setText(
                f"{waiting['pending']:,} imported heartbeats are still to upload: "
                f"{upload_time(waiting['seconds'])} at Hackatime's limits. Heartbeats you make now go first."
            )
        elif self.run is not None and self.run["state"] != READING:
            self.upload.setText("" if not self.run["upload"] else "Nothing imported is waiting to upload.")

    def _show_held(self, held: int) -> None:
        self.upload_held.setVisible(held > 0)
        if held:
            self.held.setText(f"{held:,} imported heartbeats are kept on this computer and not uploaded.")
        else:
            self.held.setText(self._held_note)  # what the last Upload them queued, if anything
        self.held.setVisible(bool(self.held.text()))

    def _upload_held(self) -> None:
        self.upload_held.setEnabled(False)

        def call() -> C.HeldUploadAnswer:
            answer: C.HeldUploadAnswer = self.model.client.request(C.IMPORT_UPLOAD_HELD)
            return answer

        self.model.runner.run(call, self._on_held_queued, self._on_held_refused, context=self, name="upload-held")

    def _on_held_queued(self, answer: C.HeldUploadAnswer) -> None:
        self.upload_held.setEnabled(True)
        if answer["queued"]:
            self._held_note = (
                f"Queued {answer['queued']:,} imported heartbeats for upload: "
                f"{upload_time(answer['upload_seconds'])} at Hackatime's limits. Heartbeats you make now go first."
            )
        self._show_held(0)
        self.held_queued.emit(answer)
        self.model.refresh(stats=False)

    def _on_held_refused(self, exc: BaseException) -> None:
        self.upload_held.setEnabled(True)
        message = str(exc) if isinstance(exc, AgentError) else f"the upload could not be queued ({exc})"
        self.held.setText(message[:1].upper() + message[1:])

    # ---- drag and drop ----------------------------------------------------------------------

    # Word-wrapped lines that grow (a summary, a progress line) need a taller window, which Qt
    # does not work out for a window already shown: at the height it had, they overlapped.
    def event(self, event: QEvent) -> bool:
        handled = super().event(event)
        if event.type() == QEvent.Type.LayoutRequest:
            self._fit_height()
        return handled

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_height()

    def _fit_height(self) -> None:
        """At least the height the wrapped text needs at the window's width."""
        layout = self.layout()
        if layout is not None:
            self.setMinimumHeight(layout.totalHeightForWidth(self.width()))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _dropped_file(event) is not None and self.choose.isEnabled():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = _dropped_file(event)
        if path is not None and self.choose.isEnabled():
            event.acceptProposedAction()
            self.start(path)


def summary_text(run: C.ImportProgress) -> str:
    """The run's outcome in a sentence or two."""
    source = run["format_name"] or "the file"
    counts = (
        f"{run['imported']:,} new heartbeats from {source} ({run['read']:,} read: "
        f"{run['duplicates']:,} already stored, {run['invalid']:,} invalid)."
    )
    state = run["state"]
    if state == "done":
        text = f"Done: {counts}"
        if not run["upload"]:
            text += " Kept on this computer: they are in your stats and are not uploaded (you can upload them later)."
    elif state == "cancelled":
        text = f"Cancelled: {counts} Import the same file again to carry on where it stopped."
    elif state == "broken":
        text = f"The file breaks off: {run['problem']}."
    else:
        text = f"Not imported: {run['problem']}."
    # How long the upload takes is the line under this one (``_show_upload``): it counts down
    # from the agent's status, where a figure here would only repeat it, then go stale.
    if run["errors"]:
        first = run["errors"][0]
        text += f" First problem: heartbeat {first['heartbeat']:,}: {first['error']}."
    return text


def _dropped_file(event: QDragEnterEvent | QDropEvent) -> str | None:
    urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
    files = [u.toLocalFile() for u in urls if u.isLocalFile()]
    return files[0] if len(files) == 1 else None


def _ask_for_file(parent: QWidget) -> str:
    path, _ = QFileDialog.getOpenFileName(parent, "Import history", str(Path.home()), FILE_FILTER)
    return path
