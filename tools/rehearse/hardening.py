#!/usr/bin/env python3
"""The security review's hardening, checked on the rendered stacks (`make lint-infra`).

    hardening.py [--config examples/drill.toml]

Each rule reads what `sam deploy` would create for the drill configuration
(checkov_scan.rendered_stacks: the SAM translator, conditions applied) and
names every resource that falls short:

- only NotifyFunction's role may publish to the snapshot topic: its topic
  policy denies sns:Publish to every other principal (aws:PrincipalArn);
- a heartbeat alarm on the target side: no AchievedRPOSeconds sample within
  its period alarms, missing data breaching;
- each state machine logs to a log group of its stack (level ERROR, without
  execution data) and has a tracing setting;
- every function writes to a log group of its stack (LoggingConfig), and
  every log group has a retention;
- the schedule's target has a retry policy and a dead-letter queue that
  only the schedule's rule may send to;
- InvokeStepFunctionFunction has reserved concurrency;
- the SanityCheck connection cannot be configured without TLS, and a CA
  bundle means verify-full;
- every SNS topic is encrypted with a customer managed key of its stack
  whose policy admits the services that publish to it;
- the target stack's subscription to the source topic takes only its own
  target's messages: a filter policy on the message attributes
  targetAccountId and targetRegion equal to the stack's account and region
  (the source topic carries one message per DR target).

Exit status 1 when a rule is broken. The unit tests (test_rehearse_units.py)
break a copy of the rendered stacks for each rule.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import checkov_scan  # noqa: E402
import stacks  # noqa: E402


def _list(value):
    return value if isinstance(value, list) else [value]


def _of_type(template: dict, kind: str) -> dict:
    return {k: r for k, r in template["Resources"].items() if r.get("Type") == kind}


def _ref(value) -> str | None:
    """The logical id a Ref or a Fn::GetAtt names."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return att[0] if isinstance(att, list) else att.split(".", 1)[0]
    return None


def _statements(document) -> list[dict]:
    return [s for s in _list((document or {}).get("Statement", [])) if isinstance(s, dict)]


def topic_publishers(env: str, t: dict) -> list[str]:
    problems = []
    if env != "source":
        return problems
    policies = [
        r["Properties"] for r in _of_type(t, "AWS::SNS::TopicPolicy").values()
        if any(_ref(x) == "NotificationTopic" for x in _list(r["Properties"].get("Topics", [])))
    ]
    denies = [
        s for p in policies for s in _statements(p.get("PolicyDocument"))
        if s.get("Effect") == "Deny" and "sns:Publish" in _list(s.get("Action"))
        and s.get("Principal") in ("*", {"AWS": "*"})
        and _ref((s.get("Condition") or {}).get("ArnNotEquals", {}).get("aws:PrincipalArn")) == "NotifyFunctionRole"
    ]
    if not denies:
        problems.append(
            f"{env}: NotificationTopic's policy does not deny sns:Publish to every principal but "
            "NotifyFunctionRole (ArnNotEquals aws:PrincipalArn)"
        )
    return problems


def heartbeat(env: str, t: dict) -> list[str]:
    if env != "target":
        return []
    for a in _of_type(t, "AWS::CloudWatch::Alarm").values():
        p = a["Properties"]
        if (
            p.get("MetricName") == "AchievedRPOSeconds"
            and p.get("Statistic") == "SampleCount"
            and p.get("ComparisonOperator") == "LessThanThreshold"
            and str(p.get("Threshold")) == "1"
            and p.get("TreatMissingData") == "breaching"
            and p.get("AlarmActions")
        ):
            return []
    return [
        f"{env}: no heartbeat alarm (AchievedRPOSeconds SampleCount < 1 in the period, "
        "TreatMissingData breaching, with an alarm action)"
    ]


def machine_logs(env: str, t: dict) -> list[str]:
    problems = []
    groups = _of_type(t, "AWS::Logs::LogGroup")
    for lid, m in _of_type(t, "AWS::StepFunctions::StateMachine").items():
        p = m["Properties"]
        log = p.get("LoggingConfiguration") or {}
        if log.get("Level") != "ERROR" or log.get("IncludeExecutionData") is not False:
            problems.append(f"{env}: {lid} does not log at level ERROR without execution data")
        dests = [_ref((d.get("CloudWatchLogsLogGroup") or {}).get("LogGroupArn")) for d in log.get("Destinations", [])]
        if not dests or any(d not in groups for d in dests):
            problems.append(f"{env}: {lid} does not log to a log group of its stack")
        if "TracingConfiguration" not in p:
            problems.append(f"{env}: {lid} has no tracing setting (TracingConfiguration)")
    return problems


def function_logs(env: str, t: dict) -> list[str]:
    problems = []
    groups = _of_type(t, "AWS::Logs::LogGroup")
    for lid, f in _of_type(t, "AWS::Lambda::Function").items():
        group = _ref(((f["Properties"].get("LoggingConfig") or {}).get("LogGroup")))
        if group not in groups:
            problems.append(f"{env}: {lid} does not write to a log group of its stack (LoggingConfig.LogGroup)")
    for lid, g in groups.items():
        if not g["Properties"].get("RetentionInDays"):
            problems.append(f"{env}: log group {lid} has no RetentionInDays")
    return problems


