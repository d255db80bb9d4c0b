"""RDS events on EventBridge: when a cluster, instance or manual cluster
snapshot changes state, the event RDS documents for that change goes to the
default event bus of the resource's account and region (source `aws.rds`),
where rules match it and deliver it to their targets (Lambda targets:
lambda_targets.py).

- Aurora User Guide, "Amazon RDS event categories and event messages for
  Aurora" (event IDs, categories and messages per source type):
  https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_Events.Messages.html
- Aurora User Guide, "Overview of events for Aurora" (the event as
  EventBridge delivers it: detail-type "RDS DB Cluster Event" | "RDS DB
  Instance Event" | "RDS DB Cluster Snapshot Event", source "aws.rds",
  resources [SourceArn], detail {EventCategories, SourceType, SourceArn,
  Date, Message, SourceIdentifier, EventID}):
  https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/rds-cloudwatch-events.sample.html

Nobody has to poll: a watcher thread looks at every resource's status each
TICK_SECONDS and emits once per change. The state model (progress.py) is
computed from the clock for durations in seconds, so an event fires when
the work's time is up. A duration counted in describe calls (`polls`, the
Rust tests' default) only ends with those calls: the event then fires after
the describe call that shows the end.

Where the documentation is silent (the choices here):

- When RDS-EVENT-0170 ("DB cluster created.") and RDS-EVENT-0005 ("DB
  instance created.") fire relative to the status: here when the resource
  becomes `available`. A cluster restored from a snapshot gets
  RDS-EVENT-0170 too (no cluster restore event is documented).
- RDS-EVENT-0172 ("Renamed cluster from <old> to <new>.") is listed under
  DB cluster events in the current guide and under DB cluster snapshot
  events in earlier versions; it is sent as a cluster event, and when the
  renamed cluster is `available` again (the guide does not say whether it
  fires at the start or the end of the rename).
- An instance rename has no documented event: none is sent; nor for a
  snapshot copy.
- An instance ending in `failed` (an `instance_status` fault rule) sends
  RDS-EVENT-0031 ("DB instance put into failed state. RDS recommends that
  you initiate a point-in-time-restore.").
- The guide's examples show `SourceIdentifier` as `rds:<identifier>`, while
  DescribeEvents' `SourceIdentifier` is the identifier itself; the
  identifier itself is sent. `SourceArn` is the reliable key.
- "Amazon RDS emits events on a best effort basis": a `rds_event` fault rule
  (control.py) drops or delays matching events.
"""

import copy
import datetime
import sys
import threading
import time
import traceback
import uuid

import progress
from compat.common import all_rds_backends, wrap
from control import FAULTS

TICK_SECONDS = 0.05
MAX_EVENTS = 5000

SOURCES = {
    "cluster": ("RDS DB Cluster Event", "CLUSTER"),
    "instance": ("RDS DB Instance Event", "DB_INSTANCE"),
    "snapshot": ("RDS DB Cluster Snapshot Event", "CLUSTER_SNAPSHOT"),
}

# (event ID, category, message) from the guide's tables.
EVENTS = {
    "cluster-created": ("RDS-EVENT-0170", "creation", "DB cluster created."),
    "cluster-deleted": ("RDS-EVENT-0171", "deletion", "DB cluster deleted."),
    "cluster-renamed": ("RDS-EVENT-0172", "notification", "Renamed cluster from {old} to {new}."),
    "instance-created": ("RDS-EVENT-0005", "creation", "DB instance created."),
    "instance-deleted": ("RDS-EVENT-0003", "deletion", "DB instance deleted."),
    "instance-failed": (
        "RDS-EVENT-0031",
        "failure",
        "DB instance put into {status} state. RDS recommends that you initiate a point-in-time-restore.",
    ),
    "snapshot-creating": ("RDS-EVENT-0074", "backup", "Creating manual cluster snapshot."),
    "snapshot-created": ("RDS-EVENT-0075", "backup", "Manual cluster snapshot created."),
}

_lock = threading.Lock()
LOG = []  # every event emitted, with its fate (GET rds-events)


class Seen:
    """What the watcher last saw of one resource."""

    def __init__(self, resource, kind, backend, identifier):
        self.resource = resource
        self.kind = kind
        self.account = backend.account_id
        self.region = backend.region_name
        self.identifier = identifier
        self.status = None
        self.created = False
        self.deleted = False
        self.missing = 0


TRACKED = {}


def identifier_of(kind, resource):
    if kind == "cluster":
        return resource.db_cluster_identifier
    if kind == "instance":
        return resource.db_instance_identifier
    return resource.db_cluster_snapshot_identifier


def arn_of(kind, resource):
    if kind == "cluster":
        return resource.db_cluster_arn
    if kind == "instance":
        return resource.db_instance_arn
    return resource.db_cluster_snapshot_arn


def manual(kind, resource):
    return kind != "snapshot" or getattr(resource, "snapshot_type", "manual") == "manual"


