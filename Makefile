# The two commands a newcomer needs: `make run` and `make test`.
# Both bootstrap everything on a fresh Debian/Ubuntu machine (venv, locked Python
# dependencies, the system libraries Qt needs) and are safe to run again.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian packages Qt needs even offscreen (QtNetwork, for the single-instance socket, links
# Kerberos' GSSAPI); what a real X11 window needs (Wayland's come with any Wayland desktop);
# what the real-tray test needs; what the tests that build real Git repositories need.
QT_DEBS := libgl1 libegl1 libxkbcommon0 libglib2.0-0 libfontconfig1 libfreetype6 libdbus-1-3 fonts-dejavu-core \
	libgssapi-krb5-2
XCB_DEBS := libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 \
	libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xinerama0
TRAY_DEBS := xvfb openbox trayer x11-utils xdotool wmctrl imagemagick
TEST_DEBS := git
# PyInstaller writes the bundle's executables with objcopy and strips its libraries with strip.
BUNDLE_DEBS := binutils
# The keyring tests' private session bus and the Secret Service on it (tests/secret_service.py).
KEYRING_DEBS := dbus-daemon gnome-keyring
BUNDLE := dist/hackatime-desktop

.PHONY: run test lint system-deps venv bench clean bundle install-desktop

run: venv
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		packaging/system-deps.sh $(QT_DEBS) $(XCB_DEBS) && exec $(BIN)/hackatime-desktop; \
	else exec $(BIN)/hackatime-agent run; fi

test: system-deps venv lint
	$(BIN)/python -m pytest
	packaging/tray-test.sh $(BIN)/python
	$(MAKE) --no-print-directory bundle
	packaging/bundle-smoke.sh $(BUNDLE) $(BIN)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

system-deps:
	@packaging/system-deps.sh $(QT_DEBS) $(XCB_DEBS) $(TRAY_DEBS) $(TEST_DEBS) $(BUNDLE_DEBS) $(KEYRING_DEBS)

# One folder with both executables (packaging/hackatime-desktop.spec); the libraries Qt's
# platform plugins link to must be on this machine to be copied in.
bundle: venv
	@packaging/system-deps.sh $(QT_DEBS) $(XCB_DEBS) $(BUNDLE_DEBS)
	$(BIN)/pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build packaging/hackatime-desktop.spec

# The application menu entry and icon, for this user (no root), starting this venv's tray.
install-desktop: venv
	$(BIN)/hackatime-desktop --install-desktop

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@# Debian's own python3 ships venv support separately.
	$(PY) -m venv $(VENV) || { packaging/system-deps.sh python3-venv && rm -rf $(VENV) && $(PY) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

bench: venv
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info
