#!/usr/bin/env bash
# Runs the GUI tests marked `tray` as a person meets the tray: Xvfb, a window manager
# (openbox), a system tray (trayer); the tests click with xdotool and look with
# xwininfo / wmctrl / import (ImageMagick).
# Usage: packaging/tray-test.sh PYTHON   (make test calls it with the venv's python)
# Exits non-zero when a test fails or the display or tray cannot be started.
set -euo pipefail
PY="${1:?usage: packaging/tray-test.sh PYTHON}"
cd "$(dirname "$0")/.."

for tool in Xvfb openbox trayer xdotool wmctrl xwininfo import; do
  if ! command -v "$tool" >/dev/null; then
    echo "tray-test: $tool is not installed (run: make system-deps)" >&2
    exit 1
  fi
done

work="$(mktemp -d)"
xvfb_pid=""
wm_pid=""
trayer_pid=""
cleanup() {
  local status=$?
  set +e  # everything below must run, whatever fails
  for pid in $trayer_pid $wm_pid $xvfb_pid; do
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# -displayfd: Xvfb picks a free display number itself and writes it once it accepts
# connections, so parallel runs never collide and there is no start-up race.
Xvfb -displayfd 3 -screen 0 1366x768x24 -nolisten tcp 3>"$work/display" >"$work/xvfb.log" 2>&1 &
xvfb_pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/display" ] && break
  kill -0 "$xvfb_pid" 2>/dev/null || { echo "tray-test: Xvfb failed:" >&2; cat "$work/xvfb.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$work/display" ] || { echo "tray-test: Xvfb did not start" >&2; exit 1; }
export DISPLAY=":$(head -n1 "$work/display")"

# A window manager, as every desktop has: it maps, stacks and titles windows (wmctrl asks it).
openbox --sm-disable >"$work/openbox.log" 2>&1 &
wm_pid=$!
for _ in $(seq 1 100); do
  wmctrl -m >/dev/null 2>&1 && break
  kill -0 "$wm_pid" 2>/dev/null || { echo "tray-test: openbox failed:" >&2; cat "$work/openbox.log" >&2; exit 1; }
  sleep 0.1
done
wmctrl -m >/dev/null 2>&1 || { echo "tray-test: no window manager came up" >&2; exit 1; }

# A plain XEmbed tray; the test itself waits until it owns the tray selection.
trayer --edge top --align right --widthtype request --height 32 --SetDockType true \
  --transparent false --tint 0x333333 >"$work/trayer.log" 2>&1 &
trayer_pid=$!

# No session bus: Qt must use the XEmbed tray that trayer provides, not a StatusNotifier
# watcher that may exist on a developer's desktop.
env -u DBUS_SESSION_BUS_ADDRESS HACKATIME_TRAY_TEST=1 QT_QPA_PLATFORM=xcb \
  "$PY" -m pytest -m tray tests/gui -p no:cacheprovider -q "${@:2}"
