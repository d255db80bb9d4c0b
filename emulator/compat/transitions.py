"""Transitional states: resources are `creating`, `copying`, `renaming`,
`modifying` or `deleting` for a while (progress.py), and RDS refuses
operations on a resource in such a state.

- Amazon Aurora User Guide, "Viewing DB cluster status" (the statuses):
  https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/accessing-monitoring.html
- RDS User Guide, "Renaming a DB instance" (a renamed instance is not
  available until the new name is effective):
  https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html
- API reference, the state faults each operation answers:
  InvalidDBClusterStateFault (HTTP 400) for ModifyDBCluster, DeleteDBCluster,
  CreateDBClusterSnapshot and CreateDBInstance; InvalidDBInstanceState
  (HTTP 400) for ModifyDBInstance, DeleteDBInstance and RebootDBInstance:
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBCluster.html
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBInstance.html

- Amazon Aurora User Guide, "Viewing DB instance status" (an instance in
  `failed`, `inaccessible-encryption-credentials` or `incompatible-*` is
  one RDS cannot bring back by itself; only `available` is "available for
  modifications"):
  https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/accessing-monitoring.html#Overview.DBInstance.Status
- API reference, DeleteDBInstance (an instance in `failed`,
  `incompatible-restore` or `incompatible-network` can be deleted when no
  final snapshot is asked for):
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBInstance.html

The documentation does not list, per operation, which states it refuses.
ModifyDBInstance (a rename included) of an instance in one of the statuses
above is refused with InvalidDBInstanceState; deleting it stays allowed.
The emulator refuses every operation below on a `renaming` or `deleting`
resource, a snapshot of a cluster that is not `available`, and any
ModifyDBCluster of a cluster that is not `available`; deleting a `creating`
cluster or instance stays allowed.
"""

from moto.rds import exceptions as rds_errors
from moto.rds import models as rds
from moto.rds.responses import RDSResponse

import progress
from compat.common import (
    all_rds_backends,
    final_cluster_status,
    final_instance_status,
    final_snapshot_status,
    rds_backend,
    rds_error,
    status_property,
    wrap,
)
from control import FAULTS
from settings import strict

BUSY = ("renaming", "deleting")
BEYOND_REPAIR = ("failed", "inaccessible-encryption-credentials")


def beyond_repair(status):
    """A status RDS does not bring an instance back from (see the module docs)."""
    return status in BEYOND_REPAIR or status.startswith("incompatible-")


def vanishing(resource):
    """True for a deleted resource still shown as `deleting`."""
    current = progress.progress_of(resource)
    return current is not None and current.extra.get("vanish", False)


def gone(resource):
    current = progress.progress_of(resource)
    return vanishing(resource) and not current.active()


def sweep():
    """Removes deleted resources whose `deleting` time is over."""
    for backend in all_rds_backends():
        for table in (backend.clusters, backend.databases):
            for key, resource in list(table.items()):
                if gone(resource):
                    table.pop(key, None)


def cluster_state_fault(cluster_id, status, expected="available"):
    return rds_errors.InvalidDBClusterStateFault(
        f"DbCluster {cluster_id} is in {status} state but expected it to be one of {expected}."
    )


def instance_state_fault(instance_id, status):
    return rds_error(
        "InvalidDBInstanceStateFault",
        f"DB instance {instance_id} is in {status} state; it must be available.",
    )


def set_storage(payload, _query):
    """`POST /_aurora_dr/storage {"account", "region", "cluster", "gib"}`: the
    allocated storage that sizes the cluster's snapshot, copy and restore
    durations (Aurora reports no size of its own: AllocatedStorage is 1)."""
    payload = payload or {}
    missing = [k for k in ("account", "region", "cluster", "gib") if k not in payload]
    if missing:
        raise ValueError(f"storage needs {missing}")
    gib = payload["gib"]
    if isinstance(gib, bool) or not isinstance(gib, (int, float)) or gib < 0:
        raise ValueError("gib must be a non-negative number")
    backend = rds_backend(str(payload["account"]), str(payload["region"]))
    cluster = backend.clusters.get(str(payload["cluster"])) if backend is not None else None
    if cluster is None:
        raise ValueError(f"no cluster {payload['cluster']} in {payload['account']} {payload['region']}")
    progress.set_gib(cluster, gib)
    return {"cluster": cluster.db_cluster_identifier, "gib": float(gib)}


ROUTES = {("POST", "storage"): set_storage}


