"""Compatibility layer: small, named patches that make moto behave like RDS
and SNS for the aurora-dr flow.

Each patch is one function below; its docstring states the real behaviour it
restores. README.md lists them with the Rust test that proves each one.
`apply()` installs them all, before the server starts.
"""

import copy
import fnmatch
import json
import threading
import time

import requests
from moto.core.responses import ActionResult
from moto.kms.models import kms_backends
from moto.rds import exceptions as rds_errors
from moto.rds import models as rds
from moto.rds.responses import RDSResponse
from moto.rds.utils import split_arn
from moto.sns import models as sns
from moto.sns.exceptions import SNSException, SNSInvalidParameter
from moto.utilities.arns import parse_arn

import progress
from control import CALLS, FAULTS

# ---------------------------------------------------------------- helpers

COPY_LOCK = threading.Lock()


def rds_backend(account, region):
    try:
        return rds.rds_backends[account][region]
    except KeyError:
        return None


def shared_with(snapshot, account):
    """A manual snapshot whose `restore` attribute names the account (or all)."""
    values = snapshot.attributes.get("restore", [])
    return snapshot.snapshot_type == "manual" and (account in values or "all" in values)


def shared_snapshots(backend):
    """Cluster snapshots of other accounts in this region shared with the caller."""
    found = []
    for account, regions in list(rds.rds_backends.items()):
        if account == backend.account_id or backend.region_name not in regions:
            continue
        owner = regions[backend.region_name]
        found += [s for s in owner.cluster_snapshots.values() if shared_with(s, backend.account_id)]
    return found


def resolve_snapshot(backend, identifier, same_region):
    """The caller's snapshot by name or ARN, or another account's by ARN when
    shared with the caller. Anything else is `DBClusterSnapshotNotFoundFault`,
    as RDS answers for a snapshot the caller may not see."""
    not_found = rds_errors.DBClusterSnapshotNotFoundError(identifier)
    if not identifier.startswith("arn:"):
        if identifier not in backend.cluster_snapshots:
            raise not_found
        return backend.cluster_snapshots[identifier]
    try:
        region, account, resource_type, name = split_arn(identifier)
    except ValueError:
        raise not_found from None
    if resource_type != "cluster-snapshot" or (same_region and region != backend.region_name):
        raise not_found
    owner = rds_backend(account, region)
    snapshot = owner.cluster_snapshots.get(name) if owner else None
    if snapshot is None:
        raise not_found
    if account != backend.account_id and not shared_with(snapshot, backend.account_id):
        raise not_found
    return snapshot


def require_available(snapshot):
    if snapshot.status != "available":
        raise rds_errors.InvalidDBClusterSnapshotStateFault(
            f"DBClusterSnapshot {snapshot.db_cluster_snapshot_identifier} is in "
            f"{snapshot.status} state but expected it to be available."
        )


def principal_covers(principal, account):
    if principal == "*":
        return True
    values = principal.get("AWS", []) if isinstance(principal, dict) else []
    values = [values] if isinstance(values, str) else values
    return any(v == "*" or v == account or v.startswith(f"arn:aws:iam::{account}:") for v in values)


def allowed_actions(policy_json, account):
    """Actions that a resource policy allows to principals of `account`.
    Conditions other than a source-owner/account equality are not evaluated."""
    try:
        statements = json.loads(policy_json).get("Statement", [])
    except (TypeError, ValueError):
        return []
    statements = [statements] if isinstance(statements, dict) else statements
    actions = []
    for statement in statements:
        if statement.get("Effect") != "Allow" or not principal_covers(statement.get("Principal"), account):
            continue
        equals = statement.get("Condition", {}).get("StringEquals", {})
        owner = equals.get("AWS:SourceOwner") or equals.get("aws:SourceAccount")
        if owner is not None and account not in ([owner] if isinstance(owner, str) else owner):
            continue
        action = statement.get("Action", [])
        actions += [action] if isinstance(action, str) else action
    return [a.lower() for a in actions]


