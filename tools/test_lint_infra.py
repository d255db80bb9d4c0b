#!/usr/bin/env python3
"""Self-test of `make lint-infra`: the checks must fail on broken input.

Each case copies the deployment files (template.yaml, samconfig.toml, infra/,
statemachines/) into a temporary directory, breaks one thing in the copy, runs
tools/lint_infra.py on the copy with the checks that must notice, and asserts
that the run fails with the expected message. An unbroken copy must pass every
check. The real files are never touched.

Prints one line per case and a closing "N passed, N failed" line; exits
non-zero when any case fails.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

from infra_consistency import tasks  # noqa: E402
LINT = REPO / "tools" / "lint_infra.py"
COPIED = ["template.yaml", "samconfig.toml", "infra", "statemachines"]


def replace(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    if old not in text:
        raise AssertionError(f"fixture drift: {old!r} not found in {path.name}")
    path.write_text(text.replace(old, new, count))


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=2))


def first_task(doc: dict) -> dict:
    """The first Task state, nested ones (Map, Parallel) included."""
    return next(state for _, state in tasks(doc.get("States")))


# ---- the ways of breaking a copy ------------------------------------------

def remove_substitution(root: Path) -> None:
    # The source machine's last one.
    replace(root / "template.yaml",
            "        ApplyRetentionFunctionArn: !GetAtt ApplyRetentionFunction.Arn\n      # Invoking its own functions",
            "      # Invoking its own functions")


def undefined_placeholder(root: Path) -> None:
    edit_json(root / "statemachines" / "source.asl.json",
              lambda d: first_task(d).__setitem__("Resource", "${NoSuchStepFunctionArn}"))


def missing_crate(root: Path) -> None:
    replace(root / "template.yaml", "Binary: share\n", "Binary: no-such-crate\n")


def invalid_json(root: Path) -> None:
    path = root / "statemachines" / "target.asl.json"
    path.write_text(path.read_text().rstrip().rstrip("}") + ",,\n")


def dangling_next(root: Path) -> None:
    edit_json(root / "statemachines" / "target.asl.json",
              lambda d: first_task(d).__setitem__("Next", "NoSuchState"))


def other_side_task(root: Path) -> None:
    edit_json(root / "statemachines" / "source.asl.json",
              lambda d: first_task(d).__setitem__("Resource", "${RestoreFunctionArn}"))
    replace(root / "template.yaml", "        CreateSnapshotFunctionArn: !GetAtt CreateSnapshotFunction.Arn\n",
            "        CreateSnapshotFunctionArn: !GetAtt CreateSnapshotFunction.Arn\n"
            "        RestoreFunctionArn: !GetAtt RestoreFunction.Arn\n")


def invalid_property(root: Path) -> None:
    replace(root / "template.yaml", "      DisplayName: aurora-dr snapshot shared\n",
            "      DisplayName: aurora-dr snapshot shared\n      DeliveryRetries: 3\n")


def invalid_sam_property(root: Path) -> None:
    replace(root / "template.yaml", "      Description: \"aurora-dr source: shares the copy",
            "      MemorySizeMb: 128\n      Description: \"aurora-dr source: shares the copy")


def broken_kms_stack(root: Path) -> None:
    replace(root / "infra" / "kms-key.yaml", "EnableKeyRotation: true", "EnableKeyRotation: sometimes")


def unknown_override(root: Path) -> None:
    replace(root / "samconfig.toml", '    "Side=target",\n', '    "Side=target",\n    "TempClusterName=x",\n')


def unset_setting(root: Path) -> None:
    replace(root / "template.yaml", "        SNAPSHOT_PREFIX: !Ref SnapshotPrefix\n", "")


def destructive_on_any_resource(root: Path) -> None:
    replace(root / "template.yaml",
            "            - Sid: DeleteFailedRunsSnapshots\n              Effect: Allow\n"
            "              Action: rds:DeleteDBClusterSnapshot\n              Resource:\n",
            "            - Sid: DeleteFailedRunsSnapshots\n              Effect: Allow\n"
            "              Action: rds:DeleteDBClusterSnapshot\n              Resource:\n                - \"*\"\n")


def role_beyond_its_states(root: Path) -> None:
    # CreateSnapshot deleting snapshots: what retention used to need from it.
    replace(root / "template.yaml",
            "              Action: [rds:CreateDBClusterSnapshot, rds:AddTagsToResource]\n",
            "              Action: [rds:CreateDBClusterSnapshot, rds:AddTagsToResource, rds:DeleteDBClusterSnapshot]\n")


def task_invokes_another_function(root: Path) -> None:
    def change(doc: dict) -> None:
        for path, state in tasks(doc.get("States")):
            if path.endswith("CleanUpCopy"):
                state["Resource"] = "${EncryptCopyFunctionArn}"
    edit_json(root / "statemachines" / "source.asl.json", change)


def function_without_entry(tmp: Path) -> str:
    """The real function table without the share function's entry."""
    table = json.loads((REPO / "tools" / "functions.json").read_text())
    table["functions"] = [f for f in table["functions"] if f["name"] != "share"]
    path = tmp / "functions.json"
    path.write_text(json.dumps(table))
    return str(path)


def topic_open_to_everyone(root: Path) -> None:
    replace(root / "template.yaml",
            '              AWS: !Split [",", !Ref DestinationAccountNumber]\n',
            '              AWS: "*"\n')


def permission_without_source_account(root: Path) -> None:
    replace(root / "template.yaml", "      SourceAccount: !Ref SourceAccountNumber\n", "")


