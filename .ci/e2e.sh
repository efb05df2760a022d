#!/usr/bin/env bash
# Runs the end-to-end suite against the real app binary in a virtual X display, with its own
# D-Bus session and a real Secret Service (gnome-keyring, fresh HOME so its login keyring is
# created unlocked): the recipe in ../shared/notes/desktop-testing.md, confirmed on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo test --workspace --test e2e --test desktop_shell --no-run
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
HOME="$(mktemp -d)"
export HOME
trap 'rm -rf "$HOME"' EXIT
# Software rendering under Xvfb: without this WebKitGTK may paint a blank window.
export WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1 GDK_BACKEND=x11
mkdir -p artifacts
# Arguments filter the tests by name (`.ci/e2e.sh demo_site`); ATTACHE_DESKTOP_BIN drives
# another build of the app (the installed /usr/bin/attache-desktop).
exec dbus-run-session -- bash -c '
  echo -n "attache-ci" | gnome-keyring-daemon --components=secrets --daemonize --unlock >/dev/null
  xvfb-run -a -s "-screen 0 1280x800x24" \
    cargo test --workspace --test e2e --test desktop_shell -- --ignored --nocapture --test-threads=1 "$@"
' e2e "$@"