def policy_allows(policy_json, account, needed):
    actions = allowed_actions(policy_json, account)
    return all(any(fnmatch.fnmatch(n.lower(), a) for a in actions) for n in needed)


def check_snapshot_key(snapshot, caller):
    """RDS must be able to use the key of an encrypted snapshot on the
    caller's behalf: the key exists, is enabled, and (for another account's
    key) its policy lets the caller's account decrypt and create grants."""
    if not snapshot.encrypted:
        return
    key_ref = snapshot.kms_key_id or ""
    account, region, key_id = snapshot.account_id, snapshot.region, key_ref
    if key_ref.startswith("arn:"):
        arn = parse_arn(key_ref)
        account, region, key_id = arn.account, arn.region, arn.resource_id
    error = rds_errors.KMSKeyNotAccessibleFault(key_ref)
    try:
        key = kms_backends[account][region].describe_key(key_id)
    except Exception:
        raise error from None
    if key.key_state != "Enabled":
        raise error
    if account != caller and not policy_allows(key.policy, caller, ["kms:Decrypt", "kms:CreateGrant"]):
        raise error


def final_snapshot_status(backend, snapshot_id):
    return FAULTS.snapshot_status(backend.account_id, backend.region_name, snapshot_id) or "available"


def final_instance_status(backend, instance_id):
    return FAULTS.instance_status(backend.account_id, backend.region_name, instance_id) or "available"


def status_property(storage, default="available"):
    """A `status` attribute that shows simulated progress (see progress.py)."""

    def get(self):
        stored = self.__dict__.get(storage, default)
        if stored == "creating" and progress.progress_of(self) is None:
            stored = "available"  # moto's own one-shot 'creating'
        return progress.status_of(self, stored)

    def put(self, value):
        self.__dict__[storage] = value
        self.__dict__.pop("_adr_progress", None)

    return property(get, put)


def wrap(owner, name):
    """Decorator: replaces owner.name, passing the original as first argument."""
    original = getattr(owner, name)

    def install(function):
        def patched(*args, **kwargs):
            return function(original, *args, **kwargs)

        patched.__name__ = name
        patched.__doc__ = function.__doc__
        setattr(owner, name, patched)
        return function

    return install


# ------------------------------------------------------------ RDS patches


def progress_statuses():
    """Snapshots report `creating`/`copying`, clusters `creating`/`renaming`/
    `modifying`, instances `creating`/`renaming` for the configured number of
    describe calls or seconds, then `available` (or a fault rule's status)."""
    rds.DBCluster.status = status_property("_status")
    rds.DBInstance.status = status_property("_adr_status")
    rds.DBClusterSnapshot.status = status_property("_adr_status")

    @wrap(rds.RDSBackend, "create_db_cluster")
    def create_db_cluster(original, self, kwargs):
        if isinstance(kwargs, dict):  # restore passes a copied __dict__
            kwargs = {k: v for k, v in kwargs.items() if not k.startswith("_adr")}
        cluster = original(self, kwargs)
        cluster._status = "available"
        progress.attach(cluster, progress.Progress("cluster", "creating"))
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
        final = final_snapshot_status(self, db_cluster_snapshot_identifier)
        progress.attach(snapshot, progress.Progress("snapshot", "creating", final))
        return snapshot

    for method, key in (
        ("describe_db_clusters", "DBClusters"),
        ("describe_db_instances", "DBInstances"),
    ):
        install_describe_tick(method, key)

    def arm_existing(rule):
        # A glob applies only to snapshots created after it is armed.
        if rule["kind"] != "snapshot_status" or any(c in rule["id_lower"] for c in "*?["):
            return
        for account, regions in list(rds.rds_backends.items()):
            for region, backend in list(regions.items()):
                snapshot = backend.cluster_snapshots.get(rule["id_lower"])
                if snapshot is not None and FAULTS.snapshot_status(account, region, rule["id_lower"]):
                    current = progress.progress_of(snapshot)
                    if current is None:
                        current = progress.attach(snapshot, progress.Progress("snapshot", rule["status"]))
                    current.final = rule["status"]

    FAULTS.on_add.append(arm_existing)


