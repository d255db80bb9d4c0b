# Deployment-side targets: templates, state machines, packaging.
# Included by the top-level Makefile; also usable alone:
#   make -f mk/infra.mk lint-infra | package | infra-tools
#
#   infra-tools  .venv-infra (cfn-lint, aws-sam-cli, cargo-lambda, zig; pinned
#                with hashes in tools/requirements-infra.txt) and node_modules
#                (asl-validator, @wmfs/statelint; package-lock.json). Re-created
#                only when a lock file changes.
#   lint-infra   offline checks: cfn-lint, sam validate --lint, asl-validator,
#                statelint, the consistency check, then the self-test that
#                breaks copies and expects every check to fail; the drill
#                config -> stack parameters mapping against samconfig.toml;
#                the hardening rules and checkov on the rendered templates
#                (tools/rehearse/).
#   rehearse     the deploy rehearsal (`aurora-dr rehearse`): the stacks
#                deployed into the emulator, the drill run on that wiring with
#                every call judged under IAM, then the self-test that removes
#                each used Allow statement (tools/rehearse/rehearse.py judge).
#   package      cargo lambda build --profile lambda: one bootstrap.zip per
#                function crate in target/lambda/<crate>/ (slow: fat LTO).
#   infra-lock   re-pins tools/requirements-infra.txt from requirements-infra.in
#                and tools/requirements-checkov.txt from requirements-checkov.in.

INFRA_VENV ?= .venv-infra
INFRA_BIN := $(abspath $(INFRA_VENV))/bin
# The venv first on PATH: cargo-lambda finds zig through the venv's python.
INFRA_ENV := PATH="$(INFRA_BIN):$(abspath node_modules/.bin):$$PATH" SAM_CLI_TELEMETRY=0 INFRA_VENV=$(INFRA_VENV)
# Lambda architecture of `make package`: arm64 (default) or x86_64, as the
# template's Architecture parameter.
LAMBDA_ARCH ?= arm64
LAMBDA_PROFILE ?= lambda

.PHONY: infra-tools lint-infra lint-infra-checks lint-infra-selftest lint-infra-rendered package infra-lock rehearse

infra-tools:
	@INFRA_VENV=$(INFRA_VENV) tools/infra-env.sh all

lint-infra: lint-infra-checks lint-infra-selftest lint-infra-rendered

# The stack parameters' one mapping (params.toml) against samconfig.toml, then
# the hardening rules (hardening.py) and checkov on what `sam deploy` would
# create (skips and baseline in tools/rehearse/).
lint-infra-rendered: infra-tools
	@$(INFRA_ENV) $(INFRA_BIN)/python tools/rehearse/test_rehearse_units.py
	@$(INFRA_ENV) $(INFRA_BIN)/python tools/rehearse/stacks.py check-samconfig
	@$(INFRA_ENV) $(INFRA_BIN)/python tools/rehearse/hardening.py
	@$(INFRA_ENV) $(INFRA_BIN)/python tools/rehearse/checkov_scan.py

# The emulator's venv (moto, with what its CloudFormation imports) comes from
# the top-level Makefile's emulator-env; AWS's managed policies are loaded
# into its IAM (MOTO_IAM_LOAD_MANAGED_POLICIES) so SAM's roles attach them.
rehearse: infra-tools
	@$(INFRA_ENV) $(CARGO) run -q -p aurora-dr-cli -- rehearse --config $(CONFIG) --self-test

lint-infra-checks: infra-tools
	@$(INFRA_ENV) $(INFRA_BIN)/python tools/lint_infra.py

lint-infra-selftest: infra-tools
	@$(INFRA_ENV) $(INFRA_BIN)/python tools/test_lint_infra.py

package: infra-tools
	@rustup target list --installed | grep -qx '$(if $(filter arm64,$(LAMBDA_ARCH)),aarch64,x86_64)-unknown-linux-gnu' \
	  || { echo "package: the Rust standard library for $(if $(filter arm64,$(LAMBDA_ARCH)),aarch64,x86_64)-unknown-linux-gnu is not installed;" \
	       "install it with 'rustup target add $(if $(filter arm64,$(LAMBDA_ARCH)),aarch64,x86_64)-unknown-linux-gnu' or build with LAMBDA_ARCH=x86_64" >&2; exit 1; }
	@crates="$$($(INFRA_BIN)/python tools/lint_infra.py --list-crates)"; \
	  echo "package: $$crates ($(LAMBDA_ARCH), profile $(LAMBDA_PROFILE))"; \
	  start=$$(date +%s); \
	  $(INFRA_ENV) cargo lambda build --profile $(LAMBDA_PROFILE) \
	    $(if $(filter arm64,$(LAMBDA_ARCH)),--arm64,--x86-64) --output-format zip \
	    $$(for c in $$crates; do printf -- '-p %s ' "$$c"; done) || exit 1; \
	  echo "package: built in $$(( $$(date +%s) - start )) s"; \
	  for c in $$crates; do ls -l target/lambda/$$c/bootstrap.zip | awk -v c=$$c '{printf "  %-22s %8d bytes\n", c, $$5}'; done

infra-lock:
	@python3 -m venv /tmp/aurora-dr-piptools && /tmp/aurora-dr-piptools/bin/pip install -q pip-tools==7.6.2
	cd tools && PIP_FIND_LINKS= /tmp/aurora-dr-piptools/bin/pip-compile --quiet --generate-hashes \
	  --allow-unsafe --strip-extras --no-emit-index-url \
	  --output-file=requirements-infra.txt requirements-infra.in
	cd tools && PIP_FIND_LINKS= /tmp/aurora-dr-piptools/bin/pip-compile --quiet --generate-hashes \
	  --allow-unsafe --strip-extras --no-emit-index-url \
	  --output-file=requirements-checkov.txt requirements-checkov.in
