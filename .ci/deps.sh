#!/usr/bin/env bash
# Installs whatever is missing to build, run and test Attaché on Debian 12 / Ubuntu 22.04+:
# system libraries (apt, with sudo when not root), the UI's npm packages, and tauri-driver.
# Idempotent: each step checks first, so a second run takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential pkg-config curl file cmake nasm
  libwebkit2gtk-4.1-dev libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev
  webkit2gtk-driver xvfb xauth dbus dbus-x11 gnome-keyring libsecret-tools
  xdg-utils libglib2.0-bin shared-mime-info
  # The package and the installed app's tests: checks, and test doubles of the tray host and
  # the notification server (python3-dbus, run by Debian's python3).
  lintian desktop-file-utils binutils python3-dbus python3-gi python3-xlib
)
# `make bench` compares against these peers (BENCH=1): libvips, ImageMagick, poppler, curl.
if [ "${BENCH:-}" = 1 ]; then
  APT_PACKAGES+=(libvips-tools imagemagick poppler-utils)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "deps: Rust is needed: https://rustup.rs" >&2; exit 1; }
command -v npm >/dev/null || { echo "deps: Node.js 20.19+ and npm are needed" >&2; exit 1; }

# npm packages: reinstall only when the lock file changed since the last install.
if [ ! -f ui/node_modules/.package-lock.json ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  echo "deps: npm ci (ui/)"
  (cd ui && npm ci --no-audit --no-fund --loglevel=error)
fi

# Independent peers the Rust tests talk to: @tus/server + @tus/file-store, the Wix JS SDK.
if [ ! -f tests/peers/node_modules/.package-lock.json ] || [ tests/peers/package-lock.json -nt tests/peers/node_modules/.package-lock.json ]; then
  echo "deps: npm ci (tests/peers/)"
  (cd tests/peers && npm ci --no-audit --no-fund --loglevel=error)
fi

if ! command -v tauri-driver >/dev/null && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
  echo "deps: cargo install tauri-driver"
  cargo install tauri-driver --locked --quiet
fi
