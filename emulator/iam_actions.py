"""The operation table of IAM mode: what IAM authorizes for each AWS API call
the pipeline makes.

For one call (service, operation, parameters, caller account and region)
`checks(call, look)` returns the authorization requests AWS evaluates: the
IAM action, the resource ARN derived from the parameters, the condition keys
the request carries, and which resource policy takes part. `look` reads the
emulator's own state (resource tags, a snapshot's key), because several keys
describe the resource, not the request.

Actions, resource types and condition keys follow the Service Authorization
Reference, one page per service (SAR below). Resource types the SAR marks
required (*) are always checked; optional ones only when the request names
them. Where RDS uses a KMS key on the caller's behalf, the check is the
caller's: RDS asks KMS with the caller's credentials, kms:ViaService set to
rds.<region>.amazonaws.com (and, for grants, kms:GrantIsForAWSResource), so
both the caller's policies and the key policy must allow it ("Authorizing
use of a KMS key", https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Overview.Encryption.Keys.html).

The table is deliberately closed: an operation it does not list is
reported as unjudged (IAM mode never guesses an action).
"""

from dataclasses import dataclass, field

# Service Authorization Reference, "Actions, resources, and condition keys for ...".
SAR = {
    "rds": "https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html",
    "kms": "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html",
    "sns": "https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html",
    "states": "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html",
    "secretsmanager": "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html",
    "lambda": "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html",
    "sts": "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html",
    "dynamodb": "https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html",
}

# RDS on the caller's behalf, one page per operation.
RDS_KMS_DOCS = {
    # "Copying an encrypted DB cluster snapshot by using the AWS CLI or Amazon RDS API"
    "CopyDBClusterSnapshot": "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_CopyDBClusterSnapshot.Encrypted.CrossRegion.html",
    # "Sharing encrypted snapshots" (the target account uses the source key through RDS)
    "RestoreDBClusterFromSnapshot": "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/share-encrypted-snapshot.html",
    # "Sharing encrypted snapshots": a snapshot under the default key cannot be shared; sharing
    # itself needs no KMS call (the target account's later use of the key is checked there).
    "ModifyDBClusterSnapshotAttribute": "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/share-encrypted-snapshot.html",
}

# KMS actions RDS performs with the caller's credentials on a key it uses for
# storage ("Authorizing use of a KMS key"): a grant for the resource and the
# key's metadata.
RDS_KEY_ACTIONS = ("kms:CreateGrant", "kms:DescribeKey")


@dataclass
class Check:
    """One authorization request."""

    action: str
    resource: str
    context: dict = field(default_factory=dict)
    # Which resource policy takes part: "kms-key", "sns-topic",
    # "lambda-function", "role-trust", "rds-shared-snapshot" (the snapshot's
    # restore attribute as a grant to the accounts listed), or None.
    policy: str = None
    # Set when the check is RDS acting on the caller's behalf: the error RDS
    # then answers (the caller never sees a KMS error).
    via: str = None
    error_code: str = None
    doc: str = None

    def to_json(self):
        out = {"action": self.action, "resource": self.resource}
        if self.via:
            out["via"] = self.via
        return out


class Unjudged(Exception):
    """The call is not in the table."""


# ---- ARNs ---------------------------------------------------------------------


def arn_account(arn):
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else None


def rds_arn(call, kind, name):
    """An RDS ARN from a name or an ARN given in a parameter."""
    if name.startswith("arn:"):
        return name
    return f"arn:aws:rds:{call['region']}:{call['account']}:{kind}:{name.lower()}"


def indexed(params, prefix):
    """Query-protocol lists: Prefix.member.1, Prefix.member.2 (or Prefix.1)."""
    values = []
    for i in range(1, 1000):
        value = params.get(f"{prefix}.member.{i}", params.get(f"{prefix}.{i}"))
        if value is None:
            break
        values.append(value)
    return values


