"""The AWS calls of pipeline runs, made with the deployed roles' credentials.

Each step acts as its deployed function would: with credentials from
sts:AssumeRole into the role the stack created for that function, in the
function's account and region, with the parameters the step sends
(crates/core/src/steps). What services do with a deployed resource's policy
(Lambda assuming a function's role, Step Functions invoking a Task's
function, SNS invoking the subscribed function, CloudFormation subscribing
across accounts) is judged through the emulator's `POST /_aurora_dr/iam/check`.

Every API call is recorded with a replay closure, so the self-test can make
the same call again after removing a statement and see AWS's denial.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import botocore.exceptions
from botocore import xform_name

ADMIN_POLICY = [
    {
        "name": "administrator",
        "policy": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        },
    }
]


@dataclass
class Call:
    function: str
    role: str
    service: str
    operation: str
    replay: object = field(repr=False, default=None)  # () -> response, raises ClientError
    error: str | None = None
    decisions: range = range(0)  # indexes into the emulator's IAM decisions


class Pipeline:
    def __init__(self, emu, deployment: dict, control, progress=print):
        self.emu = emu
        self.dep = deployment
        self.control = control  # (method, route, payload) -> JSON
        self.progress = progress
        self.calls: list[Call] = []
        self.checks: list[dict] = []
        self.expected_denials: list[Call] = []
        st = deployment["stacks"]
        self.src = (st["source"]["account"], st["source"]["region"])
        self.tgt = (st["target"]["account"], st["target"]["region"])
        self.params = {side: st[side]["parameters"] for side in ("source", "target")}

    # ---- plumbing ----

    def function(self, side, logical):
        return self.dep["functions"][f"{side}/{logical}"]

    def client(self, side, logical, service, region=None):
        fn = self.function(side, logical)
        account = fn["arn"].split(":")[4]
        region = region or fn["arn"].split(":")[3]
        return self.emu.client(service, account, region, role_arn=fn["role"])

    def call(self, side, logical, service, operation, region=None, expect_error=None, **kwargs):
        """One API call of a function; errors other than `expect_error` fail the run."""
        client = self.client(side, logical, service, region)
        method = getattr(client, xform_name(operation))

        def replay():
            return method(**kwargs)

        record = Call(logical, self.function(side, logical)["role"], service, operation, replay)
        self.calls.append(record)
        before = self.control("GET", "iam/count", None)["decisions"]
        try:
            return replay()
        except botocore.exceptions.ClientError as e:
            record.error = e.response["Error"]["Code"]
            if expect_error and record.error == expect_error:
                return None
            raise
        finally:
            record.decisions = range(before, self.control("GET", "iam/count", None)["decisions"])

    def check(self, label, principal, action, resource, context=None, policy=None, identity=None):
        payload = {
            "function": label,
            "principal": principal,
            "action": action,
            "resource": resource,
            "context": context or {},
            "policy": policy,
            "operation": f"(service) {action}",
        }
        if identity is not None:
            payload["identityPolicies"] = identity
        result = self.control("POST", "iam/check", payload)
        result["replayPayload"] = payload
        self.checks.append(result)
        return result

    def wait(self, side, logical, operation, region=None, limit=20, **kwargs):
        """FetchStatus's polling: describe until `available` (bounded); each
        poll is a judged call."""
        key = {
            "DescribeDBClusterSnapshots": ("DBClusterSnapshots", "Status"),
            "DescribeDBClusters": ("DBClusters", "Status"),
            "DescribeDBInstances": ("DBInstances", "DBInstanceStatus"),
        }[operation]
        for _ in range(limit):
            out = self.call(side, logical, "rds", operation, region=region, **kwargs)
            status = out[key[0]][0][key[1]]
            if status == "available":
                return status
        raise RuntimeError(f"{logical}: still {status} after {limit} polls")

    # ---- the services' own checks of the deployment ----

    def deployment_checks(self):
        for fn in self.dep["functions"].values():
            self.check(
                fn["logicalId"], "lambda.amazonaws.com", "sts:AssumeRole", fn["role"], policy="role-trust"
            )
            # The Lambda runtime writes the function's logs with its role
            # ("Lambda execution role": https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html).
            region, account = fn["arn"].split(":")[3], fn["arn"].split(":")[4]
            group = f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{fn['name']}"
            self.check(fn["logicalId"], fn["role"], "logs:CreateLogGroup", group)
            for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
                self.check(fn["logicalId"], fn["role"], action, f"{group}:log-stream:2026/01/01/[$LATEST]0")
        for sm in self.dep["stateMachines"].values():
            self.check(
                sm["logicalId"], "states.amazonaws.com", "sts:AssumeRole", sm["role"], policy="role-trust"
            )
            # Step Functions invokes each Task's function with the machine's
            # role ("IAM policies for Lambda tasks":
            # https://docs.aws.amazon.com/step-functions/latest/dg/lambda-iam.html).
            for resource in sorted(_task_resources(sm["definition"] or {})):
                self.check(
                    sm["logicalId"], sm["role"], "lambda:InvokeFunction", resource, policy="lambda-function"
                )
        for arn, role in self.dep["roles"].items():
            if role["logicalId"].endswith("ScheduleRole"):
                self.check(
                    role["logicalId"], "events.amazonaws.com", "sts:AssumeRole", arn, policy="role-trust"
                )
                machine = self.dep["stacks"]["source"]["outputs"]["SourceStateMachineArn"]
                self.check(role["logicalId"], arn, "states:StartExecution", machine)
        # CloudFormation subscribes the target function to the source topic
        # with the target deployer's credentials (administrator here): the
        # topic policy must admit it.
        invoke = self.function("target", "InvokeStepFunctionFunction")
        topic = self.params["target"]["SourceTopicArn"]
        deployer = f"arn:aws:iam::{self.tgt[0]}:role/aurora-dr-deployer"
        self.check(
            "SourceTopicSubscription",
            deployer,
            "sns:Subscribe",
            topic,
            {"sns:Protocol": "lambda", "sns:Endpoint": invoke["arn"], "aws:SecureTransport": "true"},
            policy="sns-topic",
            identity=ADMIN_POLICY,
        )

    def snapshot_and_copy(self, snapshot: str, tags: list) -> None:
        """CreateSnapshot, FetchStatus, EncryptCopy (into the target region), FetchStatus."""
        p = self.params["source"]
        (src_account, src_region), tgt_region = self.src, self.tgt[1]
        cluster = p["SourceDBClusterIdentifier"]
        self.call(
            "source",
            "CreateSnapshotFunction",
            "rds",
            "CreateDBClusterSnapshot",
            DBClusterIdentifier=cluster,
            DBClusterSnapshotIdentifier=snapshot,
            Tags=tags,
        )
        self.wait(
            "source",
            "FetchStatusFunction",
            "DescribeDBClusterSnapshots",
            DBClusterSnapshotIdentifier=snapshot,
        )
        self.call(
            "source",
            "EncryptCopyFunction",
            "rds",
            "CopyDBClusterSnapshot",
            region=tgt_region,
            SourceDBClusterSnapshotIdentifier=f"arn:aws:rds:{src_region}:{src_account}:cluster-snapshot:{snapshot}",
            TargetDBClusterSnapshotIdentifier=snapshot,
            KmsKeyId=p["KMSKey"],
            CopyTags=True,
            Tags=tags,
        )
        self.wait(
            "source",
            "FetchStatusFunction",
            "DescribeDBClusterSnapshots",
            region=tgt_region,
            DBClusterSnapshotIdentifier=snapshot,
        )

    # ---- one run ----

    def run(self, run_no: int, stamp: str):
        src_acct, src_region = self.src
        tgt_acct, tgt_region = self.tgt
        p, t = self.params["source"], self.params["target"]
        cluster, prefix = p["SourceDBClusterIdentifier"], p["SnapshotPrefix"]
        snapshot = f"{prefix}-{cluster}-{stamp}"
        run_id = f"{cluster}-{stamp}"
        tags = [
            {"Key": "aurora-dr:managed-by", "Value": "aurora-dr"},
            {"Key": "aurora-dr:run-id", "Value": run_id},
            {"Key": "aurora-dr:source-cluster", "Value": cluster},
        ]
        self.progress(f"run {run_no}: snapshot {snapshot}")

        # Source side: CreateSnapshot, FetchStatus, EncryptCopy, FetchStatus, Share, Notify.
        self.call(
            "source", "CreateSnapshotFunction", "rds", "DescribeDBClusters", DBClusterIdentifier=cluster
        )
        self.list_source_snapshots()
        self.snapshot_and_copy(snapshot, tags)
        self.call(
            "source",
            "ShareFunction",
            "rds",
            "DescribeDBClusterSnapshotAttributes",
            region=tgt_region,
            DBClusterSnapshotIdentifier=snapshot,
        )
        self.call(
            "source",
            "ShareFunction",
            "rds",
            "ModifyDBClusterSnapshotAttribute",
            region=tgt_region,
            DBClusterSnapshotIdentifier=snapshot,
            AttributeName="restore",
            ValuesToAdd=[tgt_acct],
        )
        topic = self.dep["stacks"]["source"]["outputs"]["NotificationTopicArn"]
        shared_arn = f"arn:aws:rds:{tgt_region}:{src_acct}:cluster-snapshot:{snapshot}"
        message = {"version": 1, "runId": run_id, "targetSnapshotArn": shared_arn}
        self.call("source", "NotifyFunction", "sns", "Publish", TopicArn=topic, Message=json.dumps(message))

        # SNS delivers to the subscribed function (the deployed cross-account
        # subscription; the delivery is judged against its Lambda permission).
        invoke = self.function("target", "InvokeStepFunctionFunction")
        deliveries = self.control("GET", "iam", None)["deliveries"]
        if not any(d["topicArn"] == topic and d["endpoint"] == invoke["arn"] for d in deliveries):
            raise RuntimeError(f"the message to {topic} was not delivered to {invoke['arn']}")
        self.check(
            "InvokeStepFunctionPermission",
            "sns.amazonaws.com",
            "lambda:InvokeFunction",
            invoke["arn"],
            {"aws:SourceArn": topic, "aws:SourceAccount": topic.split(":")[4]},
            policy="lambda-function",
        )

        # Target side: InvokeStepFunction, FetchStatus, Restore, RestoreInstance, Swap, Terminate.
        machine = invoke["environment"]["STATE_MACHINE_ARN"]
        self.call(
            "target", "InvokeStepFunctionFunction", "stepfunctions", "ListExecutions", stateMachineArn=machine
        )
        self.call(
            "target",
            "InvokeStepFunctionFunction",
            "stepfunctions",
            "StartExecution",
            stateMachineArn=machine,
            name=f"{run_id}-{snapshot}"[:80],
            input=json.dumps(message),
        )
        self.wait(
            "target",
            "FetchStatusFunction",
            "DescribeDBClusterSnapshots",
            DBClusterSnapshotIdentifier=shared_arn,
            SnapshotType="shared",
            IncludeShared=True,
        )
        temp, existing = t["TempDBClusterIdentifier"], t["ExistingDBClusterIdentifier"]
        temp_i, existing_i = t["TempDBInstanceIdentifier"], t["ExistingDBInstanceIdentifier"]
        self.call(
            "target",
            "RestoreFunction",
            "rds",
            "DescribeDBClusters",
            DBClusterIdentifier=temp,
            expect_error="DBClusterNotFoundFault",
        )
        self.call(
            "target",
            "RestoreFunction",
            "rds",
            "RestoreDBClusterFromSnapshot",
            DBClusterIdentifier=temp,
            SnapshotIdentifier=shared_arn,
            Engine=t["Engine"],
            KmsKeyId=t["SourceKMSKeyArn"],
            DeletionProtection=t.get("DeletionProtection") == "true",
            Tags=tags,
        )
        self.wait("target", "FetchStatusFunction", "DescribeDBClusters", DBClusterIdentifier=temp)
        self.call(
            "target",
            "RestoreInstanceFunction",
            "rds",
            "CreateDBInstance",
            DBInstanceIdentifier=temp_i,
            DBClusterIdentifier=temp,
            DBInstanceClass=t["DBInstanceClass"],
            Engine=t["Engine"],
            Tags=tags,
        )
        self.wait("target", "FetchStatusFunction", "DescribeDBInstances", DBInstanceIdentifier=temp_i)
        old = None
        found = self.call(
            "target",
            "SwapFunction",
            "rds",
            "DescribeDBClusters",
            DBClusterIdentifier=existing,
            expect_error="DBClusterNotFoundFault",
        )
        if found:
            old, old_i = f"{existing}-old-{stamp}", f"{existing_i}-old-{stamp}"
            self.rename((existing, old), (existing_i, old_i))
        self.rename((temp, existing), (temp_i, existing_i))
        if old:
            self.call("target", "TerminateFunction", "rds", "DescribeDBClusters", DBClusterIdentifier=old)
            self.call(
                "target",
                "TerminateFunction",
                "rds",
                "DeleteDBInstance",
                DBInstanceIdentifier=old_i,
                SkipFinalSnapshot=True,
            )
            self.call(
                "target",
                "TerminateFunction",
                "rds",
                "DeleteDBCluster",
                DBClusterIdentifier=old,
                SkipFinalSnapshot=True,
            )
        # ApplyRetention on both sides.
        self.call("target", "TerminateFunction", "rds", "DescribeDBClusterSnapshots", SnapshotType="manual")
        self.list_source_snapshots()
        return snapshot

    def list_source_snapshots(self) -> None:
        """CreateSnapshot's overlap check and retention: the manual snapshots
        of the source account in both regions."""
        for region in (self.src[1], self.params["source"]["TargetAWSRegion"]):
            self.call(
                "source",
                "CreateSnapshotFunction",
                "rds",
                "DescribeDBClusterSnapshots",
                region=region,
                SnapshotType="manual",
            )

    def rename(self, cluster: tuple[str, str], instance: tuple[str, str]) -> None:
        """Swap's renames: the cluster, then its writer, each waited for."""
        self.call(
            "target",
            "SwapFunction",
            "rds",
            "ModifyDBCluster",
            DBClusterIdentifier=cluster[0],
            NewDBClusterIdentifier=cluster[1],
            ApplyImmediately=True,
        )
        self.wait("target", "SwapFunction", "DescribeDBClusters", DBClusterIdentifier=cluster[1])
        self.call(
            "target",
            "SwapFunction",
            "rds",
            "ModifyDBInstance",
            DBInstanceIdentifier=instance[0],
            NewDBInstanceIdentifier=instance[1],
            ApplyImmediately=True,
        )
        self.wait("target", "SwapFunction", "DescribeDBInstances", DBInstanceIdentifier=instance[1])

    # ---- failure paths ----

    def refusals(self, stamp: str):
        """What the policies must refuse: retention may delete only snapshots
        carrying aurora-dr's tags for the source cluster (a tag condition on
        rds:cluster-snapshot-tag/...), and Restore may not touch the serving
        cluster's name. Each call must fail with AccessDenied."""
        st = self.dep["stacks"]["source"]
        account, region = st["account"], st["region"]
        p = self.params["source"]
        foreign = f"{p['SnapshotPrefix']}-{p['SourceDBClusterIdentifier']}-{stamp}"
        # Someone else's snapshot under the pipeline's naming pattern, without its tags.
        self.emu.client("rds", account, region).create_db_cluster_snapshot(
            DBClusterIdentifier=p["SourceDBClusterIdentifier"], DBClusterSnapshotIdentifier=foreign
        )
        for args in (
            (
                "source",
                "CreateSnapshotFunction",
                "rds",
                "DeleteDBClusterSnapshot",
                {"DBClusterSnapshotIdentifier": foreign},
            ),
            (
                "target",
                "RestoreFunction",
                "rds",
                "DeleteDBCluster",
                {
                    "DBClusterIdentifier": self.params["target"]["ExistingDBClusterIdentifier"],
                    "SkipFinalSnapshot": True,
                },
            ),
        ):
            side, logical, service, operation, kwargs = args
            self.call(side, logical, service, operation, expect_error="AccessDenied", **kwargs)
            record = self.calls[-1]
            if record.error != "AccessDenied":
                raise RuntimeError(
                    f"{logical} {service}:{operation} was not refused (got {record.error or 'success'})"
                )
            self.expected_denials.append(record)

    def failure_paths(self, stamp: str):
        """What failed runs and retention do: a copy cleaned up, snapshots
        pruned by their tags, failure notifications on both sides, and the
        target function's on-failure destination."""
        p = self.params["source"]
        src_region, tgt_region = self.src[1], self.tgt[1]
        cluster, prefix = p["SourceDBClusterIdentifier"], p["SnapshotPrefix"]
        # CleanUpCopy: an unshared copy of a failed run is deleted.
        failed = f"{prefix}-{cluster}-{stamp}"
        tags = [
            {"Key": "aurora-dr:managed-by", "Value": "aurora-dr"},
            {"Key": "aurora-dr:source-cluster", "Value": cluster},
        ]
        self.snapshot_and_copy(failed, tags)
        self.call(
            "source",
            "EncryptCopyFunction",
            "rds",
            "DescribeDBClusterSnapshotAttributes",
            region=tgt_region,
            DBClusterSnapshotIdentifier=failed,
        )
        self.call(
            "source",
            "EncryptCopyFunction",
            "rds",
            "DeleteDBClusterSnapshot",
            region=tgt_region,
            DBClusterSnapshotIdentifier=failed,
        )
        # CleanUpCopy also deletes the failed run's source snapshot.
        self.call(
            "source",
            "EncryptCopyFunction",
            "rds",
            "DeleteDBClusterSnapshot",
            DBClusterSnapshotIdentifier=failed,
        )
        # ApplyRetention past RetainSnapshots: an older run's snapshot and copy go.
        older = f"{prefix}-{cluster}-20200101000000"
        self.snapshot_and_copy(older, tags)
        for region in (src_region, tgt_region):
            self.call(
                "source",
                "CreateSnapshotFunction",
                "rds",
                "DeleteDBClusterSnapshot",
                region=region,
                DBClusterSnapshotIdentifier=older,
            )
        # Failure notifications.
        for side in ("source", "target"):
            topic = self.dep["stacks"][side]["outputs"]["FailureTopicArn"]
            self.call(
                side,
                "NotifyFunction",
                "sns",
                "Publish",
                TopicArn=topic,
                Message=json.dumps({"version": 1, "failed": "Restore", "error": "AccessDenied"}),
            )
        # InvokeStepFunction's on-failure destination: Lambda publishes with the
        # function's execution role ("Retaining records of asynchronous
        # invocations": https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
        invoke = self.function("target", "InvokeStepFunctionFunction")
        self.check(
            "InvokeStepFunctionFunction",
            invoke["role"],
            "sns:Publish",
            self.dep["stacks"]["target"]["outputs"]["FailureTopicArn"],
            {"aws:SecureTransport": "true"},
            policy="sns-topic",
        )


def _task_resources(node):
    if isinstance(node, dict):
        if node.get("Type") == "Task" and isinstance(node.get("Resource"), str):
            yield node["Resource"]
        for value in node.values():
            yield from _task_resources(value)
    elif isinstance(node, list):
        for value in node:
            yield from _task_resources(value)


def stamp(offset: int = 0) -> str:
    return datetime.fromtimestamp(time.time() + offset, tz=timezone.utc).strftime("%Y%m%d%H%M%S")
