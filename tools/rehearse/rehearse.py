#!/usr/bin/env python3
"""The deploy rehearsal's judge: what the decisions of a rehearsal mean.

    rehearse.py judge --endpoint URL --deployment deployment.json [--self-test] [--json FILE]

`aurora-dr rehearse` deploys the stacks (deploy.py), runs the drill on that
wiring with IAM mode on and then hands over here, with the emulator still
running:

1. every denied request of the run, as `DENIED <function> <action>
   <resource>: <reason>`, and every operation the operation table could not
   judge (`UNJUDGED`);
2. the refusals the policies must make (an untagged snapshot under the
   pipeline's name, the serving cluster, the snapshot topic for any role
   but Notify's): each a request judged through `POST
   /_aurora_dr/iam/check` that must be denied;
3. the least-privilege report: statements, actions and resources of the
   template's policies that no allowed request of the run used; each must
   be justified by a `# Unused in the rehearsal: <reason>` comment above its
   statement in the template (a justification of a statement the run uses
   in full is stale);
4. with --self-test: each Allow statement a request used is removed in
   turn through the service's API (IAM, KMS, SNS, Lambda), the requests it
   allowed are judged again from the recorded call log, and at least one
   must now be denied naming an action of the statement.

Exit status: 0 when nothing was denied, nothing unjudged, every refusal
refused, every unused grant justified (and the self-test passed), 1
otherwise.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import deploy  # noqa: E402

AWS_MANAGED = "arn:aws:iam::aws:policy/"


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


def denial_lines(decisions) -> list[str]:
    lines = []
    for d in decisions:
        if d["decision"] != "Allowed":
            via = f" ({d['via'].upper()} on the caller's behalf)" if d.get("via") else ""
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


# A grant no request of the rehearsal used stays only with its reason, written
# in the template next to the statement:
#
#     # Unused in the rehearsal: <why it is needed anyway>
#     - Sid: <Sid>
#
# The marker may open any line of the comment block right above the statement
# (or above the `- !If` holding it); the reason runs to the block's end.
JUSTIFICATION = "Unused in the rehearsal:"
TEMPLATE_FILES = ("template.yaml", "infra/kms-key.yaml")


def justifications(templates: Path) -> dict[tuple[str, str], str]:
    """(resource logical id, Sid) -> reason, from the templates' comments."""
    found = {}
    for name in TEMPLATE_FILES:
        path = templates / name
        if not path.exists():
            continue
        resource, in_resources, block = None, False, []
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if line.rstrip() == "Resources:":
                in_resources = True
                continue
            if in_resources and line[:2] == "  " and line[2:3].isalpha() and stripped.endswith(":"):
                resource = stripped[:-1]
            if stripped.startswith("#"):
                block.append(stripped.lstrip("#").strip())
                continue
            if stripped in ("- !If", "- !Ref AWS::NoValue") or (
                stripped.startswith("- ") and stripped[2:].isidentifier() and block
            ):
                continue  # the condition's lines between the comment and its statement
            sid = stripped[len("- Sid:"):].strip() if stripped.startswith("- Sid:") else None
            if sid and resource:
                text = " ".join(block)
                if JUSTIFICATION in text:
                    found[(resource, sid)] = text.split(JUSTIFICATION, 1)[1].strip()
            block = []
    return found


def resource_of(owner: str) -> str:
    """The template resource whose comments justify a statement of `owner`:
    a role's function or state machine (SAM names the role <Resource>Role),
    the topic's policy."""
    name = owner.split("/")[-1]
    if name.endswith("Role"):
        return name[: -len("Role")]
    if name.endswith("Topic"):
        return name + "Policy"
    return name


def reason_key(owner: str, sid: str, reasons: dict) -> tuple[str, str]:
    """The key of the justification of `owner`'s statement `sid`: the
    statement's own resource, the role itself when the template declares
    it, or a policy resource of the role's owner (`<Resource>...Policy`,
    attached to the role outside its Policies)."""
    key = (resource_of(owner), sid)
    if key in reasons:
        return key
    own = (owner.split("/")[-1], sid)  # a role declared as a resource of its own (AWS::IAM::Role)
    if own in reasons:
        return own
    attached = [r for r in reasons if r[1] == sid and r[0].startswith(key[0]) and r[0].endswith("Policy")]
    return attached[0] if len(attached) == 1 else key


