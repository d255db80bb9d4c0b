#!/usr/bin/env python3
"""Offline checks of the deployment files (`make lint-infra`).

Runs, against a checkout (or a copy of one, given with --root):
  cfn-lint       template.yaml and infra/*.yaml
  sam-validate   sam validate --lint (SAM_CLI_TELEMETRY=0: no network calls)
  asl-validator  statemachines/*.asl.json as written (with ${...} placeholders)
  statelint      the same files with every placeholder replaced by a dummy ARN
                 (an undefined placeholder fails here)
  consistency    template, ASL files, the function table (tools/functions.json),
                 workspace crates, settings keys and samconfig.toml agree
                 (see infra_consistency.py)

Run it with the tools venv's python (mk/infra.mk does). Exit status is 0 only
when every selected check passes; each check prints its own findings.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import infra_consistency as ic  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHECKS = ["cfn-lint", "sam-validate", "asl-validator", "statelint", "consistency"]


def node_bin(name: str) -> str:
    return str(REPO / "node_modules" / ".bin" / name)


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False
    )
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def check_cfn_lint(root: Path, _args) -> list[str]:
    files = ["template.yaml", *sorted(str(p.relative_to(root)) for p in (root / "infra").glob("*.yaml"))]
    code, out = run([str(BIN / "cfn-lint"), "--", *files], root)
    return [] if code == 0 else [out or f"cfn-lint exited {code}"]


def check_sam_validate(root: Path, _args) -> list[str]:
    # The region only feeds the SAM translator's pseudo parameters.
    code, out = run(
        [str(BIN / "sam"), "validate", "--lint", "--template", "template.yaml", "--region", "us-east-1"],
        root,
        {"SAM_CLI_TELEMETRY": "0", "AWS_ACCESS_KEY_ID": "offline", "AWS_SECRET_ACCESS_KEY": "offline"},
    )
    return [] if code == 0 else [out or f"sam validate exited {code}"]


def asl_files(root: Path) -> list[Path]:
    return sorted((root / "statemachines").glob("*.asl.json"))


def check_asl_validator(root: Path, _args) -> list[str]:
    files = asl_files(root)
    if not files:
        return ["no statemachines/*.asl.json files"]
    cmd = [node_bin("asl-validator")]
    for f in files:
        cmd += ["--json-path", str(f.relative_to(root))]
    code, out = run(cmd, root)
    return [] if code == 0 else [out or f"asl-validator exited {code}"]


PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")


def substituted(text: str, substitutions: dict[str, str], name: str) -> tuple[str, list[str]]:
    """Replaces each ${Key} by a well-formed dummy Lambda ARN named after the
    function the template maps it to; unknown keys are reported."""
    problems: list[str] = []

    def repl(m: re.Match) -> str:
        key = m.group(1)
        if key not in substitutions:
            problems.append(f"{name}: ${{{key}}} is not in the machine's DefinitionSubstitutions")
            return m.group(0)
        return f"arn:aws:lambda:us-east-1:123456789012:function:{substitutions[key]}"

    return PLACEHOLDER.sub(repl, text), problems


def check_statelint(root: Path, _args) -> list[str]:
    problems: list[str] = []
    try:
        model = ic.Model.load(root)
    except ic.LoadError as e:
        return [str(e)]
    by_file = {m.definition.name: m for m in model.machines.values()}
    with tempfile.TemporaryDirectory(prefix="statelint-") as tmp:
        for f in asl_files(root):
            machine = by_file.get(f.name)
            subs = {k: (v or k) for k, v in (machine.substitution_targets.items() if machine else [])}
            text, missing = substituted(f.read_text(), subs, f.name)
            problems += missing
            out_file = Path(tmp) / f.name
            out_file.write_text(text)
            code, out = run([node_bin("statelint"), str(out_file)], root)
            if code != 0:
                problems.append(out.replace(str(out_file), f"statemachines/{f.name}") or f"statelint exited {code}")
    return problems


def check_consistency(root: Path, args) -> list[str]:
    return ic.check(root, workspace=Path(args.workspace), cargo_metadata=args.cargo_metadata,
                    functions_file=args.functions)


RUNNERS = {
    "cfn-lint": check_cfn_lint,
    "sam-validate": check_sam_validate,
    "asl-validator": check_asl_validator,
    "statelint": check_statelint,
    "consistency": check_consistency,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=str(REPO), help="checkout (or copy) holding template.yaml etc.")
    p.add_argument("--workspace", default=str(REPO), help="Cargo workspace whose crates the functions map to")
    p.add_argument("--cargo-metadata", help="read `cargo metadata` JSON from this file instead of running cargo")
    p.add_argument("--functions", help="read the function table from this file instead of tools/functions.json")
    p.add_argument("--only", help=f"comma-separated subset of: {', '.join(CHECKS)}")
    p.add_argument("--list-crates", action="store_true", help="print the Lambda function crates and exit")
    args = p.parse_args(argv)

    if args.list_crates:
        print(" ".join(sorted(ic.lambda_crates(Path(args.workspace), args.cargo_metadata))))
        return 0

    root = Path(args.root).resolve()
    selected = args.only.split(",") if args.only else CHECKS
    unknown = [c for c in selected if c not in RUNNERS]
    if unknown:
        p.error(f"unknown check(s): {', '.join(unknown)}")

    failed = []
    for name in selected:
        start = time.monotonic()
        try:
            problems = RUNNERS[name](root, args)
        except Exception as e:  # a crash of a check is a failure, not a pass
            problems = [f"{type(e).__name__}: {e}"]
        took = time.monotonic() - start
        status = "ok" if not problems else "FAILED"
        print(f"lint-infra: {name:<14} {status:<6} ({took:.1f} s)", flush=True)
        for problem in problems:
            for line in problem.splitlines():
                print(f"    {line}")
        if problems:
            failed.append(name)
    if failed:
        print(f"lint-infra: {len(failed)} check(s) failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
