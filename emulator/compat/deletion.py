"""Deletion protection of Aurora clusters.

Aurora user guide, "Deleting Aurora DB clusters and DB instances", section
"Deletion protection for Aurora clusters": a cluster with deletion
protection cannot be deleted, whether through the console, the CLI or the
API; its DB instances can still be deleted (only the console refuses to
delete the last one). API reference, CreateDBInstance `DeletionProtection`:
the setting doesn't apply to Aurora DB instances.
https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_DeleteCluster.html#USER_DeletionProtection
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html

DeleteDBCluster of a protected cluster answers InvalidParameterCombination
(HTTP 400) "Cannot delete protected Cluster, please disable deletion
protection and try again." The DeleteDBCluster page does not list that code
among its errors; it is the code RDS answers (and moto's). moto refused to
delete an Aurora instance created with DeletionProtection, which RDS allows.

A deleted cluster's name can be used again at once: its system snapshots
are its own, and those it keeps after deletion are retained automated
backups, a resource of their own keyed by the old cluster's resource id
(Aurora user guide, "Retaining automated backups",
https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Managing.Backups.Retaining.html),
never cluster snapshots that block a new cluster. moto names each new
cluster's automated snapshot rds:{id}-{yyyy-mm-dd-hh-mm} among the cluster
snapshots, so a cluster created under the name of one deleted (or renamed
away) in the same minute failed with DBClusterSnapshotAlreadyExistsFault after it had been
registered. Always on (a moto defect, not a rule RDS enforces).

Aurora backs up the cluster volume, not its DB instances (Aurora user guide,
"Overview of backing up and restoring an Aurora DB cluster",
https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Managing.Backups.html):
an Aurora instance has no automated DB snapshot. moto made one,
rds:{instance}-{minute}, with the same collision for an instance created
under a name renamed away in the same minute.
"""

from moto.rds import models as rds

from compat.common import wrap
from settings import strict


def install():
    @wrap(rds.DBCluster, "save_automated_backup")
    def save_automated_backup(original, self):
        # Automated snapshots named after this name that another cluster (deleted,
        # or renamed away since) left: not this cluster's.
        prefix = f"rds:{self.db_cluster_identifier}-"
        stale = [
            sid
            for sid, snap in self.backend.cluster_snapshots.items()
            if sid.startswith(prefix) and snap.snapshot_type == "automated" and snap.cluster is not self
        ]
        for sid in stale:
            del self.backend.cluster_snapshots[sid]
        return original(self)

    @wrap(rds.DBInstance, "save_automated_backup")
    def save_instance_automated_backup(original, self):
        if getattr(self, "db_cluster_identifier", None):
            return None  # an Aurora instance: the cluster holds the backups
        return original(self)

    @wrap(rds.RDSBackend, "create_db_instance")
    def create_db_instance(original, self, db_kwargs):
        if strict("deletion_protection") and db_kwargs.get("db_cluster_identifier"):
            db_kwargs["deletion_protection"] = False  # does not apply to Aurora instances
        return original(self, db_kwargs)

    @wrap(rds.RDSBackend, "modify_db_instance")
    def modify_db_instance(original, self, db_instance_identifier, db_kwargs):
        instance = self.databases.get(db_instance_identifier or "")
        if strict("deletion_protection") and instance is not None and instance.db_cluster_identifier:
            db_kwargs.pop("deletion_protection", None)
        return original(self, db_instance_identifier, db_kwargs)

    @wrap(rds.RDSBackend, "delete_db_cluster")
    def delete_db_cluster(original, self, cluster_identifier, snapshot_name=None):
        cluster = self.clusters.get(cluster_identifier)
        if strict("deletion_protection") or cluster is None or not cluster.deletion_protection:
            return original(self, cluster_identifier, snapshot_name)
        # Lenient: delete a protected cluster as if it were not protected.
        cluster.deletion_protection = False
        try:
            return original(self, cluster_identifier, snapshot_name)
        finally:
            cluster.deletion_protection = True