def extra_crate_metadata(tmp: Path) -> str:
    """cargo metadata of the real workspace plus a Lambda crate with no function."""
    out = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline",
                          "--manifest-path", str(REPO / "Cargo.toml")],
                         capture_output=True, text=True, check=True)
    meta = json.loads(out.stdout)
    pkg = {"id": "path+file:///x/unbuilt-step#0.1.0", "name": "unbuilt-step",
           "targets": [{"name": "unbuilt-step", "kind": ["bin"]}],
           "dependencies": [{"name": "lambda_runtime"}]}
    meta["packages"].append(pkg)
    meta["workspace_members"].append(pkg["id"])
    path = tmp / "metadata.json"
    path.write_text(json.dumps(meta))
    return str(path)


@dataclass
class Case:
    name: str
    breaks: Callable[[Path], None] | None
    checks: str
    expect: str  # regex the output must contain ("" for the passing baseline)
    metadata: bool = False
    table: Callable[[Path], str] | None = None  # a function table of the case's own


CASES = [
    Case("unbroken copy passes every check", None,
         "cfn-lint,sam-validate,asl-validator,statelint,consistency", ""),
    Case("substitution removed from DefinitionSubstitutions", remove_substitution,
         "consistency,statelint", r"\$\{ApplyRetentionFunctionArn\} is not (defined|in)"),
    Case("Task renamed to an undefined placeholder", undefined_placeholder,
         "consistency,statelint", r"\$\{NoSuchStepFunctionArn\} is not"),
    Case("function built from a crate that does not exist", missing_crate,
         "consistency", r"'no-such-crate' is not a Lambda crate"),
    Case("Lambda crate with no function", None,
         "consistency", r"crate 'unbuilt-step' is a Lambda function but no function", metadata=True),
    Case("invalid JSON in an ASL file", invalid_json,
         "asl-validator,consistency", r"invalid JSON"),
    Case("ASL Next names a missing state", dangling_next,
         "asl-validator,statelint", r"NoSuchState"),
    Case("source Task invokes a target-side function", other_side_task,
         "consistency", r"invokes RestoreFunction, which is not deployed on the source side"),
    Case("cfn-lint: invalid property on a topic", invalid_property,
         "cfn-lint", r"DeliveryRetries"),
    Case("sam validate: invalid property on a function", invalid_sam_property,
         "sam-validate", r"MemorySizeMb"),
    Case("cfn-lint: invalid value in infra/kms-key.yaml", broken_kms_stack,
         "cfn-lint", r"kms-key\.yaml"),
    Case("samconfig overrides an undeclared parameter", unknown_override,
         "consistency", r"overrides TempClusterName"),
    Case("a settings key is set on no function", unset_setting,
         "consistency", r"settings key SNAPSHOT_PREFIX"),
    Case("security: a destructive RDS action on Resource *", destructive_on_any_resource,
         "consistency", r"rds:DeleteDBClusterSnapshot on Resource \"\*\""),
    Case("security: the snapshot topic open to every account", topic_open_to_everyone,
         "consistency", r"not exactly the target account"),
    Case("security: the SNS Lambda permission without SourceAccount", permission_without_source_account,
         "consistency", r"Lambda permission without SourceAccount"),
    Case("a role holds an action its function's states do not call", role_beyond_its_states,
         "consistency", r"CreateSnapshotFunction: role holds rds:DeleteDBClusterSnapshot"),
    Case("a Task invokes another function than the table says", task_invokes_another_function,
         "consistency", r"Task Copies\.ItemProcessor\.Regions\.ItemProcessor\.CleanUpCopy invokes \$\{EncryptCopyFunctionArn\}, but FUNCTIONS says clean-up-snapshot"),
    Case("a template function without an entry in the table", None,
         "consistency", r"ShareFunction: no entry in aurora_dr_core::steps::FUNCTIONS", table=function_without_entry),
]


def run_case(case: Case) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix="lint-infra-selftest-") as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        for name in COPIED:
            src = REPO / name
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, root / name)
        cmd = [sys.executable, str(LINT), "--root", str(root), "--only", case.checks]
        if case.metadata:
            cmd += ["--cargo-metadata", extra_crate_metadata(Path(tmp))]
        if case.table:
            cmd += ["--functions", case.table(Path(tmp))]
        if case.breaks:
            case.breaks(root)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        out = proc.stdout + proc.stderr
        if not case.expect:
            return proc.returncode == 0, out
        if proc.returncode == 0:
            return False, "lint passed on a broken copy:\n" + out
        if not re.search(case.expect, out):
            return False, f"lint failed, but without /{case.expect}/:\n" + out
        # Every selected check must have noticed, not just one of them.
        quiet = [c for c in case.checks.split(",") if re.search(rf"lint-infra: {re.escape(c)}\s+ok", out)]
        if quiet:
            return False, f"check(s) {', '.join(quiet)} passed on the broken copy:\n" + out
        return True, out


def main() -> int:
    passed = failed = 0
    start = time.monotonic()
    for case in CASES:
        t0 = time.monotonic()
        try:
            ok, out = run_case(case)
        except Exception as e:  # a broken fixture is a failed case
            ok, out = False, f"{type(e).__name__}: {e}"
        took = time.monotonic() - t0
        print(f"lint-infra selftest: {'PASS' if ok else 'FAIL'}  {case.name} [{case.checks}] ({took:.1f} s)",
              flush=True)
        if ok:
            passed += 1
        else:
            failed += 1
            for line in out.strip().splitlines()[:40]:
                print(f"    {line}")
    print(f"lint-infra selftest: {time.monotonic() - start:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