def install_describe_tick(method, key):
    @wrap(RDSResponse, method)
    def describe(original, self):
        result = original(self)
        for resource in result.result[key]:
            current = progress.progress_of(resource)
            if current is not None:
                current.tick()
        return result


def describe_shared_snapshots():
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


def restore_from_shared_snapshot():
    """RestoreDBClusterFromSnapshot takes the caller's snapshot by name or
    ARN, or another account's by ARN when it is shared with the caller, in the
    caller's region; otherwise DBClusterSnapshotNotFoundFault. The snapshot
    must be `available` (InvalidDBClusterSnapshotStateFault) and its KMS key
    usable by the caller (KMSKeyNotAccessibleFault)."""

    def restore(self, from_snapshot_id, overrides):
        snapshot = resolve_snapshot(self, from_snapshot_id, same_region=True)
        require_available(snapshot)
        check_snapshot_key(snapshot, self.account_id)
        props = copy.copy(snapshot.cluster.get_cfg())
        for key, value in overrides.items():
            if value:
                props[key] = value
        return self.create_db_cluster(props)

    rds.RDSBackend.restore_db_cluster_from_snapshot = restore


def copy_from_shared_snapshot():
    """CopyDBClusterSnapshot takes a source ARN of the caller's snapshot in any
    region, or of another account's snapshot shared with the caller; otherwise
    DBClusterSnapshotNotFoundFault. The source must be `available`, its key
    usable; the copy reports `copying`. With a `copy_quota` rule armed, at
    most that many cross-region copies may be `copying` per destination
    account and region: further copies fail with SnapshotQuotaExceeded."""

    def copy_snapshot(
        self,
        source_db_cluster_snapshot_identifier,
        target_db_cluster_snapshot_identifier,
        kms_key_id=None,
        copy_tags=False,
        tags=None,
        **_,
    ):
        with COPY_LOCK:  # the quota check and the new copy are one step
            return copy_locked(
                self,
                source_db_cluster_snapshot_identifier,
                target_db_cluster_snapshot_identifier,
                kms_key_id,
                copy_tags,
                tags,
            )

    def copy_locked(self, source_id, target_id, kms_key_id, copy_tags, tags):
        if target_id in self.cluster_snapshots:
            raise rds_errors.DBClusterSnapshotAlreadyExistsError(target_id)
        if len(self.cluster_snapshots) >= self.SNAPSHOT_QUOTA:
            raise rds_errors.SnapshotQuotaExceededFault()
        source = resolve_snapshot(self, source_id, same_region=False)
        require_available(source)
        check_snapshot_key(source, self.account_id)
        cross_region = source.region != self.region_name
        limit = FAULTS.copy_quota(self.account_id, self.region_name)
        if cross_region and limit is not None:
            copying = [
                s
                for s in self.cluster_snapshots.values()
                if progress.in_progress(s, "copying") and progress.progress_of(s).extra.get("cross_region")
            ]
            if len(copying) >= limit:
                raise rds_errors.SnapshotQuotaExceededFault()
        if kms_key_id is not None:
            kms_key_id = self._validate_kms_key(kms_key_id)
        if copy_tags and not tags:
            tags = source.tags or []
        target = rds.DBClusterSnapshot(self, source.cluster, target_id, tags=tags, kms_key_id=kms_key_id)
        self.cluster_snapshots[target_id] = target
        final = final_snapshot_status(self, target_id)
        progress.attach(target, progress.Progress("copy", "copying", final, cross_region=cross_region))
        return target

    rds.RDSBackend.copy_db_cluster_snapshot = copy_snapshot


def share_requires_available_snapshot():
    """ModifyDBClusterSnapshotAttribute on a snapshot that is not `available`
    fails with InvalidDBClusterSnapshotStateFault."""

    @wrap(rds.RDSBackend, "modify_db_cluster_snapshot_attribute")
    def modify(original, self, db_cluster_snapshot_identifier, *args, **kwargs):
        snapshot = resolve_snapshot(self, db_cluster_snapshot_identifier, same_region=True)
        if snapshot.account_id != self.account_id:
            raise rds_errors.DBClusterSnapshotNotFoundError(db_cluster_snapshot_identifier)
        require_available(snapshot)
        return original(self, snapshot.db_cluster_snapshot_identifier, *args, **kwargs)


