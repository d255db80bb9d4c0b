"""Endpoint names and what they reach after a rename.

RDS User Guide, "Renaming a DB instance"
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html):
the old DNS name is deleted at once but may stay cached for a few minutes;
the new name becomes effective in about 10 minutes. The emulator keeps, per
endpoint hostname, which resource it reaches: after a rename the new name
reaches the renamed resource only after the `dns` delay, and the old name
keeps reaching it for the `dns_cache` delay (then it reaches nothing, or
whatever was renamed to that name once that name is effective).
`GET /_aurora_dr/resolve?host=NAME` answers it.

The Aurora user guide says nothing of the delay for a renamed Aurora DB
cluster (the Multi-AZ DB cluster page says about two minutes); the DB
instance figure is used for both.

Endpoint names follow the RDS form: `<id>.cluster-<x>.<region>.rds.amazonaws.com`
(writer), `<id>.cluster-ro-<x>...` (reader) and `<id>.<x>.<region>...`
(instance), with one `<x>` per account and Region, so a cluster renamed to
an old name gets the old endpoint back (moto: a random `<x>` per cluster, so
the endpoint changed with the cluster). The docs do not state that `<x>` is
per account and Region; they say a rename changes the endpoint "because the
URL includes the name" (page above), and the endpoint examples of the Aurora
user guide, "Amazon Aurora endpoint connections", share one `<x>` between a
cluster and its instances:
https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Overview.Endpoints.html
"""

import hashlib
import itertools
import random
import string
import threading

from moto.rds import models as rds

import progress
from compat.common import rds_backend, wrap
from settings import strict

_lock = threading.Lock()
_seq = itertools.count(1)
BINDINGS = {}  # host -> [Binding]


def account_region_id(account, region):
    """The endpoint part RDS derives from the account and Region (12 characters)."""
    digest = hashlib.sha256(f"{account}:{region}".encode()).digest()
    alphabet = string.ascii_lowercase + string.digits
    return "".join(alphabet[b % len(alphabet)] for b in digest[:12])


def suffix(resource):
    return f"{account_region_id(resource.account_id, resource.region)}.{resource.region}.rds.amazonaws.com"


def hosts_of(resource):
    """(hostname, endpoint type) of every endpoint of a cluster or instance."""
    if isinstance(resource, rds.DBCluster):
        return [(resource.endpoint, "cluster"), (resource.reader_endpoint, "cluster-reader")]
    return [(resource.address, "instance")]


class Binding:
    """`host` reaches `target` once `start` (if any) is over and until `end`
    (if any) is over, while the target exists."""

    def __init__(self, target, kind, start=None):
        self.target = target
        self.kind = kind
        self.start = start
        self.end = None
        self.seq = next(_seq)

    def live(self):
        if not exists(self.target):
            return False
        if self.start is not None and self.start.active():
            return False
        return self.end is None or self.end.active()

    def over(self):
        return not exists(self.target) or (self.end is not None and not self.end.active())


def exists(resource):
    backend = rds_backend(resource.account_id, resource.region)
    if backend is None:
        return False
    if isinstance(resource, rds.DBCluster):
        return backend.clusters.get(resource.db_cluster_identifier) is resource
    return backend.databases.get(resource.db_instance_identifier) is resource


def bind(resource, delay_kind=None):
    """The resource's names reach it: at once, or after the given delay."""
    with _lock:
        for host, kind in hosts_of(resource):
            start = progress.Progress(delay_kind, "pending") if delay_kind else None
            BINDINGS.setdefault(host, []).append(Binding(resource, kind, start))


def renamed(resource, old_hosts):
    """After a rename: the old names keep reaching the resource for the
    `dns_cache` delay, the new names reach it after the `dns` delay."""
    delayed = strict("dns")
    with _lock:
        for host, _ in old_hosts:
            for binding in BINDINGS.get(host, []):
                if binding.target is resource and binding.end is None:
                    binding.end = progress.Progress("dns_cache", "cached") if delayed else _ENDED
    bind(resource, "dns" if delayed else None)


class _Ended:
    def active(self):
        return False

    def tick(self):
        pass


_ENDED = _Ended()


def resolve(host):
    """The resource `host` reaches now, as JSON (None: the name resolves to nothing)."""
    host = (host or "").strip().rstrip(".").lower()
    with _lock:
        bindings = BINDINGS.get(host, [])
        for binding in bindings:
            for gate in (binding.start, binding.end):
                if gate is not None:
                    gate.tick()
        live = [b for b in bindings if b.live()]
        BINDINGS[host] = [b for b in bindings if not b.over()]
        if not BINDINGS[host]:
            BINDINGS.pop(host)
    if not live:
        return None
    binding = max(live, key=lambda b: b.seq)
    return describe(binding.target, binding.kind)


def describe(resource, kind):
    cluster = isinstance(resource, rds.DBCluster)
    return {
        "type": kind,
        "identifier": resource.db_cluster_identifier if cluster else resource.db_instance_identifier,
        "resource_id": resource.db_cluster_resource_id if cluster else resource.dbi_resource_id,
        "arn": resource.arn,
        "account": resource.account_id,
        "region": resource.region,
        "status": resource.status,
    }


def resource_id():
    return "".join(random.choice(string.ascii_uppercase + string.digits) for _ in range(26))


def resolve_route(payload, query):
    host = (query or {}).get("host") or (payload or {}).get("host")
    if not host:
        raise ValueError("resolve needs ?host=NAME")
    return {"host": host.lower(), "resource": resolve(host)}


ROUTES = {("GET", "resolve"): resolve_route}


def install():
    rds.DBCluster.endpoint = property(lambda self: f"{self.db_cluster_identifier}.cluster-{suffix(self)}")
    rds.DBCluster.reader_endpoint = property(
        lambda self: f"{self.db_cluster_identifier}.cluster-ro-{suffix(self)}"
    )
    rds.DBInstance.address = property(lambda self: f"{self.db_instance_identifier}.{suffix(self)}")

    @wrap(rds.RDSBackend, "create_db_cluster")
    def create_db_cluster(original, self, kwargs):
        cluster = original(self, kwargs)
        bind(cluster)
        return cluster

    @wrap(rds.RDSBackend, "create_db_instance")
    def create_db_instance(original, self, db_kwargs):
        instance = original(self, db_kwargs)
        # moto gives every instance the same DbiResourceId; RDS one each.
        instance.dbi_resource_id = f"db-{resource_id()}"
        bind(instance)
        return instance

    @wrap(rds.RDSBackend, "modify_db_cluster")
    def modify_db_cluster(original, self, kwargs):
        cluster = self.clusters.get(kwargs["db_cluster_identifier"])
        old = hosts_of(cluster) if cluster is not None else []
        result = original(self, kwargs)
        if cluster is not None and hosts_of(cluster) != old:
            renamed(cluster, old)
        return result

    @wrap(rds.RDSBackend, "modify_db_instance")
    def modify_db_instance(original, self, db_instance_identifier, db_kwargs):
        instance = self.databases.get(db_instance_identifier or "")
        old = hosts_of(instance) if instance is not None else []
        result = original(self, db_instance_identifier, db_kwargs)
        if instance is not None and hosts_of(instance) != old:
            renamed(instance, old)
        return result
