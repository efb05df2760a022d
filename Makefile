# Attaché: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: run test deps ui build types ui-test rust-test keyring-test e2e package package-test bench soak clean

## Opens the app on the built-in Demo site (installs what is missing, builds first).
run: build
	./target/debug/attache-desktop

## Every test: generated types in sync, UI type check and unit tests, Rust unit and
## integration tests, and the end-to-end suite in a real window.
test: deps types ui-test build rust-test keyring-test e2e package-test
	@echo "make test: all suites passed"

deps:
	@./.ci/deps.sh

ui: deps
	cd ui && npm run --silent build

## The app and the CLI, debug profile (what the end-to-end tests drive).
build: ui
	$(CARGO) build -p attache-desktop -p attache-cli
	@if ! git diff --quiet -- src-tauri/capabilities; then \
		echo "error: src-tauri/capabilities is generated from src-tauri/src/command_list.rs; commit the regenerated file:"; \
		git diff --stat -- src-tauri/capabilities; exit 1; fi

## TypeScript types are generated from Rust by ts-rs; fail if the committed copies drifted.
types: deps
	$(CARGO) test -q -p attache-core --lib export_bindings
	@if ! git diff --quiet -- ui/src/lib/bindings || [ -n "$$(git ls-files --others --exclude-standard ui/src/lib/bindings)" ]; then \
		echo "error: ui/src/lib/bindings is out of date with the Rust types; commit the regenerated files:"; \
		git status --short ui/src/lib/bindings; exit 1; fi

ui-test: deps
	cd ui && npm run --silent check && npm run --silent test

rust-test: build
	$(CARGO) test --workspace

## Accounts against a real Secret Service (gnome-keyring in a private D-Bus session).
keyring-test: build
	./.ci/keyring.sh

e2e: build
	./.ci/e2e.sh

## The Debian package (release build): target/release/bundle/deb/attache_<version>_amd64.deb.
## Install it with `sudo apt install ./target/release/bundle/deb/attache_*.deb`.
package: ui
	./.ci/package.sh release

## Builds the package from the debug build, checks it (desktop-file-validate, lintian),
## installs it, runs the Demo scenario in the installed app's window, purges it (needs root
## or sudo). PROFILE=release checks the release package instead.
package-test: build
	./.ci/package-test.sh

## Everything at once for a while (SOAK_SECS, default 180; SOAK_SEED replays a run): files
## arriving in watched folders on both CRMs, batches dropped, every sandbox fault, processes
## SIGKILLed; then the invariants: each file attached once, none lost, nothing secret on disk.
soak: build
	$(CARGO) test -p attache-tests --test soak --no-run
	WEBKIT_DISABLE_COMPOSITING_MODE=1 dbus-run-session -- xvfb-run -a -s "-screen 0 1280x800x24" \
		$(CARGO) test -p attache-tests --test soak -- --ignored --nocapture

## Benchmarks, with ratios against a peer measured in the same run.
bench:
	@BENCH=1 ./.ci/deps.sh
	$(CARGO) bench -p attache-tests --bench search
	$(CARGO) bench -p attache-tests --bench upload
	$(CARGO) bench -p attache-tests --bench inbox
	$(CARGO) bench -p attache-tests --bench thumbnail
	./.ci/bench-desktop.sh

clean:
	$(CARGO) clean
	rm -rf ui/dist ui/node_modules artifacts
