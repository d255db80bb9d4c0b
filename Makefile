# The project's commands. README, CI and docs call these targets.
SHELL := /bin/bash
CARGO ?= cargo
CONFIG ?= examples/drill.toml

.PHONY: build test test-rust rehearse-test emulator-env lint fmt demo emulator functions samconfig clean

build:
	$(CARGO) build --workspace

## The whole test suite: infrastructure checks, the deploy rehearsal, then
## every Rust test (unit, emulator, engine conformance and the end-to-end drill).
test: lint-infra rehearse-test test-rust

rehearse-test: emulator-env rehearse

test-rust: emulator-env
	$(CARGO) test --workspace --no-fail-fast

## The emulator's Python environment (.venv, pinned with hashes), created
## once before the tests that need it run.
emulator-env:
	$(CARGO) run -q -p aurora-dr-cli -- emulator --setup-only

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## The main job: a full cross-account, cross-region drill on the local emulator.
demo:
	$(CARGO) build -p aurora-dr-cli
	./target/debug/aurora-dr drill --config $(CONFIG) --seed --runs 2

## The state -> function map (aurora_dr_core::steps::FUNCTIONS) written where
## it is read: tools/functions.json (template checks) and README's architecture
## section. `make test` fails while either is stale.
functions:
	$(CARGO) run -q -p aurora-dr-cli -- functions --json > tools/functions.json
	$(CARGO) run -q -p aurora-dr-cli -- functions | python3 tools/update_readme_map.py README.md

## The local AWS emulator in the foreground (Ctrl-C stops it).
emulator:
	$(CARGO) run -q -p aurora-dr-cli -- emulator

## samconfig.toml, generated from tools/rehearse/params.toml (placeholders
## naming each value's configuration key); `make test-rust` fails while stale.
samconfig:
	$(CARGO) run -q -p aurora-dr-cli -- deploy-params --samconfig > samconfig.toml

clean:
	$(CARGO) clean

-include mk/infra.mk
-include mk/bench.mk
