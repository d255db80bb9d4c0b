"""Whether a new DB instance is publicly accessible when the request does not say.

API reference, CreateDBCluster / RestoreDBClusterFromSnapshot
`PubliclyAccessible` (and CreateDBInstance in its earlier wording): without
a DB subnet group the instance is in the default VPC, public when that VPC
has an internet gateway; with a subnet group, public when the group's VPC
has an internet gateway. A default VPC has an internet gateway (Amazon VPC
user guide, "Default VPCs"). DescribeDBInstances reports it.
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterFromSnapshot.html
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html
https://docs.aws.amazon.com/vpc/latest/userguide/default-vpc.html

The current CreateDBInstance page words it differently: without a subnet
group, false for Aurora instances; with the subnet group `default`, true.
An Aurora instance takes its cluster's subnet group, which is `default` when
the cluster was created without one, so both wordings make such an instance
public; for a named subnet group they differ (the newer text says private,
the older one depends on the internet gateway) and the emulator follows the
internet-gateway rule. moto left PubliclyAccessible unset (reported as false).
"""

from moto.ec2.models import ec2_backends
from moto.rds import models as rds

from compat.common import wrap
from settings import strict


def vpc_has_internet_gateway(account, region, vpc_id):
    ec2 = ec2_backends[account][region]
    return any(
        getattr(igw, "vpc", None) is not None and igw.vpc.id == vpc_id
        for igw in ec2.internet_gateways.values()
    )


def default_public(backend, subnet_group_name):
    """The documented default: public unless the subnet group's VPC has no
    internet gateway (no group, or `default`: the default VPC, which has one)."""
    if not subnet_group_name or subnet_group_name.lower() == "default":
        return True
    group = backend.subnet_groups.get(subnet_group_name)
    if group is None:
        return True
    return vpc_has_internet_gateway(backend.account_id, backend.region_name, group.vpc_id)


def install():
    @wrap(rds.RDSBackend, "create_db_instance")
    def create_db_instance(original, self, db_kwargs):
        if strict("public_access") and db_kwargs.get("publicly_accessible") is None:
            group = db_kwargs.get("db_subnet_group_name")
            cluster = self.clusters.get(db_kwargs.get("db_cluster_identifier") or "")
            if cluster is not None:
                group = cluster.db_subnet_group_name
            db_kwargs["publicly_accessible"] = default_public(self, group)
        return original(self, db_kwargs)