def install():
    rds.DBCluster.status = status_property("_status")
    rds.DBInstance.status = status_property("_adr_status")
    rds.DBClusterSnapshot.status = status_property("_adr_status")

    # A deleting instance no longer holds its cluster: "Cluster cannot be
    # deleted, it still contains DB instances in non-deleting state".
    members = rds.DBCluster._members.fget
    rds.DBCluster._members = property(lambda self: [m for m in members(self) if not vanishing(m)])

    install_creation()
    install_renames()
    install_deletion()
    install_state_faults()
    for method, key, missing in (
        ("describe_db_clusters", "DBClusters", rds_errors.DBClusterNotFoundError),
        ("describe_db_instances", "DBInstances", rds_errors.DBInstanceNotFoundError),
    ):
        install_describe_tick(method, key, missing)

    @wrap(RDSResponse, "call_action")
    def call_action(original, self):
        sweep()
        return original(self)

    FAULTS.on_add.append(arm_existing)


def install_creation():
    @wrap(rds.RDSBackend, "create_db_cluster")
    def create_db_cluster(original, self, kwargs):
        extra = {}
        if isinstance(kwargs, dict):  # a restore passes a plain dict of properties
            extra = {k: v for k, v in kwargs.items() if k.startswith("_adr")}
            kwargs = {k: v for k, v in kwargs.items() if not k.startswith("_adr")}
        cluster = original(self, kwargs)
        cluster._status = "available"
        gib = extra.get("_adr_gib", 0)
        progress.set_gib(cluster, gib)
        final = final_cluster_status(self, cluster.db_cluster_identifier)
        progress.attach(cluster, progress.Progress(extra.get("_adr_kind", "cluster"), "creating", final, gib=gib))
        return cluster

    @wrap(rds.RDSBackend, "create_db_instance")
    def create_db_instance(original, self, db_kwargs):
        instance = original(self, db_kwargs)
        final = final_instance_status(self, instance.db_instance_identifier)
        progress.attach(instance, progress.Progress("instance", "creating", final))
        return instance

    @wrap(rds.RDSBackend, "create_db_cluster_snapshot")
    def create_db_cluster_snapshot(
        original, self, db_cluster_identifier, db_cluster_snapshot_identifier, *args, **kwargs
    ):
        snapshot = original(self, db_cluster_identifier, db_cluster_snapshot_identifier, *args, **kwargs)
        gib = progress.gib_of(self.clusters[db_cluster_identifier])
        progress.set_gib(snapshot, gib)
        final = final_snapshot_status(self, db_cluster_snapshot_identifier)
        progress.attach(snapshot, progress.Progress("snapshot", "creating", final, gib=gib))
        return snapshot


def install_renames():
    @wrap(rds.RDSBackend, "modify_db_cluster")
    def modify(original, self, kwargs):
        """A missing cluster is DBClusterNotFoundFault (moto: HTTP 500); a
        cluster that is not `available` is InvalidDBClusterStateFault;
        renaming onto an existing identifier is DBClusterAlreadyExistsFault
        (moto overwrote it); a rename takes the member instances along (moto
        left them behind, so they attached to whichever cluster took the old
        name). The cluster then reports `renaming` (or `modifying`)."""
        cluster_id = kwargs["db_cluster_identifier"]
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            raise rds_errors.DBClusterNotFoundError(cluster_id)
        if cluster.status != "available":
            raise cluster_state_fault(cluster_id, cluster.status)
        new_id = kwargs.get("new_db_cluster_identifier")
        renaming = bool(new_id) and new_id.lower() != cluster_id.lower()
        if renaming and new_id in self.clusters:
            raise rds_error("DBClusterAlreadyExistsFault", f"DB Cluster {new_id} already exists")
        members = cluster._members
        result = original(self, kwargs)
        for member in members:
            member.db_cluster_identifier = cluster.db_cluster_identifier
        state = progress.Progress("rename" if renaming else "modify", "renaming" if renaming else "modifying")
        progress.attach(cluster, state)
        progress.attach(result, state)
        return result

    @wrap(rds.RDSBackend, "modify_db_instance")
    def modify_instance(original, self, db_instance_identifier, db_kwargs):
        """Renaming onto an existing identifier is DBInstanceAlreadyExists
        (moto overwrote the other instance); a renamed instance reports
        `renaming` before `available`."""
        new_id = db_kwargs.get("new_db_instance_identifier")
        renaming = bool(new_id) and new_id.lower() != (db_instance_identifier or "").lower()
        if renaming and new_id in self.databases:
            raise rds_errors.DBInstanceAlreadyExists()
        instance = original(self, db_instance_identifier, db_kwargs)
        if renaming:
            final = final_instance_status(self, new_id)
            progress.attach(instance, progress.Progress("rename", "renaming", final))
        return instance