def rename_moves_instances():
    """ModifyDBCluster: a missing cluster is DBClusterNotFoundFault (moto: HTTP
    500); a cluster that is not `available` is InvalidDBClusterStateFault;
    renaming onto an existing identifier is DBClusterAlreadyExistsFault; a
    rename takes the member instances along (moto left them behind, so they
    attached to whichever cluster took the old name and the renamed cluster
    could be deleted with instances still in it). The cluster then reports
    `renaming` (or `modifying`) before `available`."""

    @wrap(rds.RDSBackend, "modify_db_cluster")
    def modify(original, self, kwargs):
        cluster_id = kwargs["db_cluster_identifier"]
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            raise rds_errors.DBClusterNotFoundError(cluster_id)
        if cluster.status != "available":
            raise rds_errors.InvalidDBClusterStateFault(
                f"DbCluster {cluster_id} is in {cluster.status} state but expected it to be one of available."
            )
        new_id = kwargs.get("new_db_cluster_identifier")
        renaming = bool(new_id) and new_id.lower() != cluster_id.lower()
        if renaming and new_id in self.clusters:
            raise rds_errors.RDSClientError("DBClusterAlreadyExistsFault", "DB Cluster already exists")
        members = cluster._members
        result = original(self, kwargs)
        for member in members:
            member.db_cluster_identifier = cluster.db_cluster_identifier
        state = progress.Progress("cluster", "renaming" if renaming else "modifying")
        progress.attach(cluster, state)
        progress.attach(result, state)
        return result


def rename_instance_conflict():
    """ModifyDBInstance renaming onto an existing identifier is
    DBInstanceAlreadyExists (moto overwrote the other instance); a renamed
    instance reports `renaming` before `available`."""

    @wrap(rds.RDSBackend, "modify_db_instance")
    def modify(original, self, db_instance_identifier, db_kwargs):
        new_id = db_kwargs.get("new_db_instance_identifier")
        renaming = bool(new_id) and new_id.lower() != (db_instance_identifier or "").lower()
        if renaming and new_id in self.databases:
            raise rds_errors.DBInstanceAlreadyExists()
        instance = original(self, db_instance_identifier, db_kwargs)
        if renaming:
            final = final_instance_status(self, new_id)
            progress.attach(instance, progress.Progress("instance", "renaming", final))
        return instance


# ------------------------------------------------------------ SNS patches


class AuthorizationError(SNSException):
    code = "AuthorizationError"


def cross_account_subscribe():
    """Subscribe to another account's topic: allowed only when the topic
    policy lets the caller's account `SNS:Subscribe` (else AuthorizationError),
    and the subscription belongs to the topic (moto kept it in the
    subscriber's account, so the owner's Publish never delivered to it)."""

    @wrap(sns.SNSBackend, "subscribe")
    def subscribe(original, self, topic_arn, endpoint, protocol):
        owner = parse_arn(topic_arn).account
        if owner == self.account_id:
            return original(self, topic_arn, endpoint, protocol)
        topic = self.get_topic(topic_arn)
        if not policy_allows(topic.policy, self.account_id, ["SNS:Subscribe"]):
            caller = f"arn:aws:iam::{self.account_id}:root"
            raise AuthorizationError(
                f"User: {caller} is not authorized to perform: SNS:Subscribe on {topic_arn}"
            )
        subscription = sns.sns_backends[owner][self.region_name].subscribe(topic_arn, endpoint, protocol)
        subscription.account_id = subscription.owner = self.account_id
        subscription.attributes["Owner"] = self.account_id
        self.subscriptions[subscription.arn] = subscription
        return subscription

    @wrap(sns.SNSBackend, "unsubscribe")
    def unsubscribe(original, self, subscription_arn):
        original(self, subscription_arn)
        try:
            arn = parse_arn(subscription_arn)
            sns.sns_backends[arn.account][arn.region].subscriptions.pop(subscription_arn, None)
        except (ValueError, KeyError):
            pass


