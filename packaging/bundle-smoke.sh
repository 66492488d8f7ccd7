#!/usr/bin/env bash
# Runs a built bundle the way CI checks it: what the folder carries (menu entry, icon, licences,
# no link the trim left dangling), both executables' --version against the venv's, starting at
# login and the menu entry written by the bundle itself, and `--smoke` from the folder (no display).
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
fail() { echo "bundle-smoke: $*" >&2; exit 1; }

# What the folder must carry besides the code: the menu entry, the icon, every licence.
internal="$bundle/_internal"
for file in resources/hackatime-desktop.desktop resources/icons/hackatime-desktop.png licences/INDEX.txt \
  licences/hackatime-desktop/LICENSE licences/python/LICENSE.txt; do
  [ -s "$internal/$file" ] || fail "$file is missing from the bundle"
done
for dist in PySide6_Essentials shiboken6 matplotlib numpy httpx keyring watchdog; do
  grep -q "^$dist " "$internal/licences/INDEX.txt" || fail "no licence for $dist in licences/INDEX.txt"
  [ -n "$(ls -A "$internal/licences/$dist" 2>/dev/null)" ] || fail "licences/$dist/ is empty"
done
! grep -n "licence not collected" "$internal/licences/INDEX.txt" || fail "a bundled library has no licence"
dangling="$(find "$bundle" -xtype l)"
[ -z "$dangling" ] || fail "links to files the trim left out: $dangling"

# Starting at login and the menu entry, written by the bundle itself into a throwaway home:
# both must start this folder's executable, by its absolute path.
home="$(mktemp -d)"
trap 'rm -rf "$home"' EXIT
exe="$(cd "$bundle" && pwd -P)/hackatime-desktop"
exec_line="Exec=$("$venv_bin/python" -c 'import sys; from app.desktop_entry import exec_value; print(exec_value(sys.argv[1:]))' "$exe")"
as_user() { env -u DISPLAY -u WAYLAND_DISPLAY HOME="$home" XDG_CONFIG_HOME="$home/config" XDG_DATA_HOME="$home/data" "$@"; }
as_user "$bundle/hackatime-desktop" --autostart on >/dev/null
login="$home/config/autostart/hackatime-desktop.desktop"
grep -qxF "$exec_line" "$login" || fail "the login entry does not start $exe: $(grep '^Exec=' "$login" || true)"
as_user "$bundle/hackatime-desktop" --autostart off >/dev/null
[ ! -e "$login" ] || fail "--autostart off left $login"
as_user "$bundle/hackatime-desktop" --install-desktop >/dev/null
grep -qxF "$exec_line" "$home/data/applications/hackatime-desktop.desktop" || fail "the menu entry does not start $exe"
cmp -s "$internal/resources/icons/hackatime-desktop.png" "$home/data/icons/hicolor/256x256/apps/hackatime-desktop.png" \
  || fail "--install-desktop did not install the icon"

# No display, and no variables of this shell's that would point the bundle elsewhere.
env -u DISPLAY -u WAYLAND_DISPLAY "$bundle/hackatime-desktop" --smoke
echo "bundle-smoke: $(du -sh "$bundle" | cut -f1) in $bundle, version $expected"
