#!/usr/bin/env python3
"""checkov on the rendered templates (`make lint-infra`).

    checkov_scan.py [--config examples/drill.toml] [--update-baseline]

Renders the kms, source and target stacks as the deploy rehearsal does
(stacks.py: the SAM translator with the parameters params.toml derives from
the drill configuration) and scans the CloudFormation that `sam deploy`
would create with `checkov --framework cloudformation`. checkov evaluates
neither conditions nor parameter values, so each scanned copy keeps only the
resources whose Condition holds for its stack and carries the stack's
parameter values as the parameters' defaults (checkov resolves Ref through
defaults).

- tools/rehearse/checkov-skips.txt: checks skipped for good, one per line
  `CKV_ID  reason`; every skip needs its reason.
- tools/rehearse/checkov.baseline: today's findings (check, file,
  resource), accepted until the templates are hardened; a finding not in it
  fails the scan. `--update-baseline` rewrites it (review the diff: it should
  only ever shrink).

Prints checkov's totals (passed, failed, skipped; baseline findings counted
apart) and each failing check with its resources.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import deploy  # noqa: E402
import stacks  # noqa: E402

HERE = Path(__file__).resolve().parent
PLACEHOLDER_KEY_ID = "00000000-0000-0000-0000-000000000000"
SKIPS = HERE / "checkov-skips.txt"
BASELINE = HERE / "checkov.baseline"
# checkov lives in a venv of its own (tools/requirements-checkov.txt).
CHECKOV = Path(os.environ.get("CHECKOV_VENV", stacks.REPO / ".venv-checkov")) / "bin" / "checkov"


def read_skips(path: Path = SKIPS) -> tuple[list[str], list[str]]:
    ids, problems = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if not line:
            continue
        found = re.match(r"^(CKV2?_AWS_\d+)\s+(\S.*)$", line)
        if not found:
            problems.append(f"{path.name}:{n}: expected `CKV_AWS_N  reason`, got {line!r}")
            continue
        ids.append(found.group(1))
    return ids, problems


def rendered_stacks(config: Path) -> dict[str, tuple[stacks.Stack, dict]]:
    """Each stack (kms, source, target) as `sam deploy` would create it for
    `config`: only the resources whose Condition holds, the stack's
    parameter values as the parameters' defaults."""
    cfg = stacks.load_config(config)
    # Outputs the later stacks take from the earlier ones, with placeholder
    # values of the right shape (nothing is deployed).
    src, tgt = cfg["source"], cfg["target"]
    outputs = {
        "kms": {"KeyArn": f"arn:aws:kms:{tgt['region']}:{src['account_id']}:key/{PLACEHOLDER_KEY_ID}"},
        "source": {
            "NotificationTopicArn": f"arn:aws:sns:{src['region']}:{src['account_id']}:aurora-dr-notification"
        },
    }
    out = {}
    for env in stacks.ENVS:
        st = stacks.stack(env, cfg, outputs)
        template = stacks.render(st, "aurora-dr-artifacts").template
        resolver = deploy.Resolver(template, st.parameters, st.account, st.region, {}, lambda *_: None)
        template["Resources"] = {k: r for k, r in template["Resources"].items() if resolver.included(r)}
        for name, spec in (template.get("Parameters") or {}).items():
            if name in st.parameters:
                spec["Default"] = st.parameters[name]
        out[env] = (st, template)
    return out


def render_all(config: Path, out: Path) -> list[Path]:
    files = []
    for st, template in rendered_stacks(config).values():
        path = out / f"{st.name}.json"
        path.write_text(json.dumps(template, indent=1))
        files.append(path)
    return files


def run_checkov(directory: Path, skips: list[str]) -> dict:
    cmd = [
        str(CHECKOV),
        "--framework",
        "cloudformation",
        "-d",
        str(directory),
        "-o",
        "json",
        "--compact",
        "--skip-download",
    ]
    if skips:
        cmd += ["--skip-check", ",".join(skips)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        detail = proc.stderr.strip() or proc.stdout[:500]
        raise SystemExit(f"checkov failed ({proc.returncode}): {detail}") from None
    if isinstance(report, list):  # one report per framework
        report = next((r for r in report if r.get("check_type") == "cloudformation"), report[0])
    return report


def finding(f) -> tuple[str, str, str]:
    return f["check_id"], Path(f["file_path"]).name, f["resource"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=stacks.REPO / "examples" / "drill.toml")
    p.add_argument("--update-baseline", action="store_true")
    args = p.parse_args(argv)
    skips, problems = read_skips()
    if problems:
        print("\n".join(problems))
        return 1
    with tempfile.TemporaryDirectory(prefix="checkov-") as tmp:
        render_all(args.config, Path(tmp))
        report = run_checkov(Path(tmp), skips)
    summary = report.get("summary", {})
    failed = report.get("results", {}).get("failed_checks", [])
    if args.update_baseline:
        rows = sorted({finding(f) for f in failed})
        BASELINE.write_text(json.dumps([list(r) for r in rows], indent=1) + "\n")
        print(f"checkov: baseline written to {BASELINE.relative_to(stacks.REPO)} ({len(rows)} findings)")
    accepted = {tuple(r) for r in json.loads(BASELINE.read_text())} if BASELINE.exists() else set()
    new = [f for f in failed if finding(f) not in accepted]
    print(
        f"checkov: {summary.get('passed', 0)} passed, {len(failed)} failed "
        f"({len(failed) - len(new)} in the baseline), {summary.get('skipped', 0)} skipped"
    )
    seen = {}
    for f in failed:
        seen.setdefault((f["check_id"], f.get("check_name", "")), []).append(
            f"{Path(f['file_path']).stem}:{f['resource'].split('.')[-1]}"
        )
    for (check, name), where in sorted(seen.items()):
        print(f"  {check} {name}: {', '.join(sorted(set(where)))}")
    if new:
        print(f"checkov: {len(new)} finding(s) not in the baseline:")
        for f in new:
            where = Path(f["file_path"]).name
            print(f"  NEW {f['check_id']} {f['resource']} ({where}): {f.get('check_name', '')}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