def add_permission_without_sid():
    """AddPermission/RemovePermission work on a topic policy whose statements
    have no `Sid` (e.g. one set with SetTopicAttributes); moto: HTTP 500."""

    def add_permission(self, region_name, topic_arn, label, aws_account_ids, action_names):
        topic = self.get_topic(topic_arn)
        statements = topic._policy_json.setdefault("Statement", [])
        if any(s.get("Sid") == label for s in statements):
            raise SNSInvalidParameter("Statement already exists")
        if any(name not in sns.VALID_POLICY_ACTIONS for name in action_names):
            raise SNSInvalidParameter("Policy statement action out of service scope!")
        principals = [f"arn:aws:iam::{account}:root" for account in aws_account_ids]
        actions = [f"SNS:{name}" for name in action_names]
        statements.append(
            {
                "Sid": label,
                "Effect": "Allow",
                "Principal": {"AWS": principals[0] if len(principals) == 1 else principals},
                "Action": actions[0] if len(actions) == 1 else actions,
                "Resource": topic_arn,
            }
        )

    def remove_permission(self, topic_arn, label):
        topic = self.get_topic(topic_arn)
        statements = topic._policy_json.get("Statement", [])
        topic._policy_json["Statement"] = [s for s in statements if s.get("Sid") != label]

    sns.SNSBackend.add_permission = add_permission
    sns.SNSBackend.remove_permission = remove_permission


def http_delivery():
    """Publish to an http(s) subscription returns at once and delivers in the
    background, as SNS does: the JSON body has Type=Notification, MessageId,
    TopicArn, Message, Timestamp and MessageAttributes (moto dropped them),
    with the x-amz-sns-* headers; a failed delivery is retried 3 times and
    never fails the Publish (moto: HTTP 500 when the endpoint was down).
    Each attempt is logged in /_aurora_dr/calls as sns Deliver."""

    @wrap(sns.Subscription, "publish")
    def publish(original, self, message, message_id, subject=None, message_attributes=None, **kwargs):
        if self.protocol not in ("http", "https"):
            return original(
                self, message, message_id, subject=subject, message_attributes=message_attributes, **kwargs
            )
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(
            message_attributes, message
        ):
            return None
        body = json.dumps(
            self.get_post_data(message, message_id, subject, message_attributes=message_attributes)
        )
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": "Notification",
            "x-amz-sns-message-id": message_id,
            "x-amz-sns-topic-arn": self.topic.arn,
            "x-amz-sns-subscription-arn": self.arn,
        }
        threading.Thread(target=deliver, args=(self, body, headers), daemon=True).start()
        return None


def deliver(subscription, body, headers):
    arn = parse_arn(subscription.topic.arn)
    for attempt in range(4):
        outcome = {"status": None, "error_code": None}
        try:
            response = requests.post(subscription.endpoint, data=body.encode(), headers=headers, timeout=10)
            outcome["status"] = response.status_code
        except requests.RequestException as error:
            outcome["error_code"] = type(error).__name__
        CALLS.add(
            {
                "service": "sns",
                "operation": "Deliver",
                "account": arn.account,
                "region": arn.region,
                "params": {
                    "Endpoint": subscription.endpoint,
                    "TopicArn": subscription.topic.arn,
                    "Attempt": str(attempt + 1),
                },
                **outcome,
            }
        )
        if outcome["status"] is not None and outcome["status"] < 500:
            return
        time.sleep(0.2 * (attempt + 1))


PATCHES = (
    progress_statuses,
    describe_shared_snapshots,
    restore_from_shared_snapshot,
    copy_from_shared_snapshot,
    share_requires_available_snapshot,
    rename_moves_instances,
    rename_instance_conflict,
    cross_account_subscribe,
    add_permission_without_sid,
    http_delivery,
)


def apply():
    for patch in PATCHES:
        patch()
    return [patch.__name__ for patch in PATCHES]