def request_tags(params):
    """Tags.Tag.N.Key / Tags.member.N.Key of an RDS create call."""
    tags = {}
    for i in range(1, 100):
        key = params.get(f"Tags.Tag.{i}.Key", params.get(f"Tags.member.{i}.Key"))
        if key is None:
            break
        tags[key] = params.get(f"Tags.Tag.{i}.Value", params.get(f"Tags.member.{i}.Value", ""))
    return tags


def tag_context(tags):
    """aws:RequestTag/*, aws:TagKeys and rds:req-tag/* of a create call."""
    if not tags:
        return {}
    ctx = {"aws:TagKeys": sorted(tags)}
    for key, value in tags.items():
        ctx[f"aws:RequestTag/{key}"] = value
        ctx[f"rds:req-tag/{key}"] = value
    return ctx


# Resource-tag condition keys of RDS resource types (SAR, "Resource types").
RDS_TAG_KEYS = {
    "cluster": "rds:cluster-tag",
    "cluster-snapshot": "rds:cluster-snapshot-tag",
    "db": "rds:db-tag",
}


def resource_tag_context(kind, tags):
    if not tags:
        return {}
    ctx = {}
    for key, value in tags.items():
        ctx[f"aws:ResourceTag/{key}"] = value
        if kind in RDS_TAG_KEYS:
            ctx[f"{RDS_TAG_KEYS[kind]}/{key}"] = value
    return ctx


def rds_check(call, look, action, kind, name, extra=None):
    arn = rds_arn(call, kind, name)
    ctx = resource_tag_context(kind, look.rds_tags(arn))
    ctx.update(extra or {})
    # Another account's snapshot: its `restore` attribute is the resource
    # side's grant ("Sharing a DB cluster snapshot": the accounts it is
    # shared with may describe, copy and restore it,
    # https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-share-snapshot.html).
    shared = kind == "cluster-snapshot" and arn_account(arn) not in (None, call["account"])
    return Check(action, arn, ctx, policy="rds-shared-snapshot" if shared else None, doc=SAR["rds"])


def via_rds_key_checks(call, key_ref, operation, actions=RDS_KEY_ACTIONS, region=None):
    """KMS requests RDS makes with the caller's credentials for a key it uses."""
    if not key_ref:
        return []
    region = region or call["region"]
    key_arn = (
        key_ref if key_ref.startswith("arn:") else f"arn:aws:kms:{region}:{call['account']}:key/{key_ref}"
    )
    key_region = key_arn.split(":")[3]
    checks = []
    for action in actions:
        ctx = {"kms:ViaService": f"rds.{key_region}.amazonaws.com", "kms:CallerAccount": call["account"]}
        if action == "kms:CreateGrant":
            ctx["kms:GrantIsForAWSResource"] = "true"
        checks.append(
            Check(
                action,
                key_arn,
                ctx,
                policy="kms-key",
                via="rds",
                error_code="KMSKeyNotAccessibleFault",
                doc=RDS_KMS_DOCS.get(operation, SAR["kms"]),
            )
        )
    return checks


# ---- the table ------------------------------------------------------------------


def rds_describe_db_clusters(call, look):
    # DescribeDBClusters: resource type cluster (optional); without an
    # identifier the request is for every cluster of the account and region.
    name = call["params"].get("DBClusterIdentifier") or "*"
    return [rds_check(call, look, "rds:DescribeDBClusters", "cluster", name)]


def rds_describe_db_instances(call, look):
    name = call["params"].get("DBInstanceIdentifier") or "*"
    return [rds_check(call, look, "rds:DescribeDBInstances", "db", name)]