def schedule_target(env: str, t: dict) -> list[str]:
    problems = []
    queues = _of_type(t, "AWS::SQS::Queue")
    queue_policies = _of_type(t, "AWS::SQS::QueuePolicy").values()
    for lid, rule in _of_type(t, "AWS::Events::Rule").items():
        for target in rule["Properties"].get("Targets", []):
            if not target.get("RetryPolicy"):
                problems.append(f"{env}: {lid} target {target.get('Id')} has no RetryPolicy")
            queue = _ref((target.get("DeadLetterConfig") or {}).get("Arn"))
            if queue not in queues:
                problems.append(f"{env}: {lid} target {target.get('Id')} has no dead-letter queue of its stack")
                continue
            scoped = [
                s for qp in queue_policies
                if any(_ref(q) == queue for q in _list(qp["Properties"].get("Queues", [])))
                for s in _statements(qp["Properties"].get("PolicyDocument"))
                if s.get("Effect") == "Allow"
                and _ref((s.get("Condition") or {}).get("ArnEquals", {}).get("aws:SourceArn")) == lid
            ]
            if not scoped:
                problems.append(f"{env}: dead-letter queue {queue} has no policy scoped to {lid} (aws:SourceArn)")
    return problems


def reserved_concurrency(env: str, t: dict) -> list[str]:
    f = t["Resources"].get("InvokeStepFunctionFunction")
    if env == "target" and (f is None or not f["Properties"].get("ReservedConcurrentExecutions")):
        return [f"{env}: InvokeStepFunctionFunction has no ReservedConcurrentExecutions"]
    return []


def sanity_tls(env: str, t: dict) -> list[str]:
    if env != "target":
        return []
    problems = []
    allowed = (t.get("Parameters", {}).get("SanityTls") or {}).get("AllowedValues") or []
    if not allowed or "disable" in allowed:
        problems.append(f"{env}: SanityTls offers {allowed or 'any value'}; the probe must never go without TLS")
    rules = json.dumps(t.get("Rules") or {})
    if "SanityTlsCaFile" not in rules or "verify-full" not in rules:
        problems.append(f"{env}: no rule makes a CA bundle (SanityTlsCaFile) mean SanityTls=verify-full")
    return problems


def topic_keys(env: str, t: dict) -> list[str]:
    problems = []
    keys = _of_type(t, "AWS::KMS::Key")
    alarms = _of_type(t, "AWS::CloudWatch::Alarm").values()
    for lid, topic in _of_type(t, "AWS::SNS::Topic").items():
        key = _ref(topic["Properties"].get("KmsMasterKeyId"))
        if key not in keys:
            problems.append(f"{env}: topic {lid} is not encrypted with a customer managed key of its stack")
            continue
        published_by_alarms = any(lid in [_ref(x) for x in a["Properties"].get("AlarmActions", [])] for a in alarms)
        if published_by_alarms:
            admitted = [
                s for s in _statements(keys[key]["Properties"].get("KeyPolicy"))
                if s.get("Effect") == "Allow"
                and "cloudwatch.amazonaws.com" in _list((s.get("Principal") or {}).get("Service", []))
                and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(_list(s.get("Action")))
            ]
            if not admitted:
                problems.append(
                    f"{env}: {key}'s policy does not admit CloudWatch (kms:Decrypt, kms:GenerateDataKey*), "
                    f"which publishes {lid}'s alarms"
                )
    return problems


def subscription_filter(env: str, t: dict) -> list[str]:
    problems = []
    for lid, sub in _of_type(t, "AWS::SNS::Subscription").items():
        props = sub["Properties"]
        if props.get("Protocol") != "lambda":
            continue
        policy = props.get("FilterPolicy") or {}
        want = {"targetAccountId": [{"Ref": "AWS::AccountId"}], "targetRegion": [{"Ref": "AWS::Region"}]}
        if props.get("FilterPolicyScope") != "MessageAttributes" or any(policy.get(k) != v for k, v in want.items()):
            problems.append(
                f"{env}: subscription {lid} does not filter on its own targetAccountId and targetRegion "
                f"(FilterPolicyScope MessageAttributes)"
            )
    return problems


RULES = (
    topic_publishers,
    heartbeat,
    machine_logs,
    function_logs,
    schedule_target,
    reserved_concurrency,
    sanity_tls,
    topic_keys,
    subscription_filter,
)


def check(templates: dict[str, dict]) -> list[str]:
    """Every rule on every rendered stack ({env: template})."""
    return [p for env, t in templates.items() for rule in RULES for p in rule(env, t)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=stacks.REPO / "examples" / "drill.toml")
    args = p.parse_args(argv)
    templates = {env: t for env, (_, t) in checkov_scan.rendered_stacks(args.config).items()}
    problems = check(templates)
    for line in problems:
        print(f"hardening: {line}")
    print(f"hardening: {len(RULES)} rules on {len(templates)} stacks, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
