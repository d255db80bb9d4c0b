# The project's commands. README, CI and docs call these targets.
SHELL := /bin/bash
CARGO ?= cargo
CONFIG ?= examples/drill.toml

.PHONY: build test test-rust lint fmt demo emulator bench clean

build:
	$(CARGO) build --workspace

## The whole test suite: infrastructure checks, then every Rust test
## (unit, emulator, engine conformance and the end-to-end drill).
test: lint-infra test-rust

test-rust:
	$(CARGO) test --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## The main job: a full cross-account, cross-region drill on the local emulator.
demo:
	$(CARGO) build -p aurora-dr-cli
	./target/debug/aurora-dr drill --config $(CONFIG) --seed

## The local AWS emulator in the foreground (Ctrl-C stops it).
emulator:
	$(CARGO) run -q -p aurora-dr-cli -- emulator

clean:
	$(CARGO) clean

-include mk/infra.mk
