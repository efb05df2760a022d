#!/usr/bin/env bash
# Runs the account tests against a real Secret Service: gnome-keyring-daemon in a private D-Bus
# session, with a fresh HOME so its login keyring is created (and unlocked) with a test password.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# Build before HOME changes, so cargo and rustup find their own folders.
cargo test --workspace --test accounts --no-run
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
HOME="$(mktemp -d)"
export HOME
trap 'rm -rf "$HOME"' EXIT
exec dbus-run-session -- bash -c '
  echo -n "attache-ci" | gnome-keyring-daemon --components=secrets --daemonize --unlock >/dev/null
  cargo test --workspace --test accounts -- --ignored --test-threads=1
'
