#!/usr/bin/env python3
"""The deploy rehearsal: deploy the stacks into the local emulator and judge
every call of pipeline runs under IAM, with the deployed roles.

    rehearse.py [--config examples/drill.toml] [--endpoint URL] [--self-test] [--json FILE]

1. renders the kms, source and target stacks as `sam deploy` would and
   deploys them (stacks.py, deploy.py);
2. switches the emulator's IAM mode on (emulator/iam.py) for every deployed
   function role, with the evaluator tools/rehearse/evaluator.mjs;
3. makes the calls of a pipeline run that replaces a previous DR cluster
   (swap and terminate), of the failure paths, and calls the policies must
   refuse (an untagged snapshot, the serving cluster), with each
   function's own role (pipeline.py), and has the services' own checks
   judged (trust policies, Task invocations, the Lambda permission, the
   cross-account subscription);
4. prints every denial as `DENIED <function> <action> <resource>: <reason>`
   and the least-privilege report: statements, actions and resources of the
   template's policies that no judged request used (warnings);
5. with --self-test: removes each Allow statement that a request used, in
   turn, through the service's API (IAM, KMS, SNS, Lambda), makes the
   requests it allowed again, and expects a denial naming the action.

Without --endpoint it starts an emulator (emulator/launcher.py from the
emulator's venv, AURORA_DR_VENV or .venv) and stops it at the end.
Exit status: 0 when nothing was denied (and the self-test passed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import botocore.exceptions  # noqa: E402
import deploy  # noqa: E402
import pipeline  # noqa: E402
import stacks  # noqa: E402

REPO = stacks.REPO
EVALUATOR = Path(__file__).resolve().with_name("evaluator.mjs")
AWS_MANAGED = "arn:aws:iam::aws:policy/"
DENIAL_CODES = {"AccessDenied", "AccessDeniedException", "AuthorizationError", "KMSKeyNotAccessibleFault"}


class Control:
    """The emulator's control endpoint."""

    def __init__(self, endpoint: str):
        self.base = endpoint.rstrip("/") + "/_aurora_dr/"

    def __call__(self, method, route, payload):
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(
            self.base + route, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{method} {route}: {e.code} {e.read().decode(errors='replace')}") from None


class LocalEmulator:
    """emulator/launcher.py on a free port, from the emulator's venv."""

    def __init__(self):
        venv = Path(os.environ.get("AURORA_DR_VENV", REPO / ".venv"))
        python = venv / "bin" / "python"
        if not python.exists():
            raise SystemExit(f"error: no emulator venv at {venv}; run `make emulator-env` first")
        self.proc = subprocess.Popen(
            [
                str(python),
                str(REPO / "emulator" / "launcher.py"),
                "--port",
                "0",
                "--quiet",
                "--latency",
                '{"polls": 1}',
                "--exit-on-stdin-eof",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO / "emulator",
            # AWS's managed policies (AWSLambdaBasicExecutionRole) exist in IAM.
            env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("ready "):
            self.close()
            raise SystemExit(f"error: the emulator did not start ({line!r})")
        self.endpoint = line.split(" ", 1)[1]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def seed_source_cluster(emu, dep: dict):
    """The production cluster the source stack points at: encrypted with a
    key of its own, one writer (what the source account already has)."""
    st = dep["stacks"]["source"]
    account, region = st["account"], st["region"]
    params = st["parameters"]
    engine = dep["stacks"]["target"]["parameters"]["Engine"]
    key = emu.client("kms", account, region).create_key(Description="production cluster storage key")
    rds = emu.client("rds", account, region)
    cluster = params["SourceDBClusterIdentifier"]
    rds.create_db_cluster(
        DBClusterIdentifier=cluster,
        Engine=engine,
        MasterUsername="admin_user",
        MasterUserPassword="Secret-Password-1",
        StorageEncrypted=True,
        KmsKeyId=key["KeyMetadata"]["Arn"],
    )
    rds.create_db_instance(
        DBInstanceIdentifier=f"{cluster}-1",
        DBClusterIdentifier=cluster,
        Engine=engine,
        DBInstanceClass=dep["stacks"]["target"]["parameters"]["DBInstanceClass"],
    )


def seed_dr_cluster(emu, dep: dict):
    """The DR cluster a previous run left under the existing name, so one
    run goes through the whole swap (old names away, then Terminate)."""
    st = dep["stacks"]["target"]
    params = st["parameters"]
    rds = emu.client("rds", st["account"], st["region"])
    tags = [
        {"Key": "aurora-dr:managed-by", "Value": "aurora-dr"},
        {"Key": "aurora-dr:source-cluster", "Value": params["SourceDBClusterIdentifier"]},
    ]
    rds.create_db_cluster(
        DBClusterIdentifier=params["ExistingDBClusterIdentifier"],
        Engine=params["Engine"],
        MasterUsername="admin_user",
        MasterUserPassword="Secret-Password-1",
        Tags=tags,
    )
    rds.create_db_instance(
        DBInstanceIdentifier=params["ExistingDBInstanceIdentifier"],
        DBClusterIdentifier=params["ExistingDBClusterIdentifier"],
        Engine=params["Engine"],
        DBInstanceClass=params["DBInstanceClass"],
        Tags=tags,
    )
    for _ in range(20):  # the emulator's latency counts describe calls
        cluster = rds.describe_db_clusters(DBClusterIdentifier=params["ExistingDBClusterIdentifier"])
        instance = rds.describe_db_instances(DBInstanceIdentifier=params["ExistingDBInstanceIdentifier"])
        if (
            cluster["DBClusters"][0]["Status"]
            == instance["DBInstances"][0]["DBInstanceStatus"]
            == "available"
        ):
            return
    raise RuntimeError("the seeded DR cluster never became available")


def principals(dep: dict) -> dict[str, str]:
    return {fn["role"]: fn["logicalId"] for fn in dep["functions"].values()}


def denial_lines(decisions) -> list[str]:
    lines = []
    for d in decisions:
        if d["decision"] != "Allowed":
            via = " (RDS on the caller's behalf)" if d.get("via") else ""
            lines.append(f"DENIED {d['function']} {d['action']} {d['resource']}: {d['reason']}{via}")
    return lines


# ---- least privilege -------------------------------------------------------------


def _list(value):
    return value if isinstance(value, list) else [value]


def statements_of(dep: dict):
    """(owner, kind, key, policy name, index, statement) of every policy the
    templates declare: role inline policies, the key policy, the topic
    policies, the Lambda permissions. AWS managed policies are not ours."""
    for arn, role in dep["roles"].items():
        for pol in role["policies"]:
            if pol["name"].startswith(AWS_MANAGED):
                continue
            for i, st in enumerate(_list(pol["policy"].get("Statement", [])), 1):
                yield f"{role['side']}/{role['logicalId']}", "identity", arn, pol["name"], i, st
    for arn, key in dep["keys"].items():
        for i, st in enumerate(_list(key["policy"].get("Statement", [])), 1):
            yield key["logicalId"], "kms-key", arn, "key policy", i, st
    for arn, topic in dep["topics"].items():
        if topic["logicalId"] != "NotificationTopic":
            continue  # the failure topics keep SNS's default policy
        for i, st in enumerate(_list(topic["policy"].get("Statement", [])), 1):
            yield topic["logicalId"], "sns-topic", arn, "topic policy", i, st
    for fn in dep["functions"].values():
        for i, st in enumerate(_list((fn["resourcePolicy"] or {}).get("Statement", [])), 1):
            yield f"{fn['side']}/{fn['logicalId']}", "lambda-function", fn["arn"], "function policy", i, st


def statement_label(owner, name, index, st) -> str:
    """`<owner> <Sid>`, or `<owner> <policy>#<n>` for a statement without a Sid."""
    return f"{owner} {st['Sid']}" if st.get("Sid") else f"{owner} {name.split('/')[-1]}#{index}"


def granted_by(decision, kind, key, name, index, st) -> bool:
    for g in decision.get("grants", []):
        same_statement = (
            g.get("statementId") == st.get("Sid") if st.get("Sid") else g.get("statementIndex") == index
        )
        if not same_statement:
            continue
        if kind == "identity" and g.get("policyType") == "identity" and g.get("policyIdentifier") == name:
            return True
        if (
            kind != "identity"
            and g.get("policyType") == "resource"
            and decision.get("policy") == kind
            and decision["resource"] == key
        ):
            return True
    return False


def wildcard(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower().replace("[", "[[]"))


def least_privilege(dep: dict, decisions) -> tuple[list[str], dict]:
    """Warnings for what no allowed request used; and, per used statement,
    the decisions it granted (the self-test's work list)."""
    allowed = [d for d in decisions if d["decision"] == "Allowed"]
    warnings, used = [], {}
    for owner, kind, key, name, index, st in statements_of(dep):
        if st.get("Effect") != "Allow":
            continue
        label = statement_label(owner, name, index, st)
        hits = [d for d in allowed if granted_by(d, kind, key, name, index, st)]
        if not hits:
            warnings.append(
                f"UNUSED {label}: no request of the rehearsal was allowed by this statement "
                f"({', '.join(_list(st.get('Action', [])))})"
            )
            continue
        used[(owner, kind, key, name, index)] = (st, hits)
        actions = [a for a in _list(st.get("Action", [])) if not any(wildcard(a, d["action"]) for d in hits)]
        if actions:
            warnings.append(f"UNUSED {label}: actions never used: {', '.join(actions)}")
        if kind == "identity":
            resources = [
                r for r in _list(st.get("Resource", [])) if not any(wildcard(r, d["resource"]) for d in hits)
            ]
            if resources:
                warnings.append(f"UNUSED {label}: resources never used: {', '.join(resources)}")
    return warnings, used


# ---- self-test ---------------------------------------------------------------------


class Remover:
    """Removes one statement through the service's API and puts it back."""

    def __init__(self, emu, dep):
        self.emu, self.dep = emu, dep

    def _without(self, policy, index):
        statements = _list(policy.get("Statement", []))
        return {**policy, "Statement": [s for i, s in enumerate(statements, 1) if i != index]}

    def apply(self, kind, key, name, index, policy_doc, restore=False):
        account, region = key.split(":")[4], key.split(":")[3] or "us-east-1"
        doc = policy_doc if restore else self._without(policy_doc, index)
        if kind == "identity":
            role_name, policy_name = name.split("/", 1)
            iam = self.emu.client("iam", account, region)
            if not doc.get("Statement"):
                iam.delete_role_policy(RoleName=role_name, PolicyName=policy_name)
            else:
                iam.put_role_policy(
                    RoleName=role_name,
                    PolicyName=policy_name,
                    PolicyDocument=json.dumps({"Version": "2012-10-17", **doc}),
                )
        elif kind == "kms-key":
            self.emu.client("kms", account, region).put_key_policy(
                KeyId=key, PolicyName="default", Policy=json.dumps(doc)
            )
        elif kind == "sns-topic":
            self.emu.client("sns", account, region).set_topic_attributes(
                TopicArn=key, AttributeName="Policy", AttributeValue=json.dumps(doc)
            )
        elif kind == "lambda-function":
            lam = self.emu.client("lambda", account, region)
            st = _list(policy_doc["Statement"])[index - 1]
            if restore:
                cond = st.get("Condition", {})
                lam.add_permission(
                    FunctionName=key,
                    StatementId=st["Sid"],
                    Action=st["Action"],
                    Principal=st["Principal"]["Service"],
                    SourceArn=next(iter(cond.get("ArnLike", {}).values()), None) or None,
                    SourceAccount=next(iter(cond.get("StringEquals", {}).values()), None) or None,
                )
            else:
                lam.remove_permission(FunctionName=key, StatementId=st["Sid"])


def policy_document(dep, kind, key, name):
    if kind == "identity":
        return next(p["policy"] for p in dep["roles"][key]["policies"] if p["name"] == name)
    if kind == "kms-key":
        return dep["keys"][key]["policy"]
    if kind == "sns-topic":
        return dep["topics"][key]["policy"]
    return next(f["resourcePolicy"] for f in dep["functions"].values() if f["arn"] == key)


def self_test(emu, dep, control, pipe: pipeline.Pipeline, used, progress=print) -> tuple[int, int, list[str]]:
    """Each used statement removed in turn: the requests it allowed are made
    again (API calls through the emulator, service checks through iam/check)
    and at least one must now be denied, naming an action of the statement."""
    decisions = control("GET", "iam", None)["decisions"]
    by_decision = {}
    for call in pipe.calls:
        for i in call.decisions:
            by_decision.setdefault(i, call)
    checks_by_key = {}
    for c in pipe.checks:
        checks_by_key.setdefault((c["action"], c["resource"], c["role"]), c)
    remover = Remover(emu, dep)
    passed = failed = 0
    lines, redundant = [], []
    for (owner, kind, key, name, index), (st, hits) in used.items():
        label = statement_label(owner, name, index, st)
        doc = policy_document(dep, kind, key, name)
        remover.apply(kind, key, name, index, doc)
        denied = []
        try:
            targets = []
            for d in hits:
                pos = next((i for i, x in enumerate(decisions) if x is d or x == d), None)
                call = by_decision.get(pos)
                if call is not None:
                    targets.append(("call", call))
                else:
                    check = checks_by_key.get((d["action"], d["resource"], d["role"]))
                    if check is not None:
                        targets.append(("check", check))
            seen = set()
            for what, target in targets:
                if id(target) in seen:
                    continue
                seen.add(id(target))
                if what == "call":
                    try:
                        target.replay()
                    except botocore.exceptions.ClientError as e:
                        code, message = e.response["Error"]["Code"], e.response["Error"].get("Message", "")
                        if code in DENIAL_CODES:
                            denied.append(
                                f"{target.function} {target.service}:{target.operation} -> {code}: {message}"
                            )
                else:
                    again = control("POST", "iam/check", target["replayPayload"])
                    if again["decision"] != "Allowed":
                        denied.append(
                            f"{again['function']} {again['action']} -> {again['decision']}: {again['reason']}"
                        )
        finally:
            remover.apply(kind, key, name, index, doc, restore=True)
        actions = _list(st.get("Action", []))
        naming = [
            x
            for x in denied
            if any(wildcard(a, word) for a in actions for word in x.replace(",", " ").split())
        ]
        shared = all(len(d.get("grants", [])) > 1 for d in hits)
        if naming:
            passed += 1
            lines.append(f"  ok    without {label}: {naming[0]}")
        elif shared and not denied:
            # Every request it allowed is also allowed by another statement:
            # no denial is expected; the overlap is a least-privilege finding.
            redundant.append(label)
            lines.append(
                f"  same  without {label}: every request it allowed is also allowed by another statement"
            )
        else:
            failed += 1
            lines.append(
                f"  FAIL  without {label}: no request was denied naming {', '.join(actions)}"
                + (f" (denied: {denied[0]})" if denied else "")
            )
    return passed, failed, lines, redundant


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=REPO / "examples" / "drill.toml")
    p.add_argument("--endpoint", help="a running emulator (default: start one)")
    p.add_argument("--self-test", action="store_true", help="remove each used Allow statement in turn")
    p.add_argument("--json", type=Path, help="write the read-back, decisions and report here")
    args = p.parse_args(argv)

    local = None if args.endpoint else LocalEmulator()
    endpoint = args.endpoint or local.endpoint
    status = 0
    try:
        control = Control(endpoint)
        emu = deploy.Emulator(endpoint)
        start = time.monotonic()
        deployed = deploy.deploy_all(emu, stacks.load_config(args.config))
        dep = deploy.read_back(emu, deployed)
        seed_source_cluster(emu, dep)
        seed_dr_cluster(emu, dep)
        control(
            "POST",
            "iam",
            {"mode": "enforce", "evaluator": ["node", str(EVALUATOR)], "principals": principals(dep)},
        )
        pipe = pipeline.Pipeline(emu, dep, control)
        error = None
        try:
            pipe.deployment_checks()
            pipe.run(1, pipeline.stamp())
            pipe.failure_paths(pipeline.stamp(60))
            pipe.refusals(pipeline.stamp(120))
        except botocore.exceptions.ClientError as e:
            error = f"{pipe.calls[-1].function} {pipe.calls[-1].service}:{pipe.calls[-1].operation}: {e}"
        state = control("GET", "iam", None)
        decisions = state["decisions"]
        took = time.monotonic() - start
        expected = {i for call in pipe.expected_denials for i in call.decisions}
        refused = denial_lines([d for i, d in enumerate(decisions) if i in expected])
        denials = denial_lines([d for i, d in enumerate(decisions) if i not in expected])
        api = sum(len(c.decisions) for c in pipe.calls)
        print(
            f"rehearsal: {len(pipe.calls)} API calls ({api} authorization requests) and "
            f"{len(pipe.checks)} service checks judged in {took:.1f} s; {len(denials)} denied"
        )
        for line in denials:
            print(line)
        print(f"refused as the policies must ({len(refused)}):")
        for line in refused:
            print(f"  {line}")
        for op, why in sorted(state["unjudged"].items()):
            print(f"UNJUDGED {op}: {why}")
        if error:
            print(f"the run stopped: {error}")
        warnings, used = least_privilege(dep, decisions)
        print(f"least privilege: {len(warnings)} warning(s)")
        for line in warnings:
            print(f"  {line}")
        if denials or error or state["unjudged"] or len(refused) < len(pipe.expected_denials):
            status = 1
        if args.self_test and not error:
            passed, failed, lines, redundant = self_test(emu, dep, control, pipe, used)
            print(f"self-test: every used Allow statement removed in turn ({len(used)} statements)")
            for line in lines:
                print(line)
            for label in redundant:
                print(f"  OVERLAP {label}: another statement allows everything it allowed (least privilege)")
            print(f"self-test: {passed} passed, {failed} failed, {len(redundant)} skipped")
            if failed:
                status = 1
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "deployment": dep,
                        "decisions": decisions,
                        "denials": denials,
                        "leastPrivilege": warnings,
                    },
                    indent=1,
                    default=str,
                )
            )
        control("DELETE", "iam", None)
    finally:
        if local:
            local.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