def judge_least_privilege(dep: dict, warnings: list[str], reasons: dict) -> tuple[list[str], list[str], list[str]]:
    """Splits the warnings into justified ones (with their reason) and
    unjustified ones; a justification of a deployed statement the rehearsal
    now uses in full is stale."""
    justified, unjustified, seen = [], [], set()
    for w in warnings:
        label = w.split(":", 1)[0][len("UNUSED "):]
        owner, sid = label.rsplit(" ", 1)
        key = reason_key(owner, sid, reasons)
        if key in reasons:
            seen.add(key)
            justified.append(f"{w} (justified: {reasons[key]})")
        else:
            unjustified.append(w)
    deployed = {
        reason_key(owner, st["Sid"], reasons) for owner, _, _, _, _, st in statements_of(dep) if st.get("Sid")
    }
    # A statement the drill's configuration does not deploy keeps its reason.
    stale = [
        f"STALE justification of {res} {sid}: the rehearsal uses every grant of the statement"
        for res, sid in sorted(set(reasons) - seen)
        if (res, sid) in deployed
    ]
    return justified, unjustified, stale


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


# ---- refusals ---------------------------------------------------------------------


def refusals(dep: dict) -> list[dict]:
    """Requests the deployed policies must deny, each with the resource's
    tags as condition keys: destruction outside the pipeline's own names and
    tags, and publishing to the snapshot topic by any role but Notify's."""
    src, tgt = dep["stacks"]["source"], dep["stacks"]["target"]
    sp, tp = src["parameters"], tgt["parameters"]
    cluster, prefix = sp["SourceDBClusterIdentifier"], sp["SnapshotPrefix"]
    managed = {"aurora-dr:managed-by": "aurora-dr", "aurora-dr:source-cluster": cluster}

    def rds(kind, account, region, name):
        return f"arn:aws:rds:{region}:{account}:{kind}:{name}"

    def tagged(kind, tags):
        key = {"cluster": "rds:cluster-tag", "db": "rds:db-tag", "cluster-snapshot": "rds:cluster-snapshot-tag"}[kind]
        ctx = {}
        for k, v in tags.items():
            ctx[f"aws:ResourceTag/{k}"] = v
            ctx[f"{key}/{k}"] = v
        return ctx

    def fn(side, logical):
        return dep["functions"][f"{side}/{logical}"]

    foreign_snapshot = rds("cluster-snapshot", src["account"], src["region"], f"{prefix}-{cluster}-19990101000000")
    existing, temp = tp["ExistingDBClusterIdentifier"], tp["TempDBClusterIdentifier"]
    serving = rds("cluster", tgt["account"], tgt["region"], existing)
    old_untagged = rds("cluster", tgt["account"], tgt["region"], f"{existing}-old-19990101000000")
    topic = src["outputs"]["NotificationTopicArn"]
    out = []

    def refuse(why, side, logical, action, resource, context, policy=None, identity=None):
        f = fn(side, logical)
        request = {
            "why": why,
            "function": logical,
            "principal": f["role"],
            "action": action,
            "resource": resource,
            "context": {"aws:PrincipalArn": f["role"], "aws:PrincipalAccount": f["role"].split(":")[4], **context},
            "policy": policy,
            "operation": f"(refusal) {action}",
        }
        if identity:
            # The role's own policies replaced by these (a broader grant than
            # the template's): what the resource's policy must still refuse.
            request["identityPolicies"] = identity
        out.append(request)

    for logical in ("ApplyRetentionFunction", "CleanUpSnapshotFunction"):
        refuse(
            "a snapshot under the pipeline's name without its tags",
            "source",
            logical,
            "rds:DeleteDBClusterSnapshot",
            foreign_snapshot,
            {},
        )
    for logical in ("TerminateFunction", "CleanUpTempClusterFunction"):
        refuse(
            "the serving cluster, even with the pipeline's tags",
            "target",
            logical,
            "rds:DeleteDBCluster",
            serving,
            tagged("cluster", managed),
        )
    refuse(
        "a renamed-away cluster without the pipeline's tags",
        "target",
        "TerminateFunction",
        "rds:DeleteDBCluster",
        old_untagged,
        {},
    )
    refuse(
        "a temporary-named cluster without the pipeline's tags",
        "target",
        "CleanUpTempClusterFunction",
        "rds:DeleteDBCluster",
        rds("cluster", tgt["account"], tgt["region"], temp),
        {},
    )
    refuse("the serving cluster", "target", "RestoreFunction", "rds:DeleteDBCluster", serving, tagged("cluster", managed))
    for logical in ("NotifyFailureFunction", "CreateSnapshotFunction"):
        refuse(
            "the snapshot topic: only Notify publishes",
            "source",
            logical,
            "sns:Publish",
            topic,
            {"aws:SecureTransport": "true"},
            policy="sns-topic",
        )
    # Regions: the source functions' RDS grants name snapshots of any region
    # (rds:*:...), SourceRegionsOnlyPolicy takes back every region but the
    # source's and TargetAWSRegion's; Share's own Deny also the source's.
    listed = {src["region"], *sp["TargetAWSRegion"].split(",")}
    elsewhere = next(r for r in ("ap-southeast-2", "eu-north-1", "sa-east-1") if r not in listed)
    copy_name = f"{prefix}-{cluster}-19990101000000"
    for logical, action in (("ShareFunction", "rds:ModifyDBClusterSnapshotAttribute"),
                            ("EncryptCopyFunction", "rds:CopyDBClusterSnapshot"),
                            ("ApplyRetentionFunction", "rds:DeleteDBClusterSnapshot")):
        refuse(
            "a snapshot under the pipeline's name in a region that is neither the source nor a target region",
            "source",
            logical,
            action,
            rds("cluster-snapshot", src["account"], elsewhere, copy_name),
            tagged("cluster-snapshot", managed),
        )
    refuse(
        "sharing a snapshot of the source region (only the copies in the target regions are shared)",
        "source",
        "ShareFunction",
        "rds:ModifyDBClusterSnapshotAttribute",
        foreign_snapshot,
        tagged("cluster-snapshot", managed),
    )
    # The topic policy: a target account subscribes only its own function.
    deployer = f"arn:aws:iam::{tgt['account']}:role/aurora-dr-deployer"
    admin = [{"name": "administrator", "policy": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}]
    other_account = next(a for a in ("333333333333", "444444444444") if a not in (src["account"], tgt["account"]))
    out.append({
        "why": "the snapshot topic: a target account subscribes a function of another account",
        "function": "SourceTopicSubscription",
        "principal": deployer,
        "action": "sns:Subscribe",
        "resource": topic,
        "context": {"aws:PrincipalArn": deployer, "aws:PrincipalAccount": tgt["account"],
                    "sns:Protocol": "lambda", "aws:SecureTransport": "true",
                    "sns:Endpoint": f"arn:aws:lambda:{tgt['region']}:{other_account}:function:f"},
        "policy": "sns-topic",
        "operation": "(refusal) sns:Subscribe",
        "identityPolicies": admin,
    })
    # The topic policy's own Deny: a role of the account whose policy allows
    # every SNS action on every topic still may not publish there.
    everything = [{"name": "AllowsEverySnsAction", "policy": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sns:*", "Resource": "*"}]}}]
    refuse(
        "the snapshot topic: only Notify publishes, whatever the caller's own policy allows",
        "source",
        "NotifyFailureFunction",
        "sns:Publish",
        topic,
        {"aws:SecureTransport": "true"},
        policy="sns-topic",
        identity=everything,
    )
    return out


# ---- self-test ---------------------------------------------------------------------


def replay_payload(d: dict) -> dict:
    """A recorded decision as an iam/check request: the same principal (the
    role, for an API call), action, resource, condition keys and resource
    policy."""
    principal = d["role"]
    context = dict(d.get("context") or {})
    if ":role/" in principal:
        context.setdefault("aws:PrincipalArn", principal)
        context.setdefault("aws:PrincipalAccount", principal.split(":")[4])
    payload = {
        "function": d["function"],
        "principal": principal,
        "action": d["action"],
        "resource": d["resource"],
        "context": context,
        "policy": d.get("policy"),
        "operation": f"(self-test) {d['action']}",
    }
    if d.get("identityPolicies"):
        payload["identityPolicies"] = d["identityPolicies"]
    return payload


def self_test(emu, dep, control, used) -> tuple[int, int, list[str], list[str]]:
    """Each used statement removed in turn: the requests it allowed are
    judged again (from the recorded decisions) and at least one must now be
    denied, naming an action of the statement."""
    remover = Remover(emu, dep)
    passed = failed = 0
    lines, redundant = [], []
    for (owner, kind, key, name, index), (st, hits) in used.items():
        label = statement_label(owner, name, index, st)
        doc = policy_document(dep, kind, key, name)
        remover.apply(kind, key, name, index, doc)
        denied = []
        try:
            seen = set()
            for d in hits:
                payload = replay_payload(d)
                marker = json.dumps(payload, sort_keys=True)
                if marker in seen:
                    continue
                seen.add(marker)
                again = control("POST", "iam/check", payload)
                if again["decision"] != "Allowed":
                    denied.append(f"{again['function']} {again['action']} -> {again['decision']}: {again['reason']}")
        finally:
            remover.apply(kind, key, name, index, doc, restore=True)
        actions = _list(st.get("Action", []))
        naming = [
            x for x in denied if any(wildcard(a, word) for a in actions for word in x.replace(",", " ").split())
        ]
        shared = all(len(d.get("grants", [])) > 1 for d in hits)
        if naming:
            passed += 1
            lines.append(f"  ok    without {label}: {naming[0]}")
        elif shared and not denied:
            # Every request it allowed is also allowed by another statement:
            # no denial is expected; the overlap is a least-privilege finding.
            redundant.append(label)
            lines.append(f"  same  without {label}: every request it allowed is also allowed by another statement")
        else:
            failed += 1
            lines.append(
                f"  FAIL  without {label}: no request was denied naming {', '.join(actions)}"
                + (f" (denied: {denied[0]})" if denied else "")
            )
    return passed, failed, lines, redundant


def judge(endpoint: str, dep: dict, templates: Path, run_self_test: bool, out: Path | None) -> int:
    control = Control(endpoint)
    emu = deploy.Emulator(endpoint)
    state = control("GET", "iam", None)
    if state["mode"] == "off":
        print("error: IAM mode is off: nothing was judged", file=sys.stderr)
        return 1
    decisions = state["decisions"]
    denials = denial_lines(decisions)
    calls = sum(1 for d in decisions if not d["operation"].startswith("("))
    print(
        f"judged: {len(decisions)} authorization requests ({calls} of API calls, "
        f"{len(decisions) - calls} of services); {len(denials)} denied"
    )
    for line in denials:
        print(line)
    for op, why in sorted(state["unjudged"].items()):
        print(f"UNJUDGED {op}: {why}")
    status = 1 if denials or state["unjudged"] else 0

    refused, not_refused = [], []
    for r in refusals(dep):
        answer = control("POST", "iam/check", {k: v for k, v in r.items() if k != "why"})
        line = f"{r['function']} {r['action']} {r['resource']} ({r['why']})"
        (refused if answer["decision"] != "Allowed" else not_refused).append(line)
    print(f"refused as the policies must: {len(refused)} of {len(refused) + len(not_refused)}")
    for line in not_refused:
        print(f"NOT REFUSED {line}")
    if not_refused:
        status = 1

    warnings, used = least_privilege(dep, decisions)
    justified, unjustified, stale = judge_least_privilege(dep, warnings, justifications(templates))
    print(
        f"least privilege: {len(warnings)} grant(s) unused, {len(justified)} justified in the templates, "
        f"{len(unjustified)} not"
    )
    for line in justified + unjustified + stale:
        print(f"  {line}")
    if unjustified or stale:
        print(
            f"least privilege: remove the grant or justify it in the template "
            f"(a '# {JUSTIFICATION} <reason>' comment above the statement)"
        )
        status = 1
    result = {"denials": denials, "unjudged": state["unjudged"], "refused": refused, "notRefused": not_refused,
              "leastPrivilege": unjustified, "justified": justified, "staleJustifications": stale,
              "decisions": len(decisions)}
    if run_self_test:
        passed, failed, lines, redundant = self_test(emu, dep, control, used)
        print(f"self-test: every used Allow statement removed in turn ({len(used)} statements)")
        for line in lines:
            print(line)
        for label in redundant:
            print(f"  OVERLAP {label}: another statement allows everything it allowed (least privilege)")
        print(f"self-test: {passed} passed, {failed} failed, {len(redundant)} skipped")
        result["selfTest"] = {"passed": passed, "failed": failed, "skipped": len(redundant), "lines": lines}
        if failed:
            status = 1
    if out:
        out.write_text(json.dumps(result, indent=1))
    return status


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    j = sub.add_parser("judge", help="report on the decisions of a rehearsal (the emulator still running)")
    j.add_argument("--endpoint", required=True)
    j.add_argument("--deployment", type=Path, required=True, help="deploy.py's read-back")
    j.add_argument("--templates", type=Path, default=Path(__file__).resolve().parents[2],
                   help="template.yaml and infra/ (their comments justify unused grants)")
    j.add_argument("--self-test", action="store_true", help="remove each used Allow statement in turn")
    j.add_argument("--json", type=Path, help="write the report here")
    args = p.parse_args(argv)
    dep = json.loads(args.deployment.read_text())
    return judge(args.endpoint, dep, args.templates, args.self_test, args.json)


if __name__ == "__main__":
    sys.exit(main())