def rds_describe_db_cluster_snapshots(call, look):
    # Resource types cluster and cluster-snapshot (both optional): the
    # snapshot when one is named, the cluster when one is named; a listing
    # with neither is for every snapshot of the account and region.
    p = call["params"]
    checks = []
    if p.get("DBClusterSnapshotIdentifier"):
        checks.append(
            rds_check(
                call,
                look,
                "rds:DescribeDBClusterSnapshots",
                "cluster-snapshot",
                p["DBClusterSnapshotIdentifier"],
            )
        )
    if p.get("DBClusterIdentifier"):
        checks.append(
            rds_check(call, look, "rds:DescribeDBClusterSnapshots", "cluster", p["DBClusterIdentifier"])
        )
    if not checks:
        checks.append(rds_check(call, look, "rds:DescribeDBClusterSnapshots", "cluster-snapshot", "*"))
    return checks


def rds_describe_account_attributes(call, look):
    # DescribeAccountAttributes has no resource type in the SAR: "*".
    return [Check("rds:DescribeAccountAttributes", "*")]


def rds_describe_db_cluster_snapshot_attributes(call, look):
    return [
        rds_check(
            call,
            look,
            "rds:DescribeDBClusterSnapshotAttributes",
            "cluster-snapshot",
            call["params"]["DBClusterSnapshotIdentifier"],
        )
    ]


def rds_create_db_cluster_snapshot(call, look):
    # cluster* and cluster-snapshot*; tags in the request also need
    # rds:AddTagsToResource on the new snapshot (SAR condition keys
    # aws:RequestTag, aws:TagKeys; tagging on create, "Tagging Amazon RDS
    # resources": https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_Tagging.html).
    p = call["params"]
    tags = tag_context(request_tags(p))
    checks = [
        rds_check(call, look, "rds:CreateDBClusterSnapshot", "cluster", p["DBClusterIdentifier"]),
        Check(
            "rds:CreateDBClusterSnapshot",
            rds_arn(call, "cluster-snapshot", p["DBClusterSnapshotIdentifier"]),
            tags,
            doc=SAR["rds"],
        ),
    ]
    if tags:
        checks.append(
            Check(
                "rds:AddTagsToResource",
                rds_arn(call, "cluster-snapshot", p["DBClusterSnapshotIdentifier"]),
                tags,
                doc=SAR["rds"],
            )
        )
    return checks


def rds_copy_db_cluster_snapshot(call, look):
    # cluster-snapshot* for the target (in the caller's region) and the
    # source (an ARN when it is in another region or account). A KmsKeyId
    # makes RDS use that key; the source snapshot's own key decrypts it.
    p = call["params"]
    tags = tag_context(request_tags(p))
    source = p["SourceDBClusterSnapshotIdentifier"]
    target = rds_arn(call, "cluster-snapshot", p["TargetDBClusterSnapshotIdentifier"])
    checks = [
        rds_check(call, look, "rds:CopyDBClusterSnapshot", "cluster-snapshot", source),
        Check("rds:CopyDBClusterSnapshot", target, tags, doc=SAR["rds"]),
    ]
    if tags:
        checks.append(Check("rds:AddTagsToResource", target, tags, doc=SAR["rds"]))
    checks += via_rds_key_checks(call, p.get("KmsKeyId"), "CopyDBClusterSnapshot")
    source_key = look.snapshot_key(rds_arn(call, "cluster-snapshot", source))
    if source_key and source_key != p.get("KmsKeyId"):
        checks += via_rds_key_checks(call, source_key, "CopyDBClusterSnapshot")
    return checks


def rds_modify_db_cluster_snapshot_attribute(call, look):
    return [
        rds_check(
            call,
            look,
            "rds:ModifyDBClusterSnapshotAttribute",
            "cluster-snapshot",
            call["params"]["DBClusterSnapshotIdentifier"],
        )
    ]


def rds_delete_db_cluster_snapshot(call, look):
    return [
        rds_check(
            call,
            look,
            "rds:DeleteDBClusterSnapshot",
            "cluster-snapshot",
            call["params"]["DBClusterSnapshotIdentifier"],
        )
    ]


