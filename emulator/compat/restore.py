"""RestoreDBClusterFromSnapshot: a shared snapshot by ARN, and a new cluster
built from what the snapshot holds, not from the source cluster's settings.

- API reference, RestoreDBClusterFromSnapshot: the snapshot by name or ARN
  (a shared one by ARN), in the caller's Region; DBClusterSnapshotNotFoundFault
  otherwise; InvalidDBClusterSnapshotStateFault for a snapshot not
  `available`; KMSKeyNotAccessibleFault for a key the caller may not use.
  Per parameter: Port defaults to the source's; KmsKeyId to the snapshot's
  key (and encrypts the restore of an unencrypted snapshot); EngineVersion
  to "the default version for the database engine in the Region";
  DeletionProtection, CopyTagsToSnapshot and IAM authentication are off by
  default; tags, VPC security groups, DB subnet group, parameter group and
  ServerlessV2ScalingConfiguration are only what the request gives.
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterFromSnapshot.html
- Aurora user guide, "Restoring from a DB cluster snapshot":
  https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-restore-snapshot.html

moto copied the whole source cluster (deletion protection, serverless v2
scaling, security groups, subnet group, tags, backup retention, even its
resource id and endpoint) and overlaid the request.

EngineVersion: the page says a restore without it gets the Region's default
version. Read literally that could be older than the snapshot's version,
which no restore can do; the docs say nothing more, and the emulator follows
the page (the caller should pass the snapshot's version).
"""

import copy

from moto.rds import models as rds

import progress
from compat.common import check_key_usable, check_snapshot_key, require_available, resolve_snapshot
from settings import strict

# Properties moto's restore copied that make a resource what it is, never
# carried over even in lenient mode.
IDENTITY = (
    "url_identifier",
    "db_cluster_resource_id",
    "hosted_zone_id",
    "_status",
    "created",
    "cluster_create_time",
)


def from_snapshot(self, snapshot, overrides):
    """The new cluster's properties: what the snapshot holds plus the request."""
    props = {
        "engine": snapshot.engine,
        "engine_version": rds.DBCluster.default_engine_version(snapshot.engine),
        "master_username": snapshot.master_username,
        "master_user_password": snapshot.cluster.__dict__.get("_master_user_password") or "",
        "database_name": snapshot.cluster.database_name,
        "port": snapshot.port,
        "storage_encrypted": bool(snapshot.encrypted),
        "kms_key_id": snapshot.kms_key_id if snapshot.encrypted else None,
        "character_set_name": snapshot.cluster.character_set_name,
        "engine_mode": getattr(snapshot.cluster, "engine_mode", "provisioned"),
    }
    props.update({k: v for k, v in overrides.items() if v is not None and v != []})
    if (
        overrides.get("engine")
        and overrides["engine"] != snapshot.engine
        and not overrides.get("engine_version")
    ):
        props["engine_version"] = rds.DBCluster.default_engine_version(overrides["engine"])
    return props


def restore_key(self, snapshot, kms_key_id):
    """The key of the restored cluster: the one asked for, else the
    snapshot's. A KmsKeyId re-encrypts the restore (API reference,
    RestoreDBClusterFromSnapshot `KmsKeyId`: key ARN, key id, alias ARN or
    alias name; another account's key by ARN). RDS must be able to use it for
    the caller: a key that does not exist, is not enabled, or is another
    account's whose policy does not let the caller use it is refused with
    KMSKeyNotAccessibleFault (the page's Errors). KMS keys are specific to
    the Region they are created in (API reference, CopyDBClusterSnapshot
    `KmsKeyId`), so a key of another Region is refused the same way: the
    restore page is silent on it and names no other code. The cluster
    reports the key's ARN.
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterFromSnapshot.html
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html"""
    if not kms_key_id:
        return snapshot.kms_key_id if snapshot.encrypted else None
    key = check_key_usable(kms_key_id, self.account_id, self.region_name, self.account_id)
    if key.region != self.region_name:
        from moto.rds.exceptions import KMSKeyNotAccessibleFault

        raise KMSKeyNotAccessibleFault(kms_key_id)
    return key.arn


def install():
    def restore(self, from_snapshot_id, overrides):
        snapshot = resolve_snapshot(self, from_snapshot_id, same_region=True)
        require_available(snapshot)
        check_snapshot_key(snapshot, self.account_id)
        overrides = {k: v for k, v in dict(overrides).items() if k not in ("snapshot_identifier",)}
        if strict("restore_from_snapshot"):
            props = from_snapshot(self, snapshot, overrides)
            kms = restore_key(self, snapshot, overrides.get("kms_key_id"))
            props["kms_key_id"] = kms
            props["storage_encrypted"] = kms is not None
        else:
            props = copy.copy(snapshot.cluster.get_cfg())
            for key in IDENTITY:
                props.pop(key, None)
            for key, value in overrides.items():
                if value:
                    props[key] = value
        props["_adr_kind"] = "restore"
        props["_adr_gib"] = progress.gib_of(snapshot)
        return self.create_db_cluster(props)

    rds.RDSBackend.restore_db_cluster_from_snapshot = restore
