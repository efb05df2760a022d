#!/usr/bin/env bash
# The installed app's figures (`make bench`): builds the release package, installs it, runs
# tests/benches/desktop.rs against /usr/bin/attache-desktop in a virtual display with its own
# D-Bus session, then removes the package again. Needs root (or sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
deb=$(./.ci/package.sh release | tail -1)
cargo bench -p attache-tests --bench desktop --no-run
$SUDO apt-get install -y -qq "$deb" >/dev/null
trap '$SUDO apt-get purge -y -qq attache >/dev/null' EXIT
export ATTACHE_DESKTOP_BIN=/usr/bin/attache-desktop ATTACHE_DEB="$deb"
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
HOME="$(mktemp -d)"
export HOME WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1 GDK_BACKEND=x11
dbus-run-session -- xvfb-run -a -s "-screen 0 1280x800x24" \
  cargo bench -p attache-tests --bench desktop