def scan():
    """One look at every resource; emits the events of what changed."""
    from compat.transitions import beyond_repair, gone, vanishing

    present = set()
    for backend in all_rds_backends():
        for kind, table in (
            ("cluster", backend.clusters),
            ("instance", backend.databases),
            ("snapshot", backend.cluster_snapshots),
        ):
            for resource in list(table.values()):
                present.add(id(resource))
                observe(backend, kind, resource, beyond_repair, gone)
    for key, seen in list(TRACKED.items()):
        if key in present:
            seen.missing = 0
            continue
        # Gone from its table: deleted (twice in a row, so that the moment a
        # rename moves it to its new key does not count).
        seen.missing += 1
        if seen.missing >= 2 or vanishing(seen.resource):
            if not seen.deleted and seen.kind in ("cluster", "instance"):
                emit(seen, f"{seen.kind}-deleted")
            TRACKED.pop(key, None)


def observe(backend, kind, resource, beyond_repair, gone):
    seen = TRACKED.get(id(resource))
    if seen is None:
        seen = TRACKED[id(resource)] = Seen(resource, kind, backend, identifier_of(kind, resource))
    seen.identifier = identifier_of(kind, resource)
    if kind in ("cluster", "instance") and not seen.deleted and gone(resource):
        seen.deleted = True
        emit(seen, f"{kind}-deleted")
        return
    status = resource.status
    if status == "available" and "_adr_renamed_from" in resource.__dict__:
        seen.created = True
        emit(seen, "cluster-renamed", old=resource.__dict__.pop("_adr_renamed_from"), new=seen.identifier)
    if status == seen.status:
        return
    previous, seen.status = seen.status, status
    if not manual(kind, resource):
        return
    if kind == "snapshot":
        current = progress.progress_of(resource)
        if current is not None and current.kind != "snapshot":
            return  # a copy: no event is documented for it
        if status == "creating" and previous is None:
            emit(seen, "snapshot-creating")
        elif status == "available" and not seen.created:
            seen.created = True
            emit(seen, "snapshot-created")
        return
    if status == "available" and not seen.created:
        seen.created = True
        emit(seen, f"{kind}-created")
    elif kind == "instance" and beyond_repair(status):
        emit(seen, "instance-failed", status=status)


def emit(seen, name, **values):
    """Builds the event and sends it to the bus, unless a fault rule drops
    or delays it."""
    event_id, category, message = EVENTS[name]
    detail_type, source_type = SOURCES[seen.kind]
    arn = arn_of(seen.kind, seen.resource)
    now = datetime.datetime.now(datetime.timezone.utc)
    detail = {
        "EventCategories": [category],
        "SourceType": source_type,
        "SourceArn": arn,
        "Date": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "Message": message.format(**values),
        "SourceIdentifier": seen.identifier,
        "EventID": event_id,
    }
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.rds",
        "account": seen.account,
        "time": now.timestamp(),
        "region": seen.region,
        "resources": [arn],
        "detail": detail,
    }
    rule = FAULTS.rds_event(seen.account, seen.region, event_id, seen.identifier)
    record = {"event": {**copy.deepcopy(event), "time": now.strftime("%Y-%m-%dT%H:%M:%SZ")}, "fate": "sent"}
    if rule is not None:
        record["fault"] = rule["id"]
        record["fate"] = "lost" if rule["mode"] == "lost" else "delayed"
    with _lock:
        LOG.append(record)
        del LOG[:-MAX_EVENTS]
    if rule is None:
        publish(event)
    elif rule["mode"] == "delay":
        timer = threading.Timer(rule["delay_seconds"], publish, args=(event,))
        timer.daemon = True
        timer.start()


def publish(event):
    """The event on the default bus of its account and region: every
    enabled rule whose pattern matches sends it to its targets."""
    from moto.events.models import events_backends

    bus = events_backends[event["account"]][event["region"]].event_buses.get("default")
    if bus is None:
        return
    for rule in list(bus.rules.values()):
        try:
            rule.send_to_targets(copy.deepcopy(event))
        except Exception:  # a target kind moto cannot deliver to: the others still get it
            traceback.print_exc(file=sys.stderr)


def watch():
    while True:
        try:
            scan()
        except Exception:
            traceback.print_exc(file=sys.stderr)
        time.sleep(TICK_SECONDS)


def events_log(_payload, _query):
    with _lock:
        return {"events": copy.deepcopy(LOG)}


def clear_log(_payload, _query):
    with _lock:
        LOG.clear()
    return {"events": []}


ROUTES = {("GET", "rds-events"): events_log, ("DELETE", "rds-events"): clear_log}


def install():
    from moto.rds import models as rds

    @wrap(rds.RDSBackend, "modify_db_cluster")
    def modify(original, self, kwargs):
        """Notes a rename on the cluster, for its event when it is available
        again (however soon the watcher first sees it)."""
        old = kwargs.get("db_cluster_identifier")
        cluster = original(self, kwargs)
        if old and cluster.db_cluster_identifier != old:
            stored = self.clusters.get(cluster.db_cluster_identifier)
            for renamed in (cluster, stored) if stored is not None else (cluster,):
                renamed.__dict__["_adr_renamed_from"] = old
        return cluster

    threading.Thread(target=watch, name="rds-events", daemon=True).start()
