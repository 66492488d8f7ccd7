# The two commands a newcomer needs: `make run` and `make test`.
# Both bootstrap everything on a fresh Debian/Ubuntu machine (venv, locked Python
# dependencies, the system libraries Qt needs) and are safe to run again.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian packages Qt needs even offscreen; what a real window needs; what the real-tray test needs.
QT_DEBS := libgl1 libegl1 libxkbcommon0 libglib2.0-0 libfontconfig1 libfreetype6 libdbus-1-3 fonts-dejavu-core
XCB_DEBS := libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 \
	libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xinerama0
TRAY_DEBS := xvfb openbox trayer x11-utils xdotool wmctrl imagemagick

.PHONY: run test lint system-deps venv bench clean

run: venv
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		packaging/system-deps.sh $(QT_DEBS) $(XCB_DEBS) && exec $(BIN)/hackatime-desktop; \
	else exec $(BIN)/hackatime-agent run; fi

test: system-deps venv lint
	$(BIN)/python -m pytest
	packaging/tray-test.sh $(BIN)/python

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

system-deps:
	@packaging/system-deps.sh $(QT_DEBS) $(XCB_DEBS) $(TRAY_DEBS)

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
