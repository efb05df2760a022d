#!/usr/bin/env bash
# Runs the end-to-end suite against the real app binary in a virtual X display with its own
# D-Bus session (the recipe in ../shared/notes/desktop-testing.md, confirmed on this machine).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# Software rendering under Xvfb: without this WebKitGTK may paint a blank window.
export WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1 GDK_BACKEND=x11
mkdir -p artifacts
exec dbus-run-session -- xvfb-run -a -s "-screen 0 1280x800x24" \
  cargo test -p attache-tests --test e2e -- --ignored --nocapture --test-threads=1
