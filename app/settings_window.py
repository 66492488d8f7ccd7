"""The settings window: the account's key, watched folders, editors, the agent and the system.

Every change goes through the agent's control API and applies at once; the agent
validates, and its refusal (a malformed or rejected key, no keyring, a file it
cannot edit) is shown in place, next to what was changed, in its own words. All
calls run on the background helper (:class:`app.tasks.TaskRunner`), so the window
never waits on the network. The window never holds a stored key: it shows the
agent's mask, and only the key being typed can be revealed or copied.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from agent import contract as C
from agent.intake_port import HIGHEST as HIGHEST_PORT
from agent.intake_port import LOWEST as LOWEST_PORT
from agent.oauth import LoopbackSignIn, SignedIn, SignInError, needs_client_id

from . import autostart
from .client import AgentClient, AgentError
from .tasks import TaskRunner

CHECK_DELAY_MS = 400  # typing pauses this long before the key is checked with the server
PAUSE_HOURS = 1

Loaded = tuple[C.Status, C.KeyAnswer, C.EditorRouting | str, C.CaptureRules, C.Preferences]


# Where the key in use was found (the agent's names for it), as a person reads it.
KEY_SOURCES = {
    "given": "given on the command line",
    "WAKATIME_API_KEY": "from the WAKATIME_API_KEY environment variable",
    "keyring": "from the system keyring",
    "settings (plaintext)": "from this app's settings file (not encrypted)",
    "api_key_vault_cmd": "from api_key_vault_cmd in ~/.wakatime.cfg",
    "wakatime.cfg": "from ~/.wakatime.cfg",
}


def _key_words(masked: str) -> str:
    """The agent's "<hidden>6f70" as words: "key ending in 6f70"."""
    last = masked.removeprefix("<hidden>")
    return f"key ending in {last}" if last else "a key"


