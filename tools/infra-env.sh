#!/usr/bin/env bash
# Creates (or refreshes) the tools environments used by `make lint-infra` and
# `make package`, only when their lock files changed since the last install:
#   .venv-infra/   Python: cfn-lint, aws-sam-cli, cargo-lambda, ziglang
#                  (tools/requirements-infra.txt, every file pinned by hash)
#   .venv-checkov/ Python: checkov (tools/requirements-checkov.txt; a venv of
#                  its own: its pins conflict with aws-sam-cli's)
#   node_modules/  npm: asl-validator, @wmfs/statelint, @cloud-copilot/iam-simulate
#                  (package-lock.json)
# Each environment keeps the sha256 of the lock file it was built from; a
# matching stamp means "up to date" and costs nothing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="${INFRA_VENV:-.venv-infra}"
python="${PYTHON:-python3}"
req="tools/requirements-infra.txt"

sha() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

# hashed_venv DIR LOCKFILE TOOL: (re)creates DIR from LOCKFILE unless the
# stamp says it was built from this very file and DIR/bin/TOOL exists.
# Returns 1 when it was up to date.
hashed_venv() {
    local dir="$1" lock="$2" tool="$3" want stamp="$1/.lock.sha256"
    want="$(sha "$lock")"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$dir/bin/$tool" ]]; then
        echo "infra-tools: $dir is up to date"
        return 1
    fi
    echo "infra-tools: creating $dir from $lock (hash-pinned; takes a minute or two)..."
    rm -rf "$dir"
    "$python" -m venv "$dir"
    # --require-hashes: every distribution, dependencies included, must match
    # the hash recorded in the lock file. No find-links: the registry only.
    PIP_FIND_LINKS="" "$dir/bin/pip" install --disable-pip-version-check --no-input \
        --progress-bar off --require-hashes --no-deps -r "$lock"
    "$dir/bin/pip" check >/dev/null
    echo "$want" >"$stamp"
}

py_env() {
    hashed_venv "$venv" "$req" cfn-lint || return 0
    echo "infra-tools: $venv ready ($("$venv/bin/cfn-lint" --version), $("$venv/bin/sam" --version))"
}

# checkov's pins (boto3, networkx, packaging) conflict with aws-sam-cli's.
checkov_env() {
    local dir="${CHECKOV_VENV:-.venv-checkov}"
    hashed_venv "$dir" tools/requirements-checkov.txt checkov || return 0
    echo "infra-tools: $dir ready (checkov $("$dir/bin/checkov" --version))"
}

npm_env() {
    local want stamp="node_modules/.lock.sha256"
    want="$(sha package.json package-lock.json)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x node_modules/.bin/statelint ]]; then
        echo "infra-tools: node_modules is up to date"
        return
    fi
    echo "infra-tools: installing node_modules from package-lock.json (npm ci)..."
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
    echo "infra-tools: node_modules ready"
}

case "${1:-all}" in
    python) py_env ;;
    npm) npm_env ;;
    checkov) checkov_env ;;
    all) py_env; checkov_env; npm_env ;;
    *) echo "usage: $0 [python|checkov|npm|all]" >&2; exit 2 ;;
esac