def rds_restore_db_cluster_from_snapshot(call, look):
    # cluster*, cluster-pg*, og*, subgrp* (required) and cluster-snapshot.
    # Groups the request does not name are the engine defaults; the SAR does
    # not say which ARN RDS then authorizes: the default subnet group
    # ("default") and the engine family's default cluster parameter group
    # are checked; og* is checked only when OptionGroupName is given (the
    # docs are silent on Aurora's implicit option group).
    p = call["params"]
    tags = tag_context(request_tags(p))
    cluster = rds_arn(call, "cluster", p["DBClusterIdentifier"])
    snapshot = rds_arn(call, "cluster-snapshot", p["SnapshotIdentifier"])
    engine = p.get("Engine", "")
    family = look.parameter_group_family(snapshot, engine)
    checks = [
        Check("rds:RestoreDBClusterFromSnapshot", cluster, tags, doc=SAR["rds"]),
        rds_check(
            call, look, "rds:RestoreDBClusterFromSnapshot", "cluster-snapshot", p["SnapshotIdentifier"]
        ),
        Check(
            "rds:RestoreDBClusterFromSnapshot",
            rds_arn(call, "subgrp", p.get("DBSubnetGroupName") or "default"),
            doc=SAR["rds"],
        ),
        Check(
            "rds:RestoreDBClusterFromSnapshot",
            rds_arn(call, "cluster-pg", p.get("DBClusterParameterGroupName") or f"default.{family}"),
            doc=SAR["rds"],
        ),
    ]
    if p.get("OptionGroupName"):
        checks.append(
            Check(
                "rds:RestoreDBClusterFromSnapshot", rds_arn(call, "og", p["OptionGroupName"]), doc=SAR["rds"]
            )
        )
    if tags:
        checks.append(Check("rds:AddTagsToResource", cluster, tags, doc=SAR["rds"]))
    # A KmsKeyId re-encrypts the restore: RDS uses that key for the new
    # cluster and the snapshot's own key to read the snapshot, both on the
    # caller's behalf (as for a copy under another key).
    snapshot_key = look.snapshot_key(snapshot)
    key = p.get("KmsKeyId") or snapshot_key
    checks += via_rds_key_checks(call, key, "RestoreDBClusterFromSnapshot")
    if snapshot_key and snapshot_key != key:
        checks += via_rds_key_checks(call, snapshot_key, "RestoreDBClusterFromSnapshot")
    return checks


def rds_create_db_instance(call, look):
    # db* required; cluster, pg, og, subgrp when named.
    p = call["params"]
    tags = tag_context(request_tags(p))
    db = rds_arn(call, "db", p["DBInstanceIdentifier"])
    checks = [Check("rds:CreateDBInstance", db, tags, doc=SAR["rds"])]
    if p.get("DBClusterIdentifier"):
        checks.append(rds_check(call, look, "rds:CreateDBInstance", "cluster", p["DBClusterIdentifier"]))
    for param, kind in (
        ("DBParameterGroupName", "pg"),
        ("OptionGroupName", "og"),
        ("DBSubnetGroupName", "subgrp"),
    ):
        if p.get(param):
            checks.append(Check("rds:CreateDBInstance", rds_arn(call, kind, p[param]), doc=SAR["rds"]))
    if tags:
        checks.append(Check("rds:AddTagsToResource", db, tags, doc=SAR["rds"]))
    return checks


def rds_modify_db_cluster(call, look):
    # cluster*; a rename (NewDBClusterIdentifier) is authorized on the
    # cluster's current ARN; the SAR has no separate resource for the new name.
    return [rds_check(call, look, "rds:ModifyDBCluster", "cluster", call["params"]["DBClusterIdentifier"])]


def rds_modify_db_instance(call, look):
    return [rds_check(call, look, "rds:ModifyDBInstance", "db", call["params"]["DBInstanceIdentifier"])]


