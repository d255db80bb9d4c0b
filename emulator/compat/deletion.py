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
"""

from moto.rds import models as rds

from compat.common import wrap
from settings import strict


def install():
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