def install_deletion():
    @wrap(rds.RDSBackend, "delete_db_cluster")
    def delete_cluster(original, self, cluster_identifier, snapshot_name=None):
        """A deleted cluster stays `deleting` for the `delete` latency, then
        vanishes; its identifier stays taken meanwhile."""
        cluster = original(self, cluster_identifier, snapshot_name)
        if strict("transitions"):
            self.clusters[cluster_identifier] = cluster
            progress.attach(cluster, progress.Progress("delete", "deleting", "deleting", vanish=True))
        return cluster

    @wrap(rds.RDSBackend, "delete_db_instance")
    def delete_instance(original, self, db_instance_identifier, *args, **kwargs):
        instance = original(self, db_instance_identifier, *args, **kwargs)
        if strict("transitions"):
            self.databases[db_instance_identifier] = instance
            progress.attach(instance, progress.Progress("delete", "deleting", "deleting", vanish=True))
        return instance


def install_state_faults():
    @wrap(rds.RDSBackend, "delete_db_cluster")
    def delete_cluster(original, self, cluster_identifier, snapshot_name=None):
        cluster = self.clusters.get(cluster_identifier)
        if strict("transitions") and cluster is not None and cluster.status in BUSY:
            raise cluster_state_fault(cluster_identifier, cluster.status, "available, failed, stopped")
        return original(self, cluster_identifier, snapshot_name)

    @wrap(rds.RDSBackend, "create_db_cluster_snapshot")
    def create_snapshot(original, self, db_cluster_identifier, db_cluster_snapshot_identifier, *args, **kw):
        cluster = self.clusters.get(db_cluster_identifier)
        manual = (args[0] if args else kw.get("snapshot_type", "manual")) == "manual"
        if strict("transitions") and manual and cluster is not None and cluster.status != "available":
            raise cluster_state_fault(db_cluster_identifier, cluster.status)
        return original(self, db_cluster_identifier, db_cluster_snapshot_identifier, *args, **kw)

    @wrap(rds.RDSBackend, "create_db_instance")
    def create_instance(original, self, db_kwargs):
        cluster_id = db_kwargs.get("db_cluster_identifier")
        cluster = self.clusters.get(cluster_id) if cluster_id else None
        if strict("transitions") and cluster is not None and cluster.status in BUSY:
            raise cluster_state_fault(cluster_id, cluster.status, "available, creating, modifying")
        return original(self, db_kwargs)

    for name in ("modify_db_instance", "delete_db_instance", "reboot_db_instance"):
        install_instance_guard(name)


def install_instance_guard(name):
    @wrap(rds.RDSBackend, name)
    def guarded(original, self, db_instance_identifier, *args, **kwargs):
        instance = self.databases.get(db_instance_identifier or "")
        if strict("transitions") and instance is not None:
            status = instance.status
            if status in BUSY or (name == "modify_db_instance" and beyond_repair(status)):
                raise instance_state_fault(db_instance_identifier, status)
        return original(self, db_instance_identifier, *args, **kwargs)


def install_describe_tick(method, key, missing):
    @wrap(RDSResponse, method)
    def describe(original, self):
        result = original(self)
        resources = result.result[key]
        for resource in resources:
            current = progress.progress_of(resource)
            if current is not None:
                current.tick()
        if any(gone(r) for r in resources):
            sweep()
            resources[:] = [r for r in resources if not gone(r)]
            wanted = self.params.get("DBClusterIdentifier" if key == "DBClusters" else "DBInstanceIdentifier")
            if wanted and not resources:
                raise missing(wanted)
        return result


def arm_existing(rule):
    """A snapshot_status rule for an existing snapshot (not a glob) changes
    where that snapshot ends."""
    if rule["kind"] != "snapshot_status" or any(c in rule["id_lower"] for c in "*?["):
        return
    for backend in all_rds_backends():
        snapshot = backend.cluster_snapshots.get(rule["id_lower"])
        if snapshot is not None and FAULTS.snapshot_status(
            backend.account_id, backend.region_name, rule["id_lower"]
        ):
            current = progress.progress_of(snapshot)
            if current is None:
                current = progress.attach(snapshot, progress.Progress("snapshot", rule["status"]))
            current.final = rule["status"]