def rds_delete_db_cluster(call, look):
    # cluster*; cluster-snapshot* for the final snapshot when one is taken.
    p = call["params"]
    checks = [rds_check(call, look, "rds:DeleteDBCluster", "cluster", p["DBClusterIdentifier"])]
    final = p.get("FinalDBSnapshotIdentifier")
    if final and str(p.get("SkipFinalSnapshot", "false")).lower() != "true":
        checks.append(Check("rds:DeleteDBCluster", rds_arn(call, "cluster-snapshot", final), doc=SAR["rds"]))
        checks.append(
            Check("rds:CreateDBClusterSnapshot", rds_arn(call, "cluster-snapshot", final), doc=SAR["rds"])
        )
    return checks


def rds_delete_db_instance(call, look):
    return [rds_check(call, look, "rds:DeleteDBInstance", "db", call["params"]["DBInstanceIdentifier"])]


def rds_add_tags_to_resource(call, look):
    p = call["params"]
    arn = p["ResourceName"]
    kind = arn.split(":")[5] if arn.count(":") >= 6 else ""
    ctx = resource_tag_context(kind, look.rds_tags(arn))
    ctx.update(tag_context(request_tags(p)))
    return [Check("rds:AddTagsToResource", arn, ctx, doc=SAR["rds"])]


# KMS actions SNS performs with the publisher's credentials on the key of an
# encrypted topic: the publisher "must have" kms:GenerateDataKey* and
# kms:Decrypt on it ("Key management", Amazon SNS Developer Guide,
# https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html). The
# page names the actions, not the condition keys; kms:ViaService
# sns.<region>.amazonaws.com and kms:CallerAccount are the ones KMS sets for
# any service acting on a caller's behalf ("kms:ViaService", AWS KMS
# Developer Guide, https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
SNS_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
SNS_KMS_DOC = "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html"


def sns_publish(call, look):
    # topic*; the topic policy takes part (same account: either allows).
    arn = call["params"].get("TopicArn") or call["params"].get("TargetArn")
    checks = [Check("sns:Publish", arn, {"aws:SecureTransport": "true"}, policy="sns-topic", doc=SAR["sns"])]
    key = look.topic_key(arn)
    if key:
        ctx = {"kms:ViaService": f"sns.{arn.split(':')[3]}.amazonaws.com", "kms:CallerAccount": call["account"]}
        checks += [
            Check(action, key, dict(ctx), policy="kms-key", via="sns", error_code="KMSAccessDenied", doc=SNS_KMS_DOC)
            for action in SNS_KEY_ACTIONS
        ]
    return checks


def sns_subscribe(call, look):
    # topic*, with sns:Protocol and sns:Endpoint (SAR condition keys).
    p = call["params"]
    ctx = {
        "sns:Protocol": p.get("Protocol", ""),
        "sns:Endpoint": p.get("Endpoint", ""),
        "aws:SecureTransport": "true",
    }
    return [Check("sns:Subscribe", p["TopicArn"], ctx, policy="sns-topic", doc=SAR["sns"])]


def states_start_execution(call, look):
    return [Check("states:StartExecution", call["params"]["stateMachineArn"], doc=SAR["states"])]


def states_list_executions(call, look):
    return [Check("states:ListExecutions", call["params"]["stateMachineArn"], doc=SAR["states"])]


def states_describe_execution(call, look):
    return [Check("states:DescribeExecution", call["params"]["executionArn"], doc=SAR["states"])]


def states_send_task_result(action):
    """SendTaskSuccess / SendTaskFailure: the SAR lists no resource type for
    them, so the request is authorized on "*" (the task token names the
    task; no condition key is documented)."""

    def check(call, look):
        return [Check(action, "*", doc=SAR["states"])]

    return check


def dynamodb_item_check(action):
    """An item operation on a table: the SAR's required resource type is the
    table, arn:aws:dynamodb:<region>:<account>:table/<TableName> (a table
    named by ARN is taken as is)."""

    def check(call, look):
        table = call["params"]["TableName"]
        if not table.startswith("arn:"):
            table = f"arn:aws:dynamodb:{call['region']}:{call['account']}:table/{table}"
        return [Check(action, table, doc=SAR["dynamodb"])]

    return check


