#!/usr/bin/env python3
"""checkov on the rendered templates (`make lint-infra`).

    checkov_scan.py [--config examples/drill.toml] [--update-baseline]

Renders the kms, source and target stacks as the deploy rehearsal does
(stacks.py: the SAM translator with the parameters params.toml derives from
the drill configuration) and scans the CloudFormation that `sam deploy`
would create with `checkov --framework cloudformation`.

- tools/rehearse/checkov-skips.txt: checks skipped for good, one per line
  `CKV_ID  reason`; every skip needs its reason.
- tools/rehearse/checkov.baseline: today's findings (checkov's own baseline
  format), accepted until the templates are hardened; a finding that is not
  in it fails the scan. `--update-baseline` rewrites it from the current
  findings (review the diff: it should only ever shrink).

Prints checkov's totals (passed, failed, skipped; baseline findings are
counted apart) and each failing check with what it asks for.
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


def render_all(config: Path, out: Path) -> list[Path]:
    cfg = stacks.load_config(config)
    # Outputs the later stacks take from the earlier ones, with placeholder
    # values of the right shape (checkov does not deploy).
    src, tgt = cfg["source"], cfg["target"]
    outputs = {
        "kms": {
            "KeyArn": f"arn:aws:kms:{tgt['region']}:{src['account_id']}:key/{PLACEHOLDER_KEY_ID}"
        },
        "source": {
            "NotificationTopicArn": f"arn:aws:sns:{src['region']}:{src['account_id']}:aurora-dr-notification"
        },
    }
    files = []
    for env in stacks.ENVS:
        rendered = stacks.render(stacks.stack(env, cfg, outputs), "aurora-dr-artifacts")
        path = out / f"{rendered.stack.name}.json"
        path.write_text(json.dumps(rendered.template, indent=1))
        files.append(path)
    return files


def run_checkov(directory: Path, skips: list[str], baseline: Path | None, extra=()) -> dict:
    cmd = [
        str(CHECKOV),
        "--framework",
        "cloudformation",
        "-d",
        str(directory),
        "-o",
        "json",
        "--quiet",
        "--compact",
        "--skip-download",
        *extra,
    ]
    if skips:
        cmd += ["--skip-check", ",".join(skips)]
    if baseline is not None and baseline.exists():
        cmd += ["--baseline", str(baseline)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(
            f"checkov failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout[:500]}"
        ) from None
    return report if isinstance(report, dict) else {"results": {}, "summary": report[0]["summary"]}


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
        out = Path(tmp)
        render_all(args.config, out)
        if args.update_baseline:
            run_checkov(out, skips, None, ["--create-baseline"])
            created = out / ".checkov.baseline"
            doc = json.loads(created.read_text())
            for item in doc.get("failed_checks", []):
                item["file"] = Path(item["file"]).name  # independent of the temporary directory
            BASELINE.write_text(json.dumps(doc, indent=2) + "\n")
            print(f"checkov: baseline written to {BASELINE.relative_to(stacks.REPO)}")
        # The baseline names files relative to the scanned directory.
        base = None
        if BASELINE.exists():
            doc = json.loads(BASELINE.read_text())
            for item in doc.get("failed_checks", []):
                item["file"] = "/" + Path(item["file"]).name
            base = out / "baseline.json"
            base.write_text(json.dumps(doc))
        report = run_checkov(out, skips, base)
        whole = run_checkov(out, skips, None)
    summary = report.get("summary", {})
    failed = report.get("results", {}).get("failed_checks", [])
    all_failed = whole.get("results", {}).get("failed_checks", [])
    print(
        f"checkov: {summary.get('passed', 0)} passed, {len(all_failed)} failed "
        f"({len(all_failed) - len(failed)} in the baseline), {summary.get('skipped', 0)} skipped"
    )
    seen = {}
    for f in all_failed:
        seen.setdefault((f["check_id"], f.get("check_name", "")), []).append(
            f"{Path(f['file_path']).stem}:{f['resource'].split('.')[-1]}"
        )
    for (check, name), where in sorted(seen.items()):
        print(f"  {check} {name}: {', '.join(sorted(set(where)))}")
    if failed:
        print(f"checkov: {len(failed)} finding(s) not in the baseline:")
        for f in failed:
            print(
                f"  NEW {f['check_id']} {f['resource']} ({Path(f['file_path']).name}): "
                f"{f.get('check_name', '')}"
            )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