def _label(text: str = "", *, wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(wrap)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class SettingsWindow(QWidget):
    """Tabs: Account, Tracking, Editors, Agent, System."""

    loaded = Signal()  # the first answers are in (tests and the window process wait on it)
    key_checked = Signal(object)  # a KeyCheckAnswer for the key being typed
    applied = Signal(str)  # a change was made: its name (key, forget, route, undo, watch, pause)
    refused = Signal(str, str)  # a change was refused: its name, the reason

    def __init__(
        self,
        client: AgentClient,
        runner: TaskRunner,
        *,
        open_url: Callable[[QUrl], object] = QDesktopServices.openUrl,
        choose_folder: Callable[[QWidget], str] | None = None,
        config_dir: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.client = client
        self.runner = runner
        self.open_url = open_url
        self.choose_folder = choose_folder or (lambda w: QFileDialog.getExistingDirectory(w, "Watch a folder"))
        self.status: C.Status | None = None
        self.key: C.KeyAnswer | None = None
        self.editors: C.EditorRouting | None = None
        self.preferences: C.Preferences | None = None
        self._loaded = False
        self.config_dir = config_dir
        self._signing: LoopbackSignIn | None = None
        self.setWindowTitle("Hackatime — Settings")
        self.tabs = QTabWidget(self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        self.tabs.addTab(self._account_tab(), "Account")
        self.tabs.addTab(self._tracking_tab(), "Tracking")
        self.tabs.addTab(self._editors_tab(), "Editors")
        self.tabs.addTab(self._agent_tab(), "Agent")
        self.tabs.addTab(self._system_tab(), "System")
        self._check_timer = QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(CHECK_DELAY_MS)
        self._check_timer.timeout.connect(self._check_typed_key)
        self.reload()

    def is_ready(self) -> bool:
        return self._loaded

    # ---- talking to the agent -------------------------------------------------------------------

    def _call(
        self,
        name: str,
        func: Callable[[], Any],
        done: Callable[[Any], None],
        where: QLabel | None = None,
        undo: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Run ``func`` off the GUI thread; on refusal show the agent's reason in ``where``
        (after ``undo`` put back what the refused change showed)."""

        def failed(exc: BaseException) -> None:
            reason = str(exc) if isinstance(exc, AgentError) else f"{type(exc).__name__}: {exc}"
            if undo is not None:
                undo(exc)
            if where is not None:
                where.setText(reason)
                where.setStyleSheet("color: #c0392b")
            self.refused.emit(name, reason)
            if isinstance(exc, AgentError):
                self._on_refusal(name, exc)

        def succeeded(value: Any) -> None:
            if where is not None:
                where.setStyleSheet("")
            done(value)

        self.runner.run(func, succeeded, failed, context=self, name=f"settings-{name}")

    def reload(self) -> None:
        def fetch() -> Loaded:
            status = self.client.status()
            key: C.KeyAnswer = self.client.request(C.KEY)
            rules: C.CaptureRules = self.client.request(C.CAPTURE)
            preferences: C.Preferences = self.client.request(C.PREFERENCES)
            try:
                editors: C.EditorRouting | str = self.client.request(C.EDITORS)
            except AgentError as exc:  # an unreadable ~/.wakatime.cfg: said on the Editors tab
                editors = str(exc)
            return status, key, editors, rules, preferences

        self._call("load", fetch, self._show_all, self.account_reason)

    def _show_all(self, answers: Loaded) -> None:
        status, key, editors, rules, preferences = answers
        self._show_capture(rules)
        self.status, self.key = status, key
        self._show_preferences(preferences)
        self._show_key(key)
        self._show_tracking(status)
        self._show_editors(editors)
        self._show_agent(status)
        self._show_system(status)
        if not self._loaded:
            self._loaded = True
            self.loaded.emit()

    def _on_refusal(self, name: str, exc: AgentError) -> None:
        if name == "key" and exc.details.get("no_keyring"):
            self.store_choice.show()  # no keyring here: the user picks where the key goes, knowingly

    # ---- Account ------------------------------------------------------------------------------------

    def _account_tab(self) -> QWidget:
        tab = QWidget()
        form = QFormLayout(tab)
        self.server_edit = QLineEdit()
        self.server_edit.setPlaceholderText("https://hackatime.hackclub.com/api/hackatime/v1")
        self.server_button = QPushButton("Use this server")
        self.server_button.clicked.connect(self._set_server)
        server_row = QHBoxLayout()
        server_row.addWidget(self.server_edit, 1)
        server_row.addWidget(self.server_button)
        form.addRow("Server", server_row)
        self.server_reason = _label("Hackatime by default; any WakaTime-compatible API URL works.")
        form.addRow("", self.server_reason)
        self.key_label = _label()
        form.addRow("API key", self.key_label)
        self.account_reason = _label()
        form.addRow("", self.account_reason)

        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("Paste a new key to replace the one in use")
        self.key_edit.textChanged.connect(self._key_typed)
        self.reveal_button = QPushButton("Reveal")
        self.reveal_button.setCheckable(True)
        self.reveal_button.toggled.connect(
            lambda on: self.key_edit.setEchoMode(QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password)
        )
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.key_edit.text().strip()))
        row = QHBoxLayout()
        row.addWidget(self.key_edit, 1)
        row.addWidget(self.reveal_button)
        row.addWidget(self.copy_button)
        form.addRow("Replace", row)
        self.typed_verdict = _label()
        form.addRow("", self.typed_verdict)

        self.store_choice = QWidget()
        choice = QVBoxLayout(self.store_choice)
        choice.setContentsMargins(0, 0, 0, 0)
        choice.addWidget(_label("No OS keyring works on this system. Keep the key in plain text:"))
        self.store_group = QButtonGroup(self)
        for value, text in (
            ("wakatime-cfg", "in ~/.wakatime.cfg, where editor plugins already read it"),
            ("file", "in a file only you can read, in this app's settings folder"),
        ):
            radio = QRadioButton(text)
            radio.setProperty("store", value)
            self.store_group.addButton(radio)
            choice.addWidget(radio)
        self.store_choice.hide()
        form.addRow("", self.store_choice)

        buttons = QHBoxLayout()
        self.save_key_button = QPushButton("Use this key")
        self.save_key_button.setEnabled(False)
        self.save_key_button.clicked.connect(self._save_key)
        self.get_key_button = QPushButton("Get my key")
        self.get_key_button.clicked.connect(self._get_my_key)
        self.forget_button = QPushButton("Forget the stored key")
        self.forget_button.clicked.connect(self._forget_key)
        for button in (self.save_key_button, self.get_key_button, self.forget_button):
            buttons.addWidget(button)
        form.addRow("", buttons)

        client_id_row = QHBoxLayout()
        self.client_id_edit = QLineEdit()
        self.client_id_edit.setPlaceholderText("this app's client id at the server's /oauth/applications")
        self.client_id_button = QPushButton("Save")
        self.client_id_button.clicked.connect(self._save_client_id)
        client_id_row.addWidget(self.client_id_edit, 1)
        client_id_row.addWidget(self.client_id_button)
        form.addRow("OAuth client id", client_id_row)
        signin = QHBoxLayout()
        self.sign_in_button = QPushButton("Sign in with Hackatime")
        self.sign_in_button.clicked.connect(self._sign_in)
        self.sign_out_button = QPushButton("Sign out")
        self.sign_out_button.clicked.connect(self._sign_out)
        signin.addWidget(self.sign_in_button)
        signin.addWidget(self.sign_out_button)
        signin.addStretch(1)
        form.addRow("", signin)
        self.signin_label = _label(
            "Signing in opens your browser; the key of your account is then fetched and used here."
        )
        form.addRow("", self.signin_label)
        return tab

    def _show_key(self, key: C.KeyAnswer) -> None:
        url = self.status["destinations"][0]["url"] if self.status and self.status["destinations"] else ""
        if not self.server_edit.hasFocus():
            self.server_edit.setText(url)
        signed_in = bool(key.get("signed_in"))
        self.sign_out_button.setEnabled(signed_in)
        if signed_in and self._signing is None and not self.signin_label.text().startswith("Signed in as"):
            self.signin_label.setText(
                "Signed in with Hackatime: the all-time projects (archived ones too), total and streak "
                "come from your account."
            )
        if not key["configured"]:
            self.key_label.setText("no key is set: heartbeats are kept until one is")
            if not self._loaded:  # opened with no key at all: at the key, ready for a paste
                self.tabs.setCurrentIndex(0)
                self.key_edit.setFocus()
            return
        state = {"ok": "accepted", "rejected": "rejected by the server", "unknown": "not checked yet"}.get(
            key["auth_state"], key["auth_state"]
        )
        source = str(key["source"])
        text = f"{_key_words(key['masked'])}, {KEY_SOURCES.get(source, 'from ' + source)} — {state}"
        if key["auth_state"] == "rejected" and key["next_check_in"] is not None:
            text += f"; checked again in {max(1, round(key['next_check_in'] / 60))} min"
        self.key_label.setText(text)

    def _key_typed(self, text: str) -> None:
        self.save_key_button.setEnabled(False)
        self.typed_verdict.setText("checking…" if text.strip() else "")
        if text.strip():
            self._check_timer.start()
        else:
            self._check_timer.stop()

    def _check_typed_key(self) -> None:
        typed = self.key_edit.text().strip()
        if not typed:
            return

        def checked(answer: C.KeyCheckAnswer) -> None:
            if self.key_edit.text().strip() != typed:
                return  # typed on meanwhile: a newer check is on its way
            self.typed_verdict.setText(answer["reason"])
            self.typed_verdict.setStyleSheet("" if answer["verdict"] == "accepted" else "color: #c0392b")
            self.save_key_button.setEnabled(answer["verdict"] == "accepted")
            self.key_checked.emit(answer)

        self._call("check", lambda: self.client.request(C.KEY_CHECK, {"key": typed}), checked, self.typed_verdict)

    def _save_key(self) -> None:
        typed = self.key_edit.text().strip()
        chosen = self.store_group.checkedButton()
        store = str(chosen.property("store")) if chosen is not None and self.store_choice.isVisible() else "keyring"

        def saved(answer: C.KeySetAnswer) -> None:
            self.key_edit.clear()
            self.store_choice.hide()
            self.typed_verdict.setText(
                f"Saved: {answer['stored']}" + (f" — {answer['warning']}" if answer["warning"] else "")
            )
            self.applied.emit("key")
            self.reload()

        body = {"key": typed, "store": store, "check": True}
        self._call("key", lambda: self.client.request(C.KEY_SET, body), saved, self.typed_verdict)

    def _forget_key(self) -> None:
        def forgotten(answer: C.KeyForgetAnswer) -> None:
            self.account_reason.setText(f"The key was {answer['forgotten']}.")
            self.applied.emit("forget")
            self.reload()

        self._call("forget", lambda: self.client.request(C.KEY_FORGET), forgotten, self.account_reason)

    def _set_server(self) -> None:
        url = self.server_edit.text().strip()

        def done(answer: C.ServerAnswer) -> None:
            self.server_reason.setText(
                f"Heartbeats now go to {answer['api_url']}; the key there: {answer['check']['reason']}"
            )
            self.applied.emit("server")
            self.reload()

        self._call("server", lambda: self.client.request(C.SERVER, {"api_url": url}), done, self.server_reason)

    def _origin(self) -> str:
        url = self.status["destinations"][0]["url"] if self.status and self.status["destinations"] else ""
        parts = urlsplit(url or "https://hackatime.hackclub.com")
        return urlunsplit((parts.scheme, parts.netloc, "", "", ""))

    def _get_my_key(self) -> None:
        self.open_url(QUrl(self._origin() + "/api-key"))

    # ---- Sign in with Hackatime (OAuth 2 + PKCE, agent.oauth) -------------------------------------------

    def _client_id(self) -> str:
        return self.preferences["oauth_client_id"] if self.preferences is not None else ""

    def _show_preferences(self, preferences: C.Preferences) -> None:
        self.preferences = preferences
        if not self.client_id_edit.hasFocus():
            self.client_id_edit.setText(preferences["oauth_client_id"])
        self.notifications_box.blockSignals(True)
        self.notifications_box.setChecked(preferences["notifications"])
        self.notifications_box.blockSignals(False)
        if self._signing is None:
            self.sign_in_button.setEnabled(bool(preferences["oauth_client_id"]))
            if not preferences["oauth_client_id"]:
                self.signin_label.setText(needs_client_id(self._origin()))

    def _set_preferences(self, name: str, changes: dict[str, Any], where: QLabel, done: Callable[[], None]) -> None:
        def saved(preferences: C.Preferences) -> None:
            self._show_preferences(preferences)
            done()
            self.applied.emit(name)

        def refused(exc: BaseException) -> None:
            if self.preferences is not None:
                self._show_preferences(self.preferences)  # the switch goes back to what is in force

        self._call(name, lambda: self.client.request(C.PREFERENCES_SET, changes), saved, where, refused)

    def _save_client_id(self) -> None:
        typed = self.client_id_edit.text().strip()
        self.client_id_edit.clearFocus()

        def done() -> None:
            if typed:
                self.signin_label.setText("Signing in opens your browser; your account's key is then used here.")

        self._set_preferences("client-id", {"oauth_client_id": typed}, self.signin_label, done)

    def _sign_in(self) -> None:
        origin = self._origin()
        try:
            signing = LoopbackSignIn(origin, self._client_id())
        except SignInError as exc:
            self.signin_label.setText(str(exc))
            self.refused.emit("signin", str(exc))
            return
        self._signing = signing
        self.sign_in_button.setEnabled(False)
        self.signin_label.setText("Waiting for your browser… approve the sign-in there.")
        self.open_url(QUrl.fromEncoded(signing.authorize_url.encode("ascii")))

        def work() -> tuple[SignedIn, C.KeySetAnswer, C.SignInAnswer]:
            signed = signing.finish()
            answer: C.KeySetAnswer = self.client.request(C.KEY_SET, {"key": signed.api_key, "check": True})
            # The agent keeps the token (in the keyring) for the figures only a sign-in gives.
            kept: C.SignInAnswer = self.client.request(C.SIGN_IN, {"token": signed.token})
            return signed, answer, kept

        def done(result: tuple[SignedIn, C.KeySetAnswer, C.SignInAnswer]) -> None:
            signed, answer, kept = result
            finished()
            who = signed.email or f"user {signed.user_id}"
            note = f" (the sign-in is kept until the agent stops: {kept['problem']})" if kept["problem"] else ""
            self.signin_label.setText(
                f"Signed in as {who}; its key ({_key_words(answer['key']['masked'])}) is in use{note}."
            )
            self.applied.emit("signin")
            self.reload()

        def finished(_: BaseException | None = None) -> None:
            self._signing = None
            self.sign_in_button.setEnabled(True)

        self._call("signin", work, done, self.signin_label, finished)

    def _sign_out(self) -> None:
        def done(_: C.SignInAnswer) -> None:
            self.signin_label.setText("Signed out. The API key stays in use until you forget or replace it.")
            self.applied.emit("signout")
            self.reload()

        self._call("signout", lambda: self.client.request(C.SIGN_OUT), done, self.signin_label)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._signing is not None:
            self._signing.cancel()  # the listener stops waiting for a browser nobody will use
            self._signing = None
            self.sign_in_button.setEnabled(True)
        super().closeEvent(event)

    # ---- Tracking -----------------------------------------------------------------------------------

    def _tracking_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.addWidget(
            _label("Saves in these folders are recorded (editors with a WakaTime plugin are recorded anyway):")
        )
        self.folders = QListWidget()
        layout.addWidget(self.folders)
        row = QHBoxLayout()
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.clicked.connect(self._add_folder)
        self.remove_folder_button = QPushButton("Remove")
        self.remove_folder_button.clicked.connect(self._remove_folder)
        row.addWidget(self.add_folder_button)
        row.addWidget(self.remove_folder_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.uncovered = _label()
        layout.addWidget(self.uncovered)
        layout.addWidget(_label("Paths never recorded (one regular expression a line), and exceptions to them:"))
        rules = QHBoxLayout()
        self.exclude_edit = QPlainTextEdit()
        self.include_edit = QPlainTextEdit()
        rules.addWidget(self.exclude_edit)
        rules.addWidget(self.include_edit)
        layout.addLayout(rules)
        self.hide_boxes: dict[str, QCheckBox] = {}
        for name, text in (
            ("hide_file_names", "Hide file names"),
            ("hide_project_names", "Hide project names"),
            ("hide_branch_names", "Hide branch names"),
        ):
            box = QCheckBox(text)
            self.hide_boxes[name] = box
            layout.addWidget(box)
        self.capture_button = QPushButton("Apply these rules")
        self.capture_button.clicked.connect(self._set_capture)
        layout.addWidget(self.capture_button)
        self.capture_reason = _label("Rules in ~/.wakatime.cfg (exclude, include, hide_*) apply as well.")
        layout.addWidget(self.capture_reason)
        self.pause_button = QPushButton()
        self.pause_button.clicked.connect(self._toggle_pause)
        layout.addWidget(self.pause_button)
        self.tracking_reason = _label()
        layout.addWidget(self.tracking_reason)
        return tab

    def _show_tracking(self, status: C.Status) -> None:
        watch = status.get("watch") or {"folders": [], "uncovered": []}
        self._show_watch(watch)
        paused = status.get("paused_until")
        self.pause_button.setText("Resume tracking" if paused else f"Pause tracking for {PAUSE_HOURS} hour")

    def _show_watch(self, watch: C.WatchState) -> None:
        self.folders.clear()
        self.folders.addItems(watch["folders"])
        self.uncovered.setText("\n".join(u["message"] for u in watch["uncovered"]))

    def _show_capture(self, rules: C.CaptureRules) -> None:
        self.exclude_edit.setPlainText("\n".join(rules["exclude"]))
        self.include_edit.setPlainText("\n".join(rules["include"]))
        for name, box in self.hide_boxes.items():
            box.setChecked(bool(rules[name]))  # type: ignore[literal-required]

    def _set_capture(self) -> None:
        def lines(edit: QPlainTextEdit) -> list[str]:
            return [line.strip() for line in edit.toPlainText().splitlines() if line.strip()]

        body: dict[str, Any] = {"exclude": lines(self.exclude_edit), "include": lines(self.include_edit)}
        body.update({name: box.isChecked() for name, box in self.hide_boxes.items()})

        def done(rules: C.CaptureRules) -> None:
            self._show_capture(rules)
            self.capture_reason.setText("Applied: new saves follow these rules.")
            self.applied.emit("capture")

        self._call("capture", lambda: self.client.request(C.CAPTURE_SET, body), done, self.capture_reason)

    def _add_folder(self) -> None:
        folder = self.choose_folder(self)
        if folder:
            self._watch(C.WATCH_ADD, folder)

    def _remove_folder(self) -> None:
        item = self.folders.currentItem()
        if item is not None:
            self._watch(C.WATCH_REMOVE, item.text())

    def _watch(self, route: C.Route, folder: str) -> None:
        def done(answer: C.WatchAnswer) -> None:
            self._show_watch(answer)
            problem = answer.get("problem")
            self.tracking_reason.setText(problem["message"] if problem else "")
            self.applied.emit("watch")

        self._call("watch", lambda: self.client.request(route, {"path": folder}), done, self.tracking_reason)

    def _toggle_pause(self) -> None:
        paused = bool(self.status and self.status.get("paused_until"))
        until = None if paused else time.time() + PAUSE_HOURS * 3600

        def done(status: C.Status) -> None:
            self.status = status
            self._show_tracking(status)
            self.applied.emit("pause")

        self._call("pause", lambda: self.client.pause(until), done, self.tracking_reason)

    # ---- Editors ------------------------------------------------------------------------------------

    def _editors_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        self.editors_state = _label()
        layout.addWidget(self.editors_state)
        row = QHBoxLayout()
        self.route_button = QPushButton("Send editors' heartbeats through this app")
        self.route_button.clicked.connect(lambda: self._editors("route", C.EDITORS_ROUTE))
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(lambda: self._editors("undo", C.EDITORS_UNDO))
        row.addWidget(self.route_button)
        row.addWidget(self.undo_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.editors_reason = _label()
        layout.addWidget(self.editors_reason)
        layout.addStretch(1)
        return tab

    def _show_editors(self, editors: C.EditorRouting | str) -> None:
        if isinstance(editors, str):
            self.editors_state.setText(editors)
            self.route_button.setEnabled(False)
            self.undo_button.setEnabled(False)
            return
        self.editors = editors
        cfg = editors["wakatime_cfg"]
        if editors["routed"]:
            text = (
                f"Editor plugins send their heartbeats to this app ({editors['intake_url']}, set in {cfg}); "
                f"it keeps them when offline and uploads them to {editors['upload_url']}."
            )
        else:
            text = (
                f"Editor plugins send their heartbeats straight to {editors['api_url'] or 'WakaTime'} ({cfg}). "
                "Routing them through this app sets api_url to its intake and heartbeat_rate_limit_seconds "
                "to 0; the file is backed up first and Undo puts both back."
            )
        if editors["backup"]:
            text += f"\nBackup: {editors['backup']}"
        self.editors_state.setText(text)
        self.route_button.setEnabled(not editors["routed"])
        self.undo_button.setEnabled(editors["can_undo"])
        self._show_port_editors()

    def _editors(self, name: str, route: C.Route) -> None:
        def done(answer: C.EditorRouting) -> None:
            self._show_editors(answer)
            self.editors_reason.setText("")
            self.applied.emit(name)

        self._call(name, lambda: self.client.request(route), done, self.editors_reason)

    # ---- Agent and System ------------------------------------------------------------------------------

    def _agent_tab(self) -> QWidget:
        tab = QWidget()
        form = QFormLayout(tab)
        self.intake_label = _label()
        form.addRow("Intake", self.intake_label)
        row = QHBoxLayout()
        self.port_spin = QSpinBox()
        self.port_spin.setRange(LOWEST_PORT, HIGHEST_PORT)
        self.port_button = QPushButton("Use this port")
        self.port_button.clicked.connect(self._set_port)
        row.addWidget(self.port_spin)
        row.addWidget(self.port_button)
        row.addStretch(1)
        form.addRow("Port", row)
        self.port_editors_box = QCheckBox(
            "Point the editors at the new port too (api_url in ~/.wakatime.cfg; the file is backed up first)"
        )
        form.addRow("", self.port_editors_box)
        self.port_reason = _label(
            "Editor plugins routed through this app send their heartbeats to this port (api_url in "
            "~/.wakatime.cfg). A new port is used at once and kept for the next start; editors still "
            "pointed at the old one keep their heartbeats in their offline queue until api_url names the new one."
        )
        form.addRow("", self.port_reason)
        return tab

    def _show_agent(self, status: C.Status) -> None:
        intake = status.get("intake_url")
        self.intake_label.setText(intake or "the agent is not serving")
        port = urlsplit(intake).port if intake else None
        if port is not None and not self.port_spin.hasFocus():
            self.port_spin.setValue(port)
        self._show_port_editors()

    def _show_port_editors(self) -> None:
        # Offered only when the editors send to this agent: there is nothing to move otherwise.
        routed = self.editors is not None and self.editors["routed"]
        self.port_editors_box.setEnabled(routed)
        self.port_editors_box.setChecked(routed)

    def _set_port(self) -> None:
        body = {"port": self.port_spin.value(), "route_editors": self.port_editors_box.isChecked()}

        def moved(answer: C.PortAnswer) -> None:
            text = f"The agent now listens on {answer['intake_url']}."
            if answer["editors"] is not None:
                backup = answer["editors"]["backup"]
                text += " Editors send there now" + (f" (the previous file is in {backup})." if backup else ".")
            if answer["warning"]:
                text += f" Note: {answer['warning']}."
            self.port_reason.setText(text)
            self.applied.emit("port")
            self.reload()

        self._call("port", lambda: self.client.request(C.PORT, body), moved, self.port_reason)

    def _system_tab(self) -> QWidget:
        tab = QWidget()
        form = QFormLayout(tab)
        self.version_label = _label()
        form.addRow("Version", self.version_label)
        self.data_button = QPushButton()
        self.data_button.clicked.connect(lambda: self._open_folder("data_dir"))
        form.addRow("Data folder", self.data_button)
        self.log_button = QPushButton()
        self.log_button.clicked.connect(lambda: self._open_folder("log_dir"))
        form.addRow("Log folder", self.log_button)
        # Start at login is this user's login items, not the agent's: a small local file (or the
        # registry), so it is written here, at once, and read back rather than remembered.
        self.autostart_box = QCheckBox("Start Hackatime Desktop when I log in")
        self.autostart_box.setChecked(autostart.is_enabled())
        self.autostart_box.toggled.connect(self._set_autostart)
        form.addRow("Start at login", self.autostart_box)
        self.autostart_reason = _label()
        form.addRow("", self.autostart_reason)
        self.notifications_box = QCheckBox("Show notifications (the tray's menu and tooltip still tell)")
        self.notifications_box.setChecked(True)
        self.notifications_box.toggled.connect(self._set_notifications)
        form.addRow("Notifications", self.notifications_box)
        self.notifications_reason = _label()
        form.addRow("", self.notifications_reason)
        return tab

    def _set_notifications(self, on: bool) -> None:
        def done() -> None:
            self.notifications_reason.setText("Notifications are shown." if on else "No notifications are shown.")

        self._set_preferences("notifications", {"notifications": on}, self.notifications_reason, done)

    def _set_autostart(self, on: bool) -> None:
        try:
            where = autostart.set_enabled(on)
        except OSError as exc:
            self.autostart_box.blockSignals(True)
            self.autostart_box.setChecked(autostart.is_enabled())
            self.autostart_box.blockSignals(False)
            reason = f"Could not change starting at login: {exc.strerror or exc}"
            self.autostart_reason.setText(reason)
            self.refused.emit("autostart", reason)
            return
        self.autostart_reason.setText(f"{'Starts' if on else 'No longer starts'} at login ({where})")
        self.applied.emit("autostart")

    def _show_system(self, status: C.Status) -> None:
        self.version_label.setText(status["version"])
        self.data_button.setText(status["data_dir"])
        self.log_button.setText(status["log_dir"])

    def _open_folder(self, which: str) -> None:
        if self.status is not None:
            folder = self.status["data_dir"] if which == "data_dir" else self.status["log_dir"]
            self.open_url(QUrl.fromLocalFile(str(Path(folder))))