def secrets_get_secret_value(call, look):
    secret = call["params"]["SecretId"]
    if not secret.startswith("arn:"):
        secret = look.secret_arn(call["account"], call["region"], secret) or secret
    return [
        Check(
            "secretsmanager:GetSecretValue",
            secret,
            {"secretsmanager:SecretId": secret},
            doc=SAR["secretsmanager"],
        )
    ]


OPERATIONS = {
    ("rds", "DescribeDBClusters"): rds_describe_db_clusters,
    ("rds", "DescribeDBInstances"): rds_describe_db_instances,
    ("rds", "DescribeDBClusterSnapshots"): rds_describe_db_cluster_snapshots,
    ("rds", "DescribeDBClusterSnapshotAttributes"): rds_describe_db_cluster_snapshot_attributes,
    ("rds", "DescribeAccountAttributes"): rds_describe_account_attributes,
    ("rds", "CreateDBClusterSnapshot"): rds_create_db_cluster_snapshot,
    ("rds", "CopyDBClusterSnapshot"): rds_copy_db_cluster_snapshot,
    ("rds", "ModifyDBClusterSnapshotAttribute"): rds_modify_db_cluster_snapshot_attribute,
    ("rds", "DeleteDBClusterSnapshot"): rds_delete_db_cluster_snapshot,
    ("rds", "RestoreDBClusterFromSnapshot"): rds_restore_db_cluster_from_snapshot,
    ("rds", "CreateDBInstance"): rds_create_db_instance,
    ("rds", "ModifyDBCluster"): rds_modify_db_cluster,
    ("rds", "ModifyDBInstance"): rds_modify_db_instance,
    ("rds", "DeleteDBCluster"): rds_delete_db_cluster,
    ("rds", "DeleteDBInstance"): rds_delete_db_instance,
    ("rds", "AddTagsToResource"): rds_add_tags_to_resource,
    ("sns", "Publish"): sns_publish,
    ("sns", "Subscribe"): sns_subscribe,
    ("states", "StartExecution"): states_start_execution,
    ("states", "ListExecutions"): states_list_executions,
    ("states", "DescribeExecution"): states_describe_execution,
    ("states", "SendTaskSuccess"): states_send_task_result("states:SendTaskSuccess"),
    ("states", "SendTaskFailure"): states_send_task_result("states:SendTaskFailure"),
    ("dynamodb", "PutItem"): dynamodb_item_check("dynamodb:PutItem"),
    ("dynamodb", "Query"): dynamodb_item_check("dynamodb:Query"),
    ("dynamodb", "DeleteItem"): dynamodb_item_check("dynamodb:DeleteItem"),
    ("secretsmanager", "GetSecretValue"): secrets_get_secret_value,
}


def checks(call, look):
    """The authorization requests of one call; Unjudged when the table has
    no row for it."""
    handler = OPERATIONS.get((call["service"], call["operation"]))
    if handler is None:
        raise Unjudged(f"{call['service']}:{call['operation']} is not in the operation table")
    try:
        return handler(call, look)
    except KeyError as missing:
        raise Unjudged(f"{call['service']}:{call['operation']} without parameter {missing}") from None


# ---- checks that are not API calls of a function ---------------------------------
# What services do with a deployed resource's own policy; the rehearsal asks
# for these through the control endpoint (POST /_aurora_dr/iam/check).


def service_invokes_function(topic_arn, function_arn):
    """SNS delivering to a Lambda subscription: lambda:InvokeFunction by
    sns.amazonaws.com with aws:SourceArn = the topic, aws:SourceAccount = its
    owner, against the function's resource-based policy ("Using Lambda with
    Amazon SNS", https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html).
    An EventBridge rule invoking a target function is the same request with
    the rule's ARN ("Using resource-based policies for Amazon EventBridge",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html)."""
    ctx = {"aws:SourceArn": topic_arn, "aws:SourceAccount": arn_account(topic_arn)}
    return Check("lambda:InvokeFunction", function_arn, ctx, policy="lambda-function", doc=SAR["lambda"])
