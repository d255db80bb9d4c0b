"""RDS quotas per account and Region, and DescribeAccountAttributes.

Aurora user guide, "Quotas and constraints for Amazon Aurora" (defaults:
40 DB clusters, 40 DB instances, 100 manual DB cluster snapshots):
https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/CHAP_Limits.html
- CreateDBCluster / RestoreDBClusterFromSnapshot past the cluster quota:
  DBClusterQuotaExceededFault (HTTP 403).
- CreateDBInstance past the instance quota: InstanceQuotaExceeded (HTTP 400).
- CreateDBClusterSnapshot, CopyDBClusterSnapshot, or DeleteDBCluster with a
  final snapshot past the manual cluster snapshot quota: SnapshotQuotaExceeded
  (HTTP 400). Automated snapshots do not count (moto counted every snapshot
  against its own limit of 1000).
Aurora user guide, "Copying a DB cluster snapshot": up to five copy
requests in progress to one destination Region per account; a further
cross-Region copy answers SnapshotQuotaExceeded (the page names no code).
https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-copy-snapshot.html
Aurora user guide, "Sharing a DB cluster snapshot": a manual snapshot can be
shared with up to 20 other accounts; ModifyDBClusterSnapshotAttribute past
that answers SharedSnapshotQuotaExceeded (HTTP 400).
https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-share-snapshot.html
DescribeAccountAttributes reports `DBClusters`, `DBInstances` and
`ManualClusterSnapshots` with their use and maximum (AccountQuota); moto did
not implement it. The copy and share limits are not account quotas in the
API and are not reported there.
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeAccountAttributes.html

A `quota` fault rule (or a `copy_quota` one) lowers a limit for a while
(quota pressure); the lower of the rule and the setting applies.
"""

from moto.core.responses import ActionResult
from moto.rds import exceptions as rds_errors
from moto.rds import models as rds
from moto.rds.responses import RDSResponse

from compat.common import rds_error, resolve_snapshot, wrap
from compat.snapshots import is_cross_region_copy
from control import FAULTS
from settings import SETTINGS, strict


def limit(name, account, region):
    """The quota in force, or None when quotas are not enforced."""
    pressure = FAULTS.quota(name, account, region)
    if not strict("quotas"):
        return pressure
    configured = SETTINGS.quota(name)
    return configured if pressure is None else min(configured, pressure)


def manual_snapshots(backend):
    return [s for s in backend.cluster_snapshots.values() if s.snapshot_type == "manual"]


def usage(backend):
    return {
        "clusters": len(backend.clusters),
        "instances": len(backend.databases),
        "manual_cluster_snapshots": len(manual_snapshots(backend)),
    }


def check_snapshot_room(backend):
    room = limit("manual_cluster_snapshots", backend.account_id, backend.region_name)
    if room is not None and len(manual_snapshots(backend)) >= room:
        raise rds_errors.SnapshotQuotaExceededFault()


def install():
    @wrap(rds.RDSBackend, "create_db_cluster")
    def create_db_cluster(original, self, kwargs):
        room = limit("clusters", self.account_id, self.region_name)
        if room is not None and len(self.clusters) >= room:
            raise rds_error(
                "DBClusterQuotaExceededFault",
                f"The request would exceed the quota of {room} DB clusters "
                f"for this account in {self.region_name}.",
            )
        return original(self, kwargs)

    @wrap(rds.RDSBackend, "create_db_instance")
    def create_db_instance(original, self, db_kwargs):
        room = limit("instances", self.account_id, self.region_name)
        if room is not None and len(self.databases) >= room:
            raise rds_error(
                "InstanceQuotaExceeded",
                f"The request would exceed the quota of {room} DB instances "
                f"for this account in {self.region_name}.",
            )
        return original(self, db_kwargs)

    @wrap(rds.RDSBackend, "create_db_cluster_snapshot")
    def create_db_cluster_snapshot(
        original, self, db_cluster_identifier, db_cluster_snapshot_identifier, *a, **kw
    ):
        if (a[0] if a else kw.get("snapshot_type", "manual")) == "manual":
            check_snapshot_room(self)
        return original(self, db_cluster_identifier, db_cluster_snapshot_identifier, *a, **kw)

    @wrap(rds.RDSBackend, "delete_db_cluster")
    def delete_db_cluster(original, self, cluster_identifier, snapshot_name=None):
        if snapshot_name:
            check_snapshot_room(self)
        return original(self, cluster_identifier, snapshot_name)

    @wrap(rds.RDSBackend, "copy_db_cluster_snapshot")
    def copy(
        original, self, source_db_cluster_snapshot_identifier, target_db_cluster_snapshot_identifier, *a, **kw
    ):
        check_snapshot_room(self)
        room = limit("concurrent_copies", self.account_id, self.region_name)
        source_region = (
            source_db_cluster_snapshot_identifier.split(":")[3]
            if source_db_cluster_snapshot_identifier.startswith("arn:")
            else self.region_name
        )
        if room is not None and source_region != self.region_name:
            copying = [s for s in self.cluster_snapshots.values() if is_cross_region_copy(s)]
            if len(copying) >= room:
                raise rds_errors.SnapshotQuotaExceededFault()
        return original(
            self, source_db_cluster_snapshot_identifier, target_db_cluster_snapshot_identifier, *a, **kw
        )

    @wrap(rds.RDSBackend, "modify_db_cluster_snapshot_attribute")
    def share(original, self, db_cluster_snapshot_identifier, attribute_name, values_to_add=None, *a, **kw):
        room = limit("accounts_per_share", self.account_id, self.region_name)
        if room is not None and attribute_name == "restore" and values_to_add:
            snapshot = resolve_snapshot(self, db_cluster_snapshot_identifier, same_region=True)
            current = set(snapshot.attributes.get("restore", []))
            removed = set(kw.get("values_to_remove") or [])
            accounts = (current | set(values_to_add)) - removed - {"all"}
            if len(accounts) > room:
                raise rds_error(
                    "SharedSnapshotQuotaExceeded",
                    f"A manual DB cluster snapshot can be shared with at most {room} accounts; "
                    f"{len(accounts)} were requested.",
                )
        return original(self, db_cluster_snapshot_identifier, attribute_name, values_to_add, *a, **kw)

    def describe_account_attributes(self):
        backend = self.backend
        used = usage(backend)
        quotas = []
        for name, api_name in (
            ("clusters", "DBClusters"),
            ("instances", "DBInstances"),
            ("manual_cluster_snapshots", "ManualClusterSnapshots"),
        ):
            room = limit(name, backend.account_id, backend.region_name)
            maximum = room if room is not None else SETTINGS.quota(name)
            quotas.append({"AccountQuotaName": api_name, "Used": used[name], "Max": maximum})
        return ActionResult({"AccountQuotas": quotas})

    RDSResponse.describe_account_attributes = describe_account_attributes
