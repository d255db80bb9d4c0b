"""RDS identifier rules for clusters, instances and cluster snapshots: 1 to 63
letters, digits or hyphens; the first a letter; no two consecutive hyphens;
no trailing hyphen. A malformed identifier is InvalidParameterValue (HTTP 400,
API reference "Common Errors"); no resource is created or renamed.

- CreateDBCluster / RestoreDBClusterFromSnapshot `DBClusterIdentifier`,
  ModifyDBCluster `NewDBClusterIdentifier`:
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterFromSnapshot.html
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html
- CreateDBInstance `DBInstanceIdentifier`, ModifyDBInstance `NewDBInstanceIdentifier`:
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html
- CreateDBClusterSnapshot `DBClusterSnapshotIdentifier`, CopyDBClusterSnapshot
  `TargetDBClusterSnapshotIdentifier`:
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBClusterSnapshot.html
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html
- DeleteDBCluster `FinalDBSnapshotIdentifier`: its page allows 1 to 255
  characters, but the snapshot it creates is a DB cluster snapshot, whose
  identifier CreateDBClusterSnapshot limits to 63. The pages contradict each
  other; the emulator applies 63 (what the created snapshot must satisfy).
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBCluster.html

moto checked instance identifiers only (cluster identifiers not at all,
snapshot identifiers up to 255). Creating a cluster under an identifier
already in use is DBClusterAlreadyExistsFault (moto replaced the existing
cluster); that check is not switchable, as replacing loses a cluster.
"""

import re

from moto.rds import models as rds

from compat.common import rds_error, wrap
from settings import strict

MAX_LENGTH = 63
SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*\Z")


def check(value, parameter):
    """Raises InvalidParameterValue unless `value` is a valid RDS identifier."""
    if not strict("identifiers") or value is None:
        return
    value = str(value)
    if not value:
        raise rds_error(
            "InvalidParameterValue", f"The parameter {parameter} must be provided and must not be blank."
        )
    if len(value) > MAX_LENGTH:
        raise rds_error(
            "InvalidParameterValue",
            f"The parameter {parameter} is not a valid identifier because it is longer than "
            f"{MAX_LENGTH} characters.",
        )
    if not SHAPE.match(value) or "--" in value or value.endswith("-"):
        raise rds_error(
            "InvalidParameterValue",
            f"The parameter {parameter} is not a valid identifier. Identifiers must begin with a letter; "
            "must contain only ASCII letters, digits, and hyphens; and must not end with a hyphen or "
            "contain two consecutive hyphens.",
        )


def install():
    @wrap(rds.RDSBackend, "create_db_cluster")
    def create_db_cluster(original, self, kwargs):
        cluster_id = kwargs.get("db_cluster_identifier")
        check(cluster_id, "DBClusterIdentifier")
        if cluster_id and cluster_id in self.clusters:
            raise rds_error("DBClusterAlreadyExistsFault", f"DB Cluster {cluster_id} already exists")
        return original(self, kwargs)

    @wrap(rds.RDSBackend, "modify_db_cluster")
    def modify_db_cluster(original, self, kwargs):
        check(kwargs.get("new_db_cluster_identifier"), "NewDBClusterIdentifier")
        return original(self, kwargs)

    @wrap(rds.RDSBackend, "create_db_instance")
    def create_db_instance(original, self, db_kwargs):
        check(db_kwargs.get("db_instance_identifier"), "DBInstanceIdentifier")
        return original(self, db_kwargs)

    @wrap(rds.RDSBackend, "modify_db_instance")
    def modify_db_instance(original, self, db_instance_identifier, db_kwargs):
        check(db_kwargs.get("new_db_instance_identifier"), "NewDBInstanceIdentifier")
        return original(self, db_instance_identifier, db_kwargs)

    @wrap(rds.RDSBackend, "create_db_cluster_snapshot")
    def create_db_cluster_snapshot(
        original, self, db_cluster_identifier, db_cluster_snapshot_identifier, *a, **kw
    ):
        manual = (a[0] if a else kw.get("snapshot_type", "manual")) == "manual"
        if manual:
            check(db_cluster_snapshot_identifier, "DBClusterSnapshotIdentifier")
        return original(self, db_cluster_identifier, db_cluster_snapshot_identifier, *a, **kw)

    @wrap(rds.RDSBackend, "copy_db_cluster_snapshot")
    def copy_db_cluster_snapshot(
        original, self, source_db_cluster_snapshot_identifier, target_db_cluster_snapshot_identifier, *a, **kw
    ):
        check(target_db_cluster_snapshot_identifier, "TargetDBClusterSnapshotIdentifier")
        return original(
            self, source_db_cluster_snapshot_identifier, target_db_cluster_snapshot_identifier, *a, **kw
        )

    @wrap(rds.RDSBackend, "delete_db_cluster")
    def delete_db_cluster(original, self, cluster_identifier, snapshot_name=None):
        check(snapshot_name, "FinalDBSnapshotIdentifier")
        return original(self, cluster_identifier, snapshot_name)
