# Benchmarks: programs that print figures (bench/), never timed tests.
# Included by the top-level Makefile; also usable alone: make -f mk/bench.mk bench
#
#   bench          builds the release binaries (every Lambda bootstrap, the CLI
#                  and the bench programs), installs the Python baseline into
#                  $(BENCH_VENV), then prints: 1. cold start and memory, Rust
#                  against Python 3 + boto3; 2. drill overhead; 3. engine and
#                  fleet scale; 4. detection latency and cost per run, the
#                  current polling schedule against the previous one. The
#                  emulator's own .venv is created on first use.
#   bench-build    the release build alone (several minutes from scratch).
#   bench-python   the baseline's venv alone: re-created when
#                  bench/python/requirements.txt changes.

CARGO ?= cargo
BENCH_PYTHON ?= python3
BENCH_VENV ?= bench/.venv
BENCH_COLD_STARTS ?= 20
BENCH_DRILL_RUNS ?= 5
BENCH_EXECUTIONS ?= 1000
BENCH_LATENCY_SIZES ?= 100,2048
BENCH_LATENCY_SCALE ?= 0.005
# Every Lambda crate: the functions of aurora_dr_core::steps::FUNCTIONS, as
# `make functions` writes them to tools/functions.json.
BENCH_LAMBDAS := $(shell python3 -c 'import json; print(" ".join(f["name"] for f in json.load(open("tools/functions.json"))["functions"]))')
BENCH_BIN := target/release

.PHONY: bench bench-build bench-python

bench: bench-build bench-python
	@start=$$(date +%s); status=0; \
	$(BENCH_BIN)/bench-cold-start --cold-starts $(BENCH_COLD_STARTS) --python $(BENCH_VENV)/bin/python || status=1; echo; \
	$(BENCH_BIN)/bench-drill --runs $(BENCH_DRILL_RUNS) || status=1; echo; \
	$(BENCH_BIN)/bench-scale --executions $(BENCH_EXECUTIONS) || status=1; echo; \
	$(BENCH_BIN)/bench-latency --sizes $(BENCH_LATENCY_SIZES) --time-scale $(BENCH_LATENCY_SCALE) || status=1; echo; \
	echo "make bench: figures printed in $$(( $$(date +%s) - start )) s (after the build)"; \
	exit $$status

# One cargo invocation, so every binary is built with the same feature set.
bench-build:
	$(CARGO) build --release -p aurora-dr-bench -p aurora-dr-cli $(addprefix -p ,$(BENCH_LAMBDAS))

bench-python: $(BENCH_VENV)/.aurora-dr-bench-requirements.txt

$(BENCH_VENV)/.aurora-dr-bench-requirements.txt: bench/python/requirements.txt
	rm -rf $(BENCH_VENV)
	$(BENCH_PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --require-hashes --no-deps --disable-pip-version-check \
	  --no-input --progress-bar off -q -r bench/python/requirements.txt
	$(BENCH_VENV)/bin/python -c "import boto3"
	cp bench/python/requirements.txt $@
