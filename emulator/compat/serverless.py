"""Aurora Serverless v2: a `db.serverless` instance needs a capacity range on
its cluster.

Aurora user guide, "Requirements and limitations for Aurora Serverless v2"
("Clusters that use Aurora Serverless v2 must have a capacity range
specified"): the cluster must have the ServerlessV2ScalingConfiguration
attribute before a db.serverless DB instance is added.
https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless-v2.requirements.html

The page names no error code; of the codes CreateDBInstance documents, the
emulator answers InvalidDBClusterStateFault (HTTP 400).
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html
moto created the instance.
"""

from moto.rds import exceptions as rds_errors
from moto.rds import models as rds

from compat.common import wrap
from settings import strict

SERVERLESS_CLASS = "db.serverless"


def has_capacity_range(cluster):
    config = getattr(cluster, "serverless_v2_scaling_configuration", None) or {}
    return any(
        config.get(k) is not None for k in ("min_capacity", "max_capacity", "MinCapacity", "MaxCapacity")
    )


def install():
    @wrap(rds.RDSBackend, "create_db_instance")
    def create_db_instance(original, self, db_kwargs):
        cluster_id = db_kwargs.get("db_cluster_identifier")
        if strict("serverless") and db_kwargs.get("db_instance_class") == SERVERLESS_CLASS and cluster_id:
            cluster = self.clusters.get(cluster_id)
            if cluster is not None and not has_capacity_range(cluster):
                raise rds_errors.InvalidDBClusterStateFault(
                    f"DB cluster {cluster_id} has no ServerlessV2ScalingConfiguration: set the Serverless v2 "
                    "scaling configuration on the cluster before creating a db.serverless DB instance."
                )
        return original(self, db_kwargs)
