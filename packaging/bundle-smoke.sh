#!/usr/bin/env bash
# Runs a built bundle the way CI checks it: `--smoke` from the folder itself (no display), and
# both executables' --version against the venv's.
# Usage: packaging/bundle-smoke.sh BUNDLE_DIR VENV_BIN   (make test calls it)
set -euo pipefail
bundle="${1:?usage: packaging/bundle-smoke.sh BUNDLE_DIR VENV_BIN}"
venv_bin="${2:?usage: packaging/bundle-smoke.sh BUNDLE_DIR VENV_BIN}"

expected="$("$venv_bin/hackatime-agent" --version | cut -d' ' -f2)"
for exe in hackatime-desktop hackatime-agent; do
  said="$(QT_QPA_PLATFORM=offscreen "$bundle/$exe" --version)"
  if [ "$said" != "$exe $expected" ]; then
    echo "bundle-smoke: $exe --version says '$said'; the source says $expected" >&2
    exit 1
  fi
done
# No display, and no variables of this shell's that would point the bundle elsewhere.
env -u DISPLAY -u WAYLAND_DISPLAY "$bundle/hackatime-desktop" --smoke
echo "bundle-smoke: $(du -sh "$bundle" | cut -f1) in $bundle, version $expected"
