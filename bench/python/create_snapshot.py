"""Python baseline of the CreateSnapshot Lambda.

Clients at module level, as in the blog. Per invocation it makes the same
AWS calls as the Rust step on a fresh run: DescribeDBClusters (the source
cluster), DescribeDBClusterSnapshots (this run's name), the two
overlap checks (manual snapshots of the cluster in the source region, all
manual snapshots in the target region), then CreateDBClusterSnapshot with
the run's tags.
"""

import os

import boto3

CLUSTER_ID = os.environ["SOURCE_CLUSTER_ID"]
PREFIX = os.environ.get("SNAPSHOT_PREFIX", "aurora-dr")
RUN_TAG = "aurora-dr:run-id"

rds = boto3.client("rds")
target_rds = boto3.client("rds", region_name=os.environ["TARGET_REGION"])


class Conflict(Exception):
    pass


def manual_snapshots(client, **filters):
    pages = client.get_paginator("describe_db_cluster_snapshots").paginate(SnapshotType="manual", **filters)
    return [s for page in pages for s in page["DBClusterSnapshots"]]


def busy_run(snapshot, run_id, busy):
    tags = {t["Key"]: t["Value"] for t in snapshot.get("TagList", [])}
    other = tags.get(RUN_TAG)
    if other and other != run_id and snapshot.get("Status") in busy:
        return other
    return None


def handler(event, context):
    run_id = event["runId"]
    stamp = event["createdAt"][:19].replace("-", "").replace("T", "").replace(":", "")
    snapshot_id = ("%s-%s-%s" % (PREFIX, CLUSTER_ID, stamp)).lower()
    cluster = rds.describe_db_clusters(DBClusterIdentifier=CLUSTER_ID)["DBClusters"][0]
    try:
        existing = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot_id)
        snapshot = existing["DBClusterSnapshots"][0]
    except rds.exceptions.DBClusterSnapshotNotFoundFault:
        for client, filters, busy in ((rds, {"DBClusterIdentifier": CLUSTER_ID}, ("creating", "copying")),
                                      (target_rds, {}, ("copying",))):
            for other in manual_snapshots(client, **filters):
                if busy_run(other, run_id, busy):
                    raise Conflict("another run is in progress: %s" % other["DBClusterSnapshotIdentifier"])
        snapshot = rds.create_db_cluster_snapshot(
            DBClusterIdentifier=CLUSTER_ID,
            DBClusterSnapshotIdentifier=snapshot_id,
            Tags=[{"Key": "aurora-dr:managed-by", "Value": "aurora-dr"},
                  {"Key": RUN_TAG, "Value": run_id},
                  {"Key": "aurora-dr:source-cluster", "Value": CLUSTER_ID}],
        )["DBClusterSnapshot"]
    return dict(event, sourceClusterId=CLUSTER_ID, sourceSnapshotId=snapshot_id,
                sourceSnapshotArn=snapshot["DBClusterSnapshotArn"], engine=cluster["Engine"])
