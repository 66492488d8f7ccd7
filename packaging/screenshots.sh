#!/usr/bin/env bash
# Makes the screenshots: the tray menu and tooltip in each state, every dashboard tab,
# light and dark, at 1366x768 and 860 px wide, into artifacts/screenshots/ (CI keeps
# artifacts/), on the same X session as the real-tray test (Xvfb, openbox, trayer).
# Then refreshes the README's pictures in docs/screenshots/ from them.
# Usage: packaging/screenshots.sh PYTHON
set -euo pipefail
PY="${1:?usage: packaging/screenshots.sh PYTHON}"
cd "$(dirname "$0")/.."
rm -rf artifacts/screenshots
packaging/tray-test.sh "$PY" -m screenshots
mkdir -p docs/screenshots
# Scaled down a little: pictures for a README, not for pixel checks (those are the artifacts).
convert artifacts/screenshots/menu-synced-light.png -strip docs/screenshots/menu.png
convert artifacts/screenshots/dashboard-overview-light-860.png -resize 75% -strip docs/screenshots/dashboard.png
echo "screenshots: $(ls artifacts/screenshots | wc -l) files in artifacts/screenshots; README pictures in docs/screenshots"
