"""Cluster snapshots across accounts and Regions: describing, copying and
sharing them as RDS does.

- Aurora user guide, "Sharing a DB cluster snapshot" (shared snapshots are
  seen, copied and restored by ARN only by the accounts they are shared
  with): https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-share-snapshot.html
- API reference, DescribeDBClusterSnapshots (`SnapshotType=shared`,
  `IncludeShared`):
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBClusterSnapshots.html
- API reference, DBClusterSnapshot (`PercentProgress`, the estimated share
  of the data transferred):
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBClusterSnapshot.html
- API reference, CopyDBClusterSnapshot (the source must be `available`; the
  copy's `SourceDBClusterSnapshotArn` names the snapshot it was copied from):
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBClusterSnapshot.html
- API reference, ModifyDBClusterSnapshotAttribute (InvalidDBClusterSnapshotStateFault
  for a snapshot that is not `available`):
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBClusterSnapshotAttribute.html
"""

from moto.core.responses import ActionResult
from moto.rds import exceptions as rds_errors
from moto.rds import models as rds
from moto.rds.responses import RDSResponse
from moto.rds.utils import split_arn

import progress
from compat.common import (
    check_snapshot_key,
    final_snapshot_status,
    require_available,
    resolve_snapshot,
    shared_snapshots,
    wrap,
)


def install():
    install_percent_progress()
    install_describe()
    install_copy()
    install_share()


def install_percent_progress():
    """A cluster snapshot being created or copied reports `PercentProgress`
    growing with the share of its duration elapsed (linearly), from 0 to 100
    when it is available (moto: 100 from the start). The API reference
    ("DBClusterSnapshot": the estimated percentage of data transferred)
    does not say how smoothly RDS reports it; FetchStatus falls back to
    polling on a schedule when the figure does not move."""

    def get(self):
        return progress.percent_of(self, self.__dict__.get("_adr_percent", 100))

    def put(self, value):
        self.__dict__["_adr_percent"] = value

    rds.DBClusterSnapshot.percent_progress = property(get, put)


def install_describe():
    """DescribeDBClusterSnapshots shows another account's snapshot only when
    it is shared with the caller and asked for (`SnapshotType=shared` or
    `IncludeShared=true`), filtered by the identifier (name or ARN) given;
    moto ignored the identifier for `shared`, ignored `IncludeShared`, and
    did not accept ARNs."""
    original = rds.RDSBackend.describe_db_cluster_snapshots

    def describe(
        self,
        db_cluster_identifier,
        db_snapshot_identifier,
        snapshot_type=None,
        filters=None,
        include_shared=False,
    ):
        wants_shared = snapshot_type == "shared" or include_shared
        if db_snapshot_identifier and db_snapshot_identifier.startswith("arn:"):
            region, account, _, name = split_arn(db_snapshot_identifier)
            if (account, region) != (self.account_id, self.region_name):
                snapshot = resolve_snapshot(self, db_snapshot_identifier, same_region=True)
                if not wants_shared:
                    raise rds_errors.DBClusterSnapshotNotFoundError(db_snapshot_identifier)
                return [snapshot]
            db_snapshot_identifier = name
        shared = []
        if wants_shared:
            wanted_snapshot = (db_snapshot_identifier or "").lower()
            wanted_cluster = (db_cluster_identifier or "").lower()
            shared = [
                s
                for s in shared_snapshots(self)
                if wanted_snapshot in ("", s.db_cluster_snapshot_identifier)
                and wanted_cluster in ("", s.db_cluster_identifier.lower())
            ]
        if snapshot_type == "shared":
            return shared
        try:
            own = original(self, db_cluster_identifier, db_snapshot_identifier, snapshot_type, filters)
        except rds_errors.DBClusterSnapshotNotFoundError:
            if not shared:
                raise
            own = []
        return own + shared

    rds.RDSBackend.describe_db_cluster_snapshots = describe

    def describe_response(self):
        params = self.params
        filters = {f["Name"]: f["Values"] for f in params.get("Filters", [])}
        snapshots = self.backend.describe_db_cluster_snapshots(
            params.get("DBClusterIdentifier"),
            params.get("DBClusterSnapshotIdentifier"),
            params.get("SnapshotType"),
            filters,
            include_shared=bool(params.get("IncludeShared")),
        )
        for snapshot in snapshots:
            current = progress.progress_of(snapshot)
            if current is not None:
                current.tick()
        return ActionResult({"DBClusterSnapshots": snapshots})

    RDSResponse.describe_db_cluster_snapshots = describe_response


def install_copy():
    """CopyDBClusterSnapshot takes a source ARN of the caller's snapshot in any
    Region, or of another account's snapshot shared with the caller; otherwise
    DBClusterSnapshotNotFoundFault. The source must be `available` and its key
    usable; the copy reports `copying` and names its source in
    `SourceDBClusterSnapshotArn` (moto: copied from the caller's snapshots
    only, never `copying`, no source ARN)."""

    def copy_snapshot(
        self,
        source_db_cluster_snapshot_identifier,
        target_db_cluster_snapshot_identifier,
        kms_key_id=None,
        copy_tags=False,
        tags=None,
        **_,
    ):
        target_id = target_db_cluster_snapshot_identifier
        if target_id in self.cluster_snapshots:
            raise rds_errors.DBClusterSnapshotAlreadyExistsError(target_id)
        source = resolve_snapshot(self, source_db_cluster_snapshot_identifier, same_region=False)
        require_available(source)
        check_snapshot_key(source, self.account_id)
        if kms_key_id is not None:
            kms_key_id = self._validate_kms_key(kms_key_id)
        if copy_tags and not tags:
            tags = source.tags or []
        target = rds.DBClusterSnapshot(self, source.cluster, target_id, tags=tags, kms_key_id=kms_key_id)
        target.source_db_cluster_snapshot_arn = source.arn
        gib = progress.gib_of(source)
        progress.set_gib(target, gib)
        self.cluster_snapshots[target_id] = target
        final = final_snapshot_status(self, target_id)
        cross_region = source.region != self.region_name
        progress.attach(
            target, progress.Progress("copy", "copying", final, gib=gib, cross_region=cross_region)
        )
        return target

    rds.RDSBackend.copy_db_cluster_snapshot = copy_snapshot


def install_share():
    @wrap(rds.RDSBackend, "modify_db_cluster_snapshot_attribute")
    def modify(original, self, db_cluster_snapshot_identifier, *args, **kwargs):
        """On a snapshot that is not `available`: InvalidDBClusterSnapshotStateFault;
        on another account's snapshot: DBClusterSnapshotNotFoundFault."""
        snapshot = resolve_snapshot(self, db_cluster_snapshot_identifier, same_region=True)
        if snapshot.account_id != self.account_id:
            raise rds_errors.DBClusterSnapshotNotFoundError(db_cluster_snapshot_identifier)
        require_available(snapshot)
        return original(self, snapshot.db_cluster_snapshot_identifier, *args, **kwargs)


def is_cross_region_copy(snapshot):
    current = progress.progress_of(snapshot)
    return (
        current is not None
        and current.status == "copying"
        and current.active()
        and current.extra.get("cross_region", False)
    )
