"""Python baseline of the FetchStatus Lambda (waitFor sourceSnapshot).

Written the way the blog's Python functions are: boto3 imported and the
client created at module level (the init phase), one AWS call per
invocation: DescribeDBClusterSnapshots of this run's snapshot, as the Rust
step makes it.
"""

import boto3

rds = boto3.client("rds")


class ResourceNotReady(Exception):
    pass


class NotFound(Exception):
    pass


def handler(event, context):
    snapshot_id = event["run"]["sourceSnapshotId"]
    try:
        out = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot_id)
    except rds.exceptions.DBClusterSnapshotNotFoundFault:
        raise NotFound("snapshot %s does not exist" % snapshot_id)
    snapshot = out["DBClusterSnapshots"][0]
    status = snapshot["Status"]
    if status != "available":
        raise ResourceNotReady("snapshot %s is %s" % (snapshot_id, status))
    return {"resource": snapshot_id, "status": status}
